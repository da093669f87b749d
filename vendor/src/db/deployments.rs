//! Deployments and everything that happens to them: the signed manifests
//! made (`deployments`, `deployment_packages`), the events the server
//! delivers to connected agents (`deployment_events`), the status reports
//! agents send (`status_reports`), each customer's last `hello`
//! (`agent_hellos`) and the audit log.
//!
//! Writers that add an event take a PostgreSQL table lock first, so event
//! ids become visible in increasing order and the server's poller (which
//! reads "every id above the last one seen") never skips one. SQLite has a
//! single writer anyway.

use plinth_package::protocol::{PackageState, StatusReport};
use plinth_package::{DeploymentManifest, SignedDeployment};
use sqlx::{AnyConnection, Connection};

use super::{Db, DbError, Dialect, now_ms, placeholders};

/// Outcome of a deployment no agent will act on any more because a newer
/// one replaced it.
pub const SUPERSEDED: &str = "superseded";
pub const CANCELLED: &str = "cancelled";
pub const SUCCESS: &str = "success";
pub const FAILURE: &str = "failure";

/// What the server tells agents about a deployment.
pub const EVENT_OFFER: &str = "offer";
pub const EVENT_CANCEL: &str = "cancel";

/// One deployment as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentRow {
    pub serial: i64,
    pub id: String,
    pub customer_id: i64,
    pub manifest: String,
    pub signature: String,
    pub key_id: String,
    /// Unix seconds.
    pub issued_at: i64,
    /// Unix seconds.
    pub expires_at: i64,
    /// `None` while open; otherwise one of the outcome constants.
    pub outcome: Option<String>,
    pub outcome_reason: Option<String>,
}

impl DeploymentRow {
    /// The signed deployment exactly as it was signed.
    pub fn signed(&self) -> SignedDeployment {
        SignedDeployment {
            manifest: self.manifest.clone(),
            signature: self.signature.clone(),
            key_id: self.key_id.clone(),
        }
    }
}

type Row = (
    i64,
    String,
    i64,
    String,
    String,
    String,
    i64,
    i64,
    Option<String>,
    Option<String>,
);

const COLUMNS: &str = "serial, id, customer_id, manifest, signature, key_id, issued_at, expires_at, outcome, outcome_reason";

fn from_row(row: Row) -> DeploymentRow {
    let (
        serial,
        id,
        customer_id,
        manifest,
        signature,
        key_id,
        issued_at,
        expires_at,
        outcome,
        outcome_reason,
    ) = row;
    DeploymentRow {
        serial,
        id,
        customer_id,
        manifest,
        signature,
        key_id,
        issued_at,
        expires_at,
        outcome,
        outcome_reason,
    }
}

/// A signed deployment ready to be recorded.
#[derive(Debug, Clone)]
pub struct NewDeployment {
    pub customer_id: i64,
    pub manifest: DeploymentManifest,
    pub signed: SignedDeployment,
}

/// Deployments recorded per transaction by [`record`].
const RECORD_CHUNK: usize = 100;

/// Records deployments, each with its packages and an `offer` event, and
/// marks every older open deployment of the same customer superseded.
/// Commits every [`RECORD_CHUNK`] deployments, so a push to thousands of
/// customers costs few commits.
pub async fn record(db: &Db, deployments: &[NewDeployment]) -> Result<(), DbError> {
    let mut conn = db.pool().acquire().await?;
    for chunk in deployments.chunks(RECORD_CHUNK) {
        let mut tx = conn.begin().await?;
        lock_events(db.dialect(), &mut tx).await?;
        for new in chunk {
            insert_one(db, &mut tx, new).await?;
        }
        tx.commit().await?;
    }
    Ok(())
}

