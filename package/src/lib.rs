//! Plinth packages: the plugin manifest and, later, package archives and
//! signed deployment manifests. Shared by the host, the vendor tooling and
//! `xtask`; everything here is pure (no I/O beyond what callers pass in).
//!
//! # Layout
//!
//! * [`manifest`]: `plugin.toml`, the plugin manifest. [`Manifest::parse`]
//!   validates it strictly (unknown fields refused, cross-references
//!   checked, defaults filled) and every [`ManifestError`] names the field
//!   path it is about.

pub mod manifest;

pub use manifest::{
    Capabilities, Events, Manifest, ManifestError, Menu, PackageKind, Permission, PluginWorld, Task,
};
