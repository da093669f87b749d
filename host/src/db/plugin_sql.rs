//! Runs a plugin's SQL: check it with [`scope`](super::scope) (the first
//! wall), run exactly the checked text inside the database's own wall for
//! the plugin (the second: a PostgreSQL role, the SQLite authorizer, see
//! [`plugin_roles`](super::plugin_roles) and [`sqlite_wall`](super::sqlite_wall)),
//! and hand back plain values, within bounds:
//!
//! - time: every statement carries a server-side limit (PostgreSQL
//!   `statement_timeout`, MariaDB `max_statement_time`, MySQL
//!   `max_execution_time`, SQLite's progress handler) that ends it no later
//!   than the plugin call's own wall limit, so a call given up on does not
//!   leave its statement running in the database;
//! - share: each plugin may hold only part of the pool at once, and all
//!   plugins together leave connections for the host's own queries;
//! - size: rows are read one at a time and the result fails with a clear
//!   error once it passes a row or byte cap, before the host buffers more.
//!
//! The runtime calls this from the `sql` import; it knows nothing of WIT
//! types. Values are bound through the driver, never spliced into the text.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use sqlx::any::AnyTypeInfoKind;
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, Column, Connection, Row, ValueRef};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::plugin_roles::{self, DbRights};
use super::scope::{self, Allow, CheckedStatement, ScopeError, StatementKind};

/// A statement ready to send: exactly the text the guard checked.
#[derive(Debug)]
struct Ready {
    sql: String,
    read: bool,
    /// `None` when the guard was switched off (test builds).
    placeholders: Option<usize>,
}

impl From<CheckedStatement> for Ready {
    fn from(checked: CheckedStatement) -> Self {
        Self {
            read: checked.kind == StatementKind::Read,
            placeholders: Some(checked.placeholders),
            sql: checked.sql,
        }
    }
}
use super::sqlite_wall::HOST_BUSY_TIMEOUT;
use super::{Db, DbError, Dialect};

/// Most rows one query may return to a plugin; past it the query fails
/// rather than filling host memory.
pub const MAX_ROWS: usize = 50_000;
/// The byte cap of one result when start-up has not set one from the
/// plugins' memory limit.
pub const DEFAULT_MAX_RESULT_BYTES: usize = 16 * 1024 * 1024;
/// The longest one statement of a migration file may run.
pub const MIGRATION_STATEMENT_LIMIT: Duration = Duration::from_secs(600);
/// Statements longer than this are checked on a blocking thread, so parsing
/// never stalls the async runtime.
const CHECK_INLINE_BYTES: usize = 4096;
/// A plugin write on SQLite holds the one write lock; it is stopped before
/// the host's own writes would give up waiting for it.
const SQLITE_PLUGIN_STATEMENT_LIMIT: Duration =
    HOST_BUSY_TIMEOUT.saturating_sub(Duration::from_secs(1));

/// A value bound to a placeholder or read from a column.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

impl SqlValue {
    /// Roughly what the value costs in memory, for the result cap.
    fn size(&self) -> usize {
        match self {
            Self::Text(s) => s.len() + 16,
            Self::Blob(b) => b.len() + 16,
            _ => 16,
        }
    }
}

/// What a statement produced.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlOutcome {
    Rows {
        columns: Vec<String>,
        rows: Vec<Vec<SqlValue>>,
    },
    Affected(u64),
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PluginSqlError {
    /// The scope guard or the database's own wall refused the statement.
    #[error("refused: {0}")]
    Refused(String),
    /// The statement or its parameters are malformed.
    #[error("invalid: {0}")]
    Invalid(String),
    /// The database failed it, or a bound was hit.
    #[error("failed: {0}")]
    Failed(String),
}

impl From<ScopeError> for PluginSqlError {
    fn from(e: ScopeError) -> Self {
        match e {
            ScopeError::Parse(_) | ScopeError::Empty => Self::Invalid(e.to_string()),
            other => Self::Refused(other.to_string()),
        }
    }
}

/// What start-up decides about plugin SQL, from the configuration.
#[derive(Debug, Clone)]
pub struct PluginSqlPolicy {
    /// `mode` is `production`.
    pub production: bool,
    /// `database.plugin_sql_as_superuser`: the operator accepts running
    /// plugin SQL through a PostgreSQL superuser connection in production.
    pub allow_superuser: bool,
    /// Linear memory limit of a plugin instance; one result stays well under it.
    pub plugin_memory_limit_bytes: usize,
}

/// The host's database URL, which may hold its password: never printed.
struct HostUrl(String);

