//! Who this plugin is, as installed.
//!
//! A fork of a plugin runs the same code under another name, table prefix
//! and mount path, so code asks here instead of hard-coding any of them.
//! Each value is read from the host once per instance and then kept.

use std::sync::OnceLock;

use crate::__bindings::plinth::plugin::plugin_info as wit;

fn cached(cell: &'static OnceLock<String>, what: &str, read: fn() -> String) -> &'static str {
    cell.get_or_init(|| {
        crate::guest_only(what);
        read()
    })
}

/// The installed plugin's name, e.g. `goods` or `goods-acme`.
pub fn name() -> &'static str {
    static CELL: OnceLock<String> = OnceLock::new();
    cached(&CELL, "info::name", wit::name)
}

/// The installed version (semver), from the manifest, e.g. `1.0.0`.
pub fn version() -> &'static str {
    static CELL: OnceLock<String> = OnceLock::new();
    cached(&CELL, "info::version", wit::version)
}

/// The prefix every table of this plugin carries, e.g. `goods_`. Prefer
/// [`db::table`](crate::db::table), which applies it.
pub fn table_prefix() -> &'static str {
    static CELL: OnceLock<String> = OnceLock::new();
    cached(&CELL, "info::table_prefix", wit::table_prefix)
}

/// The URL path the plugin is mounted at, without a trailing slash, e.g.
/// `/p/goods`. Use it to build absolute links in HTML.
pub fn mount_path() -> &'static str {
    static CELL: OnceLock<String> = OnceLock::new();
    cached(&CELL, "info::mount_path", wit::mount_path)
}
