//! Package archives: the `.zip` a plugin version ships as.
//!
//! ```text
//! plugin.toml                     required
//! plugin.wasm                     required for kind = "plugin", forbidden for kind = "static"
//! sql/<dialect>/NNNN_<what>.sql   optional; dialect is sqlite, postgres or mysql
//! public/**                       optional static files; required for kind = "static"
//! ```
//!
//! [`unpack`] treats the archive as hostile: before anything is written it
//! walks the central directory itself (the `zip` crate silently keeps only
//! the last of two entries with the same name) and refuses too many entries,
//! unsafe names (zip-slip, absolute paths, backslashes, NUL), symlinks and
//! other special files, duplicates (also case-insensitive ones) and anything
//! outside the layout above. Sizes are counted as the bytes are actually
//! decompressed, never trusting the declared sizes. Files are written with
//! `File::create_new` under the destination only, and a failed unpack
//! removes everything it wrote.
//!
//! [`pack_dir`] builds the archive from a package directory with the same
//! validation, deterministically (sorted entries, fixed timestamps and
//! permissions), so the same input always gives the same bytes and the same
//! [`sha256_hex`].

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{self, Cursor, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipArchive, ZipWriter};

use crate::manifest::{Manifest, ManifestError, PackageKind};

/// What every error about a bad package tells the operator to do.
const REBUILD: &str = "rebuild the package with `plinth plugin pack`";

/// The allowed layout, named in every layout error.
const LAYOUT: &str = "a package holds only plugin.toml, plugin.wasm, \
     sql/<sqlite|postgres|mysql>/NNNN_<what>.sql and public/**";

/// The SQL dialect directories allowed under `sql/`.
pub const SQL_DIALECTS: &[&str] = &["sqlite", "postgres", "mysql"];

/// The first eight bytes of a WebAssembly component: `\0asm`, version
/// 0x0d, layer 1.
pub const COMPONENT_MAGIC: [u8; 8] = [0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];

/// Longest entry name, in bytes.
pub const MAX_NAME_BYTES: usize = 255;

const MANIFEST_FILE: &str = "plugin.toml";
const WASM_FILE: &str = "plugin.wasm";

/// Limits [`unpack`] and [`read_manifest`] enforce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most entries (files and directories) in the central directory.
    pub max_entries: usize,
    /// Most bytes all entries together decompress to.
    pub max_total_bytes: u64,
    /// Most bytes one entry decompresses to.
    pub max_entry_bytes: u64,
    /// Largest package (the compressed `.zip`) accepted at all.
    pub max_package_bytes: u64,
}

impl Default for Limits {
    /// 2,000 entries, 256 MiB in total, 64 MiB per entry and a 128 MiB
    /// package.
    fn default() -> Self {
        const MIB: u64 = 1024 * 1024;
        Limits {
            max_entries: 2_000,
            max_total_bytes: 256 * MIB,
            max_entry_bytes: 64 * MIB,
            max_package_bytes: 128 * MIB,
        }
    }
}

/// A package [`unpack`] extracted.
#[derive(Debug, Clone)]
pub struct Unpacked {
    pub manifest: Manifest,
    /// Lowercase hex SHA-256 of the package bytes.
    pub sha256: String,
    /// The files written, relative to the destination, sorted.
    pub files: Vec<PathBuf>,
    /// Bytes written across all files.
    pub total_bytes: u64,
}

/// Why a package was refused. Every message names the entry it is about and
/// says what to do.
#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    #[error(
        "the package is {size} bytes, more than the {limit}-byte limit; \
         ship large assets separately or raise the package size limit"
    )]
    PackageTooLarge { size: u64, limit: u64 },

    #[error("not a zip package: {reason}; {REBUILD}")]
    NotAZip { reason: String },

    #[error(
        "the package has {count} entries, more than the limit of {limit}; \
         ship fewer files or raise the entry limit"
    )]
    TooManyEntries { count: u64, limit: usize },

    /// A name that could reach outside the destination or is not portable.
    #[error("entry {name:?}: {reason}; {REBUILD}")]
    UnsafeName { name: String, reason: String },

    /// A symlink, device, FIFO or socket, or an entry whose type and name
    /// disagree.
    #[error(
        "entry {name:?}: {reason}; packages hold only regular files and directories; {REBUILD}"
    )]
    NotAFile { name: String, reason: String },

    /// Two entries that would land on the same path.
    #[error("entry {name:?}: {reason}; {REBUILD}")]
    Collision {
        name: String,
        other: String,
        reason: String,
    },

    #[error("entry {name:?}: {reason} ({LAYOUT}); {REBUILD}")]
    NotInLayout { name: String, reason: String },

    #[error(
        "entry {name:?} decompresses to more than {limit} bytes, the per-file limit \
         (a zip bomb, or a file too large for a package); ship it separately or raise the per-file limit"
    )]
    EntryTooLarge { name: String, limit: u64 },

    #[error(
        "entry {name:?} takes the package past {limit} decompressed bytes in total, the package limit \
         (a zip bomb, or too much content for a package); ship less or raise the total size limit"
    )]
    TotalTooLarge { name: String, limit: u64 },

    #[error("the package has no plugin.toml at its top level; {REBUILD}")]
    MissingManifest,

    #[error(
        "plugin.toml is not valid UTF-8 (at byte {valid_up_to}); save it as UTF-8 and {REBUILD}"
    )]
    ManifestNotUtf8 { valid_up_to: usize },

    #[error("plugin.toml: {0}; fix plugin.toml and {REBUILD}")]
    Manifest(#[source] ManifestError),

    /// The manifest's `kind` does not match the files in the package.
    #[error("{reason}")]
    KindMismatch { reason: String },

    #[error("plugin.wasm: {reason}")]
    NotAComponent { reason: String },

    /// An entry could not be read: corrupt data, a failed CRC, encryption
    /// or an unsupported compression method.
    #[error("entry {name:?} cannot be read: {reason}; {REBUILD}")]
    Corrupt { name: String, reason: String },

    #[error("cannot unpack into {}: {reason}", path.display())]
    Destination { path: PathBuf, reason: String },

    /// A file in the directory [`pack_dir`] was given breaks the layout.
    #[error(
        "{}: {reason} ({LAYOUT}); move it out of the package directory or fix its name",
        path.display()
    )]
    StrayFile { path: PathBuf, reason: String },

    /// The directory [`pack_dir`] was given is not a package directory.
    #[error("{}: {reason}", path.display())]
    PackDir { path: PathBuf, reason: String },

    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Validates and extracts `bytes` into `dest` (which must exist and be
/// empty). Nothing is ever written outside `dest`, and on any error
/// everything written under `dest` is removed again (`dest` itself stays).
pub fn unpack(bytes: &[u8], dest: &Path, limits: &Limits) -> Result<Unpacked, PackageError> {
    check_dest(dest)?;
    let mut written = BTreeSet::new();
    let result = unpack_into(bytes, dest, limits, &mut written);
    if result.is_err() {
        remove_written(dest, &written);
    }
    result
}

/// Reads and validates only the manifest (for quick checks): the same
/// size, entry-count, name, type and layout checks on the central directory
/// as [`unpack`], the manifest itself, the kind rules and the
/// `plugin.wasm` header. Other entries are not decompressed, so their sizes
/// are only checked by [`unpack`].
pub fn read_manifest(bytes: &[u8], limits: &Limits) -> Result<Manifest, PackageError> {
    let scan = scan(bytes, limits)?;
    let mut archive = open_archive(bytes, &scan)?;
    let mut budget = Budget::new(limits);
    let (manifest, _) = read_manifest_entry(&mut archive, &scan, &mut budget)?;
    check_kind(&manifest, scan.wasm.is_some(), scan.has_public_file)?;
    if let Some(index) = scan.wasm {
        check_wasm_header(&mut archive, index, &scan.entries[index])?;
    }
    Ok(manifest)
}

/// Packs a package directory (`plugin.toml`, `plugin.wasm`, `sql/`,
/// `public/`) into zip bytes: entries in sorted order, deflated, with fixed
/// timestamps (1980-01-01) and permissions 0o644, so the same input gives
/// the same bytes. Validates the manifest and layout the same way
/// [`unpack`] does and refuses stray files, symlinks and special files.
pub fn pack_dir(dir: &Path) -> Result<Vec<u8>, PackageError> {
    let meta = fs::metadata(dir).map_err(|source| PackageError::Io {
        path: dir.to_owned(),
        source,
    })?;
    if !meta.is_dir() {
        return Err(PackageError::PackDir {
            path: dir.to_owned(),
            reason: "is not a directory; pass the package directory".to_string(),
        });
    }

    // (name relative to `dir` with `/` separators, is_dir)
    let mut found = Vec::new();
    walk(dir, "", &mut found)?;

    let mut seen = Seen::default();
    let mut files = Vec::new();
    let mut has_manifest = false;
    let mut has_wasm = false;
    let mut has_public_file = false;
    for (name, is_dir) in &found {
        let path = dir.join(name);
        let slot = check_name(name, *is_dir).map_err(|e| PackageError::StrayFile {
            path: path.clone(),
            reason: e.reason().to_string(),
        })?;
        if let Err((other, reason)) = seen.insert(name, *is_dir) {
            return Err(PackageError::StrayFile {
                path,
                reason: format!("{reason} (the other is {:?})", dir.join(other)),
            });
        }
        match slot {
            Slot::Manifest => has_manifest = true,
            Slot::Wasm => has_wasm = true,
            Slot::PublicFile => has_public_file = true,
            _ => {}
        }
        if !is_dir {
            files.push(name.clone());
        }
    }
    if let Some((name, other)) = seen.file_used_as_dir() {
        return Err(PackageError::StrayFile {
            path: dir.join(&name),
            reason: format!("collides with {:?}", dir.join(other)),
        });
    }
    if !has_manifest {
        return Err(PackageError::PackDir {
            path: dir.join(MANIFEST_FILE),
            reason: "is missing; every package needs a plugin.toml at its top level".to_string(),
        });
    }

    let manifest_path = dir.join(MANIFEST_FILE);
    let text = fs::read(&manifest_path).map_err(|source| PackageError::Io {
        path: manifest_path,
        source,
    })?;
    let manifest = parse_manifest(&text)?;
    check_kind(&manifest, has_wasm, has_public_file)?;
    if has_wasm {
        let wasm_path = dir.join(WASM_FILE);
        let mut head = Vec::with_capacity(COMPONENT_MAGIC.len());
        File::open(&wasm_path)
            .and_then(|f| f.take(COMPONENT_MAGIC.len() as u64).read_to_end(&mut head))
            .map_err(|source| PackageError::Io {
                path: wasm_path,
                source,
            })?;
        check_component(&head)?;
    }

    files.sort();
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .last_modified_time(DateTime::default())
        .unix_permissions(0o644);
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    let zip_error = |path: &Path, e: zip::result::ZipError| PackageError::Io {
        path: path.to_owned(),
        source: io::Error::other(e),
    };
    for name in &files {
        let path = dir.join(name);
        zip.start_file(name.as_str(), options)
            .map_err(|e| zip_error(&path, e))?;
        let mut file = File::open(&path).map_err(|source| PackageError::Io {
            path: path.clone(),
            source,
        })?;
        io::copy(&mut file, &mut zip).map_err(|source| PackageError::Io { path, source })?;
    }
    let out = zip.finish().map_err(|e| zip_error(dir, e))?;
    Ok(out.into_inner())
}

// ---------------------------------------------------------------------------
// Names and layout
// ---------------------------------------------------------------------------

/// Where an entry sits in the layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Manifest,
    Wasm,
    SqlDir,
    SqlFile,
    PublicDir,
    PublicFile,
}

