//! The host's database: one sqlx `Any` pool over SQLite, PostgreSQL or
//! MySQL/MariaDB, chosen by URL, and what plugins may use of it.
//!
//! Everything that speaks SQL lives below this module: the migration ledger
//! ([`migrate`]), the guard that keeps a plugin's SQL inside its own tables
//! ([`scope`], the first wall), the database's own wall around each plugin
//! ([`plugin_roles`] on PostgreSQL, [`sqlite_wall`] on SQLite), the bridge
//! that runs a plugin's checked statements within its bounds
//! ([`plugin_sql`]), the host's own tables ([`store`], with the grants
//! of plugin-declared codes in [`plugin_grants`]) and its identity
//! tables: users, sessions, tokens, grants, audit ([`accounts`]). Handlers and the
//! installer call functions here; they never build SQL strings themselves.
//!
//! `Any` is used so that one code path serves three dialects. Its cost is a
//! narrower set of column types (integers, floats, text, blobs, booleans),
//! which is why host tables keep times as epoch milliseconds.

pub mod accounts;
pub mod agent_ledger;
pub mod migrate;
pub mod outbox;
pub mod plugin_grants;
pub mod plugin_roles;
pub mod plugin_sql;
pub mod scope;
pub mod sqlite_wall;
pub mod store;
pub mod task_runs;

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, ConnectOptions, Executor};

/// How long [`Db::close`] waits for connections still in use.
const CLOSE_WAIT: Duration = Duration::from_secs(10);

/// The SQL dialect of the host database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dialect {
    Sqlite,
    Postgres,
    Mysql,
}

impl Dialect {
    /// Works out the dialect from a database URL's scheme.
    pub fn from_url(url: &str) -> Result<Self, DbError> {
        let scheme = url.split(':').next().unwrap_or_default();
        match scheme {
            "sqlite" => Ok(Self::Sqlite),
            "postgres" | "postgresql" => Ok(Self::Postgres),
            "mysql" | "mariadb" => Ok(Self::Mysql),
            other => Err(DbError::UnsupportedUrl(other.to_owned())),
        }
    }

    /// The folder name used for this dialect in `common-sql/` and in a
    /// plugin's `sql/` folder.
    pub fn dir_name(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
            Self::Mysql => "mysql",
        }
    }

    /// Whether DDL can run inside a transaction and be rolled back with it.
    /// MySQL commits implicitly on every DDL statement.
    pub fn transactional_ddl(self) -> bool {
        !matches!(self, Self::Mysql)
    }
}

impl std::fmt::Display for Dialect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.dir_name())
    }
}

/// Errors opening or talking to the host database.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error(
        "database URL scheme \"{0}\" is not supported (use sqlite://, postgres:// or mysql://)"
    )]
    UnsupportedUrl(String),
    #[error("cannot create the folder for the SQLite file {path}: {source}")]
    CreateDir {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot open the database at {url}: {source}")]
    Connect { url: String, source: sqlx::Error },
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
    /// The database user cannot give plugins what this mode requires.
    #[error("{0}")]
    Rights(String),
}

/// A handle on the host database. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Db {
    pool: AnyPool,
    dialect: Dialect,
    plugin_sql: Arc<plugin_sql::PluginSqlShared>,
}

/// How to open the database.
#[derive(Debug, Clone)]
pub struct DbOptions {
    pub url: String,
    pub max_connections: u32,
    pub connect_timeout: Duration,
}