impl std::fmt::Debug for HostUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&super::redact_url(&self.0))
    }
}

impl HostUrl {
    /// The same server and database, connecting as `user` with `password`.
    fn as_user(&self, user: &str, password: &str) -> String {
        let (scheme, rest) = self.0.split_once("://").unwrap_or(("mysql", &self.0));
        let authority_end = rest.find('/').unwrap_or(rest.len());
        let (authority, path) = rest.split_at(authority_end);
        let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        format!("{scheme}://{user}:{password}@{host}{path}")
    }
}

/// Plugin-SQL state shared by every clone of a [`Db`].
#[derive(Debug)]
pub struct PluginSqlShared {
    url: HostUrl,
    /// PostgreSQL and MySQL/MariaDB: each plugin's pool for request SQL,
    /// logged in as its own role or account.
    plugin_pools: Mutex<HashMap<String, sqlx::AnyPool>>,
    rights: DbRights,
    settings: RwLock<Settings>,
    /// Connections all plugins together may hold.
    all_plugins: Arc<Semaphore>,
    per_plugin_cap: usize,
    per_plugin: Mutex<HashMap<String, Arc<Semaphore>>>,
}

#[derive(Debug, Clone)]
struct Settings {
    max_result_bytes: usize,
    production: bool,
    /// Test builds only: the plugin whose statements skip the parser guard,
    /// to prove the database's wall.
    guard_off_for: Option<String>,
}

impl PluginSqlShared {
    /// Shares of a pool of `max_connections`: a quarter (at least one) is
    /// kept for the host, each plugin may hold half of the rest.
    pub(super) fn new(url: &str, rights: DbRights, max_connections: u32) -> Self {
        let max = max_connections.max(1) as usize;
        let reserved = (max / 4).max(1);
        let plugins = max.saturating_sub(reserved).max(1);
        Self {
            url: HostUrl(url.to_owned()),
            plugin_pools: Mutex::new(HashMap::new()),
            rights,
            settings: RwLock::new(Settings {
                max_result_bytes: DEFAULT_MAX_RESULT_BYTES,
                production: false,
                guard_off_for: None,
            }),
            all_plugins: Arc::new(Semaphore::new(plugins)),
            per_plugin_cap: (plugins / 2).max(1),
            per_plugin: Mutex::new(HashMap::new()),
        }
    }

    /// What the host's database user can do for the second wall.
    pub fn rights(&self) -> &DbRights {
        &self.rights
    }

    /// Opens (or replaces) the pool through which `plugin`'s request SQL
    /// connects as its own account.
    pub(super) async fn open_plugin_pool(
        &self,
        plugin: &str,
        user: &str,
        password: &str,
    ) -> Result<(), sqlx::Error> {
        use sqlx::ConnectOptions;
        use std::str::FromStr;
        let options = sqlx::any::AnyConnectOptions::from_str(&self.url.as_user(user, password))?
            .disable_statement_logging();
        let pool = sqlx::any::AnyPoolOptions::new()
            .max_connections(self.per_plugin_cap as u32)
            .acquire_timeout(Duration::from_secs(5))
            // Many plugins each keep a pool: idle logins go back to the server soon.
            .idle_timeout(Duration::from_secs(30))
            .connect_with(options)
            .await?;
        let old = {
            let mut pools = match self.plugin_pools.lock() {
                Ok(p) => p,
                Err(poisoned) => poisoned.into_inner(),
            };
            pools.insert(plugin.to_owned(), pool)
        };
        if let Some(old) = old {
            // Statements in flight on the old pool finish; it closes after.
            tokio::spawn(async move { old.close().await });
        }
        Ok(())
    }

    /// Closes `plugin`'s own pool, e.g. before its role is dropped.
    pub async fn close_plugin_pool(&self, plugin: &str) {
        let pool = {
            let mut pools = match self.plugin_pools.lock() {
                Ok(p) => p,
                Err(poisoned) => poisoned.into_inner(),
            };
            pools.remove(plugin)
        };
        if let Some(pool) = pool {
            super::close_pool(&pool, plugin).await;
        }
    }

