//! The agents' websocket, `GET /api/agent`.
//!
//! The upgrade request carries the customer's bearer token; without a
//! known one the answer is a JSON 401 and no upgrade. On the socket the
//! agent speaks first with `hello` (anything else, or bad JSON, gets an
//! `error` and the socket is closed). The server stores the installed set,
//! answers `welcome` and offers the customer's newest deployment if it is
//! still open, reissuing it under a new id first if it has expired. After
//! that every `status` is stored once and acknowledged (resends too), and
//! offers and cancellations from [`super::deliver`] are forwarded. A
//! connection that sends nothing for [`ServerOptions::idle_timeout`] is
//! closed; pings are answered by axum and count as activity.
//!
//! [`ServerOptions::idle_timeout`]: super::ServerOptions

use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use plinth_package::protocol::{
    AgentMessage, PROTOCOL_VERSION, PackageState, StatusReport, VendorMessage,
};
use tokio::time::{Instant, timeout, timeout_at};

use super::AppState;
use super::auth;
use super::error::ApiError;
use crate::db::customers::Customer;
use crate::db::deployments::{self, Hello};
use crate::db::now_secs;

/// Largest message accepted from an agent. A `hello` lists installed
/// plugins and a `status` one package, so this is generous.
const MAX_MESSAGE_BYTES: usize = 256 * 1024;

/// Read buffer per connection: agent messages are small, and ten thousand
/// connections with tungstenite's default 128 KiB each would be 1.2 GiB.
const READ_BUFFER_BYTES: usize = 4 * 1024;

/// An open deployment expiring sooner than this is reissued before it is
/// offered, so the agent has time to verify it.
const REISSUE_MARGIN_SECS: i64 = 60;

/// Authenticates, then upgrades.
pub async fn connect(
    State(state): State<AppState>,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let customer = auth::customer(&state, &headers).await?;
    let not_a_websocket = |problem: &dyn std::fmt::Display| {
        ApiError::bad_request(
            "not_a_websocket",
            format!(
                "{} is the agents' websocket endpoint: {problem}",
                plinth_package::protocol::AGENT_PATH
            ),
        )
    };
    let upgrade = upgrade.map_err(|rejection| not_a_websocket(&rejection))?;
    if !headers
        .get(header::SEC_WEBSOCKET_KEY)
        .is_some_and(|key| is_handshake_key(key.as_bytes()))
    {
        return Err(not_a_websocket(
            &"`Sec-WebSocket-Key` must be 16 bytes in base64 (RFC 6455, section 4.1)",
        ));
    }
    Ok(upgrade
        .read_buffer_size(READ_BUFFER_BYTES)
        .max_message_size(MAX_MESSAGE_BYTES)
        .max_frame_size(MAX_MESSAGE_BYTES)
        .on_upgrade(move |socket| async move {
            let name = customer.name.clone();
            if let Err(error) = Connection::run(state, customer, socket).await {
                tracing::debug!(customer = %name, %error, "agent connection ended with an error");
            }
        })
        .into_response())
}

/// Whether `key` is what RFC 6455 asks of `Sec-WebSocket-Key`: 16 bytes
/// in base64, 24 characters whose last two are padding. axum only checks
/// that the header is there; a server must refuse a handshake that does
/// not match the RFC's description (section 4.2.1) with 400.
fn is_handshake_key(key: &[u8]) -> bool {
    let is_base64 = |c: &u8| c.is_ascii_alphanumeric() || *c == b'+' || *c == b'/';
    // The 22nd character carries the last 2 bits of the 16th byte and 4
    // zero bits, so it is one of the four letters with those bits clear.
    key.len() == 24
        && key[..21].iter().all(is_base64)
        && matches!(key[21], b'A' | b'Q' | b'g' | b'w')
        && &key[22..] == b"=="
}

