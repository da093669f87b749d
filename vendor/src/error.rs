//! [`VendorError`]: everything a vendor operation (CLI command or server
//! request) can fail with. Each message says what was wrong and what to do.

use std::path::PathBuf;

use crate::db::DbError;
use crate::plan::Unsatisfiable;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum VendorError {
    #[error(transparent)]
    Db(#[from] DbError),

    #[error(transparent)]
    Store(#[from] StoreError),

    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("{} is not a valid package: {source}", path.display())]
    BadPackage {
        path: PathBuf,
        source: plinth_package::PackageError,
    },

    #[error(
        "{name} {version} has build metadata; the vendor refuses it because semver precedence ignores it (two builds would count as the same version): publish {name} {plain} or a new version without `+…`"
    )]
    BuildMetadata {
        name: String,
        version: semver::Version,
        plain: semver::Version,
    },

    #[error(
        "{name} {version} is already published with different contents (sha256 {stored} there, {offered} here); published versions never change: bump `version` in plugin.toml, rebuild and publish that"
    )]
    PublishConflict {
        name: String,
        version: semver::Version,
        stored: String,
        offered: String,
    },

    #[error(
        "no customer named {0:?}; see `plinth-vendor customer list`, or add it with `plinth-vendor customer add {0}`"
    )]
    UnknownCustomer(String),

    #[error("customer {0:?} already exists; customer names are unique (nothing was added)")]
    CustomerExists(String),

    #[error("customer name {0:?} is given twice; list each name once (nothing was added)")]
    RepeatedName(String),

    #[error("{what} {value:?} is not valid: it {problem}")]
    BadName {
        what: &'static str,
        value: String,
        problem: &'static str,
    },

    #[error(
        "{range:?} is not a valid semver range ({reason}); use e.g. ^1.2, ~1.2.3, =1.4.0, >=1.0, <2.0 or *, comma-joined for several"
    )]
    BadRange { range: String, reason: String },

    #[error(
        "customer {customer} has no assignment for {plugin}; see `plinth-vendor status {customer}`"
    )]
    NotAssigned { customer: String, plugin: String },

    #[error(
        "customer {0} has no assignments, so there is nothing to push; assign a plugin first: plinth-vendor assign {0} <plugin> <range>"
    )]
    NothingAssigned(String),

    #[error(transparent)]
    Unsatisfiable(#[from] Unsatisfiable),

    #[error("customer {0} has no unfinished deployment to cancel; see `plinth-vendor status {0}`")]
    NothingToCancel(String),

    #[error(
        "no signing key: pass --key-file <path> (or set PLINTH_VENDOR_KEY_FILE), or set PLINTH_VENDOR_KEY to the hex seed; create one with `plinth-vendor key generate --out <file>`"
    )]
    NoKey,

    #[error("the signing key in {source_name} is not usable: {reason}")]
    BadKey { source_name: String, reason: String },

    #[error("{} already exists; refusing to overwrite a key file (move it away or pick another --out)", .0.display())]
    KeyFileExists(PathBuf),

    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("cannot sign the deployment for {customer}: {source}")]
    Sign {
        customer: String,
        source: plinth_package::DeploymentError,
    },

    #[error(
        "cannot serve on {addr}: {source}; pick another --bind address (or PLINTH_VENDOR_BIND) or stop what uses it"
    )]
    Serve {
        addr: String,
        source: std::io::Error,
    },
}
