//! The websocket to the vendor: connect, authenticate with the customer
//! token, `hello`, then serve the socket: offers and cancellations go to
//! the worker, acks clear the outbox, pings keep the connection honest.
//!
//! A lost connection is retried with exponential back-off and "equal"
//! jitter (half the delay fixed, half random, so a vendor restart does not
//! bring every customer back in the same millisecond). A 4xx answer to the
//! upgrade request is final: the token is wrong or revoked, and retrying
//! would only hammer the server. So are running out of attempts and a
//! token that belongs to another customer. A stopped agent waits for
//! `POST /api/admin/agent/reconnect` or a restart.

use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt as _, StreamExt as _};
use plinth_package::protocol::{AgentMessage, PROTOCOL_VERSION, VendorMessage};
use tokio::sync::mpsc;
use tokio::time::{Instant, timeout};
use tokio_tungstenite::tungstenite::{self, Message, client::IntoClientRequest as _};

use super::AgentHost as Host;
use super::{AgentSettings, AgentState, ConnectionState, IncomingOffer, OfferView};
use crate::db::{agent_ledger, now_ms};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const WELCOME_TIMEOUT: Duration = Duration::from_secs(10);
const PING_EVERY: Duration = Duration::from_secs(15);
/// Silence from the server for this long means the connection is dead
/// even if TCP has not noticed.
const SILENCE_LIMIT: Duration = Duration::from_secs(45);

/// How one connection attempt ended.
#[derive(Debug)]
enum SessionEnd {
    /// It never got as far as `welcome`.
    Failed(String),
    /// It was up and then broke.
    Lost(String),
    /// The server (or the account) said no; retrying will not help.
    Refused(String),
}

pub(super) async fn run(
    host: Host,
    settings: Arc<AgentSettings>,
    offers: mpsc::Sender<IncomingOffer>,
) {
    let state = host.agent.clone();
    let mut failures: u32 = 0;
    let mut connection: u64 = 0;
    loop {
        state.update(|s| s.connection = ConnectionState::Connecting);
        connection += 1;
        let end = session(&host, &settings, &offers, connection).await;
        state.update(|s| {
            s.connected = false;
            s.connected_since_ms = None;
        });
        let error = match end {
            SessionEnd::Lost(error) => {
                // It was working: start the back-off from the beginning.
                failures = 1;
                error
            }
            SessionEnd::Failed(error) => {
                failures += 1;
                error
            }
            SessionEnd::Refused(reason) => {
                stop(&state, reason).await;
                failures = 0;
                continue;
            }
        };
        tracing::warn!(%error, attempt = failures, "upgrade agent: connection to the vendor lost or failed");
        state.update(|s| s.last_error = Some(error.clone()));
        if failures >= settings.reconnect_attempts {
            stop(
                &state,
                format!(
                    "gave up after {failures} failed connection attempts; last error: {error}. Check vendor.endpoint and the network, then POST /api/admin/agent/reconnect"
                ),
            )
            .await;
            failures = 0;
            continue;
        }
        let delay = backoff(&settings, failures);
        state.update(|s| {
            s.connection = ConnectionState::BackingOff {
                attempt: failures,
                retry_in_ms: u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
            }
        });
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = state.inner.restart.notified() => {}
        }
    }
}

async fn stop(state: &AgentState, reason: String) {
    tracing::error!(%reason, "upgrade agent stopped");
    state.update(|s| {
        s.last_error = Some(reason.clone());
        s.connection = ConnectionState::Stopped { reason };
    });
    state.inner.restart.notified().await;
}

