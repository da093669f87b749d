//! The upgrade agent: keeps a websocket open to the vendor server, takes the
//! signed deployments it offers, verifies them, downloads the packages with
//! resumable ranged requests, installs them through the install pipeline
//! and reports every step back.
//!
//! Two tasks make it up. [`connection`] owns the socket: it connects with
//! exponential back-off and jitter, says `hello`, forwards offers and
//! cancellations, and sends status reports from the [`Outbox`] until the
//! server acknowledges them, resending the unacknowledged ones after a
//! reconnect. [`deploy`] works through offers one at a time: verification
//! (signature, customer, expiry, replay, downgrade), [`download`], install
//! in dependency order, roll-back of the deployment's earlier packages when
//! a later one fails. The socket keeps being served while a download runs,
//! so pings, acks and a `cancel` are never stuck behind a package.
//!
//! [`AgentState`] is what the admin API shows: connected or not, the last
//! offer and each package's progress.
//!
//! Nothing the vendor sends may panic the agent, so indexing and slicing
//! are linted here (use `get`); text from the vendor is cut by [`bounded`]
//! wherever it is kept; every wait on the vendor has a time-out from
//! [`AgentLimits`].
#![warn(clippy::indexing_slicing)]

mod bounded;
mod connection;
mod deploy;
mod download;
mod outbox;
mod queue;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use plinth_package::VendorPublicKey;
use plinth_package::protocol::{PackageState, StatusReport};
use serde::Serialize;
use tokio::sync::Notify;

use crate::Host;
use crate::config::VendorConfig;
use crate::live::LiveFeed;

pub use crate::config::AgentLimits;
pub use bounded::{FIELD_LIMIT, bounded};
pub use outbox::Outbox;

/// How the agent reaches the vendor, read once from `config.json`.
#[derive(Debug, Clone)]
pub struct AgentSettings {
    /// The websocket URL (`vendor.endpoint`).
    pub endpoint: String,
    /// `http(s)://host[:port]` of the same server, for downloads.
    pub http_base: String,
    pub customer: String,
    pub token: String,
    pub public_key: VendorPublicKey,
    pub reconnect_initial: Duration,
    pub reconnect_max: Duration,
    pub reconnect_attempts: u32,
    pub download_attempts: u32,
    pub limits: AgentLimits,
}

impl AgentSettings {
    /// The agent's settings, or why they are unusable (the config loader
    /// checks the same rules first, so this fails only for configs built in
    /// code).
    pub fn from_config(vendor: &VendorConfig) -> Result<Self, String> {
        let public_key = VendorPublicKey::from_hex(&vendor.public_key)
            .map_err(|e| format!("vendor.public_key: {e}"))?;
        vendor
            .limits
            .check()
            .map_err(|key| format!("{key} must be at least 1"))?;
        let http_base = http_base(&vendor.endpoint).ok_or_else(|| {
            format!(
                "vendor.endpoint {:?} is not a ws:// or wss:// URL",
                vendor.endpoint
            )
        })?;
        Ok(Self {
            endpoint: vendor.endpoint.clone(),
            http_base,
            customer: vendor.customer.clone(),
            token: vendor.customer_token.clone(),
            public_key,
            reconnect_initial: Duration::from_millis(vendor.reconnect_initial_ms),
            reconnect_max: Duration::from_millis(vendor.reconnect_max_ms),
            reconnect_attempts: vendor.reconnect_attempts,
            download_attempts: vendor.download_attempts,
            limits: vendor.limits.clone(),
        })
    }
}

/// `ws://host:port/path` → `http://host:port` (and `wss` → `https`).
fn http_base(endpoint: &str) -> Option<String> {
    plinth_package::vendor_endpoint::WsEndpoint::parse(endpoint)
        .ok()
        .map(|e| e.http_base())
}

/// What the agent's tasks work with: the host they act on and the agent's
/// own state (which the host does not carry). Reads as the host it wraps,
/// so `host.db` and `host.agent` both work in the tasks.
#[derive(Debug, Clone)]
pub(crate) struct AgentHost {
    host: Host,
    pub agent: AgentState,
}

impl std::ops::Deref for AgentHost {
    type Target = Host;

    fn deref(&self) -> &Host {
        &self.host
    }
}

/// Where the connection stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ConnectionState {
    /// `vendor.endpoint` is empty.
    Disabled,
    Connecting,
    Connected,
    /// Waiting before the next attempt, and why.
    BackingOff {
        attempt: u32,
        retry_in_ms: u64,
        reason: String,
    },
    /// Given up: the server refused us (4xx) or the attempts ran out.
    /// `POST /api/admin/agent/reconnect` starts again.
    Stopped {
        reason: String,
    },
}

/// One package of the last offer, as the admin API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PackageProgress {
    pub name: String,
    pub version: String,
    pub size: u64,
    /// `None` until work on it starts.
    pub state: Option<PackageState>,
    pub updated_at_ms: i64,
    /// Why the download was last interrupted and resumed, if it was.
    pub retry_reason: Option<String>,
}

