//! A stand-in vendor server: a MOCK, used only for what the real
//! `plinth-vendor` will not do on purpose: replay an old deployment, sign
//! one for another customer, send more bytes than it signed, and the
//! hostile behaviours of [`SocketFault`] and [`DownloadFault`] (redirects,
//! endless or slow bodies, refused upgrades, a socket that stops reading).
//! It speaks the real protocol (`plinth_package::protocol`) over a real
//! websocket on loopback and signs with a real ed25519 key; every status
//! report and close frame it receives is kept for the test to inspect.
//! [`RawSocketVendor`] is a second, smaller MOCK that writes websocket
//! frames by hand, for a message too large to build in memory.

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::{SinkExt as _, StreamExt as _};
use plinth_package::protocol::{AgentMessage, StatusReport, VendorMessage};
use plinth_package::{DeploymentManifest, DeploymentPackage, SignedDeployment, VendorKey};
use tokio::io::AsyncWriteExt as _;
use tokio::sync::broadcast;

pub const TOKEN: &str = "standin-token";

/// How the stand-in misbehaves on its websocket.
#[derive(Debug, Clone, Default)]
pub enum SocketFault {
    #[default]
    None,
    /// Answers the first `times` upgrade requests with `status` (and a
    /// `Retry-After` of that many seconds).
    RefuseUpgrade {
        status: u16,
        retry_after: Option<u64>,
        times: usize,
    },
    /// Closes every session right after `welcome`.
    CloseAfterWelcome,
    /// After `welcome`, never reads again (so never answers a ping).
    StopReading,
    /// Says this protocol version in `welcome`.
    Protocol(u32),
}

/// How the stand-in answers one package's download.
#[derive(Debug, Clone)]
pub enum DownloadFault {
    /// This status with this body.
    Status { status: u16, body: String },
    /// This status with a body that never ends.
    EndlessStatus(u16),
    /// `302 Found` to this location.
    Redirect(String),
    /// The first request gets the body at one byte a second; later ones
    /// get it whole.
    SlowFirst,
}

#[derive(Default)]
struct Shared {
    /// Offers sent, in order, to every agent that says hello.
    offers: Vec<SignedDeployment>,
    /// `name/version` → archive bytes, and extra bytes to append.
    packages: HashMap<String, (Vec<u8>, usize)>,
    reports: Vec<StatusReport>,
    hellos: usize,
    /// Upgrade requests, authorised or not, with when they came.
    attempts: usize,
    attempt_times: Vec<std::time::Instant>,
    socket_fault: SocketFault,
    download_faults: HashMap<String, DownloadFault>,
    /// `name/version` of every download request, in order.
    downloads: Vec<String>,
    /// Close frames received from agents: code and reason.
    closes: Vec<(u16, String)>,
    /// Texts sent after `welcome` and the offers, to every agent.
    extra_messages: Vec<String>,
    /// Messages for the agents connected now.
    live: Option<broadcast::Sender<String>>,
    /// Added to the real time in `welcome`'s `server_time`.
    clock_offset_secs: i64,
}

pub struct StandInVendor {
    pub key: VendorKey,
    pub addr: SocketAddr,
    shared: Arc<Mutex<Shared>>,
    server: tokio::task::JoinHandle<()>,
}

