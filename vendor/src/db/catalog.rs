//! The `packages` table: every published package version, its archive's
//! size and sha256, the dependency ranges from its manifest and the file
//! that holds it in the package store.

use std::collections::BTreeMap;

use semver::{Version, VersionReq};

use super::{Db, DbError, is_unique_violation};

/// One published package version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageRecord {
    pub name: String,
    pub version: Version,
    pub size: u64,
    pub sha256: String,
    pub depends: BTreeMap<String, VersionReq>,
    pub forked_from: Option<String>,
    /// Unix milliseconds.
    pub published_at: i64,
    /// File name inside the package store.
    pub file: String,
}

type Row = (
    String,
    String,
    i64,
    String,
    String,
    Option<String>,
    i64,
    String,
);

const COLUMNS: &str = "name, version, size, sha256, depends, forked_from, published_at, file";

fn from_row(row: Row) -> Result<PackageRecord, DbError> {
    let (name, version, size, sha256, depends, forked_from, published_at, file) = row;
    let version = Version::parse(&version)
        .map_err(|e| DbError::Corrupt(format!("package {name} has version {version:?}: {e}")))?;
    let depends: BTreeMap<String, String> = serde_json::from_str(&depends).map_err(|e| {
        DbError::Corrupt(format!(
            "package {name} {version} has depends {depends:?}: {e}"
        ))
    })?;
    let depends = depends
        .into_iter()
        .map(|(dep, range)| {
            VersionReq::parse(&range)
                .map(|req| (dep.clone(), req))
                .map_err(|e| {
                    DbError::Corrupt(format!(
                        "package {name} {version} depends on {dep} {range:?}: {e}"
                    ))
                })
        })
        .collect::<Result<_, _>>()?;
    Ok(PackageRecord {
        name,
        version,
        size: u64::try_from(size).unwrap_or(0),
        sha256,
        depends,
        forked_from,
        published_at,
        file,
    })
}

/// The record of `name` at exactly `version`, if published.
pub async fn find(
    db: &Db,
    name: &str,
    version: &Version,
) -> Result<Option<PackageRecord>, DbError> {
    let sql = format!("SELECT {COLUMNS} FROM packages WHERE name = ? AND version = ?");
    let row: Option<Row> = sqlx::query_as(&db.sql(&sql))
        .bind(name)
        .bind(version.to_string())
        .fetch_optional(db.pool())
        .await?;
    row.map(from_row).transpose()
}

/// Every published version of every package.
pub async fn all(db: &Db) -> Result<Vec<PackageRecord>, DbError> {
    let sql = format!("SELECT {COLUMNS} FROM packages ORDER BY name, published_at");
    let rows: Vec<Row> = sqlx::query_as(&sql).fetch_all(db.pool()).await?;
    rows.into_iter().map(from_row).collect()
}

/// Records a new package version. `Ok(false)` when that name and version
/// were recorded in the meantime (the caller compares the hashes again).
pub async fn insert(db: &Db, record: &PackageRecord) -> Result<bool, DbError> {
    let depends: BTreeMap<&str, String> = record
        .depends
        .iter()
        .map(|(dep, req)| (dep.as_str(), req.to_string()))
        .collect();
    let depends = serde_json::to_string(&depends)
        .map_err(|e| DbError::Corrupt(format!("cannot encode depends: {e}")))?;
    let sql = format!("INSERT INTO packages ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
    let result = sqlx::query(&db.sql(&sql))
        .bind(&record.name)
        .bind(record.version.to_string())
        .bind(i64::try_from(record.size).unwrap_or(i64::MAX))
        .bind(&record.sha256)
        .bind(depends)
        .bind(record.forked_from.clone())
        .bind(record.published_at)
        .bind(&record.file)
        .execute(db.pool())
        .await;
    match result {
        Ok(_) => Ok(true),
        Err(e) if is_unique_violation(&e) => Ok(false),
        Err(e) => Err(e.into()),
    }
}
