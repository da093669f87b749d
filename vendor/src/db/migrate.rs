//! The vendor schema's migrations: `vendor/sql/<sqlite|postgres>/NNNN_*.sql`,
//! compiled into the binary and applied with sqlx's [`Migrator`] at open.
//!
//! sqlx keeps the ledger (`_sqlx_migrations`, with a checksum per file) and
//! refuses to go on when an applied file was edited, which is the rule we
//! want: applied migrations are history, a change goes in a new file. The
//! files are embedded rather than read from disk so the binary can run from
//! any directory; a unit test checks that every file on disk is listed.

use std::borrow::Cow;

use futures::future::BoxFuture;
use sqlx::error::BoxDynError;
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};

use super::{Db, DbError, Dialect};

/// `(file name, SQL)` of every SQLite migration, in order.
const SQLITE: &[(&str, &str)] = &[(
    "0001_vendor_state.sql",
    include_str!("../../sql/sqlite/0001_vendor_state.sql"),
)];

/// `(file name, SQL)` of every PostgreSQL migration, in order.
const POSTGRES: &[(&str, &str)] = &[(
    "0001_vendor_state.sql",
    include_str!("../../sql/postgres/0001_vendor_state.sql"),
)];

fn files(dialect: Dialect) -> &'static [(&'static str, &'static str)] {
    match dialect {
        Dialect::Sqlite => SQLITE,
        Dialect::Postgres => POSTGRES,
    }
}

/// The embedded files as a sqlx migration source.
#[derive(Debug)]
struct Embedded(&'static [(&'static str, &'static str)]);

impl<'s> MigrationSource<'s> for Embedded {
    fn resolve(self) -> BoxFuture<'s, Result<Vec<Migration>, BoxDynError>> {
        Box::pin(async move {
            let mut out = Vec::new();
            for (name, sql) in self.0 {
                let (version, description) = parse_name(name)
                    .ok_or_else(|| format!("{name}: migrations are named NNNN_<what>.sql"))?;
                out.push(Migration::new(
                    version,
                    Cow::Owned(description.replace('_', " ")),
                    MigrationType::Simple,
                    Cow::Borrowed(*sql),
                    false,
                ));
            }
            Ok(out)
        })
    }
}

/// `0001_vendor_state.sql` → `(1, "vendor_state")`.
fn parse_name(name: &str) -> Option<(i64, &str)> {
    let stem = name.strip_suffix(".sql")?;
    let (digits, rest) = stem.split_at_checked(4)?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let what = rest.strip_prefix('_').filter(|w| !w.is_empty())?;
    Some((digits.parse().ok()?, what))
}

/// Applies every pending migration of the database's dialect.
pub async fn run(db: &Db) -> Result<(), DbError> {
    let migrator = Migrator::new(Embedded(files(db.dialect())))
        .await
        .map_err(|e| DbError::Migrate(e.to_string()))?;
    migrator
        .run(db.pool())
        .await
        .map_err(|e| DbError::Migrate(e.to_string()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn names_are_parsed_strictly() {
        assert_eq!(
            parse_name("0001_vendor_state.sql"),
            Some((1, "vendor_state"))
        );
        assert_eq!(parse_name("001_x.sql"), None);
        assert_eq!(parse_name("0001_.sql"), None);
        assert_eq!(parse_name("0001_x.txt"), None);
    }

    /// A migration file added on disk but not listed here would silently
    /// never run.
    #[test]
    fn every_file_on_disk_is_embedded_and_matches() {
        for dialect in [Dialect::Sqlite, Dialect::Postgres] {
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("sql")
                .join(dialect.dir_name());
            let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            on_disk.sort();
            let listed: Vec<String> = files(dialect).iter().map(|(n, _)| n.to_string()).collect();
            assert_eq!(on_disk, listed, "{}", dir.display());
            for (name, sql) in files(dialect) {
                assert!(parse_name(name).is_some(), "{name}");
                assert_eq!(std::fs::read_to_string(dir.join(name)).unwrap(), *sql);
            }
        }
    }
}
