//! The event bus: plugins (and the host itself) publish on dotted topics,
//! and every plugin whose manifest subscribes to a topic receives it through
//! its `on-event` hook, at least once.
//!
//! Publishing writes to the outbox table (`db::outbox`): inside the
//! publisher's open transaction when it has one, so the event commits or
//! rolls back with its data, otherwise in a statement of its own that has
//! committed before `publish` returns. The relay in `background::relay`
//! fans events out to subscribers and delivers them; this module only
//! checks what is published, writes it and wakes the local relay.

use std::sync::Arc;

use sqlx::AnyConnection;
use tokio::sync::Notify;

use crate::db::{Db, DbError, outbox};

/// Largest payload accepted.
pub const MAX_PAYLOAD: usize = 64 * 1024;
/// The source of events the host publishes itself, and the first segment
/// of their topics, which plugins may not publish on.
pub const HOST_SOURCE: &str = "plinth";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub source: String,
    pub topic: String,
    pub payload: String,
}

#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("topic {0:?} is not a dotted name such as goods.stock-low")]
    BadTopic(String),
    #[error(
        "topics under `plinth.` are the host's own; publish under your plugin's name instead of {0:?}"
    )]
    Reserved(String),
    #[error("event payloads are at most {MAX_PAYLOAD} bytes (got {0})")]
    TooLarge(usize),
    #[error("the event could not be stored: {0}")]
    Store(#[from] DbError),
}

/// The publishing side; cheap to clone.
#[derive(Debug, Clone)]
pub struct EventBus {
    db: Db,
    wake: Arc<Notify>,
}

impl EventBus {
    pub fn new(db: Db) -> Self {
        Self {
            db,
            wake: Arc::new(Notify::new()),
        }
    }

    /// Checks a plugin's event and commits it to the outbox on its own.
    pub async fn publish(
        &self,
        source: &str,
        topic: String,
        payload: String,
    ) -> Result<(), EventError> {
        check(source, &topic, &payload)?;
        let mut conn = self.db.pool().acquire().await.map_err(DbError::from)?;
        outbox::insert_event(&mut conn, self.db.dialect(), source, &topic, &payload).await?;
        self.wake();
        Ok(())
    }

    /// Checks a plugin's event and writes it on `conn`, inside the plugin's
    /// open transaction; the caller calls [`EventBus::wake`] once it commits.
    pub async fn publish_in(
        &self,
        conn: &mut AnyConnection,
        source: &str,
        topic: String,
        payload: String,
    ) -> Result<(), EventError> {
        check(source, &topic, &payload)?;
        outbox::insert_event(conn, self.db.dialect(), source, &topic, &payload).await?;
        Ok(())
    }

    /// Tells this host's relay that an event was committed.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// What the relay waits on.
    pub fn wake_signal(&self) -> Arc<Notify> {
        self.wake.clone()
    }
}

/// Publishes one of the host's own lifecycle events (`plinth.plugin.installed`,
/// `.upgraded`, `.rolled-back`, `.removed`, `plinth.task.failed`) on the same
/// bus. A failure is logged, not returned: the operation it reports has
/// already happened and must not be undone for want of its event.
pub async fn publish_host_event(events: &EventBus, topic: &str, payload: &serde_json::Value) {
    let text = payload.to_string();
    let stored = async {
        if !is_topic(topic) || !topic.starts_with("plinth.") {
            return Err(EventError::BadTopic(topic.to_owned()));
        }
        let mut conn = events.db.pool().acquire().await.map_err(DbError::from)?;
        outbox::insert_event(&mut conn, events.db.dialect(), HOST_SOURCE, topic, &text).await?;
        Ok::<(), EventError>(())
    }
    .await;
    match stored {
        Ok(()) => events.wake(),
        Err(error) => tracing::error!(topic, %error, "cannot publish a host event"),
    }
}

fn check(source: &str, topic: &str, payload: &str) -> Result<(), EventError> {
    if !is_topic(topic) {
        return Err(EventError::BadTopic(topic.to_owned()));
    }
    if source != HOST_SOURCE && topic.split('.').next() == Some(HOST_SOURCE) {
        return Err(EventError::Reserved(topic.to_owned()));
    }
    if payload.len() > MAX_PAYLOAD {
        return Err(EventError::TooLarge(payload.len()));
    }
    Ok(())
}

/// `segment(.segment)+`, each segment `[a-z][a-z0-9-]*`.
pub fn is_topic(topic: &str) -> bool {
    let mut segments = 0;
    for segment in topic.split('.') {
        let mut chars = segment.chars();
        let Some(first) = chars.next() else {
            return false;
        };
        if !first.is_ascii_lowercase()
            || !chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return false;
        }
        segments += 1;
    }
    segments >= 2 && topic.len() <= 128
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_are_dotted_names() {
        assert!(is_topic("goods.stock-low"));
        assert!(is_topic("a.b.c1"));
        assert!(is_topic("plinth.plugin.rolled-back"));
        assert!(!is_topic("goods"));
        assert!(!is_topic("goods..low"));
        assert!(!is_topic("Goods.low"));
        assert!(!is_topic("goods.low!"));
    }

    #[test]
    fn plugins_cannot_publish_bad_big_or_host_events() {
        assert!(matches!(
            check("p", "nope", ""),
            Err(EventError::BadTopic(_))
        ));
        assert!(matches!(
            check("p", "plinth.plugin.removed", ""),
            Err(EventError::Reserved(_))
        ));
        assert!(matches!(
            check("p", "a.b", &"x".repeat(MAX_PAYLOAD + 1)),
            Err(EventError::TooLarge(n)) if n == MAX_PAYLOAD + 1
        ));
        assert!(check("p", "p.done", "{}").is_ok());
        assert!(check(HOST_SOURCE, "plinth.plugin.removed", "{}").is_ok());
    }
}