    /// A transaction logged in as `plugin`'s own role or account, for its
    /// migrations and install hook: none where it has no pool of its own
    /// (SQLite, whose authorizer walls the host's own connection, or a
    /// user that cannot create roles).
    pub async fn plugin_transaction(
        &self,
        plugin: &str,
    ) -> Result<Option<sqlx::Transaction<'static, Any>>, sqlx::Error> {
        match self.plugin_pool(plugin) {
            Some(pool) => Ok(Some(pool.begin().await?)),
            None => Ok(None),
        }
    }

    /// Whether `plugin`'s statements and migrations skip the parser guard
    /// (test builds, see `switch_off_guard_for_tests`).
    pub fn guard_is_off_for(&self, plugin: &str) -> bool {
        self.settings().guard_off_for.as_deref() == Some(plugin)
    }

    fn plugin_pool(&self, plugin: &str) -> Option<sqlx::AnyPool> {
        let pools = match self.plugin_pools.lock() {
            Ok(p) => p,
            Err(poisoned) => poisoned.into_inner(),
        };
        pools.get(plugin).cloned()
    }

    /// Closes every plugin's own pool.
    pub(super) async fn close(&self) {
        let pools: Vec<(String, sqlx::AnyPool)> = {
            let mut pools = match self.plugin_pools.lock() {
                Ok(p) => p,
                Err(poisoned) => poisoned.into_inner(),
            };
            pools.drain().collect()
        };
        for (plugin, pool) in pools {
            super::close_pool(&pool, &plugin).await;
        }
    }

    /// How many connections one plugin may hold at once.
    pub fn per_plugin_cap(&self) -> usize {
        self.per_plugin_cap
    }

    fn settings(&self) -> Settings {
        match self.settings.read() {
            Ok(s) => s.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Applies start-up's decisions. In production mode it refuses a user
    /// that cannot confine plugins, and a PostgreSQL superuser unless the
    /// operator opted in; in dev mode it says (once) when the parser guard
    /// is the only wall.
    pub fn configure(&self, policy: &PluginSqlPolicy) -> Result<(), DbError> {
        match (self.rights.missing(), policy.production) {
            (Some(missing), true) => {
                return Err(DbError::Rights(format!(
                    "the database user lacks {missing}, which production mode needs so that the \
                     database itself keeps each plugin to its own tables; grant it, or run in dev mode"
                )));
            }
            (Some(missing), false) => tracing::warn!(
                "dev mode: the database user lacks {missing}; plugin SQL is checked by the parser guard alone"
            ),
            _ => {}
        }
        let superuser = matches!(
            self.rights,
            DbRights::PostgresRoles {
                superuser: true,
                ..
            }
        );
        if superuser && policy.production && !policy.allow_superuser {
            return Err(DbError::Rights(
                "the database user is a PostgreSQL superuser; production mode does not run plugin \
                 SQL through one. Connect as a user with CREATEROLE but not SUPERUSER, or set \
                 database.plugin_sql_as_superuser to true to accept the risk"
                    .into(),
            ));
        }
        let mut settings = match self.settings.write() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        settings.production = policy.production;
        settings.max_result_bytes =
            (policy.plugin_memory_limit_bytes / 4).clamp(64 * 1024, DEFAULT_MAX_RESULT_BYTES);
        Ok(())
    }

    /// Test builds only: run `plugin`'s statements without the parser
    /// guard, so a test can show the database refusing them by itself.
    /// Refused in production mode; absent from release builds.
    #[cfg(debug_assertions)]
    pub fn switch_off_guard_for_tests(&self, plugin: &str) -> Result<(), DbError> {
        let mut settings = match self.settings.write() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        if settings.production {
            return Err(DbError::Rights(
                "the parser guard cannot be switched off in production mode".into(),
            ));
        }
        tracing::warn!(
            plugin,
            "test build: the plugin SQL parser guard is switched off"
        );
        settings.guard_off_for = Some(plugin.to_owned());
        Ok(())
    }

    /// A connection slot for `plugin`, waited for until `deadline`.
    async fn permits(
        &self,
        plugin: &str,
        deadline: Instant,
    ) -> Result<(OwnedSemaphorePermit, OwnedSemaphorePermit), PluginSqlError> {
        let own = {
            let mut map = match self.per_plugin.lock() {
                Ok(m) => m,
                Err(poisoned) => poisoned.into_inner(),
            };
            map.entry(plugin.to_owned())
                .or_insert_with(|| Arc::new(Semaphore::new(self.per_plugin_cap)))
                .clone()
        };
        let busy = || {
            PluginSqlError::Failed(format!(
                "the database is busy: {plugin} already has {} statements running, its share of the \
                 connections; try again shortly",
                self.per_plugin_cap
            ))
        };
        let deadline = tokio::time::Instant::from_std(deadline);
        let own = tokio::time::timeout_at(deadline, own.acquire_owned())
            .await
            .map_err(|_| busy())?
            .map_err(|_| busy())?;
        let all = tokio::time::timeout_at(deadline, self.all_plugins.clone().acquire_owned())
            .await
            .map_err(|_| {
                PluginSqlError::Failed(
                    "the database is busy: plugins hold every connection they may use; try again shortly"
                        .into(),
                )
            })?
            .map_err(|_| busy())?;
        Ok((own, all))
    }
}

/// Who runs a statement and until when.
#[derive(Debug, Clone, Copy)]
pub struct PluginSqlCall<'a> {
    pub db: &'a Db,
    pub plugin: &'a str,
    pub table_prefix: &'a str,
    pub allow: Allow,
    /// When the plugin call's wall limit fires; the statement ends by then.
    pub deadline: Instant,
    /// The call's CPU budget; no statement runs longer.
    pub budget: Duration,
}

