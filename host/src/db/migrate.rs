//! The migration runner and its ledger, shared by the host schema and by
//! plugin packages.
//!
//! A migration is one `NNNN_<what>.sql` file. The ledger table
//! `plinth_migrations` records, per scope (`host`, or `plugin:<name>`), every
//! file applied with its SHA-256. A file that was applied and has since been
//! edited is refused: applied migrations are history, and a change belongs in
//! a new file. On SQLite and PostgreSQL the pending files of one run and their
//! ledger rows commit in one transaction; MySQL commits DDL implicitly, so
//! there each file is recorded right after it ran and the ledger shows exactly
//! how far a failed run got.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use sqlx::{AnyConnection, Connection};

use super::{Db, DbError, Dialect, conn_dialect, host_sql, now_ms};

/// The scope under which the host's own schema is recorded.
pub const HOST_SCOPE: &str = "host";

/// The ledger scope of a plugin's migrations.
pub fn plugin_scope(plugin: &str) -> String {
    format!("plugin:{plugin}")
}

/// One migration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migration {
    /// Stable id recorded in the ledger, e.g. `plinth_plugins/0001_create.sql`.
    pub id: String,
    /// Where it came from, for messages.
    pub source: PathBuf,
    pub sql: String,
    /// Hex SHA-256 of the file's bytes.
    pub checksum: String,
    /// The `NNNN` sequence number.
    pub sequence: u32,
}

impl Migration {
    pub fn new(id: String, source: PathBuf, sequence: u32, sql: String) -> Self {
        let checksum = hex::encode(Sha256::digest(sql.as_bytes()));
        Self {
            id,
            source,
            sql,
            checksum,
            sequence,
        }
    }
}

/// Why a migration run stopped. Each message tells its cause, so a wrapped
/// cause is kept as a field and not also returned by `source()`: printed
/// with its chain, the cause appears once.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("cannot read {path}: {cause}")]
    Io { path: String, cause: std::io::Error },
    #[error(
        "{path}: migration files must be named NNNN_<what>.sql (four digits, an underscore, a name)"
    )]
    BadName { path: String },
    #[error("{first} and {second} share the sequence number {sequence}; give each file its own")]
    DuplicateSequence {
        first: String,
        second: String,
        sequence: u32,
    },
    #[error(
        "{path} was edited after it was applied (ledger {recorded}, file now {current}). \
         Applied migrations must not change: restore the file and put the change in a new NNNN_*.sql file"
    )]
    Edited {
        path: String,
        recorded: String,
        current: String,
    },
    #[error("migration {path} failed: {cause}")]
    Failed { path: String, cause: sqlx::Error },
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("migration ledger: {0}")]
    Ledger(sqlx::Error),
}

impl From<sqlx::Error> for MigrateError {
    fn from(e: sqlx::Error) -> Self {
        Self::Ledger(e)
    }
}

include!(concat!(env!("OUT_DIR"), "/host_schema.rs"));

/// How messages name a built-in file: where its source lives in the repo.
const BUILT_IN_LABEL: &str = "common-sql (built into this plinth binary)";

/// Reads the host schema for `dialect`: the one built into the binary when
/// `schema_dir` is empty (the default), else the files
/// `<schema_dir>/table/<table>/<dialect>/NNNN_*.sql`.
///
/// Files run in order of their sequence number across all tables, then by
/// table name, so a table whose foreign keys point at another is given a
/// higher number. Built-in and on-disk files get the same ids and checksums,
/// so a host can move from one to the other without the ledger noticing.
pub fn host_migrations(
    schema_dir: &Path,
    dialect: Dialect,
) -> Result<Vec<Migration>, MigrateError> {
    if schema_dir.as_os_str().is_empty() {
        return built_in_host_migrations(dialect);
    }
    let tables_dir = schema_dir.join("table");
    let mut tables = read_dir_sorted(&tables_dir)?;
    tables.retain(|p| p.is_dir());
    let mut out = Vec::new();
    for table_dir in tables {
        let table = file_name(&table_dir);
        let dialect_dir = table_dir.join(dialect.dir_name());
        if !dialect_dir.is_dir() {
            continue;
        }
        out.extend(with_table(&table, read_migration_dir(&dialect_dir)?));
    }
    sort_host(&mut out);
    Ok(out)
}

/// The host schema built into the binary from `common-sql/` (see build.rs).
fn built_in_host_migrations(dialect: Dialect) -> Result<Vec<Migration>, MigrateError> {
    let mut tables: std::collections::BTreeMap<&str, Vec<Migration>> = Default::default();
    for (table, dir, name, sql) in BUILT_IN_SCHEMA {
        if *dir != dialect.dir_name() {
            continue;
        }
        let source = PathBuf::from(format!("{BUILT_IN_LABEL}/table/{table}/{dir}/{name}"));
        add_migration(tables.entry(*table).or_default(), name, source, || {
            Ok((*sql).to_owned())
        })?;
    }
    let mut out = Vec::new();
    for (table, mut migrations) in tables {
        migrations.sort_by_key(|m| m.sequence);
        out.extend(with_table(table, migrations));
    }
    sort_host(&mut out);
    Ok(out)
}