#[derive(Debug)]
enum NameError {
    /// Could escape the destination or is not portable.
    Unsafe(String),
    /// Safe, but not part of the layout.
    Layout(String),
}

impl NameError {
    fn reason(&self) -> &str {
        match self {
            NameError::Unsafe(r) | NameError::Layout(r) => r,
        }
    }

    fn into_error(self, name: &str) -> PackageError {
        match self {
            NameError::Unsafe(reason) => PackageError::UnsafeName {
                name: name.to_string(),
                reason,
            },
            NameError::Layout(reason) => PackageError::NotInLayout {
                name: name.to_string(),
                reason,
            },
        }
    }
}

/// Checks an entry name (a directory's may end with one `/`) for safety
/// and against the layout.
fn check_name(name: &str, is_dir: bool) -> Result<Slot, NameError> {
    let unsafe_name = |reason: &str| Err(NameError::Unsafe(reason.to_string()));
    if name.is_empty() {
        return unsafe_name("empty names are not allowed");
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(NameError::Unsafe(format!(
            "names may be at most {MAX_NAME_BYTES} bytes long (this one is {})",
            name.len()
        )));
    }
    if name.contains('\0') {
        return unsafe_name("names may not contain NUL bytes");
    }
    if name.contains('\\') {
        return unsafe_name("names may not contain backslashes (use / between directories)");
    }
    if name.starts_with('/') {
        return unsafe_name("absolute paths are not allowed (zip-slip); names must be relative");
    }
    let b = name.as_bytes();
    if b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':' {
        return unsafe_name(
            "paths may not start with a drive letter (zip-slip); names must be relative",
        );
    }
    let path = name.strip_suffix('/').unwrap_or(name);
    let parts: Vec<&str> = path.split('/').collect();
    for part in &parts {
        match *part {
            "" => return unsafe_name("paths may not contain empty components (\"//\")"),
            ".." => return unsafe_name("paths may not contain \"..\" (zip-slip)"),
            "." => return unsafe_name("paths may not contain \".\" components"),
            _ => {}
        }
    }

    let layout = |reason: String| Err(NameError::Layout(reason));
    let must_be_file = |what: &str| layout(format!("{what} must be a file, not a directory"));
    match parts.as_slice() {
        [MANIFEST_FILE] if is_dir => must_be_file(MANIFEST_FILE),
        [MANIFEST_FILE] => Ok(Slot::Manifest),
        [WASM_FILE] if is_dir => must_be_file(WASM_FILE),
        [WASM_FILE] => Ok(Slot::Wasm),
        ["sql"] if is_dir => Ok(Slot::SqlDir),
        ["sql"] => layout("sql must be a directory".to_string()),
        ["sql", dialect, rest @ ..] => {
            if !SQL_DIALECTS.contains(dialect) {
                return layout(format!(
                    "unknown SQL dialect directory {dialect:?} (expected sqlite, postgres or mysql)"
                ));
            }
            match rest {
                [] if is_dir => Ok(Slot::SqlDir),
                [] => layout(format!(
                    "sql/{dialect} must be a directory of NNNN_<what>.sql files"
                )),
                [file] if !is_dir && is_migration_name(file) => Ok(Slot::SqlFile),
                [file] if !is_dir => layout(format!(
                    "{file:?} is not a valid migration name: SQL files must be named \
                     NNNN_<what>.sql (four digits, an underscore, a name), e.g. 0001_create.sql"
                )),
                _ => layout(format!(
                    "sql/{dialect}/ holds only NNNN_<what>.sql files, no subdirectories"
                )),
            }
        }
        ["public"] if is_dir => Ok(Slot::PublicDir),
        ["public"] => layout("public must be a directory".to_string()),
        ["public", ..] if is_dir => Ok(Slot::PublicDir),
        ["public", ..] => Ok(Slot::PublicFile),
        [top, ..] => layout(format!("{top:?} is not allowed at the top level")),
        [] => unsafe_name("empty names are not allowed"),
    }
}

/// `NNNN_<what>.sql`, as the host's migration runner reads them.
fn is_migration_name(file: &str) -> bool {
    let Some(stem) = file.strip_suffix(".sql") else {
        return false;
    };
    let Some((digits, rest)) = stem.split_at_checked(4) else {
        return false;
    };
    digits.bytes().all(|b| b.is_ascii_digit())
        && rest.strip_prefix('_').is_some_and(|w| !w.is_empty())
}

/// Names seen so far, normalised (lowercase, no trailing `/`) so that names
/// that would land on the same path on some filesystem collide.
#[derive(Default)]
struct Seen {
    /// normalised name -> (name as written, is_dir)
    names: BTreeMap<String, (String, bool)>,
}

impl Seen {
    /// Records `name`, or returns the earlier name it collides with and why.
    fn insert(&mut self, name: &str, is_dir: bool) -> Result<(), (String, String)> {
        let key = normalise(name);
        if let Some((other, _)) = self.names.get(&key) {
            let reason = if other == name {
                "appears twice in the package".to_string()
            } else {
                format!(
                    "collides with {other:?}: the names differ only by case or a trailing /, \
                     so they are the same file on case-insensitive filesystems"
                )
            };
            return Err((other.clone(), reason));
        }
        self.names.insert(key, (name.to_string(), is_dir));
        Ok(())
    }

