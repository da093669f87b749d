//! `cargo xtask build-plugins`: builds the example plugins for
//! `wasm32-wasip2` and lays them out under `target/plugins/`:
//!
//! ```text
//! target/plugins/
//!   hello.wasm goods.wasm goods-1.1.0.wasm probe.wasm http-hello.wasm legacy-hello.wasm
//!   hello-0.1.0/        plugin.toml plugin.wasm
//!   goods-1.0.0/        plugin.toml plugin.wasm sql/<dialect>/0001_*.sql
//!   goods-1.1.0/        ... sql/<dialect>/0001_*.sql 0002_add_category.sql
//!   goods-acme-1.0.0/   goods 1.0.0's wasm and SQL, plugins/goods-acme/plugin.toml
//!   probe-0.1.0/        plugin.toml plugin.wasm sql/<dialect>/0001_*.sql
//!   http-hello-0.1.0/   plugin.toml plugin.wasm
//!   legacy-hello-0.1.0/ plugin.toml plugin.wasm (built against wit/frozen/0.1.0)
//! ```
//!
//! Each `<name>-<version>/` directory is a package ready to be zipped; see
//! [`pack`].

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};

use crate::util::{cargo, target_dir, workspace_root};
use plinth_package::Manifest;

const TARGET: &str = "wasm32-wasip2";

/// Plugins built from their own crate: (cargo package = directory under
/// `plugins/` = manifest name).
pub const PLUGINS: &[&str] = &["hello", "goods", "probe", "http-hello", "legacy-hello"];

/// The dialect directories every plugin's `sql/` may hold.
const DIALECTS: &[&str] = &["sqlite", "postgres", "mysql"];

/// A component (not a core module): `\0asm`, version 0x0d, layer 1.
const COMPONENT_MAGIC: [u8; 8] = [0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];

pub fn run(args: &[String]) -> Result<()> {
    if let Some(arg) = args.first() {
        bail!("build-plugins takes no arguments (got `{arg}`)");
    }
    let root = workspace_root();
    // Cargo honours CARGO_TARGET_DIR in the builds below, so the layout must
    // follow it too; normally it is unset and this is <workspace>/target.
    let target_dir = target_dir(&root);
    let release = target_dir.join(TARGET).join("release");
    let final_out = target_dir.join("plugins");
    // Laid out in a staging directory and swapped in at the end, so a test
    // reading target/plugins/ (or a second build-plugins running at the
    // same time) never sees a half-written tree.
    let out = target_dir.join(format!("plugins.staging-{}", std::process::id()));

    ensure_target()?;

    // goods 1.1.0 is goods built with its `v1_1` feature. Both builds share
    // target/ and name the same packages, so dependency features unify the
    // same way and the dependencies compile once: only goods rebuilds when
    // the feature flips, and its wasm is copied out before the next build
    // overwrites it. 1.1.0 goes first so target/wasm32-wasip2/release/
    // goods.wasm is 1.0.0 afterwards, like the other plugins.
    let packages: Vec<&str> = PLUGINS.iter().flat_map(|p| ["-p", p]).collect();
    cargo_build(
        &root,
        &[&packages[..], &["--features", "goods/v1_1"]].concat(),
    )?;
    let goods_1_1 = read_wasm(&release.join("goods.wasm"))?;

    cargo_build(&root, &packages)?;

    if out.exists() {
        fs::remove_dir_all(&out).with_context(|| format!("removing {}", out.display()))?;
    }
    fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;

    let plugins_dir = root.join("plugins");
    let mut written = Vec::new();
    for name in PLUGINS {
        let src = plugins_dir.join(name);
        let manifest_text = read_manifest(&src.join("plugin.toml"), name)?;
        let manifest = parse_manifest(&manifest_text, &src.join("plugin.toml"))?;
        let wasm = read_wasm(&release.join(format!("{}.wasm", name.replace('-', "_"))))?;
        write(&out.join(format!("{name}.wasm")), &wasm)?;
        let dir = out.join(format!("{name}-{}", manifest.version));
        write_package(&dir, &manifest_text, &wasm, &[src.join("sql")])?;
        written.push(dir);
    }

    // goods 1.1.0: the 1.0.0 manifest with the version bumped, and the
    // 1.0.0 migrations plus sql-1.1's.
    let goods = plugins_dir.join("goods");
    let text = read_manifest(&goods.join("plugin.toml"), "goods")?;
    let text_1_1 = with_version(&text, "1.1.0")?;
    let m = parse_manifest(&text_1_1, Path::new("goods plugin.toml (as 1.1.0)"))?;
    ensure!(
        m.version.to_string() == "1.1.0",
        "goods 1.1.0 manifest says {}",
        m.version
    );
    write(&out.join("goods-1.1.0.wasm"), &goods_1_1)?;
    let dir = out.join("goods-1.1.0");
    write_package(
        &dir,
        &text_1_1,
        &goods_1_1,
        &[goods.join("sql"), goods.join("sql-1.1")],
    )?;
    written.push(dir);

    // goods-acme: the fork. Its own checked-in manifest; goods' wasm and SQL.
    let acme_manifest = plugins_dir.join("goods-acme").join("plugin.toml");
    let acme_text = read_manifest(&acme_manifest, "goods-acme")?;
    let acme = parse_manifest(&acme_text, &acme_manifest)?;
    let goods_version = parse_manifest(&text, &goods.join("plugin.toml"))?.version;
    ensure!(
        acme.forked_from.as_deref() == Some("goods") && acme.version == goods_version,
        "{} must say forked_from = \"goods\" and version = \"{goods_version}\" (it reuses goods {goods_version}'s wasm)",
        acme_manifest.display()
    );
    let goods_wasm = fs::read(out.join("goods.wasm"))?;
    // Guards against a concurrent build swapping goods.wasm between ours.
    ensure!(
        goods_wasm != goods_1_1,
        "goods 1.0.0 and 1.1.0 built identical; was another build running?"
    );
    let dir = out.join(format!("goods-acme-{}", acme.version));
    write_package(&dir, &acme_text, &goods_wasm, &[goods.join("sql")])?;
    written.push(dir);

    for dir in &written {
        pack(dir)?;
    }

    publish(&out, &final_out)?;
    let out = final_out;

    println!("\nplugins in {}:", out.display());
    let mut entries: Vec<_> = fs::read_dir(&out)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        if path.is_dir() {
            let mut files = Vec::new();
            list_files(&path, &path, &mut files)?;
            println!(
                "  {}/  {}",
                entry.file_name().to_string_lossy(),
                files.join(" ")
            );
        } else {
            println!(
                "  {}  {} KiB",
                entry.file_name().to_string_lossy(),
                entry.metadata()?.len() / 1024
            );
        }
    }
    Ok(())
}