/// The last offer and what became of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OfferView {
    pub deployment_id: String,
    pub received_at_ms: i64,
    pub issued_at: Option<i64>,
    pub expires_at: Option<i64>,
    /// `received`, `refused`, `applying`, `success`, `failure` or
    /// `cancelled`.
    pub outcome: String,
    pub reason: Option<String>,
    pub packages: Vec<PackageProgress>,
}

/// Everything the admin API reports about the agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgentSnapshot {
    pub enabled: bool,
    pub endpoint: String,
    pub customer: String,
    pub connection: ConnectionState,
    pub connected: bool,
    pub connected_since_ms: Option<i64>,
    /// Successful connections so far (the first included).
    pub connections: u64,
    pub last_error: Option<String>,
    /// Why the previous connection ended (kept after a reconnect, unlike
    /// `last_error`).
    pub last_disconnect: Option<String>,
    pub last_offer: Option<OfferView>,
    /// Status reports the server has not acknowledged yet.
    pub unacknowledged_reports: usize,
    /// The vendor's clock minus this host's, seconds, from the last
    /// `welcome`.
    pub clock_skew_secs: Option<i64>,
    /// Set when that skew is beyond what offers tolerate.
    pub clock_warning: Option<String>,
    /// Times the deploy worker failed on an offer and carried on with
    /// the next; each is also in `last_error`.
    pub worker_failures: u64,
}

/// The agent's shared state: what it shows, its outbox and its controls.
/// Cheap to clone; start-up makes one (disabled when no vendor is
/// configured) and hands it to the agent's tasks and the admin API.
#[derive(Debug, Clone)]
pub struct AgentState {
    inner: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    snapshot: Mutex<AgentSnapshot>,
    outbox: Outbox,
    /// Wakes a stopped or backing-off connection loop.
    restart: Notify,
    /// The deployment the vendor asked to cancel, checked by the worker.
    cancelled: Mutex<Option<String>>,
    /// Every change to the snapshot is announced here.
    feed: LiveFeed,
}

impl AgentState {
    pub fn new(vendor: &VendorConfig, feed: LiveFeed) -> Self {
        let snapshot = AgentSnapshot {
            enabled: vendor.is_enabled(),
            endpoint: vendor.endpoint.clone(),
            customer: vendor.customer.clone(),
            connection: if vendor.is_enabled() {
                ConnectionState::Connecting
            } else {
                ConnectionState::Disabled
            },
            connected: false,
            connected_since_ms: None,
            connections: 0,
            last_error: None,
            last_disconnect: None,
            last_offer: None,
            unacknowledged_reports: 0,
            clock_skew_secs: None,
            clock_warning: None,
            worker_failures: 0,
        };
        Self {
            inner: Arc::new(Shared {
                snapshot: Mutex::new(snapshot),
                outbox: Outbox::default(),
                restart: Notify::new(),
                cancelled: Mutex::new(None),
                feed,
            }),
        }
    }

    /// The state as the admin API reports it.
    pub fn snapshot(&self) -> AgentSnapshot {
        let mut snapshot = self.lock().clone();
        snapshot.unacknowledged_reports = self.inner.outbox.len();
        snapshot
    }