impl Db {
    /// Opens the pool and checks that one connection works. For SQLite the
    /// file (and its folder) is created when missing, and WAL mode is used
    /// so that readers do not block on the installer's write transaction.
    pub async fn connect(options: &DbOptions) -> Result<Self, DbError> {
        sqlx::any::install_default_drivers();
        let dialect = Dialect::from_url(&options.url)?;
        let mut url = options.url.clone();
        if dialect == Dialect::Sqlite {
            sqlite_wall::register();
            let path = sqlite_path(&url);
            if let Some(parent) = Path::new(&path)
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
            {
                std::fs::create_dir_all(parent).map_err(|source| DbError::CreateDir {
                    path: parent.display().to_string(),
                    source,
                })?;
            }
            if !url.contains("mode=") {
                url.push(if url.contains('?') { '&' } else { '?' });
                url.push_str("mode=rwc");
            }
        }
        let connect_options = AnyConnectOptions::from_str(&url)
            .map_err(|source| DbError::Connect {
                url: redact_url(&options.url),
                source,
            })?
            .disable_statement_logging();
        let pool = AnyPoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(options.connect_timeout)
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    match dialect {
                        Dialect::Sqlite => {
                            conn.execute(
                                format!(
                                    "PRAGMA journal_mode=WAL; PRAGMA busy_timeout={}; \
                                     PRAGMA foreign_keys=ON; PRAGMA synchronous=NORMAL;",
                                    sqlite_wall::HOST_BUSY_TIMEOUT.as_millis()
                                )
                                .as_str(),
                            )
                            .await?;
                        }
                        // MySQL keeps its default quoting: the scope guard parses
                        // with sqlparser's MySQL dialect, and the two must agree
                        // on what a quoted name is.
                        Dialect::Mysql | Dialect::Postgres => {}
                    }
                    Ok(())
                })
            })
            .connect_with(connect_options)
            .await
            .map_err(|source| DbError::Connect {
                url: redact_url(&options.url),
                source,
            })?;
        let rights = plugin_roles::probe(&pool, dialect)
            .await
            .map_err(|source| DbError::Connect {
                url: redact_url(&options.url),
                source,
            })?;
        let plugin_sql = Arc::new(plugin_sql::PluginSqlShared::new(
            &options.url,
            rights,
            options.max_connections,
        ));
        Ok(Self {
            pool,
            dialect,
            plugin_sql,
        })
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Opens one of the host's own write transactions. On SQLite it takes
    /// the write lock at once (`BEGIN IMMEDIATE`): a deferred transaction
    /// that reads and then writes fails at once with "database is locked"
    /// when another connection wrote in between (the busy time-out does not
    /// cover that upgrade), where an immediate one waits its turn.
    pub async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, sqlx::Error> {
        match self.dialect {
            Dialect::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Dialect::Postgres | Dialect::Mysql => self.pool.begin().await,
        }
    }

    /// Plugin-SQL rights, policy and connection shares.
    pub fn plugin_sql(&self) -> &plugin_sql::PluginSqlShared {
        &self.plugin_sql
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// A cheap round trip, used by `/healthz`.
    pub async fn ping(&self) -> Result<(), DbError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Closes every pool; see [`close_pool`].
    pub async fn close(&self) {
        self.plugin_sql.close().await;
        close_pool(&self.pool, "host").await;
    }
}

/// Closes `pool`, waiting a bounded time for connections in use: sqlx's
/// `close` waits for each to come back, and neither shutdown nor a
/// plugin's removal may hang on one that a cancelled call never returns.
pub(crate) async fn close_pool(pool: &AnyPool, whose: &str) {
    if tokio::time::timeout(CLOSE_WAIT, pool.close())
        .await
        .is_err()
    {
        tracing::warn!(
            pool = whose,
            "database: connections still in use after {} s; closed without waiting for them",
            CLOSE_WAIT.as_secs()
        );
    }
}

/// The file path inside a `sqlite://` URL, without query parameters.
pub fn sqlite_path(url: &str) -> String {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    rest.split('?').next().unwrap_or_default().to_owned()
}

pub use plinth_package::db_url::redact_url;

/// The dialect behind an open connection.
pub fn conn_dialect(conn: &sqlx::AnyConnection) -> Dialect {
    match conn.backend_name() {
        "PostgreSQL" => Dialect::Postgres,
        "MySQL" => Dialect::Mysql,
        _ => Dialect::Sqlite,
    }
}