/// One agent connection's state: kept small, there may be ten thousand.
struct Connection {
    state: AppState,
    customer: Customer,
    socket: WebSocket,
    /// The last deployment offered here, so an offer arriving both from
    /// `hello` and from the poller is sent once.
    last_offered: Option<String>,
    /// The last deployment a status was checked for (saves a query per
    /// report).
    known_deployment: Option<String>,
}

/// What socket operations fail with; the connection just ends.
type SocketResult = Result<(), axum::Error>;

impl Connection {
    async fn run(state: AppState, customer: Customer, socket: WebSocket) -> SocketResult {
        let mut conn = Connection {
            state,
            customer,
            socket,
            last_offered: None,
            known_deployment: None,
        };
        let hello_timeout = conn.state.options().hello_timeout;
        let first = match timeout(hello_timeout, conn.socket.recv()).await {
            Ok(Some(Ok(message))) => message,
            Ok(Some(Err(e))) => return Err(e),
            Ok(None) => return Ok(()),
            Err(_) => {
                return conn
                    .refuse(
                        "expected_hello",
                        "no hello within the time allowed; send hello first",
                    )
                    .await;
            }
        };
        let hello = match first {
            Message::Text(text) => serde_json::from_str::<AgentMessage>(&text),
            Message::Binary(_) => {
                return conn
                    .refuse(
                        "bad_message",
                        "messages are JSON text frames; send hello first",
                    )
                    .await;
            }
            Message::Close(_) => return Ok(()),
            _ => {
                return conn
                    .refuse("expected_hello", "the first message must be hello")
                    .await;
            }
        };
        let (protocol, agent_version, installed, last_deployment_id) = match hello {
            Ok(AgentMessage::Hello {
                protocol,
                agent_version,
                installed,
                last_deployment_id,
            }) => (protocol, agent_version, installed, last_deployment_id),
            Ok(_) => {
                return conn
                    .refuse("expected_hello", "the first message must be hello")
                    .await;
            }
            Err(e) => {
                return conn
                    .refuse(
                        "bad_message",
                        &format!("the first message is not a valid hello: {e}"),
                    )
                    .await;
            }
        };
        if protocol != PROTOCOL_VERSION {
            return conn
                .refuse(
                    "unsupported_protocol",
                    &format!(
                        "this vendor server speaks protocol {PROTOCOL_VERSION}, the agent {protocol}; upgrade the older side"
                    ),
                )
                .await;
        }

        // Register before reading the newest deployment, so one pushed in
        // between still arrives (and is sent once, see `last_offered`).
        let (registration, mut outbox) = conn.state.registry().register(conn.customer.id);
        let installed_json = serde_json::to_string(&installed).unwrap_or_else(|_| "[]".into());
        let stored = deployments::record_hello(
            &conn.state.vendor().db,
            conn.customer.id,
            &Hello {
                protocol,
                agent_version: &agent_version,
                installed_json: &installed_json,
                last_deployment_id: last_deployment_id.as_deref(),
            },
        )
        .await;
        if let Err(error) = stored {
            tracing::error!(customer = %conn.customer.name, %error, "cannot store hello");
            return conn
                .refuse(
                    "internal",
                    "the vendor server cannot store your hello; reconnect later",
                )
                .await;
        }
        tracing::info!(customer = %conn.customer.name, %agent_version, installed = installed.len(), "agent connected");
        conn.send(&VendorMessage::Welcome {
            protocol: PROTOCOL_VERSION,
            customer: conn.customer.name.clone(),
            server_time: now_secs(),
        })
        .await?;
        conn.offer_newest().await?;

        let result = conn.serve(&mut outbox).await;
        drop(registration);
        if conn.state.registry().connections_of(conn.customer.id) == 0
            && let Err(error) =
                deployments::record_disconnect(&conn.state.vendor().db, conn.customer.id).await
        {
            tracing::warn!(customer = %conn.customer.name, %error, "cannot record the disconnect");
        }
        tracing::info!(customer = %conn.customer.name, "agent disconnected");
        result
    }