/// Host migration ids are `<table>/<file>`.
fn with_table(table: &str, migrations: Vec<Migration>) -> impl Iterator<Item = Migration> {
    migrations.into_iter().map(move |migration| Migration {
        id: format!("{table}/{}", migration.id),
        ..migration
    })
}

fn sort_host(migrations: &mut [Migration]) {
    migrations.sort_by(|a, b| a.sequence.cmp(&b.sequence).then_with(|| a.id.cmp(&b.id)));
}

/// Reads a plugin's migrations for `dialect` from `<sql_dir>/<dialect>/`.
/// A plugin without SQL has no such folder and no migrations.
pub fn plugin_migrations(sql_dir: &Path, dialect: Dialect) -> Result<Vec<Migration>, MigrateError> {
    let dir = sql_dir.join(dialect.dir_name());
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    read_migration_dir(&dir)
}

/// Reads `NNNN_<what>.sql` files of one folder, in sequence order, refusing
/// badly named files and duplicate sequence numbers.
pub fn read_migration_dir(dir: &Path) -> Result<Vec<Migration>, MigrateError> {
    let mut out: Vec<Migration> = Vec::new();
    for path in read_dir_sorted(dir)? {
        if !path.is_file() {
            continue;
        }
        let name = file_name(&path);
        add_migration(&mut out, &name, path.clone(), || {
            std::fs::read_to_string(&path).map_err(|cause| MigrateError::Io {
                path: path.display().to_string(),
                cause,
            })
        })?;
    }
    out.sort_by_key(|m| m.sequence);
    Ok(out)
}

/// Adds the file `name` of one folder to `folder`, refusing a bad name or a
/// sequence number the folder already has; `read` gives its text.
fn add_migration(
    folder: &mut Vec<Migration>,
    name: &str,
    source: PathBuf,
    read: impl FnOnce() -> Result<String, MigrateError>,
) -> Result<(), MigrateError> {
    let sequence = parse_sequence(name).ok_or_else(|| MigrateError::BadName {
        path: source.display().to_string(),
    })?;
    if let Some(previous) = folder.iter().find(|m| m.sequence == sequence) {
        return Err(MigrateError::DuplicateSequence {
            first: previous.source.display().to_string(),
            second: source.display().to_string(),
            sequence,
        });
    }
    let sql = read()?;
    folder.push(Migration::new(name.to_owned(), source, sequence, sql));
    Ok(())
}

fn parse_sequence(name: &str) -> Option<u32> {
    let stem = name.strip_suffix(".sql")?;
    let (digits, rest) = stem.split_at_checked(4)?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let what = rest.strip_prefix('_')?;
    if what.is_empty() {
        return None;
    }
    digits.parse().ok()
}

fn read_dir_sorted(dir: &Path) -> Result<Vec<PathBuf>, MigrateError> {
    let entries = std::fs::read_dir(dir).map_err(|cause| MigrateError::Io {
        path: dir.display().to_string(),
        cause,
    })?;
    let mut paths = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|cause| MigrateError::Io {
            path: dir.display().to_string(),
            cause,
        })?;
        paths.push(entry.path());
    }
    paths.sort();
    Ok(paths)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Creates the ledger table when it does not exist yet. The ledger cannot
/// record itself, so its DDL lives here rather than in `common-sql/`.
pub async fn ensure_ledger(db: &Db) -> Result<(), MigrateError> {
    let ddl = match db.dialect() {
        Dialect::Sqlite | Dialect::Postgres => {
            "CREATE TABLE IF NOT EXISTS plinth_migrations (\
             scope VARCHAR(200) NOT NULL, \
             migration VARCHAR(255) NOT NULL, \
             checksum VARCHAR(64) NOT NULL, \
             applied_at BIGINT NOT NULL, \
             PRIMARY KEY (scope, migration))"
        }
        Dialect::Mysql => {
            "CREATE TABLE IF NOT EXISTS plinth_migrations (\
             scope VARCHAR(200) NOT NULL, \
             migration VARCHAR(255) NOT NULL, \
             checksum VARCHAR(64) NOT NULL, \
             applied_at BIGINT NOT NULL, \
             PRIMARY KEY (scope, migration)) ENGINE=InnoDB"
        }
    };
    sqlx::raw_sql(ddl).execute(db.pool()).await?;
    Ok(())
}

/// The ledger's view of one scope: (migration id, checksum) pairs applied.
pub async fn applied(
    conn: &mut AnyConnection,
    scope: &str,
) -> Result<Vec<(String, String)>, MigrateError> {
    let sql = host_sql(
        conn_dialect(conn),
        "SELECT migration, checksum FROM plinth_migrations WHERE scope = ? ORDER BY migration",
    );
    let rows: Vec<(String, String)> = sqlx::query_as(&sql)
        .bind(scope)
        .fetch_all(&mut *conn)
        .await?;
    Ok(rows)
}