impl PluginSqlCall<'_> {
    /// The server-side limit of a statement starting now.
    fn statement_limit(&self, pooled: bool) -> Result<Duration, PluginSqlError> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left < Duration::from_millis(2) {
            return Err(PluginSqlError::Failed(
                "the plugin call has no time left for another statement".into(),
            ));
        }
        let mut limit = left.min(self.budget);
        if pooled && self.db.dialect() == Dialect::Sqlite {
            limit = limit.min(SQLITE_PLUGIN_STATEMENT_LIMIT);
        }
        Ok(limit)
    }
}

/// The database-side scope a statement runs in, to be left after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entered {
    /// PostgreSQL: role (when the host may create roles), time-out and
    /// search path set for this transaction.
    Postgres,
    /// SQLite: the authorizer scope with this token.
    Sqlite(i64),
    /// MySQL/MariaDB: a session time limit.
    Mysql,
}

/// Sets up the database's wall for one plugin statement (or a migration's
/// statements) on `conn`.
pub async fn enter(
    conn: &mut AnyConnection,
    db: &Db,
    plugin: &str,
    table_prefix: &str,
    ddl: bool,
    limit: Duration,
) -> Result<Entered, sqlx::Error> {
    let shared = db.plugin_sql();
    let ms = (limit.as_millis() as u64).max(1);
    match shared.rights() {
        DbRights::PostgresRoles { .. } | DbRights::GuardOnly { .. } => {
            plugin_roles::enter(conn, shared.rights(), plugin, ms).await?;
            Ok(Entered::Postgres)
        }
        DbRights::SqliteAuthorizer => {
            let token: i64 = rand::random();
            let max_len = shared.settings().max_result_bytes as i64;
            sqlx::query("SELECT plinth_scope_enter(?, ?, ?, ?, ?)")
                .bind(token)
                .bind(table_prefix)
                .bind(i64::from(ddl))
                .bind(ms as i64)
                .bind(max_len)
                .execute(&mut *conn)
                .await?;
            Ok(Entered::Sqlite(token))
        }
        DbRights::Mysql { mariadb, .. } => {
            let sql = if *mariadb {
                format!(
                    "SET SESSION max_statement_time = {}.{:03}",
                    ms / 1000,
                    ms % 1000
                )
            } else {
                format!("SET SESSION max_execution_time = {ms}")
            };
            sqlx::query(&sql)
                .persistent(false)
                .execute(&mut *conn)
                .await?;
            Ok(Entered::Mysql)
        }
    }
}

/// Undoes [`enter`]; on SQLite returns what the authorizer refused, if
/// anything.
pub async fn leave(
    conn: &mut AnyConnection,
    db: &Db,
    entered: Entered,
) -> Result<Option<String>, sqlx::Error> {
    match entered {
        Entered::Postgres => {
            plugin_roles::leave(conn, db.plugin_sql().rights()).await?;
            Ok(None)
        }
        Entered::Sqlite(token) => {
            let row = sqlx::query("SELECT plinth_scope_leave(?)")
                .bind(token)
                .fetch_one(&mut *conn)
                .await?;
            row.try_get::<Option<String>, _>(0)
        }
        Entered::Mysql => {
            let sql = match db.plugin_sql().rights() {
                DbRights::Mysql { mariadb: true, .. } => "SET SESSION max_statement_time = 0",
                _ => "SET SESSION max_execution_time = 0",
            };
            sqlx::query(sql)
                .persistent(false)
                .execute(&mut *conn)
                .await?;
            Ok(None)
        }
    }
}