/// Records `new` as the reissue of `expired`, but only while `expired` is
/// still the customer's newest deployment and open; `Ok(false)` (and
/// nothing recorded) when a push or cancel got there first.
pub async fn record_reissue(db: &Db, new: &NewDeployment, expired: &str) -> Result<bool, DbError> {
    let mut conn = db.pool().acquire().await?;
    let mut tx = conn.begin().await?;
    lock_events(db.dialect(), &mut tx).await?;
    // The guarded UPDATE comes first so SQLite takes its write lock before
    // anything is read.
    let claimed = sqlx::query(&db.sql(
        "UPDATE deployments SET outcome = ?, outcome_reason = ?, outcome_at = ? \
         WHERE id = ? AND outcome IS NULL \
         AND serial = (SELECT MAX(serial) FROM deployments WHERE customer_id = ?)",
    ))
    .bind(SUPERSEDED)
    .bind(format!(
        "expired; reissued as deployment {}",
        new.manifest.deployment_id
    ))
    .bind(now_ms())
    .bind(expired)
    .bind(new.customer_id)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    if !claimed {
        return Ok(false);
    }
    insert_one(db, &mut tx, new).await?;
    tx.commit().await?;
    Ok(true)
}

/// One deployment with its packages and `offer` event; every older open
/// deployment of the customer becomes superseded.
async fn insert_one(db: &Db, tx: &mut AnyConnection, new: &NewDeployment) -> Result<(), DbError> {
    let m = &new.manifest;
    sqlx::query(&db.sql(
        "UPDATE deployments SET outcome = ?, outcome_reason = ?, outcome_at = ? \
         WHERE customer_id = ? AND outcome IS NULL",
    ))
    .bind(SUPERSEDED)
    .bind(format!("superseded by deployment {}", m.deployment_id))
    .bind(now_ms())
    .bind(new.customer_id)
    .execute(&mut *tx)
    .await?;
    sqlx::query(&db.sql(&format!(
        "INSERT INTO deployments (id, customer_id, manifest, signature, key_id, issued_at, expires_at) \
         VALUES ({})",
        placeholders(7)
    )))
    .bind(&m.deployment_id)
    .bind(new.customer_id)
    .bind(&new.signed.manifest)
    .bind(&new.signed.signature)
    .bind(&new.signed.key_id)
    .bind(m.issued_at)
    .bind(m.expires_at)
    .execute(&mut *tx)
    .await?;
    if !m.packages.is_empty() {
        let rows = vec![format!("({})", placeholders(4)); m.packages.len()].join(", ");
        let sql = format!(
            "INSERT INTO deployment_packages (deployment_id, position, name, version) VALUES {rows}"
        );
        let sql = db.sql(&sql);
        let mut query = sqlx::query(&sql);
        for (position, package) in m.packages.iter().enumerate() {
            query = query
                .bind(&m.deployment_id)
                .bind(i64::try_from(position).unwrap_or(i64::MAX))
                .bind(&package.name)
                .bind(package.version.to_string());
        }
        query.execute(&mut *tx).await?;
    }
    insert_event(db, tx, new.customer_id, &m.deployment_id, EVENT_OFFER, None).await
}