    /// Ends a back-off wait or a stop, so the agent connects again now.
    pub fn reconnect_now(&self) {
        self.inner.restart.notify_one();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, AgentSnapshot> {
        // A panic while holding this lock cannot leave the view
        // inconsistent in a way that matters more than losing it.
        self.inner
            .snapshot
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn update(&self, f: impl FnOnce(&mut AgentSnapshot)) {
        f(&mut self.lock());
        if self.inner.feed.is_watched() {
            self.inner.feed.publish("agent", &self.snapshot());
        }
    }

    /// Records an error for the admin view, bounded.
    fn set_error(&self, error: &str) {
        let error = bounded(error);
        self.update(|s| s.last_error = Some(error));
    }

    /// Changes the last offer's view if it is still `deployment_id`'s.
    fn update_offer(&self, deployment_id: &str, f: impl FnOnce(&mut OfferView)) {
        self.update(|s| {
            if let Some(offer) = s.last_offer.as_mut()
                && offer.deployment_id == deployment_id
            {
                f(offer);
            }
        });
    }

    /// Notes why a package's download was interrupted.
    fn package_retry(&self, deployment_id: &str, package: &str, reason: &str) {
        let reason = bounded(reason);
        self.update_offer(deployment_id, |offer| {
            if let Some(p) = offer.packages.iter_mut().find(|p| p.name == package) {
                p.retry_reason = Some(reason);
            }
        });
    }

    fn outbox(&self) -> &Outbox {
        &self.inner.outbox
    }

    fn set_cancelled(&self, deployment_id: Option<String>) {
        *self
            .inner
            .cancelled
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = deployment_id;
    }

    fn is_cancelled(&self, deployment_id: &str) -> bool {
        self.inner
            .cancelled
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .as_deref()
            == Some(deployment_id)
    }

    /// Records a package's new state in the view.
    fn package_progress(&self, deployment_id: &str, report: &StatusReport) {
        self.update(|s| {
            let Some(offer) = s.last_offer.as_mut() else {
                return;
            };
            if offer.deployment_id != deployment_id {
                return;
            }
            match &report.package {
                Some(name) => {
                    if let Some(p) = offer.packages.iter_mut().find(|p| &p.name == name) {
                        p.state = Some(report.state.clone());
                        p.updated_at_ms = report.at_ms;
                    }
                }
                None => {
                    offer.outcome = report.state.name().to_owned();
                    offer.reason = match &report.state {
                        PackageState::Failure { reason } | PackageState::RolledBack { reason } => {
                            Some(bounded(reason))
                        }
                        _ => None,
                    };
                }
            }
        });
    }
}

/// An offer as the connection hands it to the worker: the signed
/// deployment, or why the offer could not be read (the worker refuses it).
#[derive(Debug)]
struct IncomingOffer {
    deployment_id: String,
    deployment: Result<plinth_package::SignedDeployment, String>,
}

/// Starts the agent's two tasks; returns their handles. Call only when
/// `vendor.endpoint` is set.
pub fn spawn(host: Host, agent: AgentState) -> Result<Vec<tokio::task::JoinHandle<()>>, String> {
    let host = AgentHost { host, agent };
    let settings = Arc::new(AgentSettings::from_config(&host.config.vendor)?);
    let (offers_tx, offers_rx) = queue::offer_queue();
    let connection = tokio::spawn(connection::run(host.clone(), settings.clone(), offers_tx));
    let worker = tokio::spawn(deploy::run(host, settings, offers_rx));
    Ok(vec![connection, worker])
}

/// Installed plugins as `hello` reports them.
async fn installed_set(
    host: &AgentHost,
) -> Result<Vec<plinth_package::protocol::InstalledPackage>, crate::db::DbError> {
    let rows = crate::db::store::installed_plugins(&host.db).await?;
    Ok(rows
        .into_iter()
        .filter_map(|row| {
            Some(plinth_package::protocol::InstalledPackage {
                version: row.version.parse().ok()?,
                enabled: row.is_enabled(),
                name: row.name,
            })
        })
        .collect())
}

/// Per-package view rows for a freshly verified offer.
fn progress_rows(packages: &[plinth_package::DeploymentPackage]) -> Vec<PackageProgress> {
    packages
        .iter()
        .map(|p| PackageProgress {
            name: p.name.clone(),
            version: p.version.to_string(),
            size: p.size,
            state: None,
            updated_at_ms: crate::db::now_ms(),
            retry_reason: None,
        })
        .collect()
}

/// A map from plugin name to installed version, for downgrade checks.
async fn installed_versions(
    host: &AgentHost,
) -> Result<BTreeMap<String, semver::Version>, crate::db::DbError> {
    Ok(installed_set(host)
        .await?
        .into_iter()
        .map(|p| (p.name, p.version))
        .collect())
}

/// Longest deployment id the agent accepts (the ledger's column holds it).
const MAX_DEPLOYMENT_ID: usize = 128;

/// Why an offer's deployment id is unusable, if it is: empty, longer than
/// [`MAX_DEPLOYMENT_ID`] bytes, or holding a control character (a NUL
/// among them). Such an offer is refused at the socket.
fn deployment_id_problem(id: &str) -> Option<String> {
    if id.is_empty() {
        Some("the offer's deployment_id is empty".into())
    } else if id.len() > MAX_DEPLOYMENT_ID {
        Some(format!(
            "the offer's deployment_id is {} bytes long; at most {MAX_DEPLOYMENT_ID} are accepted",
            id.len()
        ))
    } else if id.chars().any(char::is_control) {
        Some("the offer's deployment_id holds a control character (such as NUL)".into())
    } else {
        None
    }
}

/// The message of a caught panic.
fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    let text = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".into());
    bounded(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn download_base_follows_the_websocket_scheme() {
        assert_eq!(
            http_base("ws://127.0.0.1:7400/api/agent").as_deref(),
            Some("http://127.0.0.1:7400")
        );
        assert_eq!(
            http_base("wss://vendor.example.com/api/agent?x=1").as_deref(),
            Some("https://vendor.example.com")
        );
        assert_eq!(http_base("http://vendor.example.com"), None);
        assert_eq!(http_base("ws:///nohost"), None);
    }

    #[test]
    fn unusable_deployment_ids_are_named() {
        assert_eq!(deployment_id_problem("d-1763932000-3f9a"), None);
        assert!(deployment_id_problem("").is_some());
        let long = deployment_id_problem(&"d".repeat(200)).unwrap_or_default();
        assert!(long.contains("200 bytes"), "{long}");
        let nul = deployment_id_problem("d-\0-1").unwrap_or_default();
        assert!(nul.contains("NUL"), "{nul}");
    }
}
