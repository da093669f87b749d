//! Compiled components cached on disk, keyed by the component's SHA-256 and
//! by the engine's compatibility hash, so a restart loads machine code
//! instead of recompiling and an engine upgrade never loads stale code.

use std::hash::Hasher;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use super::RuntimeError;

/// The on-disk cache of compiled components:
/// `<cache_dir>/<engine-key>/<sha256>.cwasm`.
#[derive(Debug, Clone)]
pub struct ComponentCache {
    dir: PathBuf,
}

/// Feeds `Hash` output into SHA-256 so the engine key is stable across runs
/// (std's `DefaultHasher` makes no such promise).
struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
    fn finish(&self) -> u64 {
        0
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

impl ComponentCache {
    pub fn new(engine: &Engine, root: &Path) -> Result<Self, RuntimeError> {
        let mut hasher = Sha256Hasher(Sha256::new());
        std::hash::Hash::hash(&engine.precompile_compatibility_hash(), &mut hasher);
        let engine_key = hex::encode(&hasher.0.finalize()[..12]);
        let dir = root.join(engine_key);
        std::fs::create_dir_all(&dir).map_err(|source| RuntimeError::Cache {
            path: dir.display().to_string(),
            source,
        })?;
        Ok(Self { dir })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path_for(&self, wasm: &[u8]) -> PathBuf {
        self.dir
            .join(format!("{}.cwasm", hex::encode(Sha256::digest(wasm))))
    }

    /// Returns the compiled component for `wasm`, compiling and caching it
    /// on a miss. A cache entry that does not load (truncated, or from
    /// another build) is recompiled and replaced.
    pub fn get_or_compile(
        &self,
        engine: &Engine,
        context: &str,
        wasm: &[u8],
    ) -> Result<Component, RuntimeError> {
        let path = self.path_for(wasm);
        if path.is_file() {
            match load_cached(engine, &path) {
                Ok(component) => return Ok(component),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "compiled component cache entry unusable; recompiling");
                }
            }
        }
        let component = Component::new(engine, wasm).map_err(|e| RuntimeError::Compile {
            context: context.to_owned(),
            message: format!("not a valid WebAssembly component: {e:#}"),
        })?;
        match component.serialize() {
            Ok(bytes) => {
                if let Err(source) = write_atomically(&path, &bytes) {
                    tracing::warn!(path = %path.display(), error = %source, "cannot write the compile cache; continuing without it");
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot serialize a compiled component"),
        }
        Ok(component)
    }
}

#[allow(unsafe_code)]
fn load_cached(engine: &Engine, path: &Path) -> wasmtime::Result<Component> {
    // SAFETY: `deserialize_file` trusts its input to be wasmtime's own
    // output. Only this host writes here, inside its private data dir,
    // atomically (temp file + rename), under a name that is the hash of the
    // source and a folder keyed by this engine's configuration; wasmtime
    // itself also checks the engine version and settings recorded in the
    // file before using it.
    unsafe { Component::deserialize_file(engine, path) }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}
