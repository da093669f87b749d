//! A stand-in vendor server: a MOCK, used only for what the real
//! `plinth-vendor` will not do on purpose: replay an old deployment, sign
//! one for another customer, send more bytes than it signed. It speaks the
//! real protocol (`plinth_package::protocol`) over a real websocket on
//! loopback and signs with a real ed25519 key; every status report it
//! receives is kept for the test to inspect.

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use plinth_package::protocol::{AgentMessage, StatusReport, VendorMessage};
use plinth_package::{DeploymentManifest, DeploymentPackage, SignedDeployment, VendorKey};

pub const TOKEN: &str = "standin-token";

#[derive(Default)]
struct Shared {
    /// Offers sent, in order, to every agent that says hello.
    offers: Vec<SignedDeployment>,
    /// `name/version` → archive bytes, and extra bytes to append.
    packages: HashMap<String, (Vec<u8>, usize)>,
    reports: Vec<StatusReport>,
    hellos: usize,
    /// Upgrade requests, authorised or not.
    attempts: usize,
}

pub struct StandInVendor {
    pub key: VendorKey,
    pub addr: SocketAddr,
    shared: Arc<Mutex<Shared>>,
    server: tokio::task::JoinHandle<()>,
}

impl StandInVendor {
    pub async fn start() -> StandInVendor {
        let shared = Arc::new(Mutex::new(Shared::default()));
        let router = Router::new()
            .route("/api/agent", get(socket))
            .route("/packages/{name}/{version}", get(download))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        StandInVendor {
            key: VendorKey::generate(),
            addr,
            shared,
            server,
        }
    }

    pub fn endpoint(&self) -> String {
        format!("ws://{}/api/agent", self.addr)
    }

    /// Serves `bytes` as `name/version`, followed by `extra` bytes the
    /// signature does not cover.
    pub fn serve_package(&self, name: &str, version: &str, bytes: Vec<u8>, extra: usize) {
        self.shared
            .lock()
            .expect("lock")
            .packages
            .insert(format!("{name}/{version}"), (bytes, extra));
    }

    /// A signed deployment of the given packages (served bytes decide size
    /// and hash) for `customer`, issued at `issued_at`.
    pub fn deployment(
        &self,
        id: &str,
        customer: &str,
        issued_at: i64,
        packages: &[(&str, &str)],
    ) -> SignedDeployment {
        let shared = self.shared.lock().expect("lock");
        let packages = packages
            .iter()
            .map(|(name, version)| {
                let (bytes, _) = &shared.packages[&format!("{name}/{version}")];
                DeploymentPackage {
                    name: (*name).to_owned(),
                    version: version.parse().expect("semver"),
                    size: bytes.len() as u64,
                    sha256: plinth_package::sha256_hex(bytes),
                    url: format!("/packages/{name}/{version}"),
                }
            })
            .collect();
        self.key
            .sign(&DeploymentManifest {
                customer: customer.to_owned(),
                deployment_id: id.to_owned(),
                issued_at,
                expires_at: issued_at + 3600,
                packages,
            })
            .expect("sign")
    }

    /// Offers these to every agent that connects from now on (the agent
    /// must reconnect to see a change; tests start the host afterwards).
    pub fn set_offers(&self, offers: Vec<SignedDeployment>) {
        self.shared.lock().expect("lock").offers = offers;
    }

    /// Websocket upgrade requests received so far.
    pub fn attempts(&self) -> usize {
        self.shared.lock().expect("lock").attempts
    }

    pub fn reports(&self) -> Vec<StatusReport> {
        self.shared.lock().expect("lock").reports.clone()
    }

    /// The deployment-level final report for `id`, once it arrives.
    pub async fn final_report(&self, id: &str) -> StatusReport {
        for _ in 0..300 {
            if let Some(report) = self
                .reports()
                .into_iter()
                .find(|r| r.deployment_id == id && r.package.is_none() && r.state.is_final())
            {
                return report;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no final report for {id}; reports: {:#?}", self.reports());
    }
}

impl Drop for StandInVendor {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn authorised(headers: &HeaderMap) -> bool {
    headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(&format!("Bearer {TOKEN}"))
}

async fn socket(
    State(shared): State<Arc<Mutex<Shared>>>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    shared.lock().expect("lock").attempts += 1;
    if !authorised(&headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    upgrade.on_upgrade(move |ws| converse(ws, shared))
}

async fn converse(mut ws: WebSocket, shared: Arc<Mutex<Shared>>) {
    while let Some(Ok(message)) = ws.recv().await {
        let Message::Text(text) = message else {
            continue;
        };
        let Ok(message) = serde_json::from_str::<AgentMessage>(text.as_str()) else {
            continue;
        };
        let replies = match message {
            AgentMessage::Hello { .. } => {
                let mut shared = shared.lock().expect("lock");
                shared.hellos += 1;
                let mut replies = vec![VendorMessage::Welcome {
                    protocol: plinth_package::protocol::PROTOCOL_VERSION,
                    customer: "acme".into(),
                    server_time: 0,
                }];
                for offer in &shared.offers {
                    let manifest: DeploymentManifest =
                        serde_json::from_str(&offer.manifest).expect("manifest");
                    replies.push(VendorMessage::Offer {
                        deployment_id: manifest.deployment_id,
                        deployment: offer.clone(),
                    });
                }
                replies
            }
            AgentMessage::Status(report) => {
                let ack = VendorMessage::Ack {
                    deployment_id: report.deployment_id.clone(),
                    seq: report.seq,
                };
                shared.lock().expect("lock").reports.push(report);
                vec![ack]
            }
        };
        for reply in replies {
            if ws
                .send(Message::Text(reply.to_json().into()))
                .await
                .is_err()
            {
                return;
            }
        }
    }
}

async fn download(
    State(shared): State<Arc<Mutex<Shared>>>,
    Path((name, version)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if !authorised(&headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let found = shared
        .lock()
        .expect("lock")
        .packages
        .get(&format!("{name}/{version}"))
        .cloned();
    match found {
        Some((mut bytes, extra)) => {
            bytes.extend(std::iter::repeat_n(0u8, extra));
            bytes.into_response()
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