/// Splits `migrations` into those still to run, after checking that every
/// applied one is unchanged on disk.
pub async fn pending<'m>(
    conn: &mut AnyConnection,
    scope: &str,
    migrations: &'m [Migration],
) -> Result<Vec<&'m Migration>, MigrateError> {
    let applied = applied(conn, scope).await?;
    let mut todo = Vec::new();
    for migration in migrations {
        match applied.iter().find(|(id, _)| *id == migration.id) {
            Some((_, recorded)) if *recorded != migration.checksum => {
                return Err(MigrateError::Edited {
                    path: migration.source.display().to_string(),
                    recorded: short(recorded),
                    current: short(&migration.checksum),
                });
            }
            Some(_) => {}
            None => todo.push(migration),
        }
    }
    Ok(todo)
}

/// Records one applied migration in the ledger.
pub async fn record(
    conn: &mut AnyConnection,
    scope: &str,
    migration: &Migration,
) -> Result<(), MigrateError> {
    let sql = host_sql(
        conn_dialect(conn),
        "INSERT INTO plinth_migrations (scope, migration, checksum, applied_at) VALUES (?, ?, ?, ?)",
    );
    sqlx::query(&sql)
        .bind(scope)
        .bind(&migration.id)
        .bind(&migration.checksum)
        .bind(now_ms())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Removes a scope's ledger rows (used when a plugin's data is dropped).
pub async fn forget_scope(conn: &mut AnyConnection, scope: &str) -> Result<(), MigrateError> {
    let sql = host_sql(
        conn_dialect(conn),
        "DELETE FROM plinth_migrations WHERE scope = ?",
    );
    sqlx::query(&sql).bind(scope).execute(&mut *conn).await?;
    Ok(())
}

fn short(checksum: &str) -> String {
    checksum.chars().take(12).collect()
}

/// What a migration run did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MigrationReport {
    pub applied: Vec<String>,
    pub already_applied: usize,
}

/// Applies the host schema (built in, or from `schema_dir` when it is not
/// empty; see [`host_migrations`]). Refuses to go on if an applied file was
/// edited.
pub async fn migrate_host(db: &Db, schema_dir: &Path) -> Result<MigrationReport, MigrateError> {
    ensure_ledger(db).await?;
    let migrations = host_migrations(schema_dir, db.dialect())?;
    let mut conn = db.pool().acquire().await.map_err(DbError::from)?;
    let transactional = db.dialect().transactional_ddl();
    if transactional {
        let mut tx = conn.begin().await?;
        let report = run_scripts(&mut tx, HOST_SCOPE, &migrations).await?;
        tx.commit().await?;
        Ok(report)
    } else {
        run_scripts(&mut conn, HOST_SCOPE, &migrations).await
    }
}

/// Runs pending whole-file scripts (host SQL is trusted, so files run as
/// written, several statements each) and records each in the ledger.
async fn run_scripts(
    conn: &mut AnyConnection,
    scope: &str,
    migrations: &[Migration],
) -> Result<MigrationReport, MigrateError> {
    let todo = pending(conn, scope, migrations).await?;
    let mut report = MigrationReport {
        already_applied: migrations.len() - todo.len(),
        ..MigrationReport::default()
    };
    for migration in todo {
        sqlx::raw_sql(&migration.sql)
            .execute(&mut *conn)
            .await
            .map_err(|cause| MigrateError::Failed {
                path: migration.source.display().to_string(),
                cause,
            })?;
        record(conn, scope, migration).await?;
        report.applied.push(migration.id.clone());
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_numbers_are_parsed_strictly() {
        assert_eq!(parse_sequence("0001_create.sql"), Some(1));
        assert_eq!(parse_sequence("0120_add_x.sql"), Some(120));
        assert_eq!(parse_sequence("001_create.sql"), None);
        assert_eq!(parse_sequence("0001create.sql"), None);
        assert_eq!(parse_sequence("0001_.sql"), None);
        assert_eq!(parse_sequence("0001_create.txt"), None);
        assert_eq!(parse_sequence("abcd_create.sql"), None);
    }

    /// The built-in schema is `common-sql/` as it is in the tree: same ids,
    /// order, text and checksums, so the ledger sees no difference.
    #[test]
    fn the_built_in_schema_is_common_sql() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../common-sql");
        for dialect in [Dialect::Sqlite, Dialect::Postgres, Dialect::Mysql] {
            let built_in = host_migrations(Path::new(""), dialect).expect("built-in schema");
            let on_disk = host_migrations(&dir, dialect).expect("common-sql");
            assert!(!built_in.is_empty(), "{dialect:?}");
            let summary = |ms: &[Migration]| -> Vec<(String, u32, String)> {
                ms.iter()
                    .map(|m| (m.id.clone(), m.sequence, m.checksum.clone()))
                    .collect()
            };
            assert_eq!(summary(&built_in), summary(&on_disk), "{dialect:?}");
            assert!(
                built_in[0].source.starts_with(BUILT_IN_LABEL),
                "{:?}",
                built_in[0].source
            );
        }
    }
}
