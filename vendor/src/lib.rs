//! `plinth-vendor`: the vendor server and its CLI. The vendor publishes
//! plugin packages, assigns plugin ranges to customers, solves each
//! customer's plan, signs it as a deployment and pushes it over a websocket
//! to the customer's upgrade agent, which then downloads the archives over
//! HTTP with `Range`. Host and vendor share only `plinth-package` (the
//! manifest, archive and deployment types and the protocol messages).
//!
//! # Layout
//!
//! * [`db`]: the state in PostgreSQL or SQLite through one sqlx `Any`
//!   pool, with the migrations under `vendor/sql/<dialect>/` applied at
//!   open; every SQL statement lives below it.
//! * [`store`]: the package store, archives named by their SHA-256.
//! * [`plan`]: the pubgrub solver from assignments and dependency ranges
//!   to an install-ordered plan, or a readable reason there is none
//!   ([`plan::range`] converts semver ranges).
//! * [`customers`], [`publish`], [`deploy`]: the operations CLI and
//!   server share, as methods on [`Vendor`]: customers, tokens and
//!   assignments; publishing archives; making, cancelling and reissuing
//!   signed deployments.
//! * [`signing_key`]: reading and generating the vendor's ed25519 key.
//! * [`http`]: the server: [`http::app`] is the router (agent websocket,
//!   downloads, status page); [`http::deliver`] holds the connection
//!   registry and the poller that pushes new deployments and cancellations
//!   to connected agents; [`http::start`] runs it all on a listener.
//! * [`cli`]: the `plinth-vendor` command line; `main.rs` only parses it
//!   and runs it.
//! * [`error`]: [`VendorError`], what operations fail with.

pub mod cli;
pub mod customers;
pub mod db;
pub mod deploy;
pub mod error;
pub mod http;
pub mod plan;
pub mod publish;
pub mod signing_key;
pub mod store;

pub use error::VendorError;

use std::path::PathBuf;

use db::Db;
use store::PackageStore;

/// The vendor's state: its database and its package store. Cheap to
/// clone; every operation of the CLI and the server is a method on it.
#[derive(Debug, Clone)]
pub struct Vendor {
    pub db: Db,
    pub store: PackageStore,
}

impl Vendor {
    /// Opens (and migrates) the database at `db_url` and the package
    /// store at `store_dir`.
    pub async fn open(db_url: &str, store_dir: impl Into<PathBuf>) -> Result<Self, VendorError> {
        Ok(Self {
            db: Db::connect(db_url).await?,
            store: PackageStore::new(store_dir),
        })
    }
}