/// Replaces `dest` with the finished `staged` tree: the old tree is renamed
/// aside first so `dest` is missing only between two renames.
fn publish(staged: &Path, dest: &Path) -> Result<()> {
    let old = dest.with_file_name(format!("plugins.old-{}", std::process::id()));
    if dest.exists() {
        fs::rename(dest, &old).with_context(|| format!("moving {} aside", dest.display()))?;
    }
    fs::rename(staged, dest).with_context(|| format!("moving {} into place", staged.display()))?;
    if old.exists() {
        fs::remove_dir_all(&old).with_context(|| format!("removing {}", old.display()))?;
    }
    Ok(())
}

/// Zips a package directory into `<dir>.zip` beside it, with the same
/// packer `plinth plugin pack` uses.
fn pack(dir: &Path) -> Result<()> {
    let bytes = plinth_package::pack_dir(dir)
        .map_err(|e| anyhow::anyhow!("packing {}: {e}", dir.display()))?;
    // Not `with_extension`: `goods-1.0.0` would lose its ".0".
    let zip = PathBuf::from(format!("{}.zip", dir.display()));
    write(&zip, &bytes)
}

/// Adds the wasm32-wasip2 target through rustup when it is missing.
fn ensure_target() -> Result<()> {
    let installed = match Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
    {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).into_owned(),
        Ok(out) => bail!(
            "`rustup target list --installed` failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(e) => {
            // No rustup: the toolchain may carry the target another way;
            // cargo says clearly if it does not.
            eprintln!("note: cannot run rustup ({e}); assuming {TARGET} is installed");
            return Ok(());
        }
    };
    if installed.lines().any(|l| l.trim() == TARGET) {
        return Ok(());
    }
    println!("adding the {TARGET} target (rustup target add {TARGET})");
    let status = Command::new("rustup")
        .args(["target", "add", TARGET])
        .status()?;
    ensure!(
        status.success(),
        "`rustup target add {TARGET}` failed ({status})"
    );
    Ok(())
}

/// `cargo build --release --target wasm32-wasip2 <args>` in the workspace.
fn cargo_build(root: &Path, args: &[&str]) -> Result<()> {
    let mut cmd = cargo(root);
    cmd.args(["build", "--release", "--target", TARGET])
        .args(args);
    println!(
        "$ cargo build --release --target {TARGET} {}",
        args.join(" ")
    );
    let started = Instant::now();
    let status = cmd.status().context("running cargo")?;
    ensure!(
        status.success(),
        "cargo build {} failed ({status}); see the compiler output above",
        args.join(" ")
    );
    println!("  built in {:.1}s", started.elapsed().as_secs_f64());
    Ok(())
}

fn read_manifest(path: &Path, name: &str) -> Result<String> {
    fs::read_to_string(path)
        .with_context(|| format!("reading the manifest of `{name}` at {}", path.display()))
}

fn parse_manifest(text: &str, path: &Path) -> Result<Manifest> {
    Manifest::parse(text).map_err(|e| anyhow::anyhow!("{}: invalid manifest: {e}", path.display()))
}

