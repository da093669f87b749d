//! The event relay: fans each event in the outbox out to the plugins
//! subscribed to its topic (a delivery row each) and delivers them.
//!
//! - Waking: a publish on this host wakes the relay at once; PostgreSQL
//!   also wakes every host's relay through LISTEN/NOTIFY. SQLite and
//!   MySQL/MariaDB are polled every `events.poll_ms`, and a slow sweep
//!   (`events.fallback_poll_ms`) runs everywhere in case a wake-up was lost.
//! - One worker per subscriber, so a slow or failing subscriber never
//!   delays another's deliveries. Within a subscriber each topic's events
//!   go in publishing order unless its manifest says `ordered = false`.
//! - Once between hosts: a delivery is claimed by a conditional update with
//!   a lease in database time; the subscriber's hook runs with its SQL in a
//!   transaction that also marks the delivery done, and that mark only
//!   succeeds while this host still holds the claim. So what the subscriber
//!   wrote commits exactly when the delivery does; a host killed mid-call
//!   leaves nothing, and another host (or this one restarted) takes the
//!   delivery over once the lease has run out.
//! - Failures back off exponentially; after `events.max_attempts` the
//!   delivery is dead, listed by the admin API for replay or discard.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::Host;
use crate::db::outbox::{self, NOTIFY_CHANNEL, PendingDelivery};
use crate::db::{DbError, Dialect};
use crate::runtime::LoadedComponent;

/// Events fanned out per query.
const FAN_OUT_BATCH: i64 = 256;
/// Pending deliveries a worker looks at per round.
const WORKER_BATCH: i64 = 64;

/// A subscriber's delivery loop. Dropping it stops the loop, so stopping
/// the relay (an aborted `run`) never leaves workers delivering with a
/// closed host behind them.
struct Worker {
    wake: Arc<Notify>,
    task: JoinHandle<()>,
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Runs until aborted.
pub async fn run(host: Host) {
    let host_id = format!("{:016x}", rand::random::<u64>());
    let wake = host.events.wake_signal();
    let config = host.config.events.clone();
    let mut listener = None;
    let poll = if host.db.dialect() == Dialect::Postgres {
        listener = Some(tokio::spawn(listen(
            host.config.database.url.clone(),
            wake.clone(),
        )));
        Duration::from_millis(config.fallback_poll_ms)
    } else {
        Duration::from_millis(config.poll_ms)
    };
    let _listener = AbortOnDrop(listener);
    let mut workers: HashMap<String, Worker> = HashMap::new();
    tracing::info!(host_id, "event relay started");
    loop {
        if let Err(error) = fan_out(&host).await {
            tracing::warn!(%error, "event relay: cannot fan events out; retrying");
        }
        let serving: HashSet<String> = host
            .registry
            .all()
            .into_iter()
            .filter(|p| !p.manifest.events.subscribe.is_empty())
            .map(|p| p.name().to_owned())
            .collect();
        workers.retain(|name, worker| serving.contains(name) && !worker.task.is_finished());
        for name in serving {
            let worker = workers.entry(name.clone()).or_insert_with(|| {
                let wake = Arc::new(Notify::new());
                let task = tokio::spawn(work(host.clone(), name, host_id.clone(), wake.clone()));
                Worker { wake, task }
            });
            worker.wake.notify_one();
        }
        tokio::select! {
            () = wake.notified() => {}
            () = tokio::time::sleep(poll) => {}
        }
    }
}

struct AbortOnDrop(Option<JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(task) = &self.0 {
            task.abort();
        }
    }
}

