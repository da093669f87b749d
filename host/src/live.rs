//! The live feed: what a running host tells the admin web as it happens
//! (journal steps as they are written, the upgrade agent's state as it
//! changes), streamed to browsers by `GET /api/admin/operations/stream`.
//!
//! Publishing is cheap when nobody watches: with no subscriber an event is
//! neither serialised nor sent. A subscriber that falls more than
//! [`CAPACITY`] events behind is told it lagged and reloads what it shows,
//! instead of slowing the publisher down.

use std::sync::Arc;

use serde::Serialize;
use tokio::sync::{broadcast, watch};

/// Events kept for a slow subscriber before it is told it lagged.
pub const CAPACITY: usize = 256;

/// One event: its SSE event name and its JSON body, serialised once for
/// every subscriber.
#[derive(Debug, Clone)]
pub struct LiveEvent {
    pub kind: &'static str,
    pub data: Arc<str>,
}

/// The sending side, shared by the journal and the agent. Cheap to clone.
#[derive(Debug, Clone)]
pub struct LiveFeed {
    tx: broadcast::Sender<LiveEvent>,
    /// Set at shutdown, so open streams end instead of holding the
    /// graceful-shutdown wait for its whole grace period.
    closed: Arc<watch::Sender<bool>>,
}

impl Default for LiveFeed {
    fn default() -> Self {
        Self {
            tx: broadcast::channel(CAPACITY).0,
            closed: Arc::new(watch::channel(false).0),
        }
    }
}

impl LiveFeed {
    /// Sends `value` as a `kind` event to every current subscriber.
    pub fn publish<T: Serialize>(&self, kind: &'static str, value: &T) {
        if self.tx.receiver_count() == 0 {
            return;
        }
        match serde_json::to_string(value) {
            Ok(json) => {
                // An error means the last subscriber left meanwhile.
                let _ = self.tx.send(LiveEvent {
                    kind,
                    data: json.into(),
                });
            }
            Err(error) => tracing::warn!(%error, kind, "live feed: event not serialisable"),
        }
    }

    /// Whether anyone is watching (so a publisher can skip building an event).
    pub fn is_watched(&self) -> bool {
        self.tx.receiver_count() > 0
    }

    /// A new subscriber: the events from now on, and a receiver that turns
    /// `true` when the host shuts down.
    pub fn subscribe(&self) -> (broadcast::Receiver<LiveEvent>, watch::Receiver<bool>) {
        (self.tx.subscribe(), self.closed.subscribe())
    }

    /// Ends every subscription (the host is shutting down).
    pub fn close(&self) {
        self.closed.send_replace(true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn subscribers_get_events_in_order_and_lag_is_reported() {
        let feed = LiveFeed::default();
        feed.publish("journal", &1); // nobody watches: dropped
        let (mut rx, closed) = feed.subscribe();
        feed.publish("journal", &serde_json::json!({"step": "started"}));
        feed.publish("agent", &serde_json::json!({"connected": true}));
        let first = rx.recv().await.expect("first");
        assert_eq!(
            (first.kind, &*first.data),
            ("journal", r#"{"step":"started"}"#)
        );
        assert_eq!(rx.recv().await.expect("second").kind, "agent");
        for i in 0..CAPACITY + 1 {
            feed.publish("journal", &i);
        }
        assert!(matches!(
            rx.recv().await,
            Err(broadcast::error::RecvError::Lagged(_))
        ));
        assert!(!*closed.borrow());
        feed.close();
        assert!(*closed.borrow());
    }
}