    /// An entry below a path that another entry has as a file, e.g.
    /// `public/a` (file) and `public/a/b`: returns (deeper name, file name).
    fn file_used_as_dir(&self) -> Option<(String, String)> {
        for (key, (name, _)) in &self.names {
            let mut prefix = key.as_str();
            while let Some((parent, _)) = prefix.rsplit_once('/') {
                if let Some((other, false)) = self.names.get(parent) {
                    return Some((name.clone(), other.clone()));
                }
                prefix = parent;
            }
        }
        None
    }
}

fn normalise(name: &str) -> String {
    name.strip_suffix('/').unwrap_or(name).to_lowercase()
}

// ---------------------------------------------------------------------------
// Central directory
// ---------------------------------------------------------------------------

/// One validated central directory entry.
#[derive(Debug)]
struct Entry {
    /// As written in the archive (a directory's ends with `/`).
    name: String,
    is_dir: bool,
    slot: Slot,
}

impl Entry {
    /// The path under the destination, built only from validated parts.
    fn rel_path(&self) -> PathBuf {
        self.name
            .strip_suffix('/')
            .unwrap_or(&self.name)
            .split('/')
            .collect()
    }
}

/// The validated central directory.
#[derive(Debug)]
struct Scan {
    /// In central directory order, which is also the `zip` crate's index
    /// order.
    entries: Vec<Entry>,
    manifest: Option<usize>,
    wasm: Option<usize>,
    has_public_file: bool,
}

const EOCD_SIG: u32 = 0x0605_4b50;
const ZIP64_LOCATOR_SIG: u32 = 0x0706_4b50;
const ZIP64_EOCD_SIG: u32 = 0x0606_4b50;
const CENTRAL_SIG: u32 = 0x0201_4b50;
const EOCD_LEN: usize = 22;
const CENTRAL_LEN: usize = 46;

const S_IFMT: u32 = 0o170_000;
const S_IFREG: u32 = 0o100_000;
const S_IFDIR: u32 = 0o040_000;
const S_IFLNK: u32 = 0o120_000;

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

fn not_zip(reason: &str) -> PackageError {
    PackageError::NotAZip {
        reason: reason.to_string(),
    }
}

/// Checks the package size, then walks the central directory by hand and
/// validates every entry's name, type and place in the layout. The `zip`
/// crate is not used for this because it keeps only the last of several
/// entries with the same name, and it would parse a central directory of
/// any length before the entry count could be checked.
fn scan(bytes: &[u8], limits: &Limits) -> Result<Scan, PackageError> {
    let size = bytes.len() as u64;
    if size > limits.max_package_bytes {
        return Err(PackageError::PackageTooLarge {
            size,
            limit: limits.max_package_bytes,
        });
    }
    if !bytes.starts_with(b"PK") {
        return Err(not_zip("it does not start with a zip header (\"PK\")"));
    }

    // The end of central directory record: the last one whose comment runs
    // exactly to the end of the file.
    let lowest = bytes.len().saturating_sub(EOCD_LEN + usize::from(u16::MAX));
    let eocd = (lowest..=bytes.len().saturating_sub(EOCD_LEN))
        .rev()
        .find(|&at| {
            u32_at(bytes, at) == Some(EOCD_SIG)
                && u16_at(bytes, at + 20)
                    .is_some_and(|comment| at + EOCD_LEN + usize::from(comment) == bytes.len())
        })
        .ok_or_else(|| {
            not_zip("no end of central directory record found (truncated or not a zip)")
        })?;
    let bad_eocd = || not_zip("the end of central directory record is truncated");
    let mut count = u64::from(u16_at(bytes, eocd + 10).ok_or_else(bad_eocd)?);
    let mut cd_size = u64::from(u32_at(bytes, eocd + 12).ok_or_else(bad_eocd)?);
    let mut cd_offset = u64::from(u32_at(bytes, eocd + 16).ok_or_else(bad_eocd)?);
    if u16_at(bytes, eocd + 4) != Some(0) || u16_at(bytes, eocd + 6) != Some(0) {
        return Err(not_zip("multi-disk (split) archives are not supported"));
    }
    if count == u64::from(u16::MAX)
        || cd_size == u64::from(u32::MAX)
        || cd_offset == u64::from(u32::MAX)
    {
        // Zip64: the real values are in the zip64 end of central directory
        // record, which the locator just before the EOCD points to.
        let locator = eocd
            .checked_sub(20)
            .filter(|&at| u32_at(bytes, at) == Some(ZIP64_LOCATOR_SIG));
        if let Some(locator) = locator {
            let record = u64_at(bytes, locator + 8)
                .and_then(|at| usize::try_from(at).ok())
                .filter(|&at| u32_at(bytes, at) == Some(ZIP64_EOCD_SIG))
                .ok_or_else(|| not_zip("the zip64 end of central directory record is missing"))?;
            let bad = || not_zip("the zip64 end of central directory record is truncated");
            count = u64_at(bytes, record + 32).ok_or_else(bad)?;
            cd_size = u64_at(bytes, record + 40).ok_or_else(bad)?;
            cd_offset = u64_at(bytes, record + 48).ok_or_else(bad)?;
        }
    }
    if count > limits.max_entries as u64 {
        return Err(PackageError::TooManyEntries {
            count,
            limit: limits.max_entries,
        });
    }
    let cd_start = usize::try_from(cd_offset)
        .ok()
        .filter(|&start| {
            usize::try_from(cd_size)
                .ok()
                .and_then(|len| start.checked_add(len))
                .is_some_and(|end| end <= eocd)
        })
        .ok_or_else(|| not_zip("the central directory lies outside the file"))?;

    let mut scan = Scan {
        entries: Vec::new(),
        manifest: None,
        wasm: None,
        has_public_file: false,
    };
    let mut seen = Seen::default();
    let mut at = cd_start;
    for i in 0..count {
        let truncated = || not_zip(&format!("central directory entry {i} is truncated"));
        if u32_at(bytes, at) != Some(CENTRAL_SIG) {
            return Err(not_zip(&format!("central directory entry {i} is damaged")));
        }
        let made_by = u16_at(bytes, at + 4).ok_or_else(truncated)?;
        let name_len = usize::from(u16_at(bytes, at + 28).ok_or_else(truncated)?);
        let extra_len = usize::from(u16_at(bytes, at + 30).ok_or_else(truncated)?);
        let comment_len = usize::from(u16_at(bytes, at + 32).ok_or_else(truncated)?);
        let external = u32_at(bytes, at + 38).ok_or_else(truncated)?;
        let raw = bytes
            .get(at + CENTRAL_LEN..at + CENTRAL_LEN + name_len)
            .ok_or_else(truncated)?;
        at += CENTRAL_LEN + name_len + extra_len + comment_len;

        let shown = String::from_utf8_lossy(raw);
        if raw.len() > MAX_NAME_BYTES {
            return Err(PackageError::UnsafeName {
                name: shown.chars().take(64).collect::<String>() + "...",
                reason: format!(
                    "names may be at most {MAX_NAME_BYTES} bytes long (this one is {})",
                    raw.len()
                ),
            });
        }
        if raw.contains(&0) {
            return Err(PackageError::UnsafeName {
                name: shown.into_owned(),
                reason: "names may not contain NUL bytes".to_string(),
            });
        }
        let name = std::str::from_utf8(raw).map_err(|_| PackageError::UnsafeName {
            name: shown.clone().into_owned(),
            reason: "names must be valid UTF-8".to_string(),
        })?;
        let is_dir = name.ends_with('/');
        let slot = check_name(name, is_dir).map_err(|e| e.into_error(name))?;
        check_type(name, is_dir, made_by, external)?;
        if let Err((other, reason)) = seen.insert(name, is_dir) {
            return Err(PackageError::Collision {
                name: name.to_string(),
                other,
                reason,
            });
        }

        let index = scan.entries.len();
        match slot {
            Slot::Manifest => scan.manifest = Some(index),
            Slot::Wasm => scan.wasm = Some(index),
            Slot::PublicFile => scan.has_public_file = true,
            Slot::SqlDir | Slot::SqlFile | Slot::PublicDir => {}
        }
        scan.entries.push(Entry {
            name: name.to_string(),
            is_dir,
            slot,
        });
    }
    if let Some((name, other)) = seen.file_used_as_dir() {
        return Err(PackageError::Collision {
            reason: format!("needs {other:?} to be a directory, but the package has it as a file"),
            name,
            other,
        });
    }
    Ok(scan)
}

