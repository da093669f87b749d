//! Delivering deployments to connected agents.
//!
//! CLI commands run in their own processes and only write the database, so
//! one poller per server reads `deployment_events` every
//! [`ServerOptions::poll_interval`](super::ServerOptions) ("every id above
//! the last one seen": one indexed query, whatever the number of
//! connections) and hands each `offer` or `cancel` to the
//! [`ConnectionRegistry`], which forwards it to every connection of that
//! customer.
//!
//! The registry is a map from customer id to that customer's connections,
//! each only an id and the sending half of a small channel; the
//! connection's own task owns the socket. That keeps a connection to a few
//! hundred bytes here, so one server holds ten thousand agents.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use plinth_package::protocol::VendorMessage;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::AppState;
use crate::db::deployments::{self, EVENT_CANCEL, EVENT_OFFER};
use crate::error::VendorError;

/// Messages queued per connection before it counts as stuck. An agent
/// that does not read is dropped; it reconnects and gets the newest
/// deployment with `welcome`.
const QUEUE: usize = 8;

/// Events read per poll.
const BATCH: i64 = 1000;

/// Who is connected, by customer id.
#[derive(Debug, Default)]
pub struct ConnectionRegistry {
    by_customer: Mutex<HashMap<i64, Vec<Connection>>>,
    next_id: AtomicU64,
}

#[derive(Debug)]
struct Connection {
    id: u64,
    sender: mpsc::Sender<VendorMessage>,
}

/// A connection's place in the registry; dropping it removes it.
#[derive(Debug)]
pub struct Registration {
    registry: Arc<ConnectionRegistry>,
    customer_id: i64,
    id: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut map = self.registry.lock();
        if let Some(list) = map.get_mut(&self.customer_id) {
            list.retain(|c| c.id != self.id);
            if list.is_empty() {
                map.remove(&self.customer_id);
            }
        }
    }
}

impl ConnectionRegistry {
    fn lock(&self) -> MutexGuard<'_, HashMap<i64, Vec<Connection>>> {
        // A panic while holding the lock leaves a consistent map (every
        // mutation is a single push or retain), so poisoning is ignored.
        self.by_customer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Adds a connection of `customer_id`; messages for it arrive on the
    /// returned receiver, which yields `None` once the server drops it.
    pub fn register(
        self: &Arc<Self>,
        customer_id: i64,
    ) -> (Registration, mpsc::Receiver<VendorMessage>) {
        let (sender, receiver) = mpsc::channel(QUEUE);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.lock()
            .entry(customer_id)
            .or_default()
            .push(Connection { id, sender });
        let registration = Registration {
            registry: Arc::clone(self),
            customer_id,
            id,
        };
        (registration, receiver)
    }

    /// Queues `message` for every connection of the customer; returns how
    /// many took it. A connection whose queue is full or closed is dropped.
    pub fn send(&self, customer_id: i64, message: &VendorMessage) -> usize {
        let mut map = self.lock();
        let Some(list) = map.get_mut(&customer_id) else {
            return 0;
        };
        list.retain(|c| match c.sender.try_send(message.clone()) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::warn!(
                    customer_id,
                    connection = c.id,
                    "agent is not reading; dropping its connection"
                );
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        });
        let delivered = list.len();
        if list.is_empty() {
            map.remove(&customer_id);
        }
        delivered
    }

    /// Connections of one customer.
    pub fn connections_of(&self, customer_id: i64) -> usize {
        self.lock().get(&customer_id).map_or(0, Vec::len)
    }

    /// All connections.
    pub fn len(&self) -> usize {
        self.lock().values().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops every sender, which makes every connection close.
    pub fn close_all(&self) {
        self.lock().clear();
    }
}

/// Starts the poller from the newest event now in the database (older
/// ones are offered to agents in answer to their `hello`).
pub async fn spawn_poller(
    state: AppState,
    mut shutdown: watch::Receiver<bool>,
) -> Result<JoinHandle<()>, VendorError> {
    let mut cursor = deployments::last_event_id(&state.vendor().db).await?;
    Ok(tokio::spawn(async move {
        let mut ticker = tokio::time::interval(state.options().poll_interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = shutdown.wait_for(|stop| *stop) => return,
            }
            loop {
                match deployments::events_after(&state.vendor().db, cursor, BATCH).await {
                    Ok(events) => {
                        let full = events.len() as i64 == BATCH;
                        for event in events {
                            cursor = event.id;
                            deliver(&state, &event);
                        }
                        if !full {
                            break;
                        }
                    }
                    Err(error) => {
                        tracing::warn!(%error, "cannot read new deployment events; retrying");
                        break;
                    }
                }
            }
        }
    }))
}

fn deliver(state: &AppState, event: &deployments::DeploymentEvent) {
    let deployment = &event.deployment;
    let message = match event.kind.as_str() {
        // A deployment superseded or cancelled since is not worth offering.
        EVENT_OFFER if deployment.outcome.is_none() => VendorMessage::Offer {
            deployment_id: deployment.id.clone(),
            deployment: deployment.signed(),
        },
        EVENT_OFFER => return,
        EVENT_CANCEL => VendorMessage::Cancel {
            deployment_id: deployment.id.clone(),
            reason: event
                .reason
                .clone()
                .unwrap_or_else(|| "cancelled by the vendor".to_string()),
        },
        other => {
            tracing::warn!(kind = other, "unknown deployment event kind; ignored");
            return;
        }
    };
    let delivered = state.registry().send(event.customer_id, &message);
    tracing::info!(
        deployment = %deployment.id,
        kind = %event.kind,
        connections = delivered,
        "delivered deployment event"
    );
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn cancel(id: &str) -> VendorMessage {
        VendorMessage::Cancel {
            deployment_id: id.into(),
            reason: "r".into(),
        }
    }

    #[test]
    fn messages_reach_every_connection_of_that_customer_only() {
        let registry = Arc::new(ConnectionRegistry::default());
        let (a1, mut rx_a1) = registry.register(1);
        let (_a2, mut rx_a2) = registry.register(1);
        let (_b, mut rx_b) = registry.register(2);
        assert_eq!(registry.len(), 3);
        assert_eq!(registry.send(1, &cancel("d")), 2);
        assert_eq!(rx_a1.try_recv().unwrap(), cancel("d"));
        assert_eq!(rx_a2.try_recv().unwrap(), cancel("d"));
        assert!(rx_b.try_recv().is_err());
        drop(a1);
        assert_eq!(registry.connections_of(1), 1);
        assert_eq!(registry.send(3, &cancel("x")), 0);
    }

    #[test]
    fn a_connection_that_does_not_read_is_dropped() {
        let registry = Arc::new(ConnectionRegistry::default());
        let (_reg, mut rx) = registry.register(7);
        for _ in 0..QUEUE {
            assert_eq!(registry.send(7, &cancel("d")), 1);
        }
        assert_eq!(registry.send(7, &cancel("d")), 0);
        assert_eq!(registry.connections_of(7), 0);
        // The queued messages drain, then the channel reports closed.
        for _ in 0..QUEUE {
            assert!(rx.try_recv().is_ok());
        }
        assert!(matches!(
            rx.try_recv(),
            Err(mpsc::error::TryRecvError::Disconnected)
        ));
    }

    #[test]
    fn close_all_ends_every_receiver() {
        let registry = Arc::new(ConnectionRegistry::default());
        let (_reg, mut rx) = registry.register(1);
        registry.close_all();
        assert!(registry.is_empty());
        assert!(matches!(
            rx.try_recv(),
            Err(mpsc::error::TryRecvError::Disconnected)
        ));
    }
}