/// The delay before attempt `failures + 1`: `initial · 2^(failures-1)`,
/// capped at the maximum, of which a random half is taken off.
fn backoff(settings: &AgentSettings, failures: u32) -> Duration {
    let exponent = failures.saturating_sub(1).min(20);
    let full = settings
        .reconnect_initial
        .saturating_mul(1 << exponent)
        .min(settings.reconnect_max);
    let half = full / 2;
    half + half.mul_f64(rand::random::<f64>())
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn session(
    host: &Host,
    settings: &AgentSettings,
    offers: &mpsc::Sender<IncomingOffer>,
    connection: u64,
) -> SessionEnd {
    let state = &host.agent;
    let mut ws = match connect(settings).await {
        Ok(ws) => ws,
        Err(end) => return end,
    };

    let installed = match super::installed_set(host).await {
        Ok(installed) => installed,
        Err(e) => return SessionEnd::Failed(format!("reading the installed set: {e}")),
    };
    let last_deployment_id = agent_ledger::newest_acted_on(&host.db)
        .await
        .ok()
        .flatten()
        .map(|entry| entry.deployment_id);
    let hello = AgentMessage::Hello {
        protocol: PROTOCOL_VERSION,
        agent_version: env!("CARGO_PKG_VERSION").to_owned(),
        installed,
        last_deployment_id,
    };
    if let Err(e) = ws.send(Message::text(hello.to_json())).await {
        return SessionEnd::Failed(format!("sending hello: {e}"));
    }
    match timeout(WELCOME_TIMEOUT, next_message(&mut ws)).await {
        Err(_) => return SessionEnd::Failed("the vendor did not answer hello within 10 s".into()),
        Ok(Err(e)) => return SessionEnd::Failed(e),
        Ok(Ok(VendorMessage::Welcome { customer, .. })) => {
            if customer != settings.customer {
                return SessionEnd::Refused(format!(
                    "the vendor says vendor.customer_token belongs to customer {customer:?}, but vendor.customer in config.json is {:?}: fix whichever is wrong",
                    settings.customer
                ));
            }
        }
        Ok(Ok(VendorMessage::Error { code, message })) => {
            return SessionEnd::Refused(format!("the vendor refused hello ({code}): {message}"));
        }
        Ok(Ok(other)) => {
            return SessionEnd::Failed(format!("expected welcome from the vendor, got {other:?}"));
        }
    }
    tracing::info!(endpoint = %settings.endpoint, customer = %settings.customer, "upgrade agent connected");
    state.update(|s| {
        s.connection = ConnectionState::Connected;
        s.connected = true;
        s.connected_since_ms = Some(now_ms());
        s.connections += 1;
        s.last_error = None;
    });

    let mut last_heard = Instant::now();
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    loop {
        for report in state.outbox().take_unsent(connection) {
            let message = AgentMessage::Status(report);
            if let Err(e) = ws.send(Message::text(message.to_json())).await {
                return SessionEnd::Lost(format!("sending a status report: {e}"));
            }
        }
        tokio::select! {
            message = ws.next() => {
                last_heard = Instant::now();
                match message {
                    None => return SessionEnd::Lost("the vendor closed the connection".into()),
                    Some(Err(e)) => return SessionEnd::Lost(format!("connection error: {e}")),
                    Some(Ok(Message::Close(frame))) => {
                        let why = frame.map(|f| f.reason.to_string()).unwrap_or_default();
                        return SessionEnd::Lost(format!("the vendor closed the connection {why}").trim_end().to_owned());
                    }
                    Some(Ok(Message::Text(text))) => handle(state, offers, text.as_str()),
                    Some(Ok(_)) => {}
                }
            }
            _ = state.outbox().pushed() => {}
            _ = ping.tick() => {
                if last_heard.elapsed() > SILENCE_LIMIT {
                    return SessionEnd::Lost(format!(
                        "no word from the vendor for {} s", SILENCE_LIMIT.as_secs()
                    ));
                }
                if let Err(e) = ws.send(Message::Ping(Vec::new().into())).await {
                    return SessionEnd::Lost(format!("sending a ping: {e}"));
                }
            }
        }
    }
}

async fn connect(settings: &AgentSettings) -> Result<Socket, SessionEnd> {
    let mut request = settings
        .endpoint
        .as_str()
        .into_client_request()
        .map_err(|e| SessionEnd::Refused(format!("vendor.endpoint is unusable: {e}")))?;
    let bearer = format!("Bearer {}", settings.token).parse().map_err(|_| {
        SessionEnd::Refused(
            "vendor.customer_token contains characters a header cannot carry".into(),
        )
    })?;
    request
        .headers_mut()
        .insert(http::header::AUTHORIZATION, bearer);
    match timeout(CONNECT_TIMEOUT, tokio_tungstenite::connect_async(request)).await {
        Err(_) => Err(SessionEnd::Failed(format!(
            "connecting to {} timed out after {} s",
            settings.endpoint,
            CONNECT_TIMEOUT.as_secs()
        ))),
        Ok(Err(tungstenite::Error::Http(response))) => {
            let status = response.status();
            let body = response
                .body()
                .as_deref()
                .map(|b| String::from_utf8_lossy(&b[..b.len().min(300)]).into_owned())
                .unwrap_or_default();
            let message = format!("the vendor answered the connection with {status} {body}");
            if status.is_client_error() {
                Err(SessionEnd::Refused(format!(
                    "{}; this is final: check vendor.customer_token and vendor.endpoint, then POST /api/admin/agent/reconnect",
                    message.trim_end()
                )))
            } else {
                Err(SessionEnd::Failed(message.trim_end().to_owned()))
            }
        }
        Ok(Err(e)) => Err(SessionEnd::Failed(format!(
            "connecting to {}: {e}",
            settings.endpoint
        ))),
        Ok(Ok((ws, _response))) => Ok(ws),
    }
}

/// The next vendor message, skipping control frames.
async fn next_message(ws: &mut Socket) -> Result<VendorMessage, String> {
    loop {
        match ws.next().await {
            None => return Err("the vendor closed the connection".into()),
            Some(Err(e)) => return Err(format!("connection error: {e}")),
            Some(Ok(Message::Text(text))) => {
                return serde_json::from_str(text.as_str())
                    .map_err(|e| format!("the vendor sent a message this agent cannot read: {e}"));
            }
            Some(Ok(Message::Close(_))) => return Err("the vendor closed the connection".into()),
            Some(Ok(_)) => {}
        }
    }
}

fn handle(state: &AgentState, offers: &mpsc::Sender<IncomingOffer>, text: &str) {
    let message: VendorMessage = match serde_json::from_str(text) {
        Ok(message) => message,
        Err(e) => {
            tracing::warn!(error = %e, "upgrade agent: ignoring a message it cannot read");
            return;
        }
    };
    match message {
        VendorMessage::Offer {
            deployment_id,
            deployment,
        } => {
            tracing::info!(%deployment_id, "upgrade agent: offer received");
            state.update(|s| {
                s.last_offer = Some(OfferView {
                    deployment_id: deployment_id.clone(),
                    received_at_ms: now_ms(),
                    issued_at: None,
                    expires_at: None,
                    outcome: agent_ledger::outcome::RECEIVED.to_owned(),
                    reason: None,
                    packages: Vec::new(),
                })
            });
            // A full queue means offers arrive faster than they install;
            // the vendor offers its newest deployment again on reconnect.
            if offers
                .try_send(IncomingOffer {
                    deployment_id: deployment_id.clone(),
                    deployment,
                })
                .is_err()
            {
                tracing::warn!(%deployment_id, "upgrade agent: offer queue full; offer dropped");
            }
        }
        VendorMessage::Ack { deployment_id, seq } => {
            state.outbox().acknowledge(&deployment_id, seq);
        }
        VendorMessage::Cancel {
            deployment_id,
            reason,
        } => {
            tracing::warn!(%deployment_id, %reason, "upgrade agent: the vendor cancelled a deployment");
            state.set_cancelled(Some(deployment_id));
        }
        VendorMessage::Error { code, message } => {
            tracing::warn!(%code, %message, "upgrade agent: the vendor reported an error");
            state.update(|s| s.last_error = Some(format!("vendor error {code}: {message}")));
        }
        VendorMessage::Welcome { .. } => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(initial_ms: u64, max_ms: u64) -> AgentSettings {
        AgentSettings {
            endpoint: "ws://127.0.0.1:1/api/agent".into(),
            http_base: "http://127.0.0.1:1".into(),
            customer: "acme".into(),
            token: "t".into(),
            public_key: plinth_package::VendorKey::generate().public_key(),
            reconnect_initial: Duration::from_millis(initial_ms),
            reconnect_max: Duration::from_millis(max_ms),
            reconnect_attempts: 10,
            download_attempts: 3,
        }
    }

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_cap() {
        let s = settings(100, 1_000);
        for _ in 0..50 {
            let first = backoff(&s, 1);
            assert!((Duration::from_millis(50)..=Duration::from_millis(100)).contains(&first));
            let third = backoff(&s, 3);
            assert!((Duration::from_millis(200)..=Duration::from_millis(400)).contains(&third));
            let late = backoff(&s, 40);
            assert!((Duration::from_millis(500)..=Duration::from_millis(1_000)).contains(&late));
        }
        let spread: std::collections::BTreeSet<_> = (0..20).map(|_| backoff(&s, 5)).collect();
        assert!(spread.len() > 1, "jitter varies the delay");
    }
}
