//! The event outbox's SQL: `plinth_events` (what was published) and
//! `plinth_event_deliveries` (one row per event and subscriber, with its
//! state, attempts, back-off and the claim of the relay delivering it).
//!
//! Every time a claim or a back-off compares with is the database's own
//! clock ([`db_now_ms`]), so several hosts on one database agree on leases
//! without trusting each other's clocks. A delivery is claimed by a single
//! conditional `UPDATE` (the row is free, or its lease ran out) and finished
//! only by the host that still holds the claim; that is the whole of the
//! coordination between hosts.

use sqlx::{AnyConnection, Row};

use super::store::{optional_text, text};
use super::{Db, DbError, Dialect, host_sql};

/// The PostgreSQL channel a publish notifies, so relays wake at once.
pub const NOTIFY_CHANNEL: &str = "plinth_events";

/// The database's clock in epoch milliseconds, as an SQL expression.
pub fn db_now_ms(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Sqlite => "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)",
        Dialect::Postgres => "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)",
        Dialect::Mysql => "CAST(UNIX_TIMESTAMP(NOW(3)) * 1000 AS SIGNED)",
    }
}

/// Writes one event on `conn`, which may be inside the publisher's
/// transaction: the event then commits or rolls back with it.
pub async fn insert_event(
    conn: &mut AnyConnection,
    dialect: Dialect,
    source: &str,
    topic: &str,
    payload: &str,
) -> Result<(), DbError> {
    let sql = format!(
        "INSERT INTO plinth_events (topic, source, payload, published_at, fanned_out) \
         VALUES (?, ?, ?, {}, 'no')",
        db_now_ms(dialect)
    );
    sqlx::query(&host_sql(dialect, &sql))
        .bind(topic)
        .bind(source)
        .bind(payload)
        .execute(&mut *conn)
        .await?;
    if dialect == Dialect::Postgres {
        // Delivered to listeners when the transaction commits, never before.
        sqlx::query("SELECT pg_notify($1, '')")
            .bind(NOTIFY_CHANNEL)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// An event not yet fanned out to its subscribers.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub id: i64,
    pub topic: String,
}

pub async fn events_to_fan_out(db: &Db, limit: i64) -> Result<Vec<NewEvent>, DbError> {
    let sql = host_sql(
        db.dialect(),
        "SELECT id, topic FROM plinth_events WHERE fanned_out = 'no' ORDER BY id LIMIT ?",
    );
    let rows = sqlx::query(&sql).bind(limit).fetch_all(db.pool()).await?;
    rows.iter()
        .map(|row| {
            Ok(NewEvent {
                id: row.try_get("id")?,
                topic: text(row, "topic")?,
            })
        })
        .collect()
}

/// Creates the delivery rows of `event` for `subscribers` and marks it
/// fanned out, in one transaction. A row another relay already created is
/// left as it is (the unique key on event and subscriber).
pub async fn fan_out(db: &Db, event: &NewEvent, subscribers: &[String]) -> Result<(), DbError> {
    let dialect = db.dialect();
    let mut tx = db.begin().await?;
    let insert = match dialect {
        Dialect::Mysql => "INSERT IGNORE INTO plinth_event_deliveries",
        _ => "INSERT INTO plinth_event_deliveries",
    };
    let conflict = match dialect {
        Dialect::Mysql => "",
        _ => " ON CONFLICT (event_id, subscriber) DO NOTHING",
    };
    let sql = format!(
        "{insert} (event_id, subscriber, topic, state, attempts, next_attempt_at) \
         VALUES (?, ?, ?, 'pending', 0, {}){conflict}",
        db_now_ms(dialect)
    );
    let sql = host_sql(dialect, &sql);
    for subscriber in subscribers {
        sqlx::query(&sql)
            .bind(event.id)
            .bind(subscriber)
            .bind(&event.topic)
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query(&host_sql(
        dialect,
        "UPDATE plinth_events SET fanned_out = 'yes' WHERE id = ?",
    ))
    .bind(event.id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// A pending delivery as the relay sees it.
#[derive(Debug, Clone)]
pub struct PendingDelivery {
    pub id: i64,
    pub event_id: i64,
    pub topic: String,
    pub payload: String,
    pub attempts: i64,
    /// Whether it may be tried now: due, and not claimed by a live lease.
    pub free: bool,
}

/// The oldest pending deliveries of `subscriber`, free or not, in event
/// order, so the relay can keep each topic's order.
pub async fn pending_for(
    db: &Db,
    subscriber: &str,
    limit: i64,
) -> Result<Vec<PendingDelivery>, DbError> {
    let now = db_now_ms(db.dialect());
    let sql = format!(
        "SELECT d.id, d.event_id, d.topic, e.payload, d.attempts, d.next_attempt_at, \
         d.lease_until, {now} AS now_ms \
         FROM plinth_event_deliveries d JOIN plinth_events e ON e.id = d.event_id \
         WHERE d.subscriber = ? AND d.state = 'pending' ORDER BY d.event_id LIMIT ?"
    );
    let rows = sqlx::query(&host_sql(db.dialect(), &sql))
        .bind(subscriber)
        .bind(limit)
        .fetch_all(db.pool())
        .await?;
    rows.iter()
        .map(|row| {
            Ok(PendingDelivery {
                id: row.try_get("id")?,
                event_id: row.try_get("event_id")?,
                topic: text(row, "topic")?,
                payload: text(row, "payload")?,
                attempts: row.try_get("attempts")?,
                free: {
                    let now: i64 = row.try_get("now_ms")?;
                    let due: i64 = row.try_get("next_attempt_at")?;
                    let lease: Option<i64> = row.try_get("lease_until")?;
                    due <= now && lease.is_none_or(|l| l < now)
                },
            })
        })
        .collect()
}

/// Milliseconds until the next pending delivery of `subscriber` falls due
/// (0 when one is due now), `None` when it has none pending.
pub async fn next_due_in_ms(db: &Db, subscriber: &str) -> Result<Option<i64>, DbError> {
    let now = db_now_ms(db.dialect());
    let sql = format!(
        "SELECT MIN(CASE WHEN lease_until IS NOT NULL AND lease_until > next_attempt_at \
         THEN lease_until ELSE next_attempt_at END) - {now} AS wait \
         FROM plinth_event_deliveries WHERE subscriber = ? AND state = 'pending'"
    );
    let row = sqlx::query(&host_sql(db.dialect(), &sql))
        .bind(subscriber)
        .fetch_one(db.pool())
        .await?;
    let wait: Option<i64> = row.try_get("wait")?;
    Ok(wait.map(|w| w.max(0)))
}

/// Claims delivery `id` for `host_id` for `lease_ms`, if it is still
/// pending, due and unclaimed (or its lease ran out). Returns whether this
/// host now holds it.
pub async fn claim(db: &Db, id: i64, host_id: &str, lease_ms: i64) -> Result<bool, DbError> {
    let now = db_now_ms(db.dialect());
    let sql = format!(
        "UPDATE plinth_event_deliveries SET claimed_by = ?, lease_until = {now} + ? \
         WHERE id = ? AND state = 'pending' AND next_attempt_at <= {now} \
         AND (lease_until IS NULL OR lease_until < {now})"
    );
    let done = sqlx::query(&host_sql(db.dialect(), &sql))
        .bind(host_id)
        .bind(lease_ms)
        .bind(id)
        .execute(db.pool())
        .await?;
    Ok(done.rows_affected() == 1)
}

/// The event behind a delivery.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    pub id: i64,
    pub topic: String,
    pub source: String,
    pub payload: String,
}

pub async fn event(db: &Db, id: i64) -> Result<Option<StoredEvent>, DbError> {
    let sql = host_sql(
        db.dialect(),
        "SELECT id, topic, source, payload FROM plinth_events WHERE id = ?",
    );
    let row = sqlx::query(&sql).bind(id).fetch_optional(db.pool()).await?;
    row.map(|row| {
        Ok(StoredEvent {
            id: row.try_get("id")?,
            topic: text(&row, "topic")?,
            source: text(&row, "source")?,
            payload: text(&row, "payload")?,
        })
    })
    .transpose()
}

/// Marks a claimed delivery delivered on `conn` (the transaction the
/// subscriber's own statements ran in); `claimed_by` stays, naming the host
/// that delivered it. `false` when this host no longer holds the claim
/// (another host delivers it) or the subscriber was removed while its hook
/// ran (a removal drops what it had not received, and a delivery finishing
/// on the removed version must not count): the caller must roll back.
pub async fn mark_delivered(
    conn: &mut AnyConnection,
    dialect: Dialect,
    id: i64,
    host_id: &str,
) -> Result<bool, DbError> {
    let sql = format!(
        "UPDATE plinth_event_deliveries SET state = 'delivered', attempts = attempts + 1, \
         delivered_at = {}, lease_until = NULL, last_error = NULL \
         WHERE id = ? AND claimed_by = ? AND state = 'pending' \
         AND EXISTS (SELECT 1 FROM plinth_plugins p WHERE p.name = plinth_event_deliveries.subscriber)",
        db_now_ms(dialect)
    );
    let done = sqlx::query(&host_sql(dialect, &sql))
        .bind(id)
        .bind(host_id)
        .execute(&mut *conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Records a failed attempt of a claimed delivery: it backs off for
/// `backoff_ms`, or turns dead once it has failed `max_attempts` times.
/// Returns whether it is now dead.
pub async fn mark_failed(
    db: &Db,
    id: i64,
    host_id: &str,
    error: &str,
    backoff_ms: i64,
    max_attempts: i64,
) -> Result<bool, DbError> {
    let now = db_now_ms(db.dialect());
    let sql = format!(
        "UPDATE plinth_event_deliveries \
         SET state = CASE WHEN attempts + 1 >= ? THEN 'dead' ELSE 'pending' END, \
         attempts = attempts + 1, last_error = ?, \
         next_attempt_at = {now} + ?, claimed_by = NULL, lease_until = NULL \
         WHERE id = ? AND claimed_by = ? AND state = 'pending'"
    );
    // `state` comes first: MySQL evaluates SET left to right with the
    // values already assigned, the others with the row's old values.
    // Keep the stored message short; the full one went to the log.
    let error: String = error.chars().take(2000).collect();
    sqlx::query(&host_sql(db.dialect(), &sql))
        .bind(max_attempts)
        .bind(error)
        .bind(backoff_ms)
        .bind(id)
        .bind(host_id)
        .execute(db.pool())
        .await?;
    let sql = host_sql(
        db.dialect(),
        "SELECT state FROM plinth_event_deliveries WHERE id = ?",
    );
    let row = sqlx::query(&sql).bind(id).fetch_optional(db.pool()).await?;
    Ok(match row {
        Some(row) => text(&row, "state")? == "dead",
        None => false,
    })
}

/// One delivery with its event, for the admin API and tests.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DeliveryRow {
    pub id: i64,
    pub event_id: i64,
    pub subscriber: String,
    pub topic: String,
    pub source: String,
    pub payload: String,
    pub state: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub published_at: i64,
    pub delivered_at: Option<i64>,
}

/// Deliveries in `state` ('pending', 'delivered' or 'dead'), optionally of
/// one subscriber, oldest first, from delivery id `after` on.
pub async fn deliveries(
    db: &Db,
    state: &str,
    subscriber: Option<&str>,
    after: i64,
    limit: i64,
) -> Result<Vec<DeliveryRow>, DbError> {
    let sql = format!(
        "SELECT d.id, d.event_id, d.subscriber, d.topic, e.source, e.payload, d.state, \
         d.attempts, d.last_error, e.published_at, d.delivered_at \
         FROM plinth_event_deliveries d JOIN plinth_events e ON e.id = d.event_id \
         WHERE d.state = ? AND d.id > ? {} ORDER BY d.id LIMIT ?",
        if subscriber.is_some() {
            "AND d.subscriber = ?"
        } else {
            ""
        }
    );
    let sql = host_sql(db.dialect(), &sql);
    let mut query = sqlx::query(&sql).bind(state).bind(after);
    if let Some(subscriber) = subscriber {
        query = query.bind(subscriber);
    }
    let rows = query.bind(limit).fetch_all(db.pool()).await?;
    rows.iter()
        .map(|row| {
            Ok(DeliveryRow {
                id: row.try_get("id")?,
                event_id: row.try_get("event_id")?,
                subscriber: text(row, "subscriber")?,
                topic: text(row, "topic")?,
                source: text(row, "source")?,
                payload: text(row, "payload")?,
                state: text(row, "state")?,
                attempts: row.try_get("attempts")?,
                last_error: optional_text(row, "last_error")?,
                published_at: row.try_get("published_at")?,
                delivered_at: row.try_get("delivered_at")?,
            })
        })
        .collect()
}

/// Puts dead deliveries back to pending with a fresh count of attempts:
/// one (`id`) or every one. Returns how many.
pub async fn replay_dead(db: &Db, id: Option<i64>) -> Result<u64, DbError> {
    let now = db_now_ms(db.dialect());
    let sql = format!(
        "UPDATE plinth_event_deliveries SET state = 'pending', attempts = 0, \
         next_attempt_at = {now}, claimed_by = NULL, lease_until = NULL \
         WHERE state = 'dead'{}",
        if id.is_some() { " AND id = ?" } else { "" }
    );
    let sql = host_sql(db.dialect(), &sql);
    let mut query = sqlx::query(&sql);
    if let Some(id) = id {
        query = query.bind(id);
    }
    Ok(query.execute(db.pool()).await?.rows_affected())
}

/// Deletes one dead delivery. Returns whether there was one.
pub async fn discard_dead(db: &Db, id: i64) -> Result<bool, DbError> {
    let sql = host_sql(
        db.dialect(),
        "DELETE FROM plinth_event_deliveries WHERE state = 'dead' AND id = ?",
    );
    Ok(sqlx::query(&sql)
        .bind(id)
        .execute(db.pool())
        .await?
        .rows_affected()
        == 1)
}

/// Drops every delivery to `subscriber` that has not been delivered
/// (pending or dead), when its plugin is removed. Returns how many.
pub async fn drop_undelivered(db: &Db, subscriber: &str) -> Result<u64, DbError> {
    let sql = host_sql(
        db.dialect(),
        "DELETE FROM plinth_event_deliveries WHERE subscriber = ? AND state <> 'delivered'",
    );
    Ok(sqlx::query(&sql)
        .bind(subscriber)
        .execute(db.pool())
        .await?
        .rows_affected())
}