    /// The loop after `welcome`: agent messages in, deliveries out.
    async fn serve(
        &mut self,
        outbox: &mut tokio::sync::mpsc::Receiver<VendorMessage>,
    ) -> SocketResult {
        let idle = self.state.options().idle_timeout;
        let mut deadline = Instant::now() + idle;
        loop {
            tokio::select! {
                incoming = timeout_at(deadline, self.socket.recv()) => {
                    let message = match incoming {
                        Err(_) => {
                            return self.close(close_code::POLICY, "idle: nothing received for too long").await;
                        }
                        Ok(None) => return Ok(()),
                        Ok(Some(Err(e))) => return Err(e),
                        Ok(Some(Ok(message))) => message,
                    };
                    deadline = Instant::now() + idle;
                    match message {
                        Message::Text(text) => self.handle(&text).await?,
                        Message::Binary(_) => {
                            self.error("bad_message", "messages are JSON text frames").await?;
                        }
                        Message::Ping(_) | Message::Pong(_) => {}
                        Message::Close(_) => return Ok(()),
                    }
                }
                delivery = outbox.recv() => match delivery {
                    Some(message) => self.forward(message).await?,
                    // Dropped by the registry: shutdown or a stuck queue.
                    None => return self.close(close_code::AWAY, "the vendor server is closing this connection").await,
                },
            }
        }
    }

    async fn handle(&mut self, text: &str) -> SocketResult {
        match serde_json::from_str::<AgentMessage>(text) {
            Ok(AgentMessage::Status(report)) => self.status(report).await,
            Ok(AgentMessage::Hello { .. }) => {
                self.error(
                    "unexpected_hello",
                    "hello is only the first message of a connection; reconnect to say it again",
                )
                .await
            }
            Err(e) => {
                self.error("bad_message", &format!("not a valid agent message: {e}"))
                    .await
            }
        }
    }

    async fn status(&mut self, report: StatusReport) -> SocketResult {
        let db = &self.state.vendor().db;
        if self.known_deployment.as_deref() != Some(report.deployment_id.as_str()) {
            match deployments::by_id(db, &report.deployment_id).await {
                Ok(Some(d)) if d.customer_id == self.customer.id => {
                    self.known_deployment = Some(d.id);
                }
                Ok(_) => {
                    let message = format!(
                        "deployment {:?} was not issued to customer {}; report only deployments offered on this connection",
                        report.deployment_id, self.customer.name
                    );
                    return self.error("unknown_deployment", &message).await;
                }
                Err(error) => {
                    tracing::error!(%error, "cannot look up a deployment");
                    return self
                        .error(
                            "internal",
                            "the vendor server cannot store this status now; resend it later",
                        )
                        .await;
                }
            }
        }
        if i64::try_from(report.seq).is_err() {
            return self
                .error("bad_message", "seq is out of range (at most 2^63-1)")
                .await;
        }
        match deployments::record_report(db, self.customer.id, &report).await {
            Ok(stored) => {
                if stored
                    && report.state == PackageState::Success
                    && let (Some(name), Some(version)) = (&report.package, &report.version)
                    && let Err(error) =
                        deployments::record_installed(db, self.customer.id, name, version).await
                {
                    tracing::error!(%error, "cannot update the reported installed set");
                }
                if stored && report.state.is_final() {
                    tracing::info!(
                        customer = %self.customer.name,
                        deployment = %report.deployment_id,
                        package = report.package.as_deref().unwrap_or("(deployment)"),
                        state = report.state.name(),
                        "final status"
                    );
                }
                self.send(&VendorMessage::Ack {
                    deployment_id: report.deployment_id,
                    seq: report.seq,
                })
                .await
            }
            Err(error) => {
                tracing::error!(%error, "cannot store a status report");
                // No ack: the agent resends it after reconnecting.
                self.error(
                    "internal",
                    "the vendor server cannot store this status now; resend it later",
                )
                .await
            }
        }
    }

