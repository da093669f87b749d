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

mod connection;
mod deploy;
mod download;
mod outbox;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use plinth_package::VendorPublicKey;
use plinth_package::protocol::{PackageState, StatusReport};
use serde::Serialize;
use tokio::sync::{Notify, mpsc};

use crate::Host;
use crate::config::VendorConfig;

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
}

impl AgentSettings {
    /// The agent's settings, or why they are unusable (the config loader
    /// checks the same rules first, so this fails only for configs built in
    /// code).
    pub fn from_config(vendor: &VendorConfig) -> Result<Self, String> {
        let public_key = VendorPublicKey::from_hex(&vendor.public_key)
            .map_err(|e| format!("vendor.public_key: {e}"))?;
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
    /// Waiting before the next attempt.
    BackingOff {
        attempt: u32,
        retry_in_ms: u64,
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
    pub last_offer: Option<OfferView>,
    /// Status reports the server has not acknowledged yet.
    pub unacknowledged_reports: usize,
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
}

impl AgentState {
    pub fn new(vendor: &VendorConfig) -> Self {
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
            last_offer: None,
            unacknowledged_reports: 0,
        };
        Self {
            inner: Arc::new(Shared {
                snapshot: Mutex::new(snapshot),
                outbox: Outbox::default(),
                restart: Notify::new(),
                cancelled: Mutex::new(None),
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
                            Some(reason.clone())
                        }
                        _ => None,
                    };
                }
            }
        });
    }
}

/// An offer as the connection hands it to the worker.
#[derive(Debug)]
struct IncomingOffer {
    deployment_id: String,
    deployment: plinth_package::SignedDeployment,
}

/// Starts the agent's two tasks; returns their handles. Call only when
/// `vendor.endpoint` is set.
pub fn spawn(host: Host, agent: AgentState) -> Result<Vec<tokio::task::JoinHandle<()>>, String> {
    let host = AgentHost { host, agent };
    let settings = Arc::new(AgentSettings::from_config(&host.config.vendor)?);
    let (offers_tx, offers_rx) = mpsc::channel(8);
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
}
