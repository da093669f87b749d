//! Runs a plugin's SQL: check it with [`scope`](super::scope), bind its
//! parameters, run it and hand back plain values.
//!
//! The runtime calls this from the `sql` import; it knows nothing of WIT
//! types. Values are bound through the driver, never spliced into the text.

use futures::TryStreamExt;
use sqlx::any::AnyTypeInfoKind;
use sqlx::{AnyConnection, Column, Row, ValueRef};

use super::Dialect;
use super::scope::{self, Allow, ScopeError, StatementKind};

/// Most rows one query may return to a plugin; past it the query fails
/// rather than filling host memory.
pub const MAX_ROWS: usize = 50_000;

/// A value bound to a placeholder or read from a column.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
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
    /// The scope guard refused the statement.
    #[error("refused: {0}")]
    Refused(String),
    /// The statement or its parameters are malformed.
    #[error("invalid: {0}")]
    Invalid(String),
    /// The database failed it.
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

/// Checks and runs one statement of a plugin whose tables carry
/// `table_prefix`.
pub async fn run(
    conn: &mut AnyConnection,
    dialect: Dialect,
    table_prefix: &str,
    statement: &str,
    params: Vec<SqlValue>,
    allow: Allow,
    want_rows: bool,
) -> Result<SqlOutcome, PluginSqlError> {
    let checked = scope::check_statement(dialect, table_prefix, statement, allow)?;
    if checked.placeholders != params.len() {
        return Err(PluginSqlError::Invalid(format!(
            "the statement has {} placeholder(s) but {} parameter(s) were given",
            checked.placeholders,
            params.len()
        )));
    }
    let mut query = sqlx::query(&checked.sql);
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
    if want_rows || checked.kind == StatementKind::Read {
        let mut stream = query.fetch(&mut *conn);
        let mut columns: Option<Vec<String>> = None;
        let mut rows = Vec::new();
        while let Some(row) = stream.try_next().await.map_err(failed)? {
            if columns.is_none() {
                columns = Some(row.columns().iter().map(|c| c.name().to_owned()).collect());
            }
            if rows.len() == MAX_ROWS {
                return Err(PluginSqlError::Failed(format!(
                    "the query returned more than {MAX_ROWS} rows; add a LIMIT"
                )));
            }
            rows.push(decode_row(&row, dialect)?);
        }
        Ok(SqlOutcome::Rows {
            columns: columns.unwrap_or_default(),
            rows,
        })
    } else {
        let result = query.execute(&mut *conn).await.map_err(failed)?;
        Ok(SqlOutcome::Affected(result.rows_affected()))
    }
}

fn failed(e: sqlx::Error) -> PluginSqlError {
    match e {
        sqlx::Error::Database(db) => PluginSqlError::Failed(db.message().to_owned()),
        other => PluginSqlError::Failed(other.to_string()),
    }
}

fn decode_row(row: &sqlx::any::AnyRow, dialect: Dialect) -> Result<Vec<SqlValue>, PluginSqlError> {
    let mut out = Vec::with_capacity(row.columns().len());
    for i in 0..row.columns().len() {
        let raw = row.try_get_raw(i).map_err(failed)?;
        if raw.is_null() {
            out.push(SqlValue::Null);
            continue;
        }
        let kind = raw.type_info().kind();
        let value = match kind {
            AnyTypeInfoKind::Bool => {
                SqlValue::Integer(i64::from(row.try_get::<bool, _>(i).map_err(failed)?))
            }
            AnyTypeInfoKind::SmallInt | AnyTypeInfoKind::Integer | AnyTypeInfoKind::BigInt => {
                SqlValue::Integer(row.try_get::<i64, _>(i).map_err(failed)?)
            }
            AnyTypeInfoKind::Real | AnyTypeInfoKind::Double => {
                SqlValue::Real(row.try_get::<f64, _>(i).map_err(failed)?)
            }
            AnyTypeInfoKind::Text => SqlValue::Text(row.try_get::<String, _>(i).map_err(failed)?),
            AnyTypeInfoKind::Blob => {
                let bytes = row.try_get::<Vec<u8>, _>(i).map_err(failed)?;
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