/// Runs one statement of a migration file (already checked by
/// [`scope::check_script`]) inside the plugin's wall, DDL allowed. The error
/// is the database's message, or what its wall refused.
pub async fn run_migration_statement(
    conn: &mut AnyConnection,
    db: &Db,
    plugin: &str,
    table_prefix: &str,
    sql: &str,
    limit: Duration,
) -> Result<(), String> {
    let message = |e: sqlx::Error| match e {
        sqlx::Error::Database(db) => db.message().to_owned(),
        other => other.to_string(),
    };
    let entered = enter(conn, db, plugin, table_prefix, true, limit)
        .await
        .map_err(message)?;
    // One checked statement at a time, never from the statement cache (the
    // SQLite authorizer is consulted when a statement is prepared).
    let result = sqlx::query(sql).persistent(false).execute(&mut *conn).await;
    let left = leave(conn, db, entered).await;
    match (result, left) {
        (Err(_), Ok(Some(denied))) => Err(format!("the database refused it: {denied}")),
        (Err(e), _) | (Ok(_), Err(e)) => Err(message(e)),
        (Ok(_), Ok(_)) => Ok(()),
    }
}

/// Checks `statement` with the guard (off the async runtime when long).
async fn check(
    call: &PluginSqlCall<'_>,
    statement: &str,
    guard_off: bool,
) -> Result<Ready, PluginSqlError> {
    if guard_off {
        return Ok(Ready {
            sql: statement.to_owned(),
            read: false,
            placeholders: None,
        });
    }
    let dialect = call.db.dialect();
    if statement.len() <= CHECK_INLINE_BYTES {
        return Ok(
            scope::check_statement(dialect, call.table_prefix, statement, call.allow)?.into(),
        );
    }
    let prefix = call.table_prefix.to_owned();
    let text = statement.to_owned();
    let allow = call.allow;
    tokio::task::spawn_blocking(move || scope::check_statement(dialect, &prefix, &text, allow))
        .await
        .map_err(|_| PluginSqlError::Invalid("the statement could not be checked".into()))?
        .map(Ready::from)
        .map_err(PluginSqlError::from)
}

/// A pooled connection that is closed, not returned to the pool, when the
/// plugin call is given up on mid-statement: it may still carry the
/// plugin's scope or time limit.
struct PooledSession {
    conn: PoolConnection<Any>,
    finished: bool,
}

impl Drop for PooledSession {
    fn drop(&mut self) {
        if !self.finished {
            self.conn.close_on_drop();
        }
    }
}

/// Checks and runs one plugin statement on a connection of its own from the
/// pool, within the plugin's share of connections.
pub async fn run_pooled(
    call: &PluginSqlCall<'_>,
    statement: &str,
    params: Vec<SqlValue>,
    want_rows: bool,
) -> Result<SqlOutcome, PluginSqlError> {
    let shared = call.db.plugin_sql();
    let settings = shared.settings();
    let guard_off = settings.guard_off_for.as_deref() == Some(call.plugin);
    let checked = check(call, statement, guard_off).await?;
    check_params(&checked, &params)?;
    let _permits = shared.permits(call.plugin, call.deadline).await?;
    // The plugin logs in as its own role or account, when it has one.
    let pool = shared
        .plugin_pool(call.plugin)
        .unwrap_or_else(|| call.db.pool().clone());
    let conn = tokio::time::timeout_at(
        tokio::time::Instant::from_std(call.deadline),
        pool.acquire(),
    )
    .await
    .map_err(|_| PluginSqlError::Failed("database unavailable: no connection in time".into()))?
    .map_err(|e| PluginSqlError::Failed(format!("database unavailable: {e}")))?;
    let mut session = PooledSession {
        conn,
        finished: false,
    };
    let limit = call.statement_limit(true)?;
    // A pooled connection given up on mid-statement is closed instead.
    let mut open = None;
    let outcome = if call.db.dialect() == Dialect::Postgres {
        // Role and limits are set for this transaction only.
        let mut tx = session.conn.begin().await.map_err(failed)?;
        let outcome = run_scoped(
            call, &mut tx, &checked, params, want_rows, limit, false, &mut open,
        )
        .await;
        match &outcome {
            Ok(_) => tx.commit().await.map_err(failed)?,
            Err(_) => tx.rollback().await.map_err(failed)?,
        }
        outcome
    } else {
        run_scoped(
            call,
            &mut session.conn,
            &checked,
            params,
            want_rows,
            limit,
            true,
            &mut open,
        )
        .await
    };
    session.finished = true;
    outcome
}