/// Host SQL is written once with `?` placeholders; PostgreSQL wants `$1`,
/// `$2`, … instead. Only for the host's own statements, which never carry a
/// `?` inside a string literal (plugin SQL is rewritten by [`scope`], which
/// tokenizes properly).
pub fn host_sql(dialect: Dialect, sql: &str) -> std::borrow::Cow<'_, str> {
    if dialect != Dialect::Postgres || !sql.contains('?') {
        return std::borrow::Cow::Borrowed(sql);
    }
    let mut out = String::with_capacity(sql.len() + 8);
    let mut n = 0;
    for ch in sql.chars() {
        if ch == '?' {
            n += 1;
            out.push('$');
            out.push_str(&n.to_string());
        } else {
            out.push(ch);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Milliseconds since the Unix epoch, the host's portable timestamp.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dialect_from_url() {
        assert_eq!(
            Dialect::from_url("sqlite://x.db").ok(),
            Some(Dialect::Sqlite)
        );
        assert_eq!(
            Dialect::from_url("postgresql://h/db").ok(),
            Some(Dialect::Postgres)
        );
        assert_eq!(
            Dialect::from_url("mariadb://h/db").ok(),
            Some(Dialect::Mysql)
        );
        assert!(Dialect::from_url("oracle://h").is_err());
    }

    #[test]
    fn host_sql_numbers_placeholders_for_postgres_only() {
        let sql = "UPDATE t SET a = ? WHERE b = ?";
        assert_eq!(
            host_sql(Dialect::Postgres, sql),
            "UPDATE t SET a = $1 WHERE b = $2"
        );
        assert_eq!(host_sql(Dialect::Sqlite, sql), sql);
        assert_eq!(host_sql(Dialect::Mysql, sql), sql);
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("postgres://u:pw@h:5432/d"),
            "postgres://u:***@h:5432/d"
        );
        assert_eq!(redact_url("mysql://root@h/d"), "mysql://root@h/d");
        assert_eq!(redact_url("sqlite://data/p.db"), "sqlite://data/p.db");
    }

    /// A host transaction that reads, then writes after another connection
    /// wrote, still commits on SQLite: the other write waits for it
    /// instead of making this one fail with "database is locked".
    #[tokio::test]
    async fn a_host_transaction_that_reads_then_writes_is_not_beaten_by_another_write() {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = Db::connect(&DbOptions {
            url: format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display()),
            max_connections: 2,
            connect_timeout: Duration::from_secs(5),
        })
        .await
        .expect("sqlite");
        sqlx::query("CREATE TABLE t (n INTEGER)")
            .execute(db.pool())
            .await
            .expect("table");
        let mut tx = db.begin().await.expect("begin");
        sqlx::query("SELECT COUNT(*) FROM t")
            .fetch_one(&mut *tx)
            .await
            .expect("read");
        let other = {
            let pool = db.pool().clone();
            tokio::spawn(async move {
                sqlx::query("INSERT INTO t (n) VALUES (1)")
                    .execute(&pool)
                    .await
                    .map(|_| ())
            })
        };
        tokio::time::sleep(Duration::from_millis(200)).await;
        sqlx::query("INSERT INTO t (n) VALUES (2)")
            .execute(&mut *tx)
            .await
            .expect("the write after the read goes through");
        tx.commit().await.expect("commit");
        other
            .await
            .expect("task")
            .expect("the other write waited its turn");
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM t")
            .fetch_one(db.pool())
            .await
            .expect("count");
        assert_eq!(n, 2);
        db.close().await;
    }

    #[test]
    fn sqlite_path_strips_scheme_and_query() {
        assert_eq!(sqlite_path("sqlite://data/p.db?mode=rwc"), "data/p.db");
        assert_eq!(sqlite_path("sqlite:/abs/p.db"), "/abs/p.db");
    }
}