/// Refuses symlinks and special files, going by the type bits the archiver
/// recorded (Unix mode in the high half of the external attributes, or the
/// MS-DOS directory bit).
fn check_type(name: &str, is_dir: bool, made_by: u16, external: u32) -> Result<(), PackageError> {
    let refuse = |reason: &str| {
        Err(PackageError::NotAFile {
            name: name.to_string(),
            reason: reason.to_string(),
        })
    };
    const UNIX: u16 = 3;
    const DOS: u16 = 0;
    match made_by >> 8 {
        UNIX => match (external >> 16) & S_IFMT {
            0 => Ok(()),
            S_IFREG if is_dir => refuse("is marked as a regular file but its name ends with /"),
            S_IFREG => Ok(()),
            S_IFDIR if is_dir => Ok(()),
            S_IFDIR => refuse("is marked as a directory but its name does not end with /"),
            S_IFLNK => refuse("is a symbolic link"),
            0o010_000 => refuse("is a FIFO"),
            0o020_000 => refuse("is a character device"),
            0o060_000 => refuse("is a block device"),
            0o140_000 => refuse("is a socket"),
            _ => refuse("has an unknown file type"),
        },
        DOS if external & 0x10 != 0 && !is_dir => {
            refuse("is marked as a directory but its name does not end with /")
        }
        _ => Ok(()),
    }
}

// ---------------------------------------------------------------------------
// Reading entries
// ---------------------------------------------------------------------------

type Archive<'a> = ZipArchive<Cursor<&'a [u8]>>;

/// Opens the archive with the `zip` crate and checks it sees the same
/// entries as [`scan`].
fn open_archive<'a>(bytes: &'a [u8], scan: &Scan) -> Result<Archive<'a>, PackageError> {
    let archive = ZipArchive::new(Cursor::new(bytes)).map_err(|e| PackageError::NotAZip {
        reason: e.to_string(),
    })?;
    if archive.len() != scan.entries.len() {
        return Err(not_zip(&format!(
            "the central directory is inconsistent ({} entries, but {} distinct names)",
            scan.entries.len(),
            archive.len()
        )));
    }
    Ok(archive)
}

/// Opens entry `index` for reading, checking it is the entry [`scan`]
/// validated and that nothing about it is off.
fn open_entry<'r, 'b>(
    archive: &'r mut Archive<'b>,
    index: usize,
    entry: &Entry,
) -> Result<zip::read::ZipFile<'r, Cursor<&'b [u8]>>, PackageError> {
    let corrupt = |reason: String| PackageError::Corrupt {
        name: entry.name.clone(),
        reason,
    };
    let file = archive
        .by_index(index)
        .map_err(|e| corrupt(e.to_string()))?;
    if file.name_raw() != entry.name.as_bytes() {
        return Err(corrupt(
            "the central directory is inconsistent (entry names do not match)".to_string(),
        ));
    }
    if file.encrypted() {
        return Err(corrupt("encrypted entries are not supported".to_string()));
    }
    if file.is_symlink() {
        return Err(PackageError::NotAFile {
            name: entry.name.clone(),
            reason: "is a symbolic link".to_string(),
        });
    }
    Ok(file)
}

/// Running count of decompressed bytes.
struct Budget<'l> {
    limits: &'l Limits,
    total: u64,
}

impl<'l> Budget<'l> {
    fn new(limits: &'l Limits) -> Self {
        Budget { limits, total: 0 }
    }

    /// Copies `reader` to `out`, counting the bytes actually read and
    /// refusing to go past the per-entry or total limit. The reader is
    /// never asked for more than one byte past the limit.
    fn copy(
        &mut self,
        name: &str,
        reader: &mut impl Read,
        out: &mut impl Write,
        out_path: &Path,
    ) -> Result<u64, PackageError> {
        let entry_cap = self.limits.max_entry_bytes;
        let cap = entry_cap.min(self.limits.max_total_bytes.saturating_sub(self.total));
        let mut limited = reader.take(cap.saturating_add(1));
        let mut buf = vec![0u8; 64 * 1024];
        let mut n: u64 = 0;
        loop {
            let read = match limited.read(&mut buf) {
                Ok(0) => break,
                Ok(read) => read,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(PackageError::Corrupt {
                        name: name.to_string(),
                        reason: e.to_string(),
                    });
                }
            };
            n += read as u64;
            if n > cap {
                return Err(if n > entry_cap {
                    PackageError::EntryTooLarge {
                        name: name.to_string(),
                        limit: entry_cap,
                    }
                } else {
                    PackageError::TotalTooLarge {
                        name: name.to_string(),
                        limit: self.limits.max_total_bytes,
                    }
                });
            }
            out.write_all(&buf[..read])
                .map_err(|source| PackageError::Io {
                    path: out_path.to_owned(),
                    source,
                })?;
        }
        self.total += n;
        Ok(n)
    }
}

fn parse_manifest(bytes: &[u8]) -> Result<Manifest, PackageError> {
    let text = std::str::from_utf8(bytes).map_err(|e| PackageError::ManifestNotUtf8 {
        valid_up_to: e.valid_up_to(),
    })?;
    Manifest::parse(text).map_err(PackageError::Manifest)
}

/// Reads and parses `plugin.toml`, counting it against the budget.
fn read_manifest_entry(
    archive: &mut Archive<'_>,
    scan: &Scan,
    budget: &mut Budget<'_>,
) -> Result<(Manifest, Vec<u8>), PackageError> {
    let index = scan.manifest.ok_or(PackageError::MissingManifest)?;
    let entry = &scan.entries[index];
    let mut file = open_entry(archive, index, entry)?;
    let mut bytes = Vec::new();
    budget.copy(&entry.name, &mut file, &mut bytes, Path::new(MANIFEST_FILE))?;
    drop(file);
    Ok((parse_manifest(&bytes)?, bytes))
}

/// The manifest's kind must match what the package holds.
fn check_kind(
    manifest: &Manifest,
    has_wasm: bool,
    has_public_file: bool,
) -> Result<(), PackageError> {
    let reason = match manifest.kind {
        PackageKind::Plugin if !has_wasm => {
            "plugin.toml says kind = \"plugin\" but the package has no plugin.wasm; \
             build the component and pack it with `plinth plugin pack`, \
             or set kind = \"static\" for an assets-only package"
        }
        PackageKind::Static if has_wasm => {
            "plugin.toml says kind = \"static\" but the package has a plugin.wasm; \
             remove plugin.wasm, or set kind = \"plugin\""
        }
        PackageKind::Static if !has_public_file => {
            "plugin.toml says kind = \"static\" but the package has no files under public/; \
             a static package serves its public/ files, so add them and rebuild the package"
        }
        PackageKind::Plugin | PackageKind::Static => return Ok(()),
    };
    Err(PackageError::KindMismatch {
        reason: reason.to_string(),
    })
}

/// `head` is the start of `plugin.wasm`: it must be a component.
fn check_component(head: &[u8]) -> Result<(), PackageError> {
    let reason = if head.len() < 8 || head[..4] != COMPONENT_MAGIC[..4] {
        "is not a WebAssembly binary (it does not start with \\0asm); \
         put the compiled component there and rebuild the package"
    } else if head[4..8] == [0x01, 0x00, 0x00, 0x00] {
        "is a core WebAssembly module, not a component; build a component \
         (e.g. `cargo build --target wasm32-wasip2`, or wrap the module with \
         `wasm-tools component new`) and rebuild the package"
    } else if head[..8] != COMPONENT_MAGIC {
        "is a WebAssembly binary of an unsupported version or layer (expected a component: \
         version 0x0d, layer 1); rebuild it with a current toolchain for wasm32-wasip2"
    } else {
        return Ok(());
    };
    Err(PackageError::NotAComponent {
        reason: reason.to_string(),
    })
}

fn check_wasm_header(
    archive: &mut Archive<'_>,
    index: usize,
    entry: &Entry,
) -> Result<(), PackageError> {
    let file = open_entry(archive, index, entry)?;
    let mut head = Vec::with_capacity(COMPONENT_MAGIC.len());
    file.take(COMPONENT_MAGIC.len() as u64)
        .read_to_end(&mut head)
        .map_err(|e| PackageError::Corrupt {
            name: entry.name.clone(),
            reason: e.to_string(),
        })?;
    check_component(&head)
}

// ---------------------------------------------------------------------------
// Extraction
// ---------------------------------------------------------------------------

