//! `plinth_agent_deployments`: every deployment the upgrade agent was
//! offered, what became of it, and the sequence number of its last status
//! report. Replay protection reads it: a verified deployment is acted on
//! once, and one issued before the newest acted-on deployment is refused.

use sqlx::Row;

use super::store::{optional_text, text};
use super::{Db, DbError, host_sql, now_ms};

/// What became of an offered deployment (`outcome` column).
pub mod outcome {
    /// Received; not verified yet.
    pub const RECEIVED: &str = "received";
    /// Refused before anything was downloaded.
    pub const REFUSED: &str = "refused";
    /// Verified; packages are being downloaded and installed.
    pub const APPLYING: &str = "applying";
    pub const SUCCESS: &str = "success";
    pub const FAILURE: &str = "failure";
    pub const CANCELLED: &str = "cancelled";
}

/// A row of `plinth_agent_deployments`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerEntry {
    pub deployment_id: String,
    pub customer: String,
    pub verified: bool,
    pub issued_at: i64,
    pub expires_at: i64,
    pub received_at: i64,
    pub outcome: String,
    pub reason: Option<String>,
    pub last_seq: i64,
}

impl LedgerEntry {
    /// Whether the agent acted on this deployment: it passed verification
    /// and got as far as downloading.
    pub fn acted_on(&self) -> bool {
        self.verified && self.outcome != outcome::REFUSED && self.outcome != outcome::RECEIVED
    }
}

const COLUMNS: &str = "deployment_id, customer, verified, issued_at, expires_at, received_at, outcome, reason, last_seq";

fn entry_from_row(row: &sqlx::any::AnyRow) -> Result<LedgerEntry, DbError> {
    Ok(LedgerEntry {
        deployment_id: text(row, "deployment_id")?,
        customer: text(row, "customer")?,
        verified: row.try_get::<i16, _>("verified")? != 0,
        issued_at: row.try_get("issued_at")?,
        expires_at: row.try_get("expires_at")?,
        received_at: row.try_get("received_at")?,
        outcome: text(row, "outcome")?,
        reason: optional_text(row, "reason")?,
        last_seq: row.try_get("last_seq")?,
    })
}

pub async fn entry(db: &Db, deployment_id: &str) -> Result<Option<LedgerEntry>, DbError> {
    let sql = host_sql(
        db.dialect(),
        &format!("SELECT {COLUMNS} FROM plinth_agent_deployments WHERE deployment_id = ?"),
    )
    .into_owned();
    let row = sqlx::query(&sql)
        .bind(deployment_id)
        .fetch_optional(db.pool())
        .await?;
    row.as_ref().map(entry_from_row).transpose()
}

/// The newest deployment (by `issued_at`) the agent acted on.
pub async fn newest_acted_on(db: &Db) -> Result<Option<LedgerEntry>, DbError> {
    let sql = host_sql(
        db.dialect(),
        &format!(
            "SELECT {COLUMNS} FROM plinth_agent_deployments \
             WHERE verified = 1 AND outcome NOT IN (?, ?) \
             ORDER BY issued_at DESC, received_at DESC LIMIT 1"
        ),
    )
    .into_owned();
    let row = sqlx::query(&sql)
        .bind(outcome::REFUSED)
        .bind(outcome::RECEIVED)
        .fetch_optional(db.pool())
        .await?;
    row.as_ref().map(entry_from_row).transpose()
}

/// Records an offer under the id it claims, unless it is known already.
pub async fn record_received(db: &Db, deployment_id: &str) -> Result<(), DbError> {
    if entry(db, deployment_id).await?.is_some() {
        return Ok(());
    }
    let sql = host_sql(
        db.dialect(),
        &format!(
            "INSERT INTO plinth_agent_deployments ({COLUMNS}) VALUES (?, '', 0, 0, 0, ?, ?, NULL, 0)"
        ),
    )
    .into_owned();
    sqlx::query(&sql)
        .bind(deployment_id)
        .bind(now_ms())
        .bind(outcome::RECEIVED)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// Marks the offer verified, with the facts from its signed manifest.
pub async fn record_verified(
    db: &Db,
    deployment_id: &str,
    customer: &str,
    issued_at: i64,
    expires_at: i64,
) -> Result<(), DbError> {
    let sql = host_sql(
        db.dialect(),
        "UPDATE plinth_agent_deployments \
         SET verified = 1, customer = ?, issued_at = ?, expires_at = ?, outcome = ?, reason = NULL \
         WHERE deployment_id = ?",
    );
    sqlx::query(&sql)
        .bind(customer)
        .bind(issued_at)
        .bind(expires_at)
        .bind(outcome::APPLYING)
        .bind(deployment_id)
        .execute(db.pool())
        .await?;
    Ok(())
}

pub async fn record_outcome(
    db: &Db,
    deployment_id: &str,
    outcome: &str,
    reason: Option<&str>,
) -> Result<(), DbError> {
    let sql = host_sql(
        db.dialect(),
        "UPDATE plinth_agent_deployments SET outcome = ?, reason = ? WHERE deployment_id = ?",
    );
    sqlx::query(&sql)
        .bind(outcome)
        .bind(reason.map(str::to_owned))
        .bind(deployment_id)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// The next status sequence number of a deployment (1, 2, 3…), counted in
/// the database so that it keeps rising across restarts. The row must
/// exist ([`record_received`]).
pub async fn next_seq(db: &Db, deployment_id: &str) -> Result<u64, DbError> {
    let mut tx = db.begin().await?;
    let dialect = super::conn_dialect(&tx);
    sqlx::query(&host_sql(
        dialect,
        "UPDATE plinth_agent_deployments SET last_seq = last_seq + 1 WHERE deployment_id = ?",
    ))
    .bind(deployment_id)
    .execute(&mut *tx)
    .await?;
    let seq: i64 = sqlx::query(&host_sql(
        dialect,
        "SELECT last_seq FROM plinth_agent_deployments WHERE deployment_id = ?",
    ))
    .bind(deployment_id)
    .fetch_one(&mut *tx)
    .await?
    .try_get("last_seq")?;
    tx.commit().await?;
    Ok(u64::try_from(seq).unwrap_or(0))
}
