//! The vendor's database: one sqlx `Any` pool over PostgreSQL (production)
//! or SQLite (a local trial), chosen by URL, migrated at open.
//!
//! Every SQL statement of the crate lives below this module, written once
//! with `?` placeholders and numbered for PostgreSQL by [`Db::sql`]. `Any`
//! narrows column types to integers, floats and text, which is why the
//! schema keeps times as integers and booleans as 0/1.

pub mod catalog;
pub mod customers;
pub mod deployments;
pub mod migrate;
pub mod overview;

use std::borrow::Cow;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, ConnectOptions, Executor};

/// The SQL dialect behind the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// Works out the dialect from a database URL's scheme.
    pub fn from_url(url: &str) -> Result<Self, DbError> {
        match url.split(':').next().unwrap_or_default() {
            "sqlite" => Ok(Self::Sqlite),
            "postgres" | "postgresql" => Ok(Self::Postgres),
            other => Err(DbError::UnsupportedUrl(other.to_owned())),
        }
    }

    /// The folder of this dialect's migrations under `vendor/sql/`.
    pub fn dir_name(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }
}

/// Errors opening or talking to the vendor database.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error(
        "database URL scheme {0:?} is not supported: use postgres://user@host/db, or sqlite://path/vendor.db for a local trial (--db or PLINTH_VENDOR_DB)"
    )]
    UnsupportedUrl(String),
    #[error("cannot create the folder {path} for the SQLite database: {source}")]
    CreateDir {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "cannot open the database at {url}: {source}; check --db (or PLINTH_VENDOR_DB) and that the server is running"
    )]
    Connect { url: String, source: sqlx::Error },
    #[error(
        "cannot migrate the database schema: {0}; the database may belong to another version of plinth-vendor"
    )]
    Migrate(String),
    /// A stored value no longer reads back (e.g. an unparsable version).
    #[error("the database holds an invalid value: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Sql(#[from] sqlx::Error),
}

/// A handle on the vendor database. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Db {
    pool: AnyPool,
    dialect: Dialect,
}

impl Db {
    /// Opens the pool, checks that a connection works and applies pending
    /// migrations. A SQLite file (and its folder) is created when missing
    /// and runs in WAL mode, so the CLI can write while `serve` reads.
    pub async fn connect(url: &str) -> Result<Self, DbError> {
        sqlx::any::install_default_drivers();
        let dialect = Dialect::from_url(url)?;
        let mut full_url = url.to_owned();
        if dialect == Dialect::Sqlite {
            let path = sqlite_path(url);
            if let Some(parent) = Path::new(&path)
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
            {
                std::fs::create_dir_all(parent).map_err(|source| DbError::CreateDir {
                    path: parent.display().to_string(),
                    source,
                })?;
            }
            if !full_url.contains("mode=") {
                full_url.push(if full_url.contains('?') { '&' } else { '?' });
                full_url.push_str("mode=rwc");
            }
        }
        let connect_error = |source| DbError::Connect {
            url: redact_url(url),
            source,
        };
        let options = AnyConnectOptions::from_str(&full_url)
            .map_err(connect_error)?
            .disable_statement_logging();
        let pool = AnyPoolOptions::new()
            .max_connections(if dialect == Dialect::Sqlite { 4 } else { 10 })
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if dialect == Dialect::Sqlite {
                        conn.execute(
                            "PRAGMA journal_mode=WAL; PRAGMA busy_timeout=10000; \
                             PRAGMA foreign_keys=ON; PRAGMA synchronous=NORMAL;",
                        )
                        .await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .map_err(connect_error)?;
        let db = Self { pool, dialect };
        migrate::run(&db).await?;
        Ok(db)
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// The crate's SQL is written with `?` placeholders; PostgreSQL wants
    /// `$1`, `$2`, …. Only for this crate's own statements, which never
    /// carry a `?` inside a string literal.
    pub fn sql<'a>(&self, sql: &'a str) -> Cow<'a, str> {
        numbered_placeholders(self.dialect, sql)
    }

    /// A cheap round trip, for `/healthz`.
    pub async fn ping(&self) -> Result<(), DbError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn numbered_placeholders(dialect: Dialect, sql: &str) -> Cow<'_, str> {
    if dialect != Dialect::Postgres || !sql.contains('?') {
        return Cow::Borrowed(sql);
    }
    let mut out = String::with_capacity(sql.len() + 16);
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
    Cow::Owned(out)
}

/// `?, ?, ?` with `n` placeholders, for multi-row inserts.
pub(crate) fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
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

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Seconds since the Unix epoch.
pub fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Whether an error is a unique-constraint violation (a duplicate key).
pub(crate) fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(e) if e.is_unique_violation())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_for_postgres_only() {
        let sql = "UPDATE t SET a = ? WHERE b = ?";
        assert_eq!(
            numbered_placeholders(Dialect::Postgres, sql),
            "UPDATE t SET a = $1 WHERE b = $2"
        );
        assert_eq!(numbered_placeholders(Dialect::Sqlite, sql), sql);
        assert_eq!(placeholders(3), "?, ?, ?");
    }

    #[test]
    fn dialect_comes_from_the_url_scheme() {
        assert_eq!(
            Dialect::from_url("sqlite://x.db").ok(),
            Some(Dialect::Sqlite)
        );
        assert_eq!(
            Dialect::from_url("postgresql://h/db").ok(),
            Some(Dialect::Postgres)
        );
        let e = Dialect::from_url("mysql://h/db").unwrap_err().to_string();
        assert!(e.contains("\"mysql\"") && e.contains("postgres://"), "{e}");
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("postgres://u:pw@h:5432/d"),
            "postgres://u:***@h:5432/d"
        );
        assert_eq!(redact_url("postgres://u@h/d"), "postgres://u@h/d");
        assert_eq!(sqlite_path("sqlite://a/b.db?mode=rwc"), "a/b.db");
    }
}
