//! The event bus: plugins publish on dotted topics and every plugin whose
//! manifest subscribes to a topic receives it through its `on-event` hook
//! (delivered by `background::dispatch`; this module is only the bus, so the
//! runtime can publish without depending on who delivers).
//!
//! Delivery is asynchronous and at most once: a bounded queue absorbs
//! bursts, and a publish onto a full queue fails at once with an error the
//! plugin sees, rather than blocking its request.

use tokio::sync::mpsc;

/// Events waiting for delivery before publishers are refused.
pub const QUEUE_CAPACITY: usize = 1024;
/// Largest payload accepted.
pub const MAX_PAYLOAD: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub source: String,
    pub topic: String,
    pub payload: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EventError {
    #[error("topic {0:?} is not a dotted name such as goods.stock-low")]
    BadTopic(String),
    #[error("event payloads are at most {MAX_PAYLOAD} bytes (got {0})")]
    TooLarge(usize),
    #[error("the event queue is full; the event was dropped")]
    QueueFull,
    #[error("the event bus is stopped")]
    Stopped,
}

/// The publishing side; cheap to clone.
#[derive(Debug, Clone)]
pub struct EventBus {
    tx: mpsc::Sender<Event>,
}

impl EventBus {
    pub fn new() -> (Self, EventReceiver) {
        let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
        (Self { tx }, EventReceiver { rx })
    }

    pub fn publish(&self, source: &str, topic: String, payload: String) -> Result<(), EventError> {
        if !is_topic(&topic) {
            return Err(EventError::BadTopic(topic));
        }
        if payload.len() > MAX_PAYLOAD {
            return Err(EventError::TooLarge(payload.len()));
        }
        let event = Event {
            source: source.to_owned(),
            topic,
            payload,
        };
        self.tx.try_send(event).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => EventError::QueueFull,
            mpsc::error::TrySendError::Closed(_) => EventError::Stopped,
        })
    }
}

/// The receiving end of the bus, handed to the dispatcher.
#[derive(Debug)]
pub struct EventReceiver {
    rx: mpsc::Receiver<Event>,
}

impl EventReceiver {
    /// The next event; `None` once every publisher is gone.
    pub async fn recv(&mut self) -> Option<Event> {
        self.rx.recv().await
    }
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
        assert!(!is_topic("goods"));
        assert!(!is_topic("goods..low"));
        assert!(!is_topic("Goods.low"));
        assert!(!is_topic("goods.low!"));
    }

    #[tokio::test]
    async fn publish_refuses_bad_input_and_full_queues() {
        let (bus, mut rx) = EventBus::new();
        assert_eq!(
            bus.publish("p", "nope".into(), String::new()),
            Err(EventError::BadTopic("nope".into()))
        );
        assert_eq!(
            bus.publish("p", "a.b".into(), "x".repeat(MAX_PAYLOAD + 1)),
            Err(EventError::TooLarge(MAX_PAYLOAD + 1))
        );
        for _ in 0..QUEUE_CAPACITY {
            assert_eq!(bus.publish("p", "a.b".into(), String::new()), Ok(()));
        }
        assert_eq!(
            bus.publish("p", "a.b".into(), String::new()),
            Err(EventError::QueueFull)
        );
        let first = rx.recv().await;
        assert_eq!(first.map(|e| e.source), Some("p".to_owned()));
    }
}