/// PostgreSQL: wakes the relay on every committed publish, on any host.
async fn listen(url: String, wake: Arc<Notify>) {
    loop {
        let connected = async {
            let mut listener = sqlx::postgres::PgListener::connect(&url).await?;
            listener.listen(NOTIFY_CHANNEL).await?;
            // Events published while the listener was down are swept up now.
            wake.notify_one();
            loop {
                listener.recv().await?;
                wake.notify_one();
            }
            #[allow(unreachable_code)]
            Ok::<(), sqlx::Error>(())
        }
        .await;
        if let Err(error) = connected {
            tracing::warn!(%error, "event relay: LISTEN connection lost; polling until it is back");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Creates the delivery rows of every event not yet fanned out.
async fn fan_out(host: &Host) -> Result<(), DbError> {
    loop {
        let events = outbox::events_to_fan_out(&host.db, FAN_OUT_BATCH).await?;
        for event in &events {
            let subscribers: Vec<String> = host
                .registry
                .subscribers(&event.topic)
                .iter()
                .map(|p| p.name().to_owned())
                .collect();
            outbox::fan_out(&host.db, event, &subscribers).await?;
        }
        if (events.len() as i64) < FAN_OUT_BATCH {
            return Ok(());
        }
    }
}

/// Delivers `subscriber`'s pending events until it stops serving.
async fn work(host: Host, subscriber: String, host_id: String, wake: Arc<Notify>) {
    let idle = Duration::from_millis(host.config.events.fallback_poll_ms);
    loop {
        let delivered = match round(&host, &subscriber, &host_id).await {
            Ok(Some(n)) => n,
            Ok(None) => return,
            Err(error) => {
                tracing::warn!(%subscriber, %error, "event relay: delivery round failed; retrying");
                0
            }
        };
        if delivered > 0 {
            continue;
        }
        // Nothing to do now: sleep until the next retry falls due, a lease
        // runs out, or new events are fanned out.
        let wait = match outbox::next_due_in_ms(&host.db, &subscriber).await {
            Ok(Some(ms)) => Duration::from_millis(ms.max(10) as u64).min(idle),
            _ => idle,
        };
        tokio::select! {
            () = wake.notified() => {}
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// The deliveries to try now: every free one, or, keeping order, each
/// topic's free deliveries up to the first that is not free.
fn choose(pending: Vec<PendingDelivery>, ordered: bool) -> Vec<PendingDelivery> {
    if !ordered {
        return pending.into_iter().filter(|d| d.free).collect();
    }
    let mut blocked: HashSet<String> = HashSet::new();
    let mut chosen = Vec::new();
    for delivery in pending {
        if blocked.contains(&delivery.topic) {
            continue;
        }
        if delivery.free {
            chosen.push(delivery);
        } else {
            blocked.insert(delivery.topic.clone());
        }
    }
    chosen
}

/// One pass over `subscriber`'s pending deliveries. `None` once it no
/// longer serves; otherwise how many were attempted.
async fn round(host: &Host, subscriber: &str, host_id: &str) -> Result<Option<usize>, DbError> {
    let Some(plugin) = host.registry.by_name(subscriber) else {
        return Ok(None);
    };
    let LoadedComponent::Plinth(component) = plugin.component.clone() else {
        return Ok(None);
    };
    let ordered = plugin.manifest.events.ordered;
    let pending = outbox::pending_for(&host.db, subscriber, WORKER_BATCH).await?;
    let config = &host.config.events;
    let lease_ms = config.lease_ms as i64;
    let mut attempted = 0;
    let mut lost: HashSet<String> = HashSet::new();
    for delivery in choose(pending, ordered) {
        if ordered && lost.contains(&delivery.topic) {
            continue;
        }
        if !outbox::claim(&host.db, delivery.id, host_id, lease_ms).await? {
            // Another host has it; keep its topic's order by waiting.
            lost.insert(delivery.topic.clone());
            continue;
        }
        attempted += 1;
        // Deferred even on SQLite: the write lock is taken by the first
        // write, so a subscriber that only reads holds no one up; a write
        // that loses a race fails the delivery, which is retried.
        let tx = host.db.pool().begin().await?;
        let (outcome, tx) = component
            .on_event_in(tx, &delivery.topic, &delivery.payload)
            .await;
        let error = match outcome {
            Ok(Ok(())) => {
                let Some(mut tx) = tx else {
                    // Cannot happen: the call hands its transaction back.
                    continue;
                };
                if outbox::mark_delivered(&mut tx, host.db.dialect(), delivery.id, host_id).await? {
                    tx.commit().await?;
                    // The subscriber may have published in the same transaction.
                    host.events.wake();
                    tracing::debug!(%subscriber, topic = %delivery.topic, event = delivery.event_id, "event delivered");
                } else {
                    tx.rollback().await?;
                    tracing::warn!(%subscriber, event = delivery.event_id, "event relay: the claim ran out, or the subscriber was removed, before the delivery finished; rolled back");
                }
                continue;
            }
            Ok(Err(message)) => message,
            Err(error) => error.to_string(),
        };
        if let Some(tx) = tx {
            tx.rollback().await?;
        }
        let failed = u32::try_from(delivery.attempts + 1).unwrap_or(u32::MAX);
        let backoff = config.backoff(failed).as_millis() as i64;
        let dead = outbox::mark_failed(
            &host.db,
            delivery.id,
            host_id,
            &error,
            backoff,
            i64::from(config.max_attempts),
        )
        .await?;
        if dead {
            tracing::warn!(%subscriber, topic = %delivery.topic, event = delivery.event_id, attempts = failed, %error, "event delivery is dead after its last attempt; replay it from the admin API");
        } else {
            tracing::info!(%subscriber, topic = %delivery.topic, event = delivery.event_id, attempt = failed, %error, "event delivery failed; retrying after back-off");
        }
        if ordered {
            lost.insert(delivery.topic.clone());
        }
    }
    Ok(Some(attempted))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(id: i64, topic: &str, free: bool) -> PendingDelivery {
        PendingDelivery {
            id,
            event_id: id,
            topic: topic.into(),
            payload: String::new(),
            attempts: 0,
            free,
        }
    }

    #[test]
    fn an_ordered_topic_waits_behind_its_first_busy_delivery() {
        let pending = vec![
            delivery(1, "a.x", true),
            delivery(2, "a.y", false),
            delivery(3, "a.x", true),
            delivery(4, "a.y", true),
        ];
        let ids = |v: Vec<PendingDelivery>| v.into_iter().map(|d| d.id).collect::<Vec<_>>();
        assert_eq!(ids(choose(pending.clone(), true)), [1, 3]);
        assert_eq!(ids(choose(pending, false)), [1, 3, 4]);
    }
}