fn check_dest(dest: &Path) -> Result<(), PackageError> {
    let refuse = |reason: String| PackageError::Destination {
        path: dest.to_owned(),
        reason,
    };
    let meta = fs::metadata(dest).map_err(|e| refuse(format!("{e}; create it first")))?;
    if !meta.is_dir() {
        return Err(refuse("it is not a directory".to_string()));
    }
    let mut entries = fs::read_dir(dest).map_err(|e| refuse(e.to_string()))?;
    if entries.next().is_some() {
        return Err(refuse(
            "it is not empty; unpack into a new, empty directory".to_string(),
        ));
    }
    Ok(())
}

fn unpack_into(
    bytes: &[u8],
    dest: &Path,
    limits: &Limits,
    written: &mut BTreeSet<PathBuf>,
) -> Result<Unpacked, PackageError> {
    let scan = scan(bytes, limits)?;
    let mut archive = open_archive(bytes, &scan)?;
    let mut budget = Budget::new(limits);
    let (manifest, manifest_bytes) = read_manifest_entry(&mut archive, &scan, &mut budget)?;
    check_kind(&manifest, scan.wasm.is_some(), scan.has_public_file)?;
    if let Some(index) = scan.wasm {
        check_wasm_header(&mut archive, index, &scan.entries[index])?;
    }

    let mut files = Vec::new();
    for (index, entry) in scan.entries.iter().enumerate() {
        let rel = entry.rel_path();
        // Record the top-level name before creating anything under it, so
        // a failure part-way removes it.
        if let Some(top) = rel.components().next() {
            written.insert(PathBuf::from(top.as_os_str()));
        }
        let path = dest.join(&rel);
        let io_err = |path: &Path| {
            let path = path.to_owned();
            move |source| PackageError::Io { path, source }
        };
        if entry.is_dir {
            fs::create_dir_all(&path).map_err(io_err(&path))?;
            continue;
        }
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(io_err(parent))?;
        }
        let mut out = File::create_new(&path).map_err(io_err(&path))?;
        if entry.slot == Slot::Manifest {
            out.write_all(&manifest_bytes).map_err(io_err(&path))?;
        } else {
            let mut file = open_entry(&mut archive, index, entry)?;
            budget.copy(&entry.name, &mut file, &mut out, &path)?;
        }
        out.sync_all().map_err(io_err(&path))?;
        files.push(rel);
    }
    files.sort();
    Ok(Unpacked {
        manifest,
        sha256: sha256_hex(bytes),
        files,
        total_bytes: budget.total,
    })
}

/// Removes the top-level entries an unpack created under `dest`. Never
/// follows symlinks (`remove_dir_all` does not), and `dest` was empty to
/// begin with, so only what the unpack wrote goes.
fn remove_written(dest: &Path, written: &BTreeSet<PathBuf>) {
    for top in written {
        let path = dest.join(top);
        let _ = match fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_dir() => fs::remove_dir_all(&path),
            Ok(_) => fs::remove_file(&path),
            Err(_) => Ok(()),
        };
    }
}

// ---------------------------------------------------------------------------
// Packing
// ---------------------------------------------------------------------------

