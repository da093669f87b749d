//! The layer rule of the host crate (docs/ARCHITECTURE.md "Layers"), checked
//! by scanning the sources: a module may name (`crate::…`) only itself and
//! modules in the layers above its own, so no cycle between modules can
//! form. A new module must be placed in [`LAYERS`] before it compiles into a
//! passing test run.

use std::path::{Path, PathBuf};

/// Top to bottom; each module depends only on modules in earlier rows.
const LAYERS: &[&[&str]] = &[
    &["config", "paths", "caller"],
    &["db", "events"],
    &["runtime"],
    &["registry"],
    &["host"],
    &["install"],
    &["background", "agent"],
    &["http"],
    &["startup"],
    &["plugin_cli"],
];

/// Items of the crate root and the layer they count as.
const ROOT_ITEMS: &[(&str, &str)] = &[
    ("Host", "host"),
    ("HOST_API_VERSION", "config"),
    ("HOST_API_VERSIONS", "config"),
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|row| row.contains(&module))
}

/// The module a `crate::<first>` path reaches.
fn module_named(first: &str) -> &str {
    ROOT_ITEMS
        .iter()
        .find(|(item, _)| *item == first)
        .map_or(first, |(_, module)| module)
}

/// Every module `source` names through `crate::`, skipping comment lines.
fn crate_paths(source: &str) -> Vec<String> {
    let code: String = source
        .lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut found = Vec::new();
    let mut rest = code.as_str();
    while let Some(at) = rest.find("crate::") {
        let preceded_by_ident = rest[..at]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
        rest = &rest[at + "crate::".len()..];
        if preceded_by_ident {
            continue; // e.g. `plinth_crate::`
        }
        if let Some(group) = rest.strip_prefix('{') {
            // `use crate::{a::X, b};`: the first name of each top-level item.
            let mut depth = 0usize;
            let mut item_start = true;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => item_start = true,
                    c if item_start && !c.is_whitespace() => {
                        found.push(ident(&group[i..]));
                        item_start = false;
                    }
                    _ => {}
                }
            }
        } else {
            found.push(ident(rest));
        }
    }
    found.retain(|m| !m.is_empty());
    found
}

/// The back-edges and unplaced modules in `source`, a file of `module`.
fn violations(module: &str, source: &str) -> Vec<String> {
    let Some(own) = layer_of(module) else {
        return vec![format!("module {module} is not placed in LAYERS")];
    };
    let mut problems = Vec::new();
    for named in crate_paths(source) {
        let target = module_named(&named);
        if target == module {
            continue;
        }
        match layer_of(target) {
            None => problems.push(format!(
                "{module} names crate::{named}, which is not placed in LAYERS"
            )),
            Some(layer) if layer >= own => problems.push(format!(
                "{module} (layer {}) uses crate::{named} (layer {}): a module may only use layers above its own",
                own + 1,
                layer + 1
            )),
            Some(_) => {}
        }
    }
    problems
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn no_module_uses_a_layer_below_its_own() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(
        files.len() > 20,
        "found only {} sources under {}",
        files.len(),
        src.display()
    );
    let mut problems = Vec::new();
    for file in files {
        let relative = file.strip_prefix(&src).unwrap_or(&file);
        let mut parts = relative.components();
        let first = parts
            .next()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .unwrap_or_default();
        // The crate root, the binary and this check sit outside the layers.
        if matches!(first.as_str(), "lib.rs" | "main.rs" | "layers.rs") {
            continue;
        }
        let module = first.trim_end_matches(".rs");
        let source =
            std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        for problem in violations(module, &source) {
            problems.push(format!("{}: {problem}", relative.display()));
        }
    }
    assert!(
        problems.is_empty(),
        "layer rule broken:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_check_catches_back_edges_and_grouped_imports() {
    assert_eq!(
        violations("install", "use crate::db::store;\nuse crate::Host;"),
        Vec::<String>::new()
    );
    assert_eq!(
        violations("db", "use crate::install::InstallError;").len(),
        1
    );
    assert_eq!(
        violations("events", "use crate::{config::Config, runtime::X};").len(),
        1
    );
    assert_eq!(
        violations("runtime", "let x = crate::Host::default();").len(),
        1
    );
    assert_eq!(
        violations("db", "    // crate::install in a comment\n").len(),
        0
    );
    assert_eq!(
        violations("db", "use crate::events::Event;").len(),
        1,
        "same layer"
    );
    assert_eq!(violations("newmod", "").len(), 1);
}
