//! The install journal: an append-only record, in the database, of every
//! step each plugin operation reached.
//!
//! The step that makes an install take effect ([`Step::Committed`]) is
//! written inside the same transaction as the plugin's migrations, install
//! hook and `plinth_plugins` row, so after a crash the journal and the
//! installed set can never disagree about whether an install happened.

use sqlx::{AnyConnection, Row};

use crate::db::{Db, DbError, conn_dialect, host_sql, now_ms};
use crate::live::LiveFeed;

/// What an operation does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Install,
    Upgrade,
    Rollback,
    Enable,
    Disable,
    Remove,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Install => "install",
            Self::Upgrade => "upgrade",
            Self::Rollback => "rollback",
            Self::Enable => "enable",
            Self::Disable => "disable",
            Self::Remove => "remove",
        }
    }
}

/// The steps of an operation, in order. Not every operation has every step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Step {
    /// The operation was accepted; nothing changed yet.
    Started,
    /// The package was unpacked into staging and its manifest checked.
    Unpacked,
    /// The component compiled (or came from the cache) and linked.
    Compiled,
    /// The files are in `data/plugins/<name>/<version>/`.
    Placed,
    /// Migrations, install hook and the installed-set row committed. From
    /// here the new version is the installed one.
    Committed,
    /// The registry serves the new version.
    Swapped,
    /// `config.json` reflects the installed set. The operation is over.
    Done,
    /// The operation failed; nothing it did is in effect.
    Failed,
    /// Found unfinished after a restart and settled.
    Recovered,
}

impl Step {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Started => "started",
            Self::Unpacked => "unpacked",
            Self::Compiled => "compiled",
            Self::Placed => "placed",
            Self::Committed => "committed",
            Self::Swapped => "swapped",
            Self::Done => "done",
            Self::Failed => "failed",
            Self::Recovered => "recovered",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            Self::Started,
            Self::Unpacked,
            Self::Compiled,
            Self::Placed,
            Self::Committed,
            Self::Swapped,
            Self::Done,
            Self::Failed,
            Self::Recovered,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }

    /// Whether the operation is over once this step is written.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Done | Self::Failed | Self::Recovered)
    }
}

/// One journal row.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct JournalEntry {
    pub op_id: String,
    pub seq: i64,
    pub plugin: String,
    pub operation: String,
    pub from_version: Option<String>,
    pub to_version: Option<String>,
    pub step: String,
    pub message: Option<String>,
    pub at: i64,
}

/// An operation in progress: appends its steps to the journal.
#[derive(Debug, Clone)]
pub struct InstallJournal {
    pub op_id: String,
    pub plugin: String,
    pub operation: Operation,
    pub from_version: Option<String>,
    pub to_version: Option<String>,
    seq: i64,
    /// Where each step is also announced as it is written.
    feed: LiveFeed,
}

impl InstallJournal {
    pub fn new(
        feed: &LiveFeed,
        plugin: &str,
        operation: Operation,
        from_version: Option<String>,
        to_version: Option<String>,
    ) -> Self {
        let op_id = format!("{:x}-{:08x}", now_ms(), rand::random::<u32>());
        Self {
            op_id,
            plugin: plugin.to_owned(),
            operation,
            from_version,
            to_version,
            seq: 0,
            feed: feed.clone(),
        }
    }

    /// Continues an operation found in the journal (after a restart).
    pub fn resume(feed: &LiveFeed, last: &JournalEntry) -> Self {
        let operation = [
            Operation::Install,
            Operation::Upgrade,
            Operation::Rollback,
            Operation::Enable,
            Operation::Disable,
            Operation::Remove,
        ]
        .into_iter()
        .find(|o| o.as_str() == last.operation)
        .unwrap_or(Operation::Install);
        Self {
            op_id: last.op_id.clone(),
            plugin: last.plugin.clone(),
            operation,
            from_version: last.from_version.clone(),
            to_version: last.to_version.clone(),
            seq: last.seq,
            feed: feed.clone(),
        }
    }

    /// Appends `step` on the pool.
    pub async fn step(
        &mut self,
        db: &Db,
        step: Step,
        message: Option<&str>,
    ) -> Result<(), DbError> {
        let mut conn = db.pool().acquire().await?;
        self.step_on(&mut conn, step, message).await
    }