/// Lists `dir/prefix` recursively as (name with `/` separators, is_dir),
/// refusing symlinks, special files and names that are not UTF-8.
fn walk(root: &Path, prefix: &str, out: &mut Vec<(String, bool)>) -> Result<(), PackageError> {
    let dir = if prefix.is_empty() {
        root.to_owned()
    } else {
        root.join(prefix)
    };
    let io_err = |path: &Path| {
        let path = path.to_owned();
        move |source| PackageError::Io { path, source }
    };
    let mut children = Vec::new();
    for child in fs::read_dir(&dir).map_err(io_err(&dir))? {
        let child = child.map_err(io_err(&dir))?;
        let path = child.path();
        let Some(file_name) = child.file_name().to_str().map(str::to_owned) else {
            return Err(PackageError::StrayFile {
                path,
                reason: "the name is not valid UTF-8".to_string(),
            });
        };
        let file_type = child.file_type().map_err(io_err(&path))?;
        let name = if prefix.is_empty() {
            file_name
        } else {
            format!("{prefix}/{file_name}")
        };
        if file_type.is_symlink() {
            return Err(PackageError::StrayFile {
                path,
                reason:
                    "is a symbolic link; packages hold only regular files, so copy the target in"
                        .to_string(),
            });
        }
        if file_type.is_dir() {
            children.push((name, true));
        } else if file_type.is_file() {
            children.push((name, false));
        } else {
            return Err(PackageError::StrayFile {
                path,
                reason: "is not a regular file or directory".to_string(),
            });
        }
    }
    children.sort();
    for (name, is_dir) in children {
        out.push((name.clone(), is_dir));
        if is_dir {
            walk(root, &name, out)?;
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const MANIFEST: &str = "name = \"demo\"\nversion = \"1.0.0\"\nhost_api = \"^0.1\"\n";
    const STATIC_MANIFEST: &str = "name = \"assets\"\nversion = \"1.0.0\"\nkind = \"static\"\n";
    const WASM: &[u8] = b"\0asm\x0d\x00\x01\x00rest";
    const MIB: usize = 1024 * 1024;

    fn options() -> SimpleFileOptions {
        SimpleFileOptions::default().compression_method(CompressionMethod::Deflated)
    }

    /// A zip of `entries` in order, with names written verbatim.
    fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
        for (name, data) in entries {
            if let Some(dir) = name.strip_suffix('/') {
                zip.add_directory(dir, options()).unwrap();
            } else {
                zip.start_file(*name, options()).unwrap();
                zip.write_all(data).unwrap();
            }
        }
        zip.finish().unwrap().into_inner()
    }

    /// plugin.toml and plugin.wasm followed by `extra`.
    fn plugin_zip(extra: &[(&str, &[u8])]) -> Vec<u8> {
        let mut entries: Vec<(&str, &[u8])> =
            vec![("plugin.toml", MANIFEST.as_bytes()), ("plugin.wasm", WASM)];
        entries.extend_from_slice(extra);
        zip_of(&entries)
    }

    /// Replaces every occurrence of `from` with `to` (same length) in `bytes`.
    fn patch(bytes: &mut [u8], from: &[u8], to: &[u8]) {
        assert_eq!(from.len(), to.len());
        let mut hits = 0;
        for at in 0..=bytes.len() - from.len() {
            if &bytes[at..at + from.len()] == from {
                bytes[at..at + from.len()].copy_from_slice(to);
                hits += 1;
            }
        }
        assert!(hits > 0, "nothing to patch");
    }

    /// Every path under `root`, relative and sorted.
    fn tree(root: &Path) -> Vec<String> {
        fn go(root: &Path, dir: &Path, out: &mut Vec<String>) {
            for child in fs::read_dir(dir).unwrap() {
                let path = child.unwrap().path();
                out.push(path.strip_prefix(root).unwrap().display().to_string());
                if fs::symlink_metadata(&path).unwrap().is_dir() {
                    go(root, &path, out);
                }
            }
        }
        let mut out = Vec::new();
        go(root, root, &mut out);
        out.sort();
        out
    }

    /// Unpacks `bytes` into `<tmp>/a/b/dest` and returns the error,
    /// checking that nothing was left anywhere under `<tmp>` (so a `../`
    /// escape from `dest` would have been seen) and that `read_manifest`
    /// refuses the package too unless `unpack_only`.
    fn refused_with(bytes: &[u8], limits: &Limits) -> PackageError {
        let tmp = tempfile::tempdir().unwrap();
        let dest = tmp.path().join("a").join("b").join("dest");
        fs::create_dir_all(&dest).unwrap();
        let err = unpack(bytes, &dest, limits).expect_err("the package should be refused");
        assert_eq!(
            tree(tmp.path()),
            ["a", "a/b", "a/b/dest"],
            "files were left behind after: {err}"
        );
        err
    }

    fn refused(bytes: &[u8]) -> PackageError {
        refused_with(bytes, &Limits::default())
    }

    fn assert_message(err: &PackageError, parts: &[&str]) {
        let text = err.to_string();
        for part in parts {
            assert!(text.contains(part), "{text:?} should mention {part:?}");
        }
    }

    #[test]
    fn valid_package_unpacks() {
        let bytes = plugin_zip(&[
            ("sql/", b""),
            ("sql/sqlite/", b""),
            (
                "sql/sqlite/0001_create.sql",
                b"CREATE TABLE demo_x (id INTEGER);",
            ),
            (
                "sql/postgres/0001_create.sql",
                b"CREATE TABLE demo_x (id BIGINT);",
            ),
            ("public/css/site.css", b"body {}"),
        ]);
        let tmp = tempfile::tempdir().unwrap();
        let got = unpack(&bytes, tmp.path(), &Limits::default()).unwrap();
        assert_eq!(got.manifest.name, "demo");
        assert_eq!(got.manifest.version, semver::Version::new(1, 0, 0));
        assert_eq!(got.sha256, sha256_hex(&bytes));
        assert_eq!(got.sha256.len(), 64);
        let files: Vec<String> = got.files.iter().map(|p| p.display().to_string()).collect();
        assert_eq!(
            files,
            [
                "plugin.toml",
                "plugin.wasm",
                "public/css/site.css",
                "sql/postgres/0001_create.sql",
                "sql/sqlite/0001_create.sql",
            ]
        );
        let expected_total = MANIFEST.len() + WASM.len() + 33 + 32 + 7;
        assert_eq!(got.total_bytes, expected_total as u64);
        assert_eq!(fs::read(tmp.path().join("plugin.wasm")).unwrap(), WASM);
        assert_eq!(
            fs::read_to_string(tmp.path().join("plugin.toml")).unwrap(),
            MANIFEST
        );
        assert_eq!(
            read_manifest(&bytes, &Limits::default()).unwrap(),
            got.manifest
        );
    }

    #[test]
    fn static_package_unpacks() {
        let bytes = zip_of(&[
            ("plugin.toml", STATIC_MANIFEST.as_bytes()),
            ("public/index.html", b"<h1>hi</h1>"),
            ("public/caf\u{e9}.txt", b"non-ASCII names are fine"),
        ]);
        let tmp = tempfile::tempdir().unwrap();
        let got = unpack(&bytes, tmp.path(), &Limits::default()).unwrap();
        assert_eq!(got.manifest.kind, PackageKind::Static);
        assert_eq!(
            fs::read(tmp.path().join("public/caf\u{e9}.txt")).unwrap(),
            b"non-ASCII names are fine"
        );
        assert_eq!(
            got.files,
            [
                PathBuf::from("plugin.toml"),
                PathBuf::from("public/caf\u{e9}.txt"),
                PathBuf::from("public/index.html")
            ]
        );
    }

    #[test]
    fn zip_slip_is_refused() {
        let err = refused(&plugin_zip(&[("../x", b"evil")]));
        assert!(matches!(&err, PackageError::UnsafeName { name, .. } if name == "../x"));
        assert_message(&err, &["\"../x\"", "..", "zip-slip", "plinth plugin pack"]);

        let err = refused(&plugin_zip(&[("sql/../../x", b"evil")]));
        assert!(matches!(&err, PackageError::UnsafeName { name, .. } if name == "sql/../../x"));
        assert_message(&err, &["zip-slip"]);

        let err = refused(&plugin_zip(&[("public/../../../../x", b"evil")]));
        assert!(matches!(err, PackageError::UnsafeName { .. }));
    }

    #[test]
    fn absolute_paths_are_refused() {
        let target = format!("/tmp/plinth-archive-test-{}", std::process::id());
        let err = refused(&plugin_zip(&[(target.as_str(), b"evil")]));
        assert!(matches!(err, PackageError::UnsafeName { .. }));
        assert_message(&err, &["absolute"]);
        assert!(!Path::new(&target).exists());

        let err = refused(&plugin_zip(&[("/etc/x", b"evil")]));
        assert!(matches!(&err, PackageError::UnsafeName { name, .. } if name == "/etc/x"));

        let err = refused(&plugin_zip(&[("C:/x", b"evil")]));
        assert!(matches!(&err, PackageError::UnsafeName { name, .. } if name == "C:/x"));
        assert_message(&err, &["drive letter"]);
        let err = refused(&plugin_zip(&[("c:x", b"evil")]));
        assert!(matches!(err, PackageError::UnsafeName { .. }));
    }

    #[test]
    fn odd_names_are_refused() {
        let err = refused(&plugin_zip(&[("public\\x.css", b"x")]));
        assert!(matches!(err, PackageError::UnsafeName { .. }));
        assert_message(&err, &["backslash"]);
        let err = refused(&plugin_zip(&[("..\\x", b"x")]));
        assert!(matches!(err, PackageError::UnsafeName { .. }));

        let err = refused(&plugin_zip(&[("public//x.css", b"x")]));
        assert_message(&err, &["empty components"]);
        let err = refused(&plugin_zip(&[("public/./x.css", b"x")]));
        assert!(matches!(err, PackageError::UnsafeName { .. }));

        let long = format!("public/{}", "a".repeat(260));
        let err = refused(&plugin_zip(&[(long.as_str(), b"x")]));
        assert_message(&err, &["at most 255 bytes"]);

        // A NUL byte: written as "public/xNy" and patched.
        let mut bytes = plugin_zip(&[("public/xNy", b"x")]);
        patch(&mut bytes, b"public/xNy", b"public/x\0y");
        let err = refused(&bytes);
        assert!(matches!(err, PackageError::UnsafeName { .. }));
        assert_message(&err, &["NUL"]);

        // Not UTF-8.
        let mut bytes = plugin_zip(&[("public/xNy", b"x")]);
        patch(&mut bytes, b"public/xNy", b"public/x\xffy");
        let err = refused(&bytes);
        assert_message(&err, &["UTF-8"]);
    }

    #[test]
    fn symlinks_are_refused() {
        let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
        zip.start_file("plugin.toml", options()).unwrap();
        zip.write_all(MANIFEST.as_bytes()).unwrap();
        zip.start_file("plugin.wasm", options()).unwrap();
        zip.write_all(WASM).unwrap();
        zip.add_symlink("public/passwd", "/etc/passwd", options())
            .unwrap();
        let bytes = zip.finish().unwrap().into_inner();
        let err = refused(&bytes);
        assert!(matches!(&err, PackageError::NotAFile { name, .. } if name == "public/passwd"));
        assert_message(&err, &["symbolic link"]);
        assert!(matches!(
            read_manifest(&bytes, &Limits::default()),
            Err(PackageError::NotAFile { .. })
        ));
    }

    /// Sets the Unix mode recorded for `name` in the central directory.
    fn set_unix_mode(bytes: &mut [u8], name: &str, mode: u32) {
        let at = bytes
            .windows(name.len())
            .rposition(|w| w == name.as_bytes())
            .unwrap()
            - CENTRAL_LEN;
        assert_eq!(u32_at(bytes, at), Some(CENTRAL_SIG));
        bytes[at + 5] = 3; // made by Unix
        bytes[at + 38..at + 42].copy_from_slice(&(mode << 16).to_le_bytes());
    }

    #[test]
    fn special_files_are_refused() {
        for (mode, what) in [
            (0o010_644, "FIFO"),
            (0o020_644, "character device"),
            (0o060_644, "block device"),
            (0o140_644, "socket"),
            (0o120_777, "symbolic link"),
        ] {
            let mut bytes = plugin_zip(&[("public/odd", b"x")]);
            set_unix_mode(&mut bytes, "public/odd", mode);
            let err = refused(&bytes);
            assert!(
                matches!(&err, PackageError::NotAFile { name, .. } if name == "public/odd"),
                "{err}"
            );
            assert_message(&err, &[what]);
        }
        // A directory entry whose name has no trailing slash.
        let mut bytes = plugin_zip(&[("public/dir", b"")]);
        set_unix_mode(&mut bytes, "public/dir", 0o040_755);
        assert!(matches!(refused(&bytes), PackageError::NotAFile { .. }));
    }

    #[test]
    fn duplicates_are_refused() {
        let mut bytes = plugin_zip(&[("public/a.css", b"one"), ("public/b.css", b"two")]);
        patch(&mut bytes, b"public/b.css", b"public/a.css");
        // The zip crate alone would keep only the second entry.
        let err = refused(&bytes);
        assert!(
            matches!(&err, PackageError::Collision { name, other, .. } if name == "public/a.css" && other == "public/a.css"),
            "{err}"
        );
        assert_message(&err, &["twice"]);

        let mut bytes = plugin_zip(&[]);
        patch(&mut bytes, b"plugin.wasm", b"plugin.toml");
        assert!(matches!(refused(&bytes), PackageError::Collision { .. }));
    }

    #[test]
    fn case_duplicates_are_refused() {
        let err = refused(&plugin_zip(&[
            ("public/a.css", b"one"),
            ("public/A.css", b"two"),
        ]));
        assert!(
            matches!(&err, PackageError::Collision { name, other, .. } if name == "public/A.css" && other == "public/a.css"),
            "{err}"
        );
        assert_message(&err, &["case"]);

        // A directory and a file of the same name.
        let err = refused(&plugin_zip(&[("public/x/", b""), ("public/x", b"file")]));
        assert!(matches!(err, PackageError::Collision { .. }), "{err}");

        // A file used as a directory.
        let err = refused(&plugin_zip(&[("public/x", b"file"), ("public/x/y", b"y")]));
        assert!(matches!(err, PackageError::Collision { .. }), "{err}");
    }

    #[test]
    fn files_outside_the_layout_are_refused() {
        let err = refused(&plugin_zip(&[("README.md", b"hi")]));
        assert!(matches!(&err, PackageError::NotInLayout { name, .. } if name == "README.md"));
        assert_message(
            &err,
            &[
                "\"README.md\"",
                "top level",
                "plugin.toml, plugin.wasm",
                "public/**",
            ],
        );

        for name in [
            "sql/sqlite/001_create.sql",
            "sql/sqlite/0001create.sql",
            "sql/sqlite/0001_.sql",
            "sql/sqlite/0001_create.txt",
            "sql/sqlite/sub/0001_create.sql",
            "sql/oracle/0001_create.sql",
            "sql/0001_create.sql",
            "Plugin.toml",
            "src/lib.rs",
        ] {
            let err = refused(&plugin_zip(&[(name, b"x")]));
            assert!(
                matches!(&err, PackageError::NotInLayout { name: n, .. } if n == name),
                "{name}: {err}"
            );
        }
        let err = refused(&plugin_zip(&[("sql/sqlite/01_x.sql", b"x")]));
        assert_message(&err, &["NNNN_<what>.sql"]);
        let err = refused(&plugin_zip(&[("sql/oracle/", b"")]));
        assert_message(&err, &["oracle"]);
        assert!(matches!(
            read_manifest(&plugin_zip(&[("README.md", b"hi")]), &Limits::default()),
            Err(PackageError::NotInLayout { .. })
        ));
    }

    #[test]
    fn too_many_entries_are_refused() {
        let bytes = plugin_zip(&[("public/a", b"a"), ("public/b", b"b")]);
        let limits = Limits {
            max_entries: 3,
            ..Limits::default()
        };
        let err = refused_with(&bytes, &limits);
        assert!(matches!(
            err,
            PackageError::TooManyEntries { count: 4, limit: 3 }
        ));
        assert!(matches!(
            read_manifest(&bytes, &limits),
            Err(PackageError::TooManyEntries { .. })
        ));
        let limits = Limits {
            max_entries: 4,
            ..Limits::default()
        };
        let tmp = tempfile::tempdir().unwrap();
        unpack(&bytes, tmp.path(), &limits).unwrap();
    }

    fn small_limits() -> Limits {
        Limits {
            max_entry_bytes: MIB as u64,
            max_total_bytes: 3 * MIB as u64,
            ..Limits::default()
        }
    }

    #[test]
    fn entry_bomb_is_refused() {
        let zeros = vec![0u8; 10 * MIB];
        let bytes = plugin_zip(&[("public/zeros.bin", &zeros)]);
        assert!(bytes.len() < 100 * 1024, "deflate should shrink the zeros");
        let err = refused_with(&bytes, &small_limits());
        assert!(
            matches!(&err, PackageError::EntryTooLarge { name, limit } if name == "public/zeros.bin" && *limit == MIB as u64),
            "{err}"
        );
        assert_message(&err, &["zip bomb", "1048576"]);
    }

    #[test]
    fn lying_declared_size_is_not_trusted() {
        // A 10 MiB entry whose headers claim 16 bytes: the bytes actually
        // decompressed are counted, so the per-entry limit still trips.
        let zeros = vec![0u8; 10 * MIB];
        let mut bytes = plugin_zip(&[("public/zeros.bin", &zeros)]);
        let real = (10 * MIB as u32).to_le_bytes();
        let lie = 16u32.to_le_bytes();
        patch(&mut bytes, &real, &lie);
        let declared = ZipArchive::new(Cursor::new(&bytes[..]))
            .unwrap()
            .by_name("public/zeros.bin")
            .unwrap()
            .size();
        assert_eq!(declared, 16);
        let err = refused_with(&bytes, &small_limits());
        assert!(
            matches!(&err, PackageError::EntryTooLarge { name, .. } if name == "public/zeros.bin"),
            "{err}"
        );
    }

    #[test]
    fn total_bomb_is_refused() {
        let chunk = vec![7u8; MIB - 100];
        let bytes = plugin_zip(&[
            ("public/1.bin", &chunk),
            ("public/2.bin", &chunk),
            ("public/3.bin", &chunk),
            ("public/4.bin", &chunk),
        ]);
        let err = refused_with(&bytes, &small_limits());
        assert!(
            matches!(&err, PackageError::TotalTooLarge { name, limit } if name == "public/4.bin" && *limit == 3 * MIB as u64),
            "{err}"
        );
        assert_message(&err, &["zip bomb", "in total"]);
    }

    #[test]
    fn oversized_package_is_refused_before_parsing() {
        let bytes = plugin_zip(&[]);
        let limits = Limits {
            max_package_bytes: 10,
            ..Limits::default()
        };
        let err = refused_with(&bytes, &limits);
        assert!(matches!(
            err,
            PackageError::PackageTooLarge { limit: 10, .. }
        ));
        // Not even a zip: the size is checked first.
        let err = refused_with(&[0u8; 11], &limits);
        assert!(matches!(err, PackageError::PackageTooLarge { .. }));
    }

    #[test]
    fn not_a_zip_is_refused() {
        let err = refused(b"hello, this is not a zip file at all");
        assert!(matches!(err, PackageError::NotAZip { .. }));
        assert_message(&err, &["not a zip"]);
        let err = refused(b"");
        assert!(matches!(err, PackageError::NotAZip { .. }));
        // A truncated zip.
        let bytes = plugin_zip(&[]);
        let err = refused(&bytes[..bytes.len() - 30]);
        assert!(matches!(err, PackageError::NotAZip { .. }), "{err}");
        assert!(matches!(
            read_manifest(b"PK nonsense", &Limits::default()),
            Err(PackageError::NotAZip { .. })
        ));
    }

    #[test]
    fn bad_manifest_is_refused() {
        let bad = "name = \"demo\"\nversion = \"1.0\"\nhost_api = \"^0.1\"\n";
        let bytes = zip_of(&[("plugin.toml", bad.as_bytes()), ("plugin.wasm", WASM)]);
        let err = refused(&bytes);
        assert!(
            matches!(&err, PackageError::Manifest(e) if e.field() == "version"),
            "{err}"
        );
        assert_message(&err, &["plugin.toml", "version", "semver"]);

        let unknown = format!("{MANIFEST}colour = \"red\"\n");
        let bytes = zip_of(&[("plugin.toml", unknown.as_bytes()), ("plugin.wasm", WASM)]);
        let err = refused(&bytes);
        assert!(matches!(err, PackageError::Manifest(_)), "{err}");
        assert_message(&err, &["colour", "unknown field"]);
        assert!(matches!(
            read_manifest(&bytes, &Limits::default()),
            Err(PackageError::Manifest(_))
        ));

        let bytes = zip_of(&[("plugin.toml", b"name = \"\xff\""), ("plugin.wasm", WASM)]);
        assert!(matches!(
            refused(&bytes),
            PackageError::ManifestNotUtf8 { .. }
        ));

        let bytes = zip_of(&[("plugin.wasm", WASM)]);
        assert!(matches!(refused(&bytes), PackageError::MissingManifest));
    }

    #[test]
    fn core_module_is_refused() {
        let core = b"\0asm\x01\x00\x00\x00rest";
        let bytes = zip_of(&[("plugin.toml", MANIFEST.as_bytes()), ("plugin.wasm", core)]);
        let err = refused(&bytes);
        assert!(matches!(err, PackageError::NotAComponent { .. }));
        assert_message(
            &err,
            &["core WebAssembly module", "component", "wasm32-wasip2"],
        );
        assert!(matches!(
            read_manifest(&bytes, &Limits::default()),
            Err(PackageError::NotAComponent { .. })
        ));

        let bytes = zip_of(&[("plugin.toml", MANIFEST.as_bytes()), ("plugin.wasm", b"MZ")]);
        let err = refused(&bytes);
        assert_message(&err, &["not a WebAssembly binary"]);
    }

    #[test]
    fn kind_rules_are_enforced() {
        let bytes = zip_of(&[
            ("plugin.toml", STATIC_MANIFEST.as_bytes()),
            ("plugin.wasm", WASM),
            ("public/index.html", b"hi"),
        ]);
        let err = refused(&bytes);
        assert!(matches!(err, PackageError::KindMismatch { .. }));
        assert_message(&err, &["kind = \"static\"", "plugin.wasm"]);

        let bytes = zip_of(&[
            ("plugin.toml", STATIC_MANIFEST.as_bytes()),
            ("public/", b""),
        ]);
        let err = refused(&bytes);
        assert_message(&err, &["kind = \"static\"", "public/"]);

        let bytes = zip_of(&[
            ("plugin.toml", MANIFEST.as_bytes()),
            ("public/index.html", b"hi"),
        ]);
        let err = refused(&bytes);
        assert!(matches!(err, PackageError::KindMismatch { .. }));
        assert_message(&err, &["kind = \"plugin\"", "no plugin.wasm"]);
        assert!(matches!(
            read_manifest(&bytes, &Limits::default()),
            Err(PackageError::KindMismatch { .. })
        ));
    }

    #[test]
    fn destination_must_be_an_empty_directory() {
        let bytes = plugin_zip(&[]);
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join("keep.txt"), b"mine").unwrap();
        let err = unpack(&bytes, tmp.path(), &Limits::default()).unwrap_err();
        assert!(matches!(err, PackageError::Destination { .. }));
        assert_message(&err, &["not empty"]);
        assert_eq!(tree(tmp.path()), ["keep.txt"]);

        let missing = tmp.path().join("missing");
        let err = unpack(&bytes, &missing, &Limits::default()).unwrap_err();
        assert!(matches!(err, PackageError::Destination { .. }));
        assert!(!missing.exists());

        let file = tmp.path().join("keep.txt");
        let err = unpack(&bytes, &file, &Limits::default()).unwrap_err();
        assert!(matches!(err, PackageError::Destination { .. }));
        assert_eq!(fs::read(&file).unwrap(), b"mine");
    }

    #[test]
    fn corrupt_entry_is_refused() {
        let mut bytes = plugin_zip(&[("public/a.txt", b"hello hello hello hello")]);
        // Flip the stored CRC of the last entry in both headers.
        let crc = zip::ZipArchive::new(Cursor::new(&bytes[..]))
            .unwrap()
            .by_name("public/a.txt")
            .unwrap()
            .crc32();
        patch(&mut bytes, &crc.to_le_bytes(), &(crc ^ 1).to_le_bytes());
        let err = refused(&bytes);
        assert!(matches!(err, PackageError::Corrupt { .. }), "{err}");
    }

    /// A package directory with every kind of file.
    fn package_dir(root: &Path) {
        fs::write(root.join("plugin.toml"), MANIFEST).unwrap();
        fs::write(root.join("plugin.wasm"), WASM).unwrap();
        fs::create_dir_all(root.join("sql/sqlite")).unwrap();
        fs::create_dir_all(root.join("sql/postgres")).unwrap();
        fs::write(
            root.join("sql/sqlite/0001_create.sql"),
            "CREATE TABLE demo_a (id INTEGER);",
        )
        .unwrap();
        fs::write(
            root.join("sql/sqlite/0002_more.sql"),
            "CREATE TABLE demo_b (id INTEGER);",
        )
        .unwrap();
        fs::write(
            root.join("sql/postgres/0001_create.sql"),
            "CREATE TABLE demo_a (id BIGINT);",
        )
        .unwrap();
        fs::create_dir_all(root.join("public/css")).unwrap();
        fs::write(root.join("public/index.html"), "<h1>demo</h1>".repeat(100)).unwrap();
        fs::write(root.join("public/css/site.css"), "body {}").unwrap();
    }

    #[test]
    fn pack_then_unpack_round_trips() {
        let src = tempfile::tempdir().unwrap();
        package_dir(src.path());
        let bytes = pack_dir(src.path()).unwrap();

        let dest = tempfile::tempdir().unwrap();
        let got = unpack(&bytes, dest.path(), &Limits::default()).unwrap();
        assert_eq!(got.sha256, sha256_hex(&bytes));
        assert_eq!(got.manifest.name, "demo");
        assert_eq!(tree(src.path()), tree(dest.path()));
        let mut total = 0;
        for rel in &got.files {
            let a = fs::read(src.path().join(rel)).unwrap();
            let b = fs::read(dest.path().join(rel)).unwrap();
            assert_eq!(a, b, "{}", rel.display());
            total += a.len() as u64;
        }
        assert_eq!(got.files.len(), 7);
        assert_eq!(got.total_bytes, total);

        // Entries are sorted, deflated, dated 1980-01-01 and 0o644.
        let mut archive = ZipArchive::new(Cursor::new(&bytes[..])).unwrap();
        let names: Vec<&str> = archive.file_names().collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        for i in 0..archive.len() {
            let file = archive.by_index(i).unwrap();
            assert_eq!(file.compression(), CompressionMethod::Deflated);
            assert_eq!(file.last_modified(), Some(DateTime::default()));
            assert_eq!(file.unix_mode(), Some(0o100_644));
        }
    }

    #[test]
    fn pack_is_deterministic() {
        let src = tempfile::tempdir().unwrap();
        package_dir(src.path());
        let first = pack_dir(src.path()).unwrap();
        // A newer modification time must not change the bytes.
        let later = std::time::SystemTime::now() + std::time::Duration::from_secs(3600);
        File::options()
            .write(true)
            .open(src.path().join("public/index.html"))
            .unwrap()
            .set_modified(later)
            .unwrap();
        let second = pack_dir(src.path()).unwrap();
        assert_eq!(first, second);
        assert_eq!(sha256_hex(&first), sha256_hex(&second));

        // The same content in another directory, created in another order.
        let other = tempfile::tempdir().unwrap();
        fs::create_dir_all(other.path().join("public/css")).unwrap();
        fs::write(other.path().join("public/css/site.css"), "body {}").unwrap();
        package_dir(other.path());
        assert_eq!(pack_dir(other.path()).unwrap(), first);
    }

    #[test]
    fn sha256_matches_known_value() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn pack_refuses_stray_files() {
        let src = tempfile::tempdir().unwrap();
        package_dir(src.path());
        fs::write(src.path().join("notes.txt"), "todo").unwrap();
        let err = pack_dir(src.path()).unwrap_err();
        assert!(
            matches!(&err, PackageError::StrayFile { path, .. } if path.ends_with("notes.txt"))
        );
        assert_message(
            &err,
            &[
                "notes.txt",
                "top level",
                "plugin.toml, plugin.wasm",
                "move it",
            ],
        );
        fs::remove_file(src.path().join("notes.txt")).unwrap();

        fs::write(src.path().join("sql/sqlite/create.sql"), "x").unwrap();
        let err = pack_dir(src.path()).unwrap_err();
        assert_message(&err, &["create.sql", "NNNN_<what>.sql"]);
        fs::remove_file(src.path().join("sql/sqlite/create.sql")).unwrap();

        fs::create_dir(src.path().join("sql/oracle")).unwrap();
        let err = pack_dir(src.path()).unwrap_err();
        assert_message(&err, &["oracle"]);
        fs::remove_dir(src.path().join("sql/oracle")).unwrap();

        fs::write(src.path().join("plugin.wasm"), b"\0asm\x01\x00\x00\x00").unwrap();
        let err = pack_dir(src.path()).unwrap_err();
        assert!(matches!(err, PackageError::NotAComponent { .. }));
        fs::remove_file(src.path().join("plugin.wasm")).unwrap();
        let err = pack_dir(src.path()).unwrap_err();
        assert!(matches!(err, PackageError::KindMismatch { .. }));

        let empty = tempfile::tempdir().unwrap();
        let err = pack_dir(empty.path()).unwrap_err();
        assert!(matches!(err, PackageError::PackDir { .. }));
        assert_message(&err, &["plugin.toml", "missing"]);
    }

    #[cfg(unix)]
    #[test]
    fn pack_refuses_symlinks() {
        let src = tempfile::tempdir().unwrap();
        package_dir(src.path());
        std::os::unix::fs::symlink("/etc/passwd", src.path().join("public/passwd")).unwrap();
        let err = pack_dir(src.path()).unwrap_err();
        assert!(matches!(err, PackageError::StrayFile { .. }));
        assert_message(&err, &["symbolic link"]);
    }
}
