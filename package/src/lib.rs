//! Plinth packages: the plugin manifest, package archives and signed
//! deployment manifests. Shared by the host, the vendor tooling and
//! `xtask`; everything here is pure apart from the archive functions,
//! which read or write only the directories callers pass in.
//!
//! # Layout
//!
//! * [`manifest`]: `plugin.toml`, the plugin manifest. [`Manifest::parse`]
//!   validates it strictly (unknown fields refused, cross-references
//!   checked, defaults filled) and every [`ManifestError`] names the field
//!   path it is about.
//! * [`archive`]: the `.zip` a plugin version ships as (`plugin.toml`,
//!   `plugin.wasm`, `sql/<dialect>/NNNN_<what>.sql`, `public/**`).
//!   [`unpack`] validates a hostile archive (zip-slip, symlinks,
//!   duplicates, layout, zip bombs, manifest, component header) and
//!   extracts it, leaving nothing behind on failure; [`read_manifest`]
//!   checks it without extracting; [`pack_dir`] builds it
//!   deterministically from a package directory.
//! * [`deployment`]: the signed deployment manifest the vendor server pushes
//!   to customers' hosts (the exact package versions to run). A
//!   [`VendorKey`] signs its canonical JSON with ed25519;
//!   [`SignedDeployment::verify`] checks the signature against the pinned
//!   [`VendorPublicKey`] before parsing, then the customer, validity window
//!   and packages. Replay protection is the host's, with state it keeps.
//! * [`protocol`]: the JSON messages agent and vendor server exchange on
//!   the upgrade websocket (`hello`, `welcome`, `offer`, `status`, `ack`,
//!   `cancel`, `error`) and the paths both sides agree on.
//! * [`vendor_endpoint`]: the `ws://`/`wss://` endpoint a host's agent
//!   connects to, parsed once for the config check and the agent.
//! * [`outbound`]: the host patterns of `capabilities.outbound_hosts` and
//!   of the operator's per-plugin override, parsed and matched by one rule.
//! * [`limits`]: per-route rate limits (`[[limits]]`) and their validation.
//! * [`settings`]: typed `[[settings]]` and the check of a value against
//!   its declaration; [`plugin_files`]: the plugin file-name rule, the
//!   files quota and `[[uploads]]`.
//! * [`access`]: `[[routes]]` and `[[buttons]]`, the naming rule for
//!   permission and button codes (a fork's codes under its own name) and
//!   the compiled [`access::RouteTable`] the host asks before a plugin runs.
//! * [`db_url`]: database URLs with their password hidden, for the host's
//!   and the vendor server's logs and messages.
//!
//! The rules more than one crate enforces live here once: the plugin-name
//! rule ([`manifest::name_problem`]), the reserved table prefixes
//! ([`manifest::RESERVED_TABLE_PREFIXES`], [`manifest::is_plugin_table_prefix`]).

pub mod access;
pub mod archive;
pub mod db_url;
pub mod deployment;
pub mod limits;
pub mod manifest;
pub mod outbound;
pub mod plugin_files;
pub mod protocol;
pub mod settings;
pub mod task_policy;
pub mod vendor_endpoint;

pub use access::{Access, Button, Route, RouteTable};
pub use archive::{Limits, PackageError, Unpacked, pack_dir, read_manifest, sha256_hex, unpack};
pub use deployment::{
    DeploymentError, DeploymentManifest, DeploymentPackage, Expectations, SignedDeployment,
    VendorKey, VendorPublicKey,
};
pub use manifest::{
    Capabilities, Events, Manifest, ManifestError, Menu, PackageKind, Permission, PluginWorld, Task,
};