impl StandInVendor {
    pub async fn start() -> StandInVendor {
        let shared = Arc::new(Mutex::new(Shared {
            live: Some(broadcast::channel(16).0),
            ..Shared::default()
        }));
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

    /// When each upgrade request arrived.
    pub fn attempt_times(&self) -> Vec<std::time::Instant> {
        self.shared.lock().expect("lock").attempt_times.clone()
    }

    pub fn set_socket_fault(&self, fault: SocketFault) {
        self.shared.lock().expect("lock").socket_fault = fault;
    }

    pub fn set_download_fault(&self, name: &str, version: &str, fault: Option<DownloadFault>) {
        let key = format!("{name}/{version}");
        let mut shared = self.shared.lock().expect("lock");
        match fault {
            Some(fault) => shared.download_faults.insert(key, fault),
            None => shared.download_faults.remove(&key),
        };
    }

    /// `name/version` of every download request so far.
    pub fn downloads(&self) -> Vec<String> {
        self.shared.lock().expect("lock").downloads.clone()
    }

    /// Close frames agents sent: code and reason.
    pub fn closes(&self) -> Vec<(u16, String)> {
        self.shared.lock().expect("lock").closes.clone()
    }

    /// Makes `welcome` report a clock this far off.
    pub fn set_clock_offset(&self, secs: i64) {
        self.shared.lock().expect("lock").clock_offset_secs = secs;
    }

    pub fn hellos(&self) -> usize {
        self.shared.lock().expect("lock").hellos
    }

    /// Texts to send to every agent after `welcome` and the offers.
    pub fn set_extra_messages(&self, texts: Vec<String>) {
        self.shared.lock().expect("lock").extra_messages = texts;
    }

    /// Offers `offer` now to every connected agent (and from now on to
    /// every agent that connects).
    pub fn push_offer(&self, offer: SignedDeployment) {
        let manifest: DeploymentManifest = serde_json::from_str(&offer.manifest).expect("manifest");
        let text = VendorMessage::Offer {
            deployment_id: manifest.deployment_id,
            deployment: offer.clone(),
        }
        .to_json();
        let mut shared = self.shared.lock().expect("lock");
        shared.offers.push(offer);
        if let Some(live) = &shared.live {
            let _ = live.send(text);
        }
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
    let refusal = {
        let mut shared = shared.lock().expect("lock");
        shared.attempts += 1;
        shared.attempt_times.push(std::time::Instant::now());
        match &mut shared.socket_fault {
            SocketFault::RefuseUpgrade {
                status,
                retry_after,
                times,
            } if *times > 0 => {
                *times -= 1;
                Some((*status, *retry_after))
            }
            _ => None,
        }
    };
    if let Some((status, retry_after)) = refusal {
        let status = StatusCode::from_u16(status).expect("status");
        return match retry_after {
            Some(secs) => (status, [("retry-after", secs.to_string())]).into_response(),
            None => status.into_response(),
        };
    }
    if !authorised(&headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    upgrade.on_upgrade(move |ws| converse(ws, shared))
}

async fn converse(mut ws: WebSocket, shared: Arc<Mutex<Shared>>) {
    let (fault, mut live) = {
        let shared = shared.lock().expect("lock");
        let live = shared.live.as_ref().expect("live channel").subscribe();
        (shared.socket_fault.clone(), live)
    };
    loop {
        let message = tokio::select! {
            message = ws.recv() => message,
            pushed = live.recv() => {
                let Ok(text) = pushed else { continue };
                if ws.send(Message::Text(text.into())).await.is_err() {
                    return;
                }
                continue;
            }
        };
        let Some(Ok(message)) = message else {
            return;
        };
        let text = match message {
            Message::Text(text) => text,
            Message::Close(Some(frame)) => {
                shared
                    .lock()
                    .expect("lock")
                    .closes
                    .push((frame.code, frame.reason.to_string()));
                return;
            }
            _ => continue,
        };
        let Ok(message) = serde_json::from_str::<AgentMessage>(text.as_str()) else {
            continue;
        };
        let replies = match message {
            AgentMessage::Hello { .. } => {
                let replies = {
                    let mut shared = shared.lock().expect("lock");
                    shared.hellos += 1;
                    let protocol = match &fault {
                        SocketFault::Protocol(protocol) => *protocol,
                        _ => plinth_package::protocol::PROTOCOL_VERSION,
                    };
                    let mut replies = vec![
                        VendorMessage::Welcome {
                            protocol,
                            customer: "acme".into(),
                            server_time: now() + shared.clock_offset_secs,
                        }
                        .to_json(),
                    ];
                    for offer in &shared.offers {
                        let manifest: DeploymentManifest =
                            serde_json::from_str(&offer.manifest).expect("manifest");
                        replies.push(
                            VendorMessage::Offer {
                                deployment_id: manifest.deployment_id,
                                deployment: offer.clone(),
                            }
                            .to_json(),
                        );
                    }
                    replies.extend(shared.extra_messages.iter().cloned());
                    replies
                };
                for reply in replies {
                    if ws.send(Message::Text(reply.into())).await.is_err() {
                        return;
                    }
                }
                match &fault {
                    SocketFault::CloseAfterWelcome => {
                        let _ = ws.send(Message::Close(None)).await;
                        return;
                    }
                    SocketFault::StopReading => {
                        // Holds the socket open without reading it.
                        tokio::time::sleep(Duration::from_secs(60)).await;
                        return;
                    }
                    _ => {}
                }
                continue;
            }
            AgentMessage::Status(report) => {
                let ack = VendorMessage::Ack {
                    deployment_id: report.deployment_id.clone(),
                    seq: report.seq,
                };
                shared.lock().expect("lock").reports.push(report);
                ack
            }
        };
        if ws
            .send(Message::Text(replies.to_json().into()))
            .await
            .is_err()
        {
            return;
        }
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

async fn download(
    State(shared): State<Arc<Mutex<Shared>>>,
    Path((name, version)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if !authorised(&headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let key = format!("{name}/{version}");
    let (found, fault, first) = {
        let mut shared = shared.lock().expect("lock");
        let first = !shared.downloads.contains(&key);
        shared.downloads.push(key.clone());
        (
            shared.packages.get(&key).cloned(),
            shared.download_faults.get(&key).cloned(),
            first,
        )
    };
    match fault {
        Some(DownloadFault::Status { status, body }) => {
            return (StatusCode::from_u16(status).expect("status"), body).into_response();
        }
        Some(DownloadFault::EndlessStatus(status)) => {
            let chunk = Bytes::from(vec![b'x'; 64 * 1024]);
            let endless = futures::stream::repeat(Ok::<_, std::convert::Infallible>(chunk));
            return (
                StatusCode::from_u16(status).expect("status"),
                Body::from_stream(endless),
            )
                .into_response();
        }
        Some(DownloadFault::Redirect(location)) => {
            return (StatusCode::FOUND, [("location", location)]).into_response();
        }
        Some(DownloadFault::SlowFirst) if first => {
            let (bytes, _) = found.expect("package served");
            let slow = futures::stream::iter(bytes).then(|byte| async move {
                tokio::time::sleep(Duration::from_secs(1)).await;
                Ok::<_, std::convert::Infallible>(Bytes::from(vec![byte]))
            });
            return Body::from_stream(slow).into_response();
        }
        _ => {}
    }
    match found {
        Some((mut bytes, extra)) => {
            bytes.extend(std::iter::repeat_n(0u8, extra));
            bytes.into_response()
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// A second MOCK vendor for one fault only: after `welcome` it starts a
/// text frame that claims `claimed` bytes and writes filler from a small
/// buffer until the agent hangs up, so the test never holds the message.
/// Close frames the agent sends are kept.
pub struct RawSocketVendor {
    pub addr: SocketAddr,
    closes: Arc<Mutex<Vec<(u16, String)>>>,
    sessions: Arc<Mutex<usize>>,
    server: tokio::task::JoinHandle<()>,
}

impl RawSocketVendor {
    pub async fn start(claimed: u64) -> RawSocketVendor {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let closes = Arc::new(Mutex::new(Vec::new()));
        let sessions = Arc::new(Mutex::new(0));
        let (c, n) = (closes.clone(), sessions.clone());
        let server = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                *n.lock().expect("lock") += 1;
                tokio::spawn(raw_session(stream, claimed, c.clone()));
            }
        });
        RawSocketVendor {
            addr,
            closes,
            sessions,
            server,
        }
    }

    pub fn endpoint(&self) -> String {
        format!("ws://{}/api/agent", self.addr)
    }

    pub fn closes(&self) -> Vec<(u16, String)> {
        self.closes.lock().expect("lock").clone()
    }

    pub fn sessions(&self) -> usize {
        *self.sessions.lock().expect("lock")
    }
}

impl Drop for RawSocketVendor {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn raw_session(
    stream: tokio::net::TcpStream,
    claimed: u64,
    closes: Arc<Mutex<Vec<(u16, String)>>>,
) {
    use tokio_tungstenite::tungstenite::Message as Raw;
    let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
        return;
    };
    // hello
    let _ = ws.next().await;
    let welcome = VendorMessage::Welcome {
        protocol: plinth_package::protocol::PROTOCOL_VERSION,
        customer: "acme".into(),
        server_time: now(),
    };
    if ws.send(Raw::text(welcome.to_json())).await.is_err() {
        return;
    }
    // A server frame is unmasked: FIN + text, then a 64-bit length.
    let mut header = vec![0x81u8, 127];
    header.extend_from_slice(&claimed.to_be_bytes());
    let filler = vec![b'x'; 64 * 1024];
    let mut written = 0u64;
    let sent = async {
        let tcp = ws.get_mut();
        tcp.write_all(&header).await?;
        while written < claimed {
            let n = filler
                .len()
                .min(usize::try_from(claimed - written).unwrap_or(usize::MAX));
            tcp.write_all(&filler[..n]).await?;
            written += n as u64;
        }
        std::io::Result::Ok(())
    };
    let _ = tokio::time::timeout(Duration::from_secs(20), sent).await;
    // What the agent answered, if it said anything.
    let answer = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(message) = ws.next().await {
            if let Ok(Raw::Close(Some(frame))) = message {
                return Some((u16::from(frame.code), frame.reason.to_string()));
            }
            if message.is_err() {
                return None;
            }
        }
        None
    })
    .await;
    if let Ok(Some(close)) = answer {
        closes.lock().expect("lock").push(close);
    }
}