/// Checks and runs one plugin statement inside the host's transaction `conn`
/// (the install hook's), leaving the transaction in the host's own role.
/// While the statement runs, `open` holds its scope: if the call is given up
/// on mid-statement, the host passes it to [`leave`] before it goes on using
/// the transaction.
pub async fn run_in_transaction(
    call: &PluginSqlCall<'_>,
    conn: &mut AnyConnection,
    statement: &str,
    params: Vec<SqlValue>,
    want_rows: bool,
    open: &mut Option<Entered>,
) -> Result<SqlOutcome, PluginSqlError> {
    let settings = call.db.plugin_sql().settings();
    let guard_off = settings.guard_off_for.as_deref() == Some(call.plugin);
    let checked = check(call, statement, guard_off).await?;
    check_params(&checked, &params)?;
    let limit = call.statement_limit(false)?;
    run_scoped(call, conn, &checked, params, want_rows, limit, true, open).await
}

/// A plugin's own transaction (the `sql-transaction` import): one of the
/// host's connections, held for the rest of the call within the plugin's
/// share, so its statements run in the host's role and enter the plugin's
/// wall one statement at a time ([`run_in_transaction`]), and a publish can
/// write the outbox in the same transaction.
#[derive(Debug)]
pub struct PluginTransaction {
    pub tx: sqlx::Transaction<'static, Any>,
    _permits: (OwnedSemaphorePermit, OwnedSemaphorePermit),
}

/// Opens `call.plugin`'s transaction, waiting for a connection of its share
/// until the call's deadline.
pub async fn begin_transaction(
    call: &PluginSqlCall<'_>,
) -> Result<PluginTransaction, PluginSqlError> {
    let permits = call
        .db
        .plugin_sql()
        .permits(call.plugin, call.deadline)
        .await?;
    let deadline = tokio::time::Instant::from_std(call.deadline);
    // Immediate on SQLite, like the host's own: a plugin's read-then-write
    // must not fail because another connection wrote in between.
    let tx = tokio::time::timeout_at(deadline, call.db.begin())
        .await
        .map_err(|_| PluginSqlError::Failed("database unavailable: no connection in time".into()))?
        .map_err(|e| PluginSqlError::Failed(format!("database unavailable: {e}")))?;
    Ok(PluginTransaction {
        tx,
        _permits: permits,
    })
}

/// A savepoint step inside the host's transaction, where a plugin's
/// `begin`/`commit`/`rollback` nest (an event delivery).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Savepoint {
    Open,
    Release,
    RollBack,
}

pub async fn savepoint(conn: &mut AnyConnection, step: Savepoint) -> Result<(), PluginSqlError> {
    let sql = match step {
        Savepoint::Open => "SAVEPOINT plinth_plugin",
        Savepoint::Release => "RELEASE SAVEPOINT plinth_plugin",
        Savepoint::RollBack => "ROLLBACK TO SAVEPOINT plinth_plugin",
    };
    sqlx::query(sql)
        .persistent(false)
        .execute(&mut *conn)
        .await
        .map(|_| ())
        .map_err(failed)
}

fn check_params(checked: &Ready, params: &[SqlValue]) -> Result<(), PluginSqlError> {
    match checked.placeholders {
        Some(n) if n != params.len() => Err(PluginSqlError::Invalid(format!(
            "the statement has {n} placeholder(s) but {} parameter(s) were given",
            params.len()
        ))),
        _ => Ok(()),
    }
}

#[allow(clippy::too_many_arguments)]
async fn run_scoped(
    call: &PluginSqlCall<'_>,
    conn: &mut AnyConnection,
    checked: &Ready,
    params: Vec<SqlValue>,
    want_rows: bool,
    limit: Duration,
    leave_after: bool,
    open: &mut Option<Entered>,
) -> Result<SqlOutcome, PluginSqlError> {
    let ddl = call.allow == Allow::DmlAndDdl;
    let entered = enter(conn, call.db, call.plugin, call.table_prefix, ddl, limit)
        .await
        .map_err(failed)?;
    *open = Some(entered);
    let result = execute(call, conn, checked, params, want_rows).await;
    // After a failed statement PostgreSQL refuses everything until the
    // transaction ends; the host's transaction fails with it anyway.
    let denied = if leave_after || matches!(entered, Entered::Sqlite(_)) {
        let left = leave(conn, call.db, entered).await;
        *open = None;
        match left {
            Ok(denied) => denied,
            Err(e) if result.is_ok() => return Err(failed(e)),
            Err(_) => None,
        }
    } else {
        *open = None;
        None
    };
    result.map_err(|e| explain(e, denied, call, limit))
}

