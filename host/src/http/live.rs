//! `GET /api/admin/operations/stream`: server-sent events for the admin
//! web, so an operator watches an install or an agent push step by step
//! without reloading.
//!
//! The stream opens with an `agent` event holding the agent's current
//! state (which also tells the client it is subscribed), then forwards the
//! host's [`crate::live::LiveFeed`]: a `journal` event per journal row as
//! it is written, an `agent` event per change of the agent's state, and a
//! `resync` event when this subscriber fell behind and should reload what
//! it shows. It ends when the host shuts down.

use std::convert::Infallible;
use std::time::Duration;

use std::sync::Arc;

use axum::Extension;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use futures::StreamExt;
use tokio::sync::broadcast::error::RecvError;

use super::{ApiError, AppState};
use crate::caller::Caller;

/// The admin gate let the caller in with `plugins.view`; the agent's
/// state is theirs only with `agent.view` too.
pub async fn stream(
    State(state): State<AppState>,
    Extension(caller): Extension<Arc<Caller>>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let host = state.host()?;
    let agent = state.agent()?;
    let sees_agent = caller.has("agent.view");
    // Subscribe before taking the snapshot, so no change falls between.
    let (events, closed) = host.live.subscribe();
    let first = if sees_agent {
        Event::default().event("agent").json_data(agent.snapshot())
    } else {
        Event::default()
            .event("agent")
            .json_data(serde_json::json!({}))
    }
    .unwrap_or_else(|_| Event::default().event("resync").data("{}"));
    let rest = futures::stream::unfold(
        (events, closed),
        move |(mut events, mut closed)| async move {
            let event = loop {
                let event = tokio::select! {
                    received = events.recv() => received,
                    _ = closed.wait_for(|closed| *closed) => return None,
                };
                match event {
                    Ok(event) if event.kind == "agent" && !sees_agent => continue,
                    Ok(event) => break Event::default().event(event.kind).data(&*event.data),
                    Err(RecvError::Lagged(missed)) => {
                        break Event::default()
                            .event("resync")
                            .data(format!("{{\"missed\":{missed}}}"));
                    }
                    Err(RecvError::Closed) => return None,
                }
            };
            Some((Ok(event), (events, closed)))
        },
    );
    let stream = futures::stream::once(async move { Ok(first) }).chain(rest);
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
