//! The websocket to the vendor: connect, authenticate with the customer
//! token, `hello`, then serve the socket: offers and cancellations go to
//! the worker, acks clear the outbox, pings keep the connection honest.
//!
//! A lost connection is retried with exponential back-off and "equal"
//! jitter (half the delay fixed, half random, so a vendor restart does not
//! bring every customer back in the same millisecond). The back-off starts
//! over only after a session that was useful (it stayed up for
//! `useful_session_ms` or delivered an offer), so a vendor that drops every
//! session after `welcome` is not hammered; attempts are also capped per
//! minute. 401, 403 and 404 on the upgrade are final: the token is wrong
//! or revoked, and retrying would only hammer the server; so are other
//! 4xx answers, running out of attempts and a token that belongs to
//! another customer. 408, 429 and 503 mean "later": they are retried,
//! waiting at least their `Retry-After`. A stopped agent waits for
//! `POST /api/admin/agent/reconnect` or a restart.
//!
//! Every send and every wait for the vendor has a time-out, and messages
//! and frames are capped in size by the socket itself, so neither a vendor
//! that stops reading nor one that sends 60 MB can wedge or bloat the host.

use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::{FutureExt as _, SinkExt as _, StreamExt as _};
use plinth_package::deployment::{DEFAULT_MAX_CLOCK_SKEW_SECS, MAX_MANIFEST_BYTES};
use plinth_package::protocol::{
    AgentMessage, PROTOCOL_VERSION, PackageState, StatusReport, VendorMessage,
};
use tokio::time::{Instant, timeout};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::protocol::frame::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message, client::IntoClientRequest as _};

use super::AgentHost as Host;
use super::bounded::{bounded, bounded_bytes};
use super::queue::OfferSender;
use super::{AgentSettings, AgentState, ConnectionState, IncomingOffer, OfferView};
use crate::db::{agent_ledger, now_ms};

/// The largest message (and frame) the socket takes: the largest signed
/// manifest plus room for its signature and the envelope. Anything larger
/// is refused by the socket before it is buffered whole.
pub const MAX_MESSAGE_BYTES: usize = MAX_MANIFEST_BYTES + 64 * 1024;

/// How one connection attempt ended.
#[derive(Debug)]
enum SessionEnd {
    /// It never got as far as `welcome`.
    Failed(String),
    /// The server asked to come back later (408, 429, 503), perhaps saying
    /// when.
    Later {
        error: String,
        retry_after: Option<Duration>,
    },
    /// It was up and then broke; `offered` says whether it delivered an
    /// offer.
    Lost { error: String, offered: bool },
    /// The server (or the account) said no; retrying will not help.
    Refused(String),
}

pub(super) async fn run(host: Host, settings: Arc<AgentSettings>, offers: OfferSender) {
    let state = host.agent.clone();
    let limits = &settings.limits;
    let mut failures: u32 = 0;
    let mut connection: u64 = 0;
    let mut attempts = AttemptLimiter::new(limits.reconnects_per_minute);
    loop {
        if let Some(wait) = attempts.wait(Instant::now()) {
            let reason = format!(
                "at most {} connection attempts a minute (vendor.limits.reconnects_per_minute)",
                limits.reconnects_per_minute
            );
            back_off(&state, failures, wait, reason).await;
        }
        attempts.record(Instant::now());
        state.update(|s| s.connection = ConnectionState::Connecting);
        connection += 1;
        let started = Instant::now();
        // A panic in a session must not end the agent: it counts as a
        // failed attempt and the loop goes on.
        let end = AssertUnwindSafe(session(&host, &settings, &offers, connection))
            .catch_unwind()
            .await
            .unwrap_or_else(|panic| {
                SessionEnd::Failed(format!(
                    "the connection failed inside the agent ({}); it starts again",
                    super::panic_text(&*panic)
                ))
            });
        state.update(|s| {
            s.connected = false;
            s.connected_since_ms = None;
        });
        let mut floor = Duration::ZERO;
        let error = match end {
            SessionEnd::Lost { error, offered } => {
                let useful = offered || started.elapsed() >= limits.useful_session();
                if useful {
                    // It was working: start the back-off from the beginning.
                    failures = 1;
                    error
                } else {
                    failures += 1;
                    format!(
                        "{error} (the session delivered no offer and lasted under {} s, so the back-off keeps growing)",
                        limits.useful_session().as_secs()
                    )
                }
            }
            SessionEnd::Failed(error) => {
                failures += 1;
                error
            }
            SessionEnd::Later { error, retry_after } => {
                failures += 1;
                floor = retry_after
                    .unwrap_or_default()
                    .min(limits.retry_after_max());
                error
            }
            SessionEnd::Refused(reason) => {
                stop(&state, reason).await;
                failures = 0;
                continue;
            }
        };
        let error = bounded(&error);
        tracing::warn!(%error, attempt = failures, "upgrade agent: connection to the vendor lost or failed");
        state.set_error(&error);
        state.update(|s| s.last_disconnect = Some(error.clone()));
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
        let delay = backoff(&settings, failures).max(floor);
        back_off(&state, failures, delay, error).await;
    }
}