/// Turns a database error into what the plugin author can act on.
fn explain(
    e: sqlx::Error,
    denied: Option<String>,
    call: &PluginSqlCall<'_>,
    limit: Duration,
) -> PluginSqlError {
    if let Some(reason) = denied {
        return PluginSqlError::Refused(format!("the database refused it: {reason}"));
    }
    let sqlx::Error::Database(db) = &e else {
        return failed(e);
    };
    let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
    let message = db.message();
    let timed_out = code == "57014"
        || message.contains("max_statement_time")
        || message.contains("maximum statement execution time")
        || message == "interrupted";
    if timed_out {
        return PluginSqlError::Failed(format!(
            "the statement ran past its time limit of {} ms and was stopped by the database",
            limit.as_millis()
        ));
    }
    if code == "42501"
        || message.contains("not authorized")
        || message.contains("command denied")
        || message.starts_with("Access denied")
    {
        return PluginSqlError::Refused(format!(
            "the database refused it: {message} (this plugin's tables start with `{}`)",
            call.table_prefix
        ));
    }
    if message.contains("string or blob too big") {
        return PluginSqlError::Failed(too_big(call.db.plugin_sql().settings().max_result_bytes));
    }
    failed(e)
}

fn too_big(cap: usize) -> String {
    format!(
        "the query's result is larger than {} MiB, the most one statement may return; \
         select fewer rows or columns, or add a LIMIT",
        cap as f64 / (1024.0 * 1024.0)
    )
}

async fn execute(
    call: &PluginSqlCall<'_>,
    conn: &mut AnyConnection,
    checked: &Ready,
    params: Vec<SqlValue>,
    want_rows: bool,
) -> Result<SqlOutcome, sqlx::Error> {
    let dialect = call.db.dialect();
    // SQLite's authorizer judges a statement when it is prepared, so plugin
    // statements never come from the statement cache there.
    let mut query = sqlx::query(&checked.sql).persistent(dialect != Dialect::Sqlite);
    for param in params {
        query = match param {
            // An untyped NULL: PostgreSQL casts an int4 NULL to text or bigint
            // columns on assignment.
            SqlValue::Null => query.bind(Option::<i32>::None),
            SqlValue::Integer(i) => query.bind(i),
            SqlValue::Real(f) => query.bind(f),
            SqlValue::Text(s) => query.bind(s),
            SqlValue::Blob(b) => query.bind(b),
        };
    }
    if !(want_rows || checked.read) {
        let result = query.execute(&mut *conn).await?;
        return Ok(SqlOutcome::Affected(result.rows_affected()));
    }
    let cap = call.db.plugin_sql().settings().max_result_bytes;
    let mut stream = query.fetch(&mut *conn);
    let mut columns: Option<Vec<String>> = None;
    let mut rows = Vec::new();
    let mut bytes = 0usize;
    while let Some(row) = stream.try_next().await? {
        if columns.is_none() {
            let names: Vec<String> = row.columns().iter().map(|c| c.name().to_owned()).collect();
            bytes += names.iter().map(|n| n.len() + 16).sum::<usize>();
            columns = Some(names);
        }
        if rows.len() == MAX_ROWS {
            return Err(bound(format!(
                "the query returned more than {MAX_ROWS} rows; add a LIMIT"
            )));
        }
        let values = decode_row(&row, dialect)?;
        bytes += values.iter().map(SqlValue::size).sum::<usize>();
        if bytes > cap {
            return Err(bound(too_big(cap)));
        }
        rows.push(values);
    }
    Ok(SqlOutcome::Rows {
        columns: columns.unwrap_or_default(),
        rows,
    })
}

/// A bound hit while reading, carried as a protocol error so that it stays
/// distinct from the database's own errors.
fn bound(message: String) -> sqlx::Error {
    sqlx::Error::Protocol(message)
}

fn failed(e: sqlx::Error) -> PluginSqlError {
    match e {
        sqlx::Error::Database(db) => PluginSqlError::Failed(db.message().to_owned()),
        sqlx::Error::Protocol(message) => PluginSqlError::Failed(message),
        other => {
            let text = other.to_string();
            if text.contains("Any driver does not support") {
                PluginSqlError::Failed(format!(
                    "{text}: the host cannot pass this column type to plugins; cast it to text \
                     in the query (e.g. CAST(col AS TEXT))"
                ))
            } else {
                PluginSqlError::Failed(text)
            }
        }
    }
}

