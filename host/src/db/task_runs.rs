//! The task run history (`plinth_task_runs`), which is also the claim table
//! that makes each scheduled tick run on exactly one host, and the paused
//! flags (`plinth_task_state`).
//!
//! A host claims a tick by inserting its row with outcome `running`; the
//! unique key (plugin, task, scheduled_at) refuses a second host's insert,
//! and that duplicate-key error means "another host has it". A running row
//! carries a lease in the database's own clock (`lease_until`), so a host
//! that died mid-run stops counting as running once the lease passed, and
//! no host has to trust its own clock or another's.

use sqlx::Row;

use super::store::{optional_text, text};
use super::{Db, DbError, Dialect, host_sql, now_ms};

/// A run's outcome as stored in `plinth_task_runs.outcome`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Claimed and not finished yet (or waiting, for `concurrency = "queue"`).
    Running,
    Ok,
    /// The task returned an error or trapped.
    Failed,
    /// Cut off at its timeout (CPU budget or wall time).
    TimedOut,
    /// Not run: the previous run of the same task was still running.
    SkippedOverlap,
    /// Stopped because its plugin was removed or disabled mid-run.
    Cancelled,
    /// Its host stopped (crash, kill) before the run finished.
    Interrupted,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Ok => "ok",
            Self::Failed => "failed",
            Self::TimedOut => "timed_out",
            Self::SkippedOverlap => "skipped_overlap",
            Self::Cancelled => "cancelled",
            Self::Interrupted => "interrupted",
        }
    }
}

/// One row of `plinth_task_runs`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TaskRun {
    pub id: i64,
    pub plugin: String,
    pub version: String,
    pub task: String,
    /// The tick the run was for (ms); a run-now's request time. `None` for
    /// runs recorded before ticks were stored.
    pub scheduled_at: Option<i64>,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    pub outcome: String,
    pub message: Option<String>,
    pub host_id: Option<String>,
}

/// Which tick of which task a claim is for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Tick {
    pub plugin: String,
    pub task: String,
    pub scheduled_at: i64,
}

/// The database's clock in ms since the epoch, as an SQL expression: the
/// one clock every host sharing the database agrees on.
fn db_now(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Sqlite => "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)",
        Dialect::Postgres => "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)",
        Dialect::Mysql => "CAST(UNIX_TIMESTAMP(NOW(3)) * 1000 AS SIGNED)",
    }
}

/// `sql` with `{now}` replaced by the database clock, placeholders adapted.
fn sql(db: &Db, sql: &str) -> String {
    host_sql(db.dialect(), &sql.replace("{now}", db_now(db.dialect()))).into_owned()
}

/// The database clock, read once (for listing the next runs and tests).
pub async fn database_now(db: &Db) -> Result<i64, DbError> {
    let row = sqlx::query(&sql(db, "SELECT {now} AS now"))
        .fetch_one(db.pool())
        .await?;
    Ok(row.try_get("now")?)
}