/// Shows the wait and why, then waits (or until a reconnect request).
async fn back_off(state: &AgentState, attempt: u32, delay: Duration, reason: String) {
    state.update(|s| {
        s.connection = ConnectionState::BackingOff {
            attempt,
            retry_in_ms: u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
            reason,
        }
    });
    tokio::select! {
        _ = tokio::time::sleep(delay) => {}
        _ = state.inner.restart.notified() => {}
    }
}

async fn stop(state: &AgentState, reason: String) {
    let reason = bounded(&reason);
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

/// At most `per_minute` connection attempts in any 60 s.
struct AttemptLimiter {
    per_minute: usize,
    recent: VecDeque<Instant>,
}

impl AttemptLimiter {
    const WINDOW: Duration = Duration::from_secs(60);

    fn new(per_minute: u32) -> Self {
        Self {
            per_minute: usize::try_from(per_minute).unwrap_or(usize::MAX).max(1),
            recent: VecDeque::new(),
        }
    }

    /// How long to wait before the next attempt may start, if at all.
    fn wait(&mut self, now: Instant) -> Option<Duration> {
        while self
            .recent
            .front()
            .is_some_and(|t| now.duration_since(*t) >= Self::WINDOW)
        {
            self.recent.pop_front();
        }
        if self.recent.len() < self.per_minute {
            return None;
        }
        let oldest = *self.recent.front()?;
        Some(Self::WINDOW.saturating_sub(now.duration_since(oldest)))
    }

    fn record(&mut self, now: Instant) {
        self.recent.push_back(now);
    }
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Sends one message, or says why not within the send time-out.
async fn send(ws: &mut Socket, message: Message, limit: Duration) -> Result<(), String> {
    match timeout(limit, ws.send(message)).await {
        Err(_) => Err(format!(
            "the vendor took nothing for {} ms: it stopped reading",
            limit.as_millis()
        )),
        Ok(Err(e)) => Err(e.to_string()),
        Ok(Ok(())) => Ok(()),
    }
}

/// Closes the socket with a status the vendor sees, not waiting long.
async fn close(ws: &mut Socket, code: CloseCode, reason: &str, limit: Duration) {
    let frame = CloseFrame {
        code,
        reason: crate::agent::bounded::bounded_to(reason, 120).into(),
    };
    let _ = timeout(limit, ws.close(Some(frame))).await;
}

async fn session(
    host: &Host,
    settings: &AgentSettings,
    offers: &OfferSender,
    connection: u64,
) -> SessionEnd {
    let state = &host.agent;
    let limits = &settings.limits;
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
    if let Err(e) = send(
        &mut ws,
        Message::text(hello.to_json()),
        limits.send_timeout(),
    )
    .await
    {
        return SessionEnd::Failed(format!("sending hello: {e}"));
    }
    match timeout(limits.welcome_timeout(), next_message(&mut ws)).await {
        Err(_) => {
            return SessionEnd::Failed(format!(
                "the vendor did not answer hello within {} ms",
                limits.welcome_timeout().as_millis()
            ));
        }
        Ok(Err(e)) => return SessionEnd::Failed(e),
        Ok(Ok(VendorMessage::Welcome {
            protocol,
            customer,
            server_time,
        })) => {
            if protocol != PROTOCOL_VERSION {
                let why = format!(
                    "the vendor speaks protocol {protocol}; this agent speaks protocol {PROTOCOL_VERSION}"
                );
                close(&mut ws, CloseCode::Protocol, &why, limits.send_timeout()).await;
                return SessionEnd::Failed(format!(
                    "{why}: the socket was closed with status 1002; upgrade the host or ask the vendor"
                ));
            }
            if customer != settings.customer {
                return SessionEnd::Refused(format!(
                    "the vendor says vendor.customer_token belongs to customer {:?}, but vendor.customer in config.json is {:?}: fix whichever is wrong",
                    bounded(&customer),
                    settings.customer
                ));
            }
            note_clock_skew(state, server_time);
        }
        Ok(Ok(VendorMessage::Error { code, message })) => {
            return SessionEnd::Refused(format!(
                "the vendor refused hello ({}): {}",
                bounded(&code),
                bounded(&message)
            ));
        }
        Ok(Ok(other)) => {
            return SessionEnd::Failed(format!(
                "expected welcome from the vendor, got {}",
                bounded(&format!("{other:?}"))
            ));
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

    let mut offered = false;
    let lost = |error: String, offered: bool| SessionEnd::Lost { error, offered };
    let mut last_heard = Instant::now();
    let mut ping = tokio::time::interval(limits.ping_every());
    ping.tick().await;
    loop {
        for report in state.outbox().take_unsent(connection) {
            let message = AgentMessage::Status(report);
            if let Err(e) = send(
                &mut ws,
                Message::text(message.to_json()),
                limits.send_timeout(),
            )
            .await
            {
                return lost(format!("sending a status report: {e}"), offered);
            }
        }
        tokio::select! {
            message = ws.next() => {
                last_heard = Instant::now();
                match message {
                    None => return lost("the vendor closed the connection".into(), offered),
                    Some(Err(tungstenite::Error::Capacity(e))) => {
                        let why = format!("the vendor sent a message over the agent's limit of {MAX_MESSAGE_BYTES} bytes ({e})");
                        close(&mut ws, CloseCode::Size, "message too big", limits.send_timeout()).await;
                        return lost(format!("{why}; the socket was closed with status 1009"), offered);
                    }
                    Some(Err(e)) => return lost(format!("connection error: {e}"), offered),
                    Some(Ok(Message::Close(frame))) => {
                        let why = frame.map(|f| bounded(&f.reason)).unwrap_or_default();
                        return lost(format!("the vendor closed the connection {why}").trim_end().to_owned(), offered);
                    }
                    Some(Ok(Message::Text(text))) => {
                        offered |= handle(host, offers, text.as_str()).await;
                    }
                    Some(Ok(_)) => {}
                }
            }
            _ = state.outbox().pushed() => {}
            _ = ping.tick() => {
                if last_heard.elapsed() > limits.silence_limit() {
                    return lost(format!(
                        "no word from the vendor for {} ms", limits.silence_limit().as_millis()
                    ), offered);
                }
                if let Err(e) = send(&mut ws, Message::Ping(Vec::new().into()), limits.send_timeout()).await {
                    return lost(format!("sending a ping: {e}"), offered);
                }
            }
        }
    }
}

/// Shows the vendor's clock offset, and warns when it is beyond what
/// offers tolerate (their `issued_at` would look like the future).
fn note_clock_skew(state: &AgentState, server_time: i64) {
    let skew = server_time.saturating_sub(now_ms() / 1000);
    let warning = (skew.unsigned_abs() > DEFAULT_MAX_CLOCK_SKEW_SECS.unsigned_abs()).then(|| {
        format!(
            "the vendor's clock is {skew} s off this host's (more than the {DEFAULT_MAX_CLOCK_SKEW_SECS} s offers tolerate): offers may be refused as issued in the future or expired; check both clocks (NTP)"
        )
    });
    if let Some(warning) = &warning {
        tracing::warn!(%warning, "upgrade agent: clock skew");
    }
    state.update(|s| {
        s.clock_skew_secs = Some(skew);
        s.clock_warning = warning;
    });
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
    let config = WebSocketConfig::default()
        .max_message_size(Some(MAX_MESSAGE_BYTES))
        .max_frame_size(Some(MAX_MESSAGE_BYTES));
    let limit = settings.limits.handshake_timeout();
    let connecting = tokio_tungstenite::connect_async_with_config(request, Some(config), false);
    match timeout(limit, connecting).await {
        Err(_) => Err(SessionEnd::Failed(format!(
            "connecting to {} timed out after {} ms",
            settings.endpoint,
            limit.as_millis()
        ))),
        Ok(Err(tungstenite::Error::Http(response))) => Err(refusal(&response)),
        Ok(Err(e)) => Err(SessionEnd::Failed(format!(
            "connecting to {}: {}",
            settings.endpoint,
            bounded(&e.to_string())
        ))),
        Ok(Ok((ws, _response))) => Ok(ws),
    }
}

/// What an HTTP answer to the upgrade request means.
fn refusal(response: &http::Response<Option<Vec<u8>>>) -> SessionEnd {
    let status = response.status();
    let body = response
        .body()
        .as_deref()
        .map(|b| bounded_bytes(b, 300))
        .unwrap_or_default();
    let message = format!("the vendor answered the connection with {status} {body}")
        .trim_end()
        .to_owned();
    match status.as_u16() {
        408 | 429 | 503 => SessionEnd::Later {
            retry_after: retry_after(response.headers()),
            error: format!("{message}; retrying later"),
        },
        400..=499 => SessionEnd::Refused(format!(
            "{message}; this is final: check vendor.customer_token and vendor.endpoint, then POST /api/admin/agent/reconnect"
        )),
        _ => SessionEnd::Failed(message),
    }
}

/// A `Retry-After` given in seconds (an HTTP date is ignored: the
/// back-off applies).
fn retry_after(headers: &http::HeaderMap) -> Option<Duration> {
    let seconds: u64 = headers
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(seconds))
}

/// The next vendor message, skipping control frames.
async fn next_message(ws: &mut Socket) -> Result<VendorMessage, String> {
    loop {
        match ws.next().await {
            None => return Err("the vendor closed the connection".into()),
            Some(Err(e)) => return Err(format!("connection error: {}", bounded(&e.to_string()))),
            Some(Ok(Message::Text(text))) => {
                return serde_json::from_str(text.as_str()).map_err(|e| {
                    format!(
                        "the vendor sent a message this agent cannot read: {}",
                        bounded(&e.to_string())
                    )
                });
            }
            Some(Ok(Message::Close(_))) => return Err("the vendor closed the connection".into()),
            Some(Ok(_)) => {}
        }
    }
}

/// Acts on one text message; says whether it was an offer the worker
/// took.
async fn handle(host: &Host, offers: &OfferSender, text: &str) -> bool {
    let state = &host.agent;
    let message: VendorMessage = match serde_json::from_str(text) {
        Ok(message) => message,
        Err(e) => {
            // An offer whose envelope is wrong is refused back to the
            // vendor when it at least names its deployment.
            if let Some(deployment_id) = offer_id(text) {
                let reason = format!(
                    "the offer is not in the protocol's format: {}",
                    bounded(&e.to_string())
                );
                return queue_offer(host, offers, deployment_id, Err(reason), text.len()).await;
            }
            let error = bounded(&e.to_string());
            tracing::warn!(%error, "upgrade agent: ignoring a message it cannot read");
            state.set_error(&format!(
                "the vendor sent a message this agent cannot read: {error}"
            ));
            return false;
        }
    };
    match message {
        VendorMessage::Offer {
            deployment_id,
            deployment,
        } => queue_offer(host, offers, deployment_id, Ok(deployment), text.len()).await,
        VendorMessage::Ack { deployment_id, seq } => {
            state.outbox().acknowledge(&deployment_id, seq);
            false
        }
        VendorMessage::Cancel {
            deployment_id,
            reason,
        } => {
            let reason = bounded(&reason);
            tracing::warn!(deployment_id = %bounded(&deployment_id), %reason, "upgrade agent: the vendor cancelled a deployment");
            state.set_cancelled(Some(deployment_id));
            false
        }
        VendorMessage::Error { code, message } => {
            let (code, message) = (bounded(&code), bounded(&message));
            tracing::warn!(%code, %message, "upgrade agent: the vendor reported an error");
            state.set_error(&format!("vendor error {code}: {message}"));
            false
        }
        VendorMessage::Welcome { .. } => false,
    }
}

/// The `deployment_id` of a message that says it is an offer but does not
/// parse as one.
fn offer_id(text: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(text).ok()?;
    if value.get("type")?.as_str()? != "offer" {
        return None;
    }
    Some(value.get("deployment_id")?.as_str()?.to_owned())
}

/// Shows the offer and hands it to the worker; an unusable id or a full
/// queue is answered here. Says whether the worker took it.
async fn queue_offer(
    host: &Host,
    offers: &OfferSender,
    deployment_id: String,
    deployment: Result<plinth_package::SignedDeployment, String>,
    size: usize,
) -> bool {
    let state = &host.agent;
    let shown_id = bounded(&deployment_id);
    tracing::info!(deployment_id = %shown_id, "upgrade agent: offer received");
    state.update(|s| {
        s.last_offer = Some(OfferView {
            deployment_id: shown_id.clone(),
            received_at_ms: now_ms(),
            issued_at: None,
            expires_at: None,
            outcome: agent_ledger::outcome::RECEIVED.to_owned(),
            reason: None,
            packages: Vec::new(),
        })
    });
    if let Some(problem) = super::deployment_id_problem(&deployment_id) {
        // The ledger cannot hold such an id, so this refusal is numbered
        // 1 outside it; no valid id can collide with it.
        let reason = format!("{problem}; ask the vendor to push it again with a printable id");
        tracing::warn!(deployment_id = %shown_id, %reason, "upgrade agent: offer refused");
        state.update_offer(&shown_id, |offer| {
            offer.outcome = agent_ledger::outcome::REFUSED.to_owned();
            offer.reason = Some(reason.clone());
        });
        state.outbox().push(StatusReport {
            seq: 1,
            deployment_id,
            package: None,
            version: None,
            state: PackageState::Failure { reason },
            at_ms: now_ms(),
        });
        return false;
    }
    let offer = IncomingOffer {
        deployment_id: deployment_id.clone(),
        deployment,
    };
    match offers.try_send(offer, size) {
        Ok(()) => true,
        Err(why) => {
            // Offers arrive faster than they install; the vendor offers
            // its newest unfinished deployment again on reconnect.
            let reason = format!("not queued: {why}; the vendor offers it again on reconnect");
            tracing::warn!(deployment_id = %shown_id, %reason, "upgrade agent: offer dropped");
            state.update_offer(&shown_id, |offer| {
                offer.outcome = "dropped".to_owned();
                offer.reason = Some(reason);
            });
            false
        }
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
            limits: super::super::AgentLimits::default(),
        }
    }

    #[test]
    fn attempts_are_capped_per_minute() {
        let mut limiter = AttemptLimiter::new(3);
        let start = Instant::now();
        for i in 0..3 {
            let at = start + Duration::from_secs(i);
            assert_eq!(limiter.wait(at), None);
            limiter.record(at);
        }
        let now = start + Duration::from_secs(5);
        assert_eq!(limiter.wait(now), Some(Duration::from_secs(55)));
        // A minute after the first attempt, one more may start.
        assert_eq!(limiter.wait(start + Duration::from_secs(60)), None);
    }

    fn answer(status: u16, retry_after: Option<&str>, body: &[u8]) -> SessionEnd {
        let mut response = http::Response::new(Some(body.to_vec()));
        *response.status_mut() = http::StatusCode::from_u16(status).expect("status");
        if let Some(value) = retry_after {
            response
                .headers_mut()
                .insert(http::header::RETRY_AFTER, value.parse().expect("header"));
        }
        refusal(&response)
    }

    #[test]
    fn upgrade_answers_are_final_or_later_by_status() {
        for status in [401, 403, 404] {
            assert!(
                matches!(answer(status, None, b""), SessionEnd::Refused(_)),
                "{status}"
            );
        }
        for status in [408, 429, 503] {
            assert!(
                matches!(answer(status, None, b""), SessionEnd::Later { .. }),
                "{status}"
            );
        }
        let SessionEnd::Later { retry_after, .. } = answer(429, Some("2"), b"") else {
            panic!("429 is later");
        };
        assert_eq!(retry_after, Some(Duration::from_secs(2)));
        let SessionEnd::Later { retry_after, .. } =
            answer(503, Some("Wed, 21 Oct 2015 07:28:00 GMT"), b"")
        else {
            panic!("503 is later");
        };
        assert_eq!(retry_after, None);
        assert!(matches!(answer(500, None, b""), SessionEnd::Failed(_)));
        // A body with a multi-byte character across the cut does not panic.
        let body = format!("{}é{}", "x".repeat(299), "y".repeat(5000));
        let SessionEnd::Refused(reason) = answer(401, None, body.as_bytes()) else {
            panic!("401 is final");
        };
        assert!(reason.len() < 600, "{reason}");
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