/// `text` with its top-level `version = "..."` line replaced, comments and
/// layout kept.
fn with_version(text: &str, version: &str) -> Result<String> {
    let mut replaced = false;
    let mut in_table = false;
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        in_table |= line.trim_start().starts_with('[');
        let is_version = line
            .split('=')
            .next()
            .is_some_and(|k| k.trim() == "version");
        if !in_table && !replaced && is_version {
            out.push_str(&format!("version = \"{version}\""));
            replaced = true;
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    ensure!(replaced, "no top-level `version = ` line in the manifest");
    Ok(out)
}

/// Reads a built wasm file and checks it is a component.
fn read_wasm(path: &Path) -> Result<Vec<u8>> {
    let bytes = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    ensure!(
        bytes.starts_with(&COMPONENT_MAGIC),
        "{} is not a WebAssembly component (header {:02x?})",
        path.display(),
        &bytes[..bytes.len().min(8)]
    );
    Ok(bytes)
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}

/// Writes a package directory: `plugin.toml`, `plugin.wasm`, and the
/// `<dialect>/*.sql` files of every directory in `sql_sources` merged into
/// `sql/<dialect>/` (a file name may appear only once per dialect).
fn write_package(dir: &Path, manifest: &str, wasm: &[u8], sql_sources: &[PathBuf]) -> Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    write(&dir.join("plugin.toml"), manifest.as_bytes())?;
    write(&dir.join("plugin.wasm"), wasm)?;

    let mut per_dialect: Vec<Vec<String>> = vec![Vec::new(); DIALECTS.len()];
    for source in sql_sources.iter().filter(|s| s.exists()) {
        for entry in fs::read_dir(source)? {
            let entry = entry?;
            let dialect = entry.file_name().to_string_lossy().into_owned();
            ensure!(
                DIALECTS.contains(&dialect.as_str()),
                "{}: unknown dialect directory `{dialect}` (expected one of {DIALECTS:?})",
                source.display()
            );
        }
        for (i, dialect) in DIALECTS.iter().enumerate() {
            let from = source.join(dialect);
            if !from.exists() {
                continue;
            }
            let to = dir.join("sql").join(dialect);
            fs::create_dir_all(&to)?;
            for entry in fs::read_dir(&from)? {
                let path = entry?.path();
                let file = path
                    .file_name()
                    .map(|f| f.to_string_lossy().into_owned())
                    .unwrap_or_default();
                ensure!(
                    is_migration_name(&file),
                    "{}: migration files are named NNNN_<what>.sql",
                    path.display()
                );
                ensure!(
                    !to.join(&file).exists(),
                    "{}: {file} is given twice",
                    to.display()
                );
                fs::copy(&path, to.join(&file))
                    .with_context(|| format!("copying {}", path.display()))?;
                per_dialect[i].push(file);
            }
        }
    }
    // Every dialect present must carry the same migrations, or an install
    // on one database would differ from another.
    let present: Vec<(usize, Vec<String>)> = per_dialect
        .into_iter()
        .enumerate()
        .filter(|(_, files)| !files.is_empty())
        .map(|(i, mut files)| {
            files.sort();
            (i, files)
        })
        .collect();
    if let Some((first, files)) = present.first() {
        ensure!(
            present.len() == DIALECTS.len(),
            "{}: SQL must exist for every dialect {DIALECTS:?}",
            dir.display()
        );
        for (i, other) in &present[1..] {
            ensure!(
                other == files,
                "{}: migrations differ between {} {files:?} and {} {other:?}",
                dir.display(),
                DIALECTS[*first],
                DIALECTS[*i]
            );
        }
    }
    Ok(())
}

fn is_migration_name(file: &str) -> bool {
    let b = file.as_bytes();
    b.len() > 9 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'_' && file.ends_with(".sql")
}

fn list_files(base: &Path, dir: &Path, out: &mut Vec<String>) -> Result<()> {
    let mut entries: Vec<_> = fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        if path.is_dir() {
            list_files(base, &path, out)?;
        } else {
            out.push(
                path.strip_prefix(base)
                    .unwrap_or(&path)
                    .display()
                    .to_string(),
            );
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests fail loudly by design
mod tests {
    use super::*;

    #[test]
    fn bumps_only_the_top_level_version() {
        let text = "# c\nname = \"goods\"\nversion = \"1.0.0\"\n\n[depends]\nversion = \"x\"\n";
        let out = with_version(text, "1.1.0").unwrap();
        assert_eq!(
            out,
            "# c\nname = \"goods\"\nversion = \"1.1.0\"\n\n[depends]\nversion = \"x\"\n"
        );
        assert!(with_version("[a]\nversion = \"1\"\n", "2").is_err());
    }

    #[test]
    fn migration_names() {
        assert!(is_migration_name("0001_create_items.sql"));
        assert!(!is_migration_name("1_x.sql"));
        assert!(!is_migration_name("0001_x.txt"));
    }
}