    /// Appends `step` on `conn`, e.g. inside the install transaction.
    pub async fn step_on(
        &mut self,
        conn: &mut AnyConnection,
        step: Step,
        message: Option<&str>,
    ) -> Result<(), DbError> {
        self.seq += 1;
        let sql = host_sql(
            conn_dialect(conn),
            "INSERT INTO plinth_install_journal \
             (op_id, seq, plugin, operation, from_version, to_version, step, message, at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        );
        let message = message.map(|m| m.chars().take(2000).collect::<String>());
        let at = now_ms();
        sqlx::query(&sql)
            .bind(&self.op_id)
            .bind(self.seq)
            .bind(&self.plugin)
            .bind(self.operation.as_str())
            .bind(self.from_version.clone())
            .bind(self.to_version.clone())
            .bind(step.as_str())
            .bind(message.clone())
            .bind(at)
            .execute(&mut *conn)
            .await?;
        // `committed` is announced before its transaction commits; should
        // the commit fail, the `failed` step that follows says so.
        if self.feed.is_watched() {
            self.feed.publish(
                "journal",
                &JournalEntry {
                    op_id: self.op_id.clone(),
                    seq: self.seq,
                    plugin: self.plugin.clone(),
                    operation: self.operation.as_str().to_owned(),
                    from_version: self.from_version.clone(),
                    to_version: self.to_version.clone(),
                    step: step.as_str().to_owned(),
                    message,
                    at,
                },
            );
        }
        // `committed` is written inside the install transaction; its fault
        // point is after the commit, where the callers put it.
        if step != Step::Committed {
            crate::install::fault::after_step(step);
        }
        Ok(())
    }
}

fn entry(row: &sqlx::any::AnyRow) -> Result<JournalEntry, DbError> {
    Ok(JournalEntry {
        op_id: crate::db::store::text(row, "op_id")?,
        seq: row.try_get("seq")?,
        plugin: crate::db::store::text(row, "plugin")?,
        operation: crate::db::store::text(row, "operation")?,
        from_version: crate::db::store::optional_text(row, "from_version")?,
        to_version: crate::db::store::optional_text(row, "to_version")?,
        step: crate::db::store::text(row, "step")?,
        message: crate::db::store::optional_text(row, "message")?,
        at: row.try_get("at")?,
    })
}

const COLUMNS: &str = "op_id, seq, plugin, operation, from_version, to_version, step, message, at";

/// The newest `limit` journal rows, optionally of one plugin, newest first.
pub async fn recent(
    db: &Db,
    plugin: Option<&str>,
    limit: i64,
) -> Result<Vec<JournalEntry>, DbError> {
    let rows = match plugin {
        Some(plugin) => {
            let sql = host_sql(
                db.dialect(),
                &format!(
                    "SELECT {COLUMNS} FROM plinth_install_journal WHERE plugin = ? \
                     ORDER BY at DESC, op_id DESC, seq DESC LIMIT ?"
                ),
            )
            .into_owned();
            sqlx::query(&sql)
                .bind(plugin)
                .bind(limit)
                .fetch_all(db.pool())
                .await?
        }
        None => {
            let sql = host_sql(
                db.dialect(),
                &format!(
                    "SELECT {COLUMNS} FROM plinth_install_journal \
                     ORDER BY at DESC, op_id DESC, seq DESC LIMIT ?"
                ),
            )
            .into_owned();
            sqlx::query(&sql).bind(limit).fetch_all(db.pool()).await?
        }
    };
    rows.iter().map(entry).collect()
}

/// Operations whose last step is not final: they were cut short.
pub async fn unfinished(db: &Db) -> Result<Vec<JournalEntry>, DbError> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM plinth_install_journal j WHERE seq = \
         (SELECT MAX(seq) FROM plinth_install_journal k WHERE k.op_id = j.op_id) \
         ORDER BY at"
    ))
    .fetch_all(db.pool())
    .await?;
    let mut out = Vec::new();
    for row in &rows {
        let last = entry(row)?;
        if !Step::parse(&last.step).is_some_and(Step::is_final) {
            out.push(last);
        }
    }
    Ok(out)
}

/// Every step of one operation, in order.
pub async fn steps_of(db: &Db, op_id: &str) -> Result<Vec<JournalEntry>, DbError> {
    let sql = host_sql(
        db.dialect(),
        &format!("SELECT {COLUMNS} FROM plinth_install_journal WHERE op_id = ? ORDER BY seq"),
    )
    .into_owned();
    let rows = sqlx::query(&sql).bind(op_id).fetch_all(db.pool()).await?;
    rows.iter().map(entry).collect()
}