/// Claims `tick` for this host with a lease of `lease_ms`. `Ok(false)`
/// means another host claimed it first.
pub async fn claim(
    db: &Db,
    tick: &Tick,
    version: &str,
    host_id: &str,
    lease_ms: i64,
) -> Result<bool, DbError> {
    let statement = sql(
        db,
        "INSERT INTO plinth_task_runs \
         (plugin, version, task, scheduled_at, started_at, outcome, host_id, lease_until) \
         VALUES (?, ?, ?, ?, {now}, 'running', ?, {now} + ?)",
    );
    let inserted = sqlx::query(&statement)
        .bind(&tick.plugin)
        .bind(version)
        .bind(&tick.task)
        .bind(tick.scheduled_at)
        .bind(host_id)
        .bind(lease_ms)
        .execute(db.pool())
        .await;
    match inserted {
        Ok(_) => Ok(true),
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Whether a run of the task other than `tick` is running under a live
/// lease (on any host). With `earlier_only`, only runs of earlier ticks
/// count (a queued tick waits for those, not for later ones).
pub async fn another_running(db: &Db, tick: &Tick, earlier_only: bool) -> Result<bool, DbError> {
    let compare = if earlier_only { "<" } else { "<>" };
    let statement = sql(
        db,
        &format!(
            "SELECT COUNT(*) AS n FROM plinth_task_runs \
             WHERE plugin = ? AND task = ? AND outcome = 'running' \
             AND scheduled_at {compare} ? AND lease_until > {{now}}"
        ),
    );
    let row = sqlx::query(&statement)
        .bind(&tick.plugin)
        .bind(&tick.task)
        .bind(tick.scheduled_at)
        .fetch_one(db.pool())
        .await?;
    Ok(row.try_get::<i64, _>("n")? > 0)
}

/// Whether any run of the task is running under a live lease.
pub async fn is_running(db: &Db, plugin: &str, task: &str) -> Result<bool, DbError> {
    let tick = Tick {
        plugin: plugin.to_owned(),
        task: task.to_owned(),
        scheduled_at: i64::MIN,
    };
    another_running(db, &tick, false).await
}

/// Marks a claimed (possibly queued) tick as starting now, with a fresh
/// lease.
pub async fn start(db: &Db, tick: &Tick, lease_ms: i64) -> Result<(), DbError> {
    let statement = sql(
        db,
        "UPDATE plinth_task_runs SET started_at = {now}, lease_until = {now} + ? \
         WHERE plugin = ? AND task = ? AND scheduled_at = ? AND outcome = 'running'",
    );
    sqlx::query(&statement)
        .bind(lease_ms)
        .bind(&tick.plugin)
        .bind(&tick.task)
        .bind(tick.scheduled_at)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// Records how a claimed tick ended. A row already marked `interrupted`
/// (its lease ran out and another host's sweep got to it) is left alone.
pub async fn finish(
    db: &Db,
    tick: &Tick,
    outcome: Outcome,
    message: Option<&str>,
) -> Result<(), DbError> {
    let statement = sql(
        db,
        "UPDATE plinth_task_runs SET outcome = ?, message = ?, finished_at = {now}, \
         lease_until = NULL \
         WHERE plugin = ? AND task = ? AND scheduled_at = ? AND outcome = 'running'",
    );
    sqlx::query(&statement)
        .bind(outcome.as_str())
        .bind(message)
        .bind(&tick.plugin)
        .bind(&tick.task)
        .bind(tick.scheduled_at)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// Marks `running` rows whose host is gone as `interrupted` and returns how
/// many: those whose lease has passed; with `at_start` also this host's own
/// (`host_id`: its previous life cannot still run them), or every one when
/// `host_id` is `None` (SQLite, which only one host uses).
pub async fn mark_interrupted(
    db: &Db,
    host_id: Option<&str>,
    at_start: bool,
) -> Result<u64, DbError> {
    let statement = sql(
        db,
        "UPDATE plinth_task_runs SET outcome = 'interrupted', finished_at = {now}, \
         lease_until = NULL, \
         message = 'the host running it stopped before the run finished' \
         WHERE outcome = 'running' AND (? = 'all' OR host_id = ? OR lease_until < {now})",
    );
    let everyone = if at_start && host_id.is_none() {
        "all"
    } else {
        ""
    };
    // No host id is the empty string, so "" matches none.
    let own = if at_start { host_id.unwrap_or("") } else { "" };
    let done = sqlx::query(&statement)
        .bind(everyone)
        .bind(own)
        .execute(db.pool())
        .await?;
    Ok(done.rows_affected())
}

/// When the latest run of a task that did run (not a skipped tick) started,
/// on any host: the base of `min_interval_secs`.
pub async fn last_started(db: &Db, plugin: &str, task: &str) -> Result<Option<i64>, DbError> {
    let statement = sql(
        db,
        "SELECT MAX(started_at) AS t FROM plinth_task_runs \
         WHERE plugin = ? AND task = ? AND outcome <> 'skipped_overlap'",
    );
    let row = sqlx::query(&statement)
        .bind(plugin)
        .bind(task)
        .fetch_one(db.pool())
        .await?;
    Ok(row.try_get("t")?)
}

/// The latest tick recorded for a task: where `missed = "run-once"` looks
/// for ticks missed while no host was up.
pub async fn last_scheduled(db: &Db, plugin: &str, task: &str) -> Result<Option<i64>, DbError> {
    let statement = sql(
        db,
        "SELECT MAX(scheduled_at) AS t FROM plinth_task_runs WHERE plugin = ? AND task = ?",
    );
    let row = sqlx::query(&statement)
        .bind(plugin)
        .bind(task)
        .fetch_one(db.pool())
        .await?;
    Ok(row.try_get("t")?)
}

/// Runs of a task (or of every task of the plugin when `task` is `None`),
/// newest first: at most `limit`, with ids below `before` when given.
pub async fn runs(
    db: &Db,
    plugin: &str,
    task: Option<&str>,
    limit: i64,
    before: Option<i64>,
) -> Result<Vec<TaskRun>, DbError> {
    let statement = sql(
        db,
        "SELECT id, plugin, version, task, scheduled_at, started_at, finished_at, outcome, \
         message, host_id FROM plinth_task_runs \
         WHERE plugin = ? AND (? = '' OR task = ?) AND id < ? \
         ORDER BY id DESC LIMIT ?",
    );
    let task = task.unwrap_or("");
    let rows = sqlx::query(&statement)
        .bind(plugin)
        .bind(task)
        .bind(task)
        .bind(before.unwrap_or(i64::MAX))
        .bind(limit)
        .fetch_all(db.pool())
        .await?;
    rows.iter()
        .map(|row| {
            Ok(TaskRun {
                id: row.try_get("id")?,
                plugin: text(row, "plugin")?,
                version: text(row, "version")?,
                task: text(row, "task")?,
                scheduled_at: row.try_get("scheduled_at")?,
                started_at: row.try_get("started_at")?,
                finished_at: row.try_get("finished_at")?,
                outcome: text(row, "outcome")?,
                message: optional_text(row, "message")?,
                host_id: optional_text(row, "host_id")?,
            })
        })
        .collect()
}

/// Deletes finished runs older than `max_age_ms` and, per task, all but the
/// newest `keep_per_task`. Returns how many rows went.
pub async fn prune(db: &Db, max_age_ms: i64, keep_per_task: i64) -> Result<u64, DbError> {
    let by_age = sql(
        db,
        "DELETE FROM plinth_task_runs WHERE outcome <> 'running' AND started_at < {now} - ?",
    );
    let mut deleted = sqlx::query(&by_age)
        .bind(max_age_ms)
        .execute(db.pool())
        .await?
        .rows_affected();
    let tasks = sqlx::query("SELECT DISTINCT plugin, task FROM plinth_task_runs")
        .fetch_all(db.pool())
        .await?;
    // MySQL cannot delete from a table its own subquery reads, so the
    // cut-off id is read first.
    let cutoff = sql(
        db,
        "SELECT id FROM plinth_task_runs WHERE plugin = ? AND task = ? \
         ORDER BY id DESC LIMIT 1 OFFSET ?",
    );
    let by_count = sql(
        db,
        "DELETE FROM plinth_task_runs WHERE plugin = ? AND task = ? AND id <= ? \
         AND outcome <> 'running'",
    );
    for row in &tasks {
        let (plugin, task) = (text(row, "plugin")?, text(row, "task")?);
        let Some(row) = sqlx::query(&cutoff)
            .bind(&plugin)
            .bind(&task)
            .bind(keep_per_task)
            .fetch_optional(db.pool())
            .await?
        else {
            continue;
        };
        let id: i64 = row.try_get("id")?;
        deleted += sqlx::query(&by_count)
            .bind(&plugin)
            .bind(&task)
            .bind(id)
            .execute(db.pool())
            .await?
            .rows_affected();
    }
    Ok(deleted)
}

/// Every paused (plugin, task).
pub async fn paused(db: &Db) -> Result<Vec<(String, String)>, DbError> {
    let rows = sqlx::query("SELECT plugin, task FROM plinth_task_state WHERE paused = 'yes'")
        .fetch_all(db.pool())
        .await?;
    rows.iter()
        .map(|row| Ok((text(row, "plugin")?, text(row, "task")?)))
        .collect()
}

/// Pauses or resumes a task; kept by plugin and task name, so it outlives
/// restarts and upgrades.
pub async fn set_paused(db: &Db, plugin: &str, task: &str, paused: bool) -> Result<(), DbError> {
    let flag = if paused { "yes" } else { "no" };
    let update = sql(
        db,
        "UPDATE plinth_task_state SET paused = ?, updated_at = ? WHERE plugin = ? AND task = ?",
    );
    let insert = sql(
        db,
        "INSERT INTO plinth_task_state (plugin, task, paused, updated_at) VALUES (?, ?, ?, ?)",
    );
    let now = now_ms();
    // Update first; with no row, insert; a concurrent insert by another
    // admin makes ours a duplicate, and the update then wins.
    for attempt in 0..2 {
        let updated = sqlx::query(&update)
            .bind(flag)
            .bind(now)
            .bind(plugin)
            .bind(task)
            .execute(db.pool())
            .await?;
        if updated.rows_affected() > 0 || attempt == 1 {
            return Ok(());
        }
        let inserted = sqlx::query(&insert)
            .bind(plugin)
            .bind(task)
            .bind(flag)
            .bind(now)
            .execute(db.pool())
            .await;
        match inserted {
            Ok(_) => return Ok(()),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}