    /// Offers the customer's newest deployment if it is still open,
    /// reissuing it first when it has expired (or nearly).
    async fn offer_newest(&mut self) -> SocketResult {
        let vendor = self.state.vendor();
        let newest = match deployments::newest(&vendor.db, self.customer.id).await {
            Ok(Some(d)) if d.outcome.is_none() => d,
            Ok(_) => return Ok(()),
            Err(error) => {
                tracing::error!(%error, "cannot read the newest deployment");
                return Ok(());
            }
        };
        let deployment = if newest.expires_at <= now_secs() + REISSUE_MARGIN_SECS {
            let ttl = self.state.options().deployment_ttl_secs;
            match vendor.reissue(self.state.key(), &newest, ttl).await {
                Ok(Some(fresh)) => {
                    tracing::info!(customer = %self.customer.name, expired = %newest.id, fresh = %fresh.id, "reissued an expired deployment");
                    fresh
                }
                // A push or cancel came first: offer whatever is newest now.
                Ok(None) => match deployments::newest(&vendor.db, self.customer.id).await {
                    Ok(Some(d)) if d.outcome.is_none() && d.expires_at > now_secs() => d,
                    _ => return Ok(()),
                },
                Err(error) => {
                    tracing::error!(%error, deployment = %newest.id, "cannot reissue an expired deployment");
                    return Ok(());
                }
            }
        } else {
            newest
        };
        self.forward(VendorMessage::Offer {
            deployment_id: deployment.id.clone(),
            deployment: deployment.signed(),
        })
        .await
    }

    /// Sends a delivery, skipping an offer already made here.
    async fn forward(&mut self, message: VendorMessage) -> SocketResult {
        if let VendorMessage::Offer { deployment_id, .. } = &message {
            if self.last_offered.as_deref() == Some(deployment_id.as_str()) {
                return Ok(());
            }
            self.last_offered = Some(deployment_id.clone());
        }
        self.send(&message).await
    }

    async fn send(&mut self, message: &VendorMessage) -> SocketResult {
        self.socket
            .send(Message::Text(message.to_json().into()))
            .await
    }

    async fn error(&mut self, code: &str, message: &str) -> SocketResult {
        self.send(&VendorMessage::Error {
            code: code.to_owned(),
            message: message.to_owned(),
        })
        .await
    }

    /// Sends `error`, then closes.
    async fn refuse(&mut self, code: &str, message: &str) -> SocketResult {
        self.error(code, message).await?;
        self.close(close_code::POLICY, code).await
    }

    async fn close(&mut self, code: u16, reason: &str) -> SocketResult {
        let _ = self
            .socket
            .send(Message::Close(Some(CloseFrame {
                code,
                reason: reason.to_owned().into(),
            })))
            .await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::is_handshake_key;

    #[test]
    fn handshake_keys_are_sixteen_bytes_of_base64() {
        // RFC 6455's own example, and the other three legal last letters.
        for key in [
            "dGhlIHNhbXBsZSBub25jZQ==",
            "AAAAAAAAAAAAAAAAAAAAAA==",
            "/+/+/+/+/+/+/+/+/+/+/g==",
            "zzzzzzzzzzzzzzzzzzzzzw==",
        ] {
            assert!(is_handshake_key(key.as_bytes()), "{key}");
        }
        for key in [
            "",
            "dGhlIHNhbXBsZSBub25jZQ=",
            "dGhlIHNhbXBsZSBub25jZR==",
            "dGhlIHNhbXBsZSBub25jZQ=x",
            "dGhlIHNhbXBsZSBub2-jZQ==",
            "dGhlIHNhbXBsZSBub25jZQ==\t",
            "dGhlIHNhbXBsZSBub25jZQ",
        ] {
            assert!(!is_handshake_key(key.as_bytes()), "{key:?}");
        }
    }
}