async fn lock_events(dialect: Dialect, conn: &mut AnyConnection) -> Result<(), DbError> {
    if dialect == Dialect::Postgres {
        // Self-conflicting mode: event writers queue up, readers do not.
        sqlx::query("LOCK TABLE deployment_events IN SHARE ROW EXCLUSIVE MODE")
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

async fn insert_event(
    db: &Db,
    conn: &mut AnyConnection,
    customer_id: i64,
    deployment_id: &str,
    kind: &str,
    reason: Option<&str>,
) -> Result<(), DbError> {
    sqlx::query(&db.sql(
        "INSERT INTO deployment_events (customer_id, deployment_id, kind, reason, created_at) \
         VALUES (?, ?, ?, ?, ?)",
    ))
    .bind(customer_id)
    .bind(deployment_id)
    .bind(kind)
    .bind(reason.map(str::to_owned))
    .bind(now_ms())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The customer's newest deployment, open or not.
pub async fn newest(db: &Db, customer_id: i64) -> Result<Option<DeploymentRow>, DbError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM deployments WHERE customer_id = ? ORDER BY serial DESC LIMIT 1"
    );
    let row: Option<Row> = sqlx::query_as(&db.sql(&sql))
        .bind(customer_id)
        .fetch_optional(db.pool())
        .await?;
    Ok(row.map(from_row))
}

pub async fn by_id(db: &Db, id: &str) -> Result<Option<DeploymentRow>, DbError> {
    let sql = format!("SELECT {COLUMNS} FROM deployments WHERE id = ?");
    let row: Option<Row> = sqlx::query_as(&db.sql(&sql))
        .bind(id)
        .fetch_optional(db.pool())
        .await?;
    Ok(row.map(from_row))
}

/// Marks the customer's newest open deployment cancelled and queues a
/// `cancel` for connected agents. `None` when nothing is open.
pub async fn cancel_newest_open(
    db: &Db,
    customer_id: i64,
    reason: &str,
) -> Result<Option<String>, DbError> {
    let mut conn = db.pool().acquire().await?;
    let mut tx = conn.begin().await?;
    lock_events(db.dialect(), &mut tx).await?;
    let open: Option<(String,)> = sqlx::query_as(&db.sql(
        "SELECT id FROM deployments WHERE customer_id = ? AND outcome IS NULL \
         ORDER BY serial DESC LIMIT 1",
    ))
    .bind(customer_id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((id,)) = open else {
        return Ok(None);
    };
    sqlx::query(&db.sql(
        "UPDATE deployments SET outcome = ?, outcome_reason = ?, outcome_at = ? WHERE id = ?",
    ))
    .bind(CANCELLED)
    .bind(reason)
    .bind(now_ms())
    .bind(&id)
    .execute(&mut *tx)
    .await?;
    insert_event(db, &mut tx, customer_id, &id, EVENT_CANCEL, Some(reason)).await?;
    tx.commit().await?;
    Ok(Some(id))
}

/// Something the server must tell a customer's connected agents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentEvent {
    pub id: i64,
    pub customer_id: i64,
    pub kind: String,
    pub reason: Option<String>,
    pub deployment: DeploymentRow,
}

/// Events with an id above `after`, oldest first, at most `limit`.
pub async fn events_after(
    db: &Db,
    after: i64,
    limit: i64,
) -> Result<Vec<DeploymentEvent>, DbError> {
    let columns: Vec<String> = COLUMNS.split(", ").map(|c| format!("d.{c}")).collect();
    let sql = format!(
        "SELECT e.id, e.kind, e.reason, {} FROM deployment_events e \
         JOIN deployments d ON d.id = e.deployment_id \
         WHERE e.id > ? ORDER BY e.id LIMIT ?",
        columns.join(", ")
    );
    let rows: Vec<sqlx::any::AnyRow> = sqlx::query(&db.sql(&sql))
        .bind(after)
        .bind(limit)
        .fetch_all(db.pool())
        .await?;
    use sqlx::Row as _;
    rows.iter()
        .map(|r| {
            let deployment = from_row((
                r.try_get(3)?,
                r.try_get(4)?,
                r.try_get(5)?,
                r.try_get(6)?,
                r.try_get(7)?,
                r.try_get(8)?,
                r.try_get(9)?,
                r.try_get(10)?,
                r.try_get(11)?,
                r.try_get(12)?,
            ));
            Ok(DeploymentEvent {
                id: r.try_get(0)?,
                customer_id: deployment.customer_id,
                kind: r.try_get(1)?,
                reason: r.try_get(2)?,
                deployment,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(DbError::from)
}

/// The newest event id, or 0 when there is none.
pub async fn last_event_id(db: &Db) -> Result<i64, DbError> {
    let (id,): (i64,) = sqlx::query_as("SELECT COALESCE(MAX(id), 0) FROM deployment_events")
        .fetch_one(db.pool())
        .await?;
    Ok(id)
}

/// Whether `name` at `version` is part of any deployment issued to the
/// customer: the rule for downloads.
pub async fn issued_to(
    db: &Db,
    customer_id: i64,
    name: &str,
    version: &str,
) -> Result<bool, DbError> {
    let row: Option<(i64,)> = sqlx::query_as(&db.sql(
        "SELECT d.serial FROM deployment_packages p JOIN deployments d ON d.id = p.deployment_id \
         WHERE d.customer_id = ? AND p.name = ? AND p.version = ? LIMIT 1",
    ))
    .bind(customer_id)
    .bind(name)
    .bind(version)
    .fetch_optional(db.pool())
    .await?;
    Ok(row.is_some())
}

/// Stores a status report once. `Ok(false)` for a resend of a stored
/// `(customer, deployment, seq)`, which changes nothing.
///
/// A final report sets the deployment's outcome: `success` for the
/// deployment as a whole (package absent), `failure` when the deployment
/// or any package fails (or the deployment reports `rolled_back`). The
/// agent knows what really happened, so its report also replaces an
/// outcome of `cancelled` or `superseded`; a failure is never replaced.
pub async fn record_report(
    db: &Db,
    customer_id: i64,
    report: &StatusReport,
) -> Result<bool, DbError> {
    let seq = i64::try_from(report.seq)
        .map_err(|_| DbError::Corrupt(format!("seq {} is out of range", report.seq)))?;
    let (reason, bytes, total) = match &report.state {
        PackageState::Failure { reason } | PackageState::RolledBack { reason } => {
            (Some(reason.clone()), None, None)
        }
        PackageState::Downloading { bytes, total } => {
            (None, i64::try_from(*bytes).ok(), i64::try_from(*total).ok())
        }
        _ => (None, None, None),
    };
    let mut conn = db.pool().acquire().await?;
    let mut tx = conn.begin().await?;
    let inserted = sqlx::query(&db.sql(&format!(
        "INSERT INTO status_reports (customer_id, deployment_id, seq, package, version, state, reason, bytes, total, at_ms, received_at) \
         VALUES ({}) ON CONFLICT (customer_id, deployment_id, seq) DO NOTHING",
        placeholders(11)
    )))
    .bind(customer_id)
    .bind(&report.deployment_id)
    .bind(seq)
    .bind(report.package.clone())
    .bind(report.version.as_ref().map(ToString::to_string))
    .bind(report.state.name())
    .bind(reason.clone())
    .bind(bytes)
    .bind(total)
    .bind(report.at_ms)
    .bind(now_ms())
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    if inserted {
        let outcome = match (&report.package, &report.state) {
            (None, PackageState::Success) => Some((SUCCESS, None)),
            (None, PackageState::Failure { reason } | PackageState::RolledBack { reason }) => {
                Some((FAILURE, Some(reason.clone())))
            }
            (Some(package), PackageState::Failure { reason }) => {
                let version = report
                    .version
                    .as_ref()
                    .map(|v| format!(" {v}"))
                    .unwrap_or_default();
                Some((FAILURE, Some(format!("{package}{version}: {reason}"))))
            }
            _ => None,
        };
        if let Some((outcome, reason)) = outcome {
            sqlx::query(&db.sql(
                "UPDATE deployments SET outcome = ?, outcome_reason = ?, outcome_at = ? \
                 WHERE id = ? AND customer_id = ? \
                 AND (outcome IS NULL OR outcome IN ('cancelled', 'superseded') \
                      OR (outcome = 'success' AND ? = 'failure'))",
            ))
            .bind(outcome)
            .bind(reason)
            .bind(now_ms())
            .bind(&report.deployment_id)
            .bind(customer_id)
            .bind(outcome)
            .execute(&mut *tx)
            .await?;
        }
    }
    tx.commit().await?;
    Ok(inserted)
}

/// What an agent said in `hello`.
#[derive(Debug, Clone)]
pub struct Hello<'a> {
    pub protocol: u32,
    pub agent_version: &'a str,
    /// JSON array of the installed packages.
    pub installed_json: &'a str,
    pub last_deployment_id: Option<&'a str>,
}

/// Stores the customer's latest `hello` and marks it connected.
pub async fn record_hello(db: &Db, customer_id: i64, hello: &Hello<'_>) -> Result<(), DbError> {
    let now = now_ms();
    sqlx::query(&db.sql(
        "INSERT INTO agent_hellos (customer_id, protocol, agent_version, installed, last_deployment_id, hello_at, last_seen, connected) \
         VALUES (?, ?, ?, ?, ?, ?, ?, 1) ON CONFLICT (customer_id) DO UPDATE SET \
         protocol = excluded.protocol, agent_version = excluded.agent_version, \
         installed = excluded.installed, last_deployment_id = excluded.last_deployment_id, \
         hello_at = excluded.hello_at, last_seen = excluded.last_seen, connected = 1",
    ))
    .bind(customer_id)
    .bind(i64::from(hello.protocol))
    .bind(hello.agent_version)
    .bind(hello.installed_json)
    .bind(hello.last_deployment_id.map(str::to_owned))
    .bind(now)
    .bind(now)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// Moves one package of the customer's reported installed set to `version`
/// (adding it if new), after the agent reported that package installed, so
/// the status page is current without waiting for the next `hello`.
pub async fn record_installed(
    db: &Db,
    customer_id: i64,
    name: &str,
    version: &semver::Version,
) -> Result<(), DbError> {
    let mut conn = db.pool().acquire().await?;
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    let row: Option<(String,)> =
        sqlx::query_as(&db.sql("SELECT installed FROM agent_hellos WHERE customer_id = ?"))
            .bind(customer_id)
            .fetch_optional(&mut *tx)
            .await?;
    let Some((installed,)) = row else {
        return Ok(());
    };
    let mut installed: Vec<plinth_package::protocol::InstalledPackage> =
        serde_json::from_str(&installed).map_err(|e| {
            DbError::Corrupt(format!("the installed set of customer {customer_id}: {e}"))
        })?;
    match installed.iter_mut().find(|p| p.name == name) {
        Some(package) => package.version = version.clone(),
        None => installed.push(plinth_package::protocol::InstalledPackage {
            name: name.to_owned(),
            version: version.clone(),
            enabled: true,
        }),
    }
    installed.sort_by(|a, b| a.name.cmp(&b.name));
    let json = serde_json::to_string(&installed).map_err(|e| {
        DbError::Corrupt(format!("the installed set of customer {customer_id}: {e}"))
    })?;
    sqlx::query(&db.sql("UPDATE agent_hellos SET installed = ? WHERE customer_id = ?"))
        .bind(json)
        .bind(customer_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Records that the customer's last connection closed.
pub async fn record_disconnect(db: &Db, customer_id: i64) -> Result<(), DbError> {
    sqlx::query(
        &db.sql("UPDATE agent_hellos SET connected = 0, last_seen = ? WHERE customer_id = ?"),
    )
    .bind(now_ms())
    .bind(customer_id)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// At server start nobody is connected, whatever a crashed run left.
pub async fn reset_connections(db: &Db) -> Result<(), DbError> {
    sqlx::query("UPDATE agent_hellos SET connected = 0 WHERE connected <> 0")
        .execute(db.pool())
        .await?;
    Ok(())
}

/// Appends to the audit log.
pub async fn audit(
    db: &Db,
    customer: Option<&str>,
    action: &str,
    detail: &str,
) -> Result<(), DbError> {
    sqlx::query(
        &db.sql("INSERT INTO audit_log (at_ms, customer, action, detail) VALUES (?, ?, ?, ?)"),
    )
    .bind(now_ms())
    .bind(customer.map(str::to_owned))
    .bind(action)
    .bind(detail)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// One audit entry: `(at_ms, customer, action, detail)`, newest first.
pub async fn audit_entries(
    db: &Db,
    limit: i64,
) -> Result<Vec<(i64, Option<String>, String, String)>, DbError> {
    Ok(sqlx::query_as(
        &db.sql("SELECT at_ms, customer, action, detail FROM audit_log ORDER BY id DESC LIMIT ?"),
    )
    .bind(limit)
    .fetch_all(db.pool())
    .await?)
}
