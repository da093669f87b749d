//! Builds the host schema into the binary: every file under
//! `../common-sql/table/<table>/<dialect>/` becomes one entry of a table of
//! `include_str!`s in `$OUT_DIR/host_schema.rs`, so an installed `plinth`
//! needs no `common-sql/` folder beside it. Names are not checked here: the
//! runtime checks built-in files by the same rules as files on disk
//! (`db::migrate`), and a unit test compares the two.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn sorted_entries(dir: &Path) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries.filter_map(|e| e.ok().map(|e| e.path())).collect(),
        Err(e) => panic!("cannot read {}: {e}", dir.display()),
    };
    paths.sort();
    paths
}

fn name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn main() {
    let manifest_dir = PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    );
    let schema = manifest_dir.join("..").join("common-sql");
    println!("cargo:rerun-if-changed={}", schema.display());

    let mut out = String::from(
        "/// The host schema built in: (table, dialect folder, file name, file text).\n\
         pub(crate) const BUILT_IN_SCHEMA: &[(&str, &str, &str, &str)] = &[\n",
    );
    for table in sorted_entries(&schema.join("table")) {
        if !table.is_dir() {
            continue;
        }
        for dialect in sorted_entries(&table) {
            if !dialect.is_dir() {
                continue;
            }
            for file in sorted_entries(&dialect) {
                if !file.is_file() {
                    continue;
                }
                let absolute = std::path::absolute(&file).expect("absolute path");
                let _ = writeln!(
                    out,
                    "    ({:?}, {:?}, {:?}, include_str!({:?})),",
                    name(&table),
                    name(&dialect),
                    name(&file),
                    absolute.display().to_string()
                );
            }
        }
    }
    out.push_str("];\n");
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    std::fs::write(out_dir.join("host_schema.rs"), out).expect("write host_schema.rs");
}