fn decode_row(row: &sqlx::any::AnyRow, dialect: Dialect) -> Result<Vec<SqlValue>, sqlx::Error> {
    let mut out = Vec::with_capacity(row.columns().len());
    for i in 0..row.columns().len() {
        let raw = row.try_get_raw(i)?;
        if raw.is_null() {
            out.push(SqlValue::Null);
            continue;
        }
        let kind = raw.type_info().kind();
        let value = match kind {
            AnyTypeInfoKind::Bool => SqlValue::Integer(i64::from(row.try_get::<bool, _>(i)?)),
            AnyTypeInfoKind::SmallInt | AnyTypeInfoKind::Integer | AnyTypeInfoKind::BigInt => {
                SqlValue::Integer(row.try_get::<i64, _>(i)?)
            }
            AnyTypeInfoKind::Real | AnyTypeInfoKind::Double => {
                SqlValue::Real(row.try_get::<f64, _>(i)?)
            }
            AnyTypeInfoKind::Text => SqlValue::Text(row.try_get::<String, _>(i)?),
            AnyTypeInfoKind::Blob => {
                let bytes = row.try_get::<Vec<u8>, _>(i)?;
                // MySQL reports TEXT columns as BLOBs through sqlx's Any
                // driver; hand valid UTF-8 back as text (the SDK converts
                // either way when a plugin asks for bytes).
                match (dialect, String::from_utf8(bytes)) {
                    (Dialect::Mysql, Ok(text)) => SqlValue::Text(text),
                    (Dialect::Mysql, Err(e)) => SqlValue::Blob(e.into_bytes()),
                    (_, Ok(text)) => SqlValue::Blob(text.into_bytes()),
                    (_, Err(e)) => SqlValue::Blob(e.into_bytes()),
                }
            }
            AnyTypeInfoKind::Null => SqlValue::Null,
        };
        out.push(value);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(production: bool, allow_superuser: bool) -> PluginSqlPolicy {
        PluginSqlPolicy {
            production,
            allow_superuser,
            plugin_memory_limit_bytes: 64 * 1024 * 1024,
        }
    }

    fn postgres(superuser: bool) -> DbRights {
        DbRights::PostgresRoles {
            tag: "0000".into(),
            schema: "public".into(),
            search_path: "public".into(),
            superuser,
        }
    }

    #[test]
    fn production_refuses_a_user_that_cannot_confine_plugins() {
        let guard_only = DbRights::GuardOnly {
            missing: "CREATEROLE".into(),
        };
        let err = PluginSqlShared::new("", guard_only.clone(), 8)
            .configure(&policy(true, false))
            .expect_err("refused")
            .to_string();
        assert!(err.contains("lacks CREATEROLE"), "{err}");
        PluginSqlShared::new("", guard_only, 8)
            .configure(&policy(false, false))
            .expect("dev mode runs with the guard alone");
    }

    #[test]
    fn production_refuses_a_superuser_unless_the_operator_opts_in() {
        let err = PluginSqlShared::new("", postgres(true), 8)
            .configure(&policy(true, false))
            .expect_err("refused")
            .to_string();
        assert!(err.contains("database.plugin_sql_as_superuser"), "{err}");
        PluginSqlShared::new("", postgres(true), 8)
            .configure(&policy(true, true))
            .expect("opted in");
        PluginSqlShared::new("", postgres(false), 8)
            .configure(&policy(true, false))
            .expect("CREATEROLE without SUPERUSER");
        PluginSqlShared::new("", postgres(true), 8)
            .configure(&policy(false, false))
            .expect("dev mode allows a superuser");
    }

    #[test]
    fn the_guard_switch_is_refused_in_production() {
        let shared = PluginSqlShared::new("", postgres(false), 8);
        shared.configure(&policy(true, false)).expect("configured");
        assert!(shared.switch_off_guard_for_tests("probe").is_err());
    }

    #[test]
    fn shares_leave_connections_for_the_host() {
        let shared = PluginSqlShared::new("", DbRights::SqliteAuthorizer, 8);
        assert_eq!(shared.all_plugins.available_permits(), 6);
        assert_eq!(shared.per_plugin_cap(), 3);
        let tiny = PluginSqlShared::new("", DbRights::SqliteAuthorizer, 1);
        assert_eq!(tiny.per_plugin_cap(), 1);
    }

    #[test]
    fn the_result_cap_stays_under_the_plugin_memory_limit() {
        let shared = PluginSqlShared::new("", DbRights::SqliteAuthorizer, 8);
        let mut small = policy(false, false);
        small.plugin_memory_limit_bytes = 8 * 1024 * 1024;
        shared.configure(&small).expect("configured");
        assert_eq!(shared.settings().max_result_bytes, 2 * 1024 * 1024);
    }
}
