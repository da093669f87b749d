//! SQL on the host's database, limited to the plugin's own tables.
//!
//! Write placeholders as `?` (the host rewrites them for PostgreSQL) and name
//! tables through [`table`], so a fork installed under another table prefix
//! runs the same code:
//!
//! ```no_run
//! use plinth_sdk::db;
//!
//! # fn main() -> Result<(), db::Error> {
//! let items = db::table("items");
//! db::execute(
//!     &format!("INSERT INTO {items} (sku, name, created_at) VALUES (?, ?, ?)"),
//!     &["A-1".into(), "Anvil".into(), 1_700_000_000_000_i64.into()],
//! )?;
//! for row in &db::query(&format!("SELECT id, sku, stock FROM {items} WHERE stock < ?"), &[5.into()])? {
//!     let id: i64 = row.get("id")?;
//!     let sku: String = row.get("sku")?;
//!     let stock: Option<i64> = row.get("stock")?;
//!     plinth_sdk::log::info!("{id} {sku} {stock:?}");
//! }
//! # Ok(())
//! # }
//! ```
//!
//! The host refuses (see [`Error::Refused`]) statements that touch tables
//! without the plugin's prefix, hold several statements, or (outside the
//! install hook) are anything but SELECT/INSERT/UPDATE/DELETE.
//!
//! Values travel as one of five kinds ([`Value`]); [`Row::get`] converts to
//! Rust types. Portable schemas keep to INTEGER/BIGINT, TEXT (VARCHAR on
//! MySQL, whose TEXT columns arrive as blobs) and BLOB; booleans are integers
//! 0/1 and timestamps integer milliseconds.

use std::fmt;
use std::sync::Arc;

use crate::__bindings::plinth::plugin::sql as wit;

mod transaction;
pub use transaction::{Transaction, transaction};

/// A value bound to a `?` placeholder or read from a column.
///
/// Rust values convert with `.into()`: integers, `f64`, `bool` (as 0/1),
/// `&str`/`String`, `Vec<u8>`/`&[u8]`, and `Option<T>` of any of them
/// (`None` is `NULL`).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// SQL `NULL`.
    Null,
    /// A 64-bit signed integer.
    Integer(i64),
    /// A 64-bit float.
    Real(f64),
    /// UTF-8 text.
    Text(String),
    /// Raw bytes.
    Blob(Vec<u8>),
}

impl Value {
    fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Integer(_) => "integer",
            Value::Real(_) => "real",
            Value::Text(_) => "text",
            Value::Blob(_) => "blob",
        }
    }

    /// The value as JSON: integers and reals as numbers, text as strings,
    /// blobs as arrays of bytes, `NULL` as `null`.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Null => serde_json::Value::Null,
            Value::Integer(i) => (*i).into(),
            Value::Real(f) => (*f).into(),
            Value::Text(s) => s.as_str().into(),
            Value::Blob(b) => b.as_slice().into(),
        }
    }
}

macro_rules! from_int {
    ($($t:ty),*) => {$(
        impl From<$t> for Value {
            fn from(v: $t) -> Self {
                Value::Integer(i64::from(v))
            }
        }
    )*};
}
from_int!(i8, i16, i32, i64, u8, u16, u32);

impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Real(v)
    }
}

impl From<f32> for Value {
    fn from(v: f32) -> Self {
        Value::Real(f64::from(v))
    }
}

/// Booleans are stored as integers 0 and 1, which every dialect has.
impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Integer(i64::from(v))
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(v.to_owned())
    }
}

impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(v)
    }
}

impl From<&String> for Value {
    fn from(v: &String) -> Self {
        Value::Text(v.clone())
    }
}

impl From<Vec<u8>> for Value {
    fn from(v: Vec<u8>) -> Self {
        Value::Blob(v)
    }
}

impl From<&[u8]> for Value {
    fn from(v: &[u8]) -> Self {
        Value::Blob(v.to_vec())
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

/// Why a statement did not run, or a column could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The host refused the statement (wrong table, forbidden statement
    /// kind, several statements). The text names what was refused.
    Refused(String),
    /// The statement could not be parsed.
    Invalid(String),
    /// The database rejected or failed the statement.
    Failed(String),
    /// [`Row::get`] found no such column or could not convert its value.
    Column {
        /// The column asked for.
        column: String,
        /// What went wrong.
        message: String,
    },
}

impl Error {
    /// Whether the database refused the statement for breaking a unique
    /// constraint (e.g. a duplicate key), recognised by the messages SQLite,
    /// PostgreSQL and MySQL/MariaDB give.
    pub fn is_unique_violation(&self) -> bool {
        match self {
            Error::Failed(m) => {
                let m = m.to_ascii_lowercase();
                m.contains("unique") || m.contains("duplicate")
            }
            _ => false,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Refused(m) => write!(f, "statement refused: {m}"),
            Error::Invalid(m) => write!(f, "invalid statement: {m}"),
            Error::Failed(m) => write!(f, "statement failed: {m}"),
            Error::Column { column, message } => write!(f, "column `{column}`: {message}"),
        }
    }
}

impl std::error::Error for Error {}

/// Lets lifecycle hooks (which return `Result<(), String>`) use `?`.
impl From<Error> for String {
    fn from(e: Error) -> Self {
        e.to_string()
    }
}

/// The result of [`query`]: column names and rows.
///
/// Iterate with `for row in &rows` (borrowing) or `for row in rows`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Rows {
    columns: Arc<[String]>,
    rows: Vec<Row>,
}

impl Rows {
    /// Builds rows from column names and values in column order (the shape
    /// the host returns; also handy in tests).
    pub fn new(columns: Vec<String>, rows: Vec<Vec<Value>>) -> Self {
        let columns: Arc<[String]> = columns.into();
        let rows = rows
            .into_iter()
            .map(|values| Row {
                columns: Arc::clone(&columns),
                values,
            })
            .collect();
        Self { columns, rows }
    }

    /// The column names, in order.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// The number of rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The first row, if any.
    pub fn first(&self) -> Option<&Row> {
        self.rows.first()
    }

    /// Iterates over the rows.
    pub fn iter(&self) -> std::slice::Iter<'_, Row> {
        self.rows.iter()
    }

    /// The rows as JSON: `{"columns": [...], "rows": [[...], ...]}`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "columns": &*self.columns,
            "rows": self
                .rows
                .iter()
                .map(|r| r.values.iter().map(Value::to_json).collect::<Vec<_>>())
                .collect::<Vec<_>>(),
        })
    }
}

impl IntoIterator for Rows {
    type Item = Row;
    type IntoIter = std::vec::IntoIter<Row>;
    fn into_iter(self) -> Self::IntoIter {
        self.rows.into_iter()
    }
}

impl<'a> IntoIterator for &'a Rows {
    type Item = &'a Row;
    type IntoIter = std::slice::Iter<'a, Row>;
    fn into_iter(self) -> Self::IntoIter {
        self.rows.iter()
    }
}

/// One row of a [`Rows`].
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    columns: Arc<[String]>,
    values: Vec<Value>,
}

impl Row {
    /// The value of column `column` converted to `T`: `i64` (and smaller
    /// integer types, range-checked), `f64`, `String`, `Vec<u8>`, `bool`
    /// (from integer 0/1), [`Value`], or `Option<T>` of these for nullable
    /// columns.
    ///
    /// Columns are matched by exact name first, then without regard to case
    /// (PostgreSQL folds unquoted names to lower case, MySQL keeps them).
    /// The error names the column and says what was found.
    pub fn get<T: FromValue>(&self, column: &str) -> Result<T, Error> {
        let value = self.value(column).ok_or_else(|| Error::Column {
            column: column.to_owned(),
            message: format!("no such column (the row has: {})", self.columns.join(", ")),
        })?;
        T::from_value(value).map_err(|message| Error::Column {
            column: column.to_owned(),
            message,
        })
    }

    /// The raw value of column `column`, if there is such a column.
    pub fn value(&self, column: &str) -> Option<&Value> {
        let index = self.columns.iter().position(|c| c == column).or_else(|| {
            self.columns
                .iter()
                .position(|c| c.eq_ignore_ascii_case(column))
        })?;
        self.values.get(index)
    }

    /// The values in column order.
    pub fn values(&self) -> &[Value] {
        &self.values
    }

    /// The column names, in order.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }
}

/// Conversion from a column's [`Value`]; see [`Row::get`].
pub trait FromValue: Sized {
    /// Converts, or says what was wrong (e.g. `expected integer, found text`).
    fn from_value(value: &Value) -> Result<Self, String>;
}

fn mismatch(expected: &str, found: &Value) -> String {
    format!("expected {expected}, found {}", found.kind())
}

impl FromValue for i64 {
    fn from_value(value: &Value) -> Result<Self, String> {
        match value {
            Value::Integer(i) => Ok(*i),
            other => Err(mismatch("integer", other)),
        }
    }
}

macro_rules! from_value_int {
    ($($t:ty),*) => {$(
        impl FromValue for $t {
            fn from_value(value: &Value) -> Result<Self, String> {
                let i = i64::from_value(value)?;
                <$t>::try_from(i).map_err(|_| format!("{i} does not fit in {}", stringify!($t)))
            }
        }
    )*};
}
from_value_int!(i32, u32, u64, usize);

/// Reals as they are; integers widen (SQLite and MySQL may return a whole
/// number for a REAL/DOUBLE column's value).
impl FromValue for f64 {
    fn from_value(value: &Value) -> Result<Self, String> {
        match value {
            Value::Real(f) => Ok(*f),
            Value::Integer(i) => Ok(*i as f64),
            other => Err(mismatch("real", other)),
        }
    }
}

/// Text; a blob holding valid UTF-8 is accepted too, because MySQL `TEXT`
/// columns arrive as blobs through the host's driver.
impl FromValue for String {
    fn from_value(value: &Value) -> Result<Self, String> {
        match value {
            Value::Text(s) => Ok(s.clone()),
            Value::Blob(b) => String::from_utf8(b.clone())
                .map_err(|_| "expected text, found a blob that is not UTF-8".to_owned()),
            other => Err(mismatch("text", other)),
        }
    }
}

/// Blobs; text is accepted as its UTF-8 bytes.
impl FromValue for Vec<u8> {
    fn from_value(value: &Value) -> Result<Self, String> {
        match value {
            Value::Blob(b) => Ok(b.clone()),
            Value::Text(s) => Ok(s.clone().into_bytes()),
            other => Err(mismatch("blob", other)),
        }
    }
}

/// Integers 0 and 1, the portable way to store a boolean.
impl FromValue for bool {
    fn from_value(value: &Value) -> Result<Self, String> {
        match value {
            Value::Integer(0) => Ok(false),
            Value::Integer(1) => Ok(true),
            Value::Integer(i) => Err(format!("expected boolean 0 or 1, found {i}")),
            other => Err(mismatch("boolean (integer 0 or 1)", other)),
        }
    }
}

impl FromValue for Value {
    fn from_value(value: &Value) -> Result<Self, String> {
        Ok(value.clone())
    }
}

/// `NULL` is `None`; anything else converts as `T`. Without `Option` a
/// `NULL` is an error (`expected integer, found null`).
impl<T: FromValue> FromValue for Option<T> {
    fn from_value(value: &Value) -> Result<Self, String> {
        match value {
            Value::Null => Ok(None),
            other => T::from_value(other).map(Some),
        }
    }
}

/// The host database's dialect, for the rare statement that must differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// SQLite.
    Sqlite,
    /// PostgreSQL.
    Postgres,
    /// MySQL or MariaDB.
    Mysql,
}

/// Which database the host runs on.
pub fn dialect() -> Dialect {
    crate::guest_only("db::dialect");
    match wit::current_dialect() {
        wit::Dialect::Sqlite => Dialect::Sqlite,
        wit::Dialect::Postgres => Dialect::Postgres,
        wit::Dialect::Mysql => Dialect::Mysql,
    }
}

/// The full name of this plugin's table `name`: the installed table prefix
/// (see [`info::table_prefix`](crate::info::table_prefix)) followed by
/// `name`, e.g. `goods_items`, or `goods_acme_items` for a fork.
pub fn table(name: &str) -> String {
    format!("{}{name}", crate::info::table_prefix())
}

/// Runs a statement that returns rows (usually SELECT), binding `params` to
/// its `?` placeholders in order.
pub fn query(sql: &str, params: &[Value]) -> Result<Rows, Error> {
    crate::guest_only("db::query");
    let params: Vec<wit::Value> = params.iter().map(to_wit).collect();
    let rows = wit::query(sql, &params).map_err(from_wit_error)?;
    let values = rows
        .rows
        .into_iter()
        .map(|r| r.into_iter().map(from_wit).collect())
        .collect();
    Ok(Rows::new(rows.columns, values))
}

/// Runs a statement that changes data (INSERT/UPDATE/DELETE, or DDL in the
/// install hook), binding `params` to its `?` placeholders in order, and
/// returns the number of rows affected.
pub fn execute(sql: &str, params: &[Value]) -> Result<u64, Error> {
    crate::guest_only("db::execute");
    let params: Vec<wit::Value> = params.iter().map(to_wit).collect();
    wit::execute(sql, &params).map_err(from_wit_error)
}

fn to_wit(v: &Value) -> wit::Value {
    match v {
        Value::Null => wit::Value::Null,
        Value::Integer(i) => wit::Value::Integer(*i),
        Value::Real(f) => wit::Value::Real(*f),
        Value::Text(s) => wit::Value::Text(s.clone()),
        Value::Blob(b) => wit::Value::Blob(b.clone()),
    }
}

fn from_wit(v: wit::Value) -> Value {
    match v {
        wit::Value::Null => Value::Null,
        wit::Value::Integer(i) => Value::Integer(i),
        wit::Value::Real(f) => Value::Real(f),
        wit::Value::Text(s) => Value::Text(s),
        wit::Value::Blob(b) => Value::Blob(b),
    }
}

fn from_wit_error(e: wit::SqlError) -> Error {
    match e {
        wit::SqlError::Refused(m) => Error::Refused(m),
        wit::SqlError::Invalid(m) => Error::Invalid(m),
        wit::SqlError::Failed(m) => Error::Failed(m),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests fail loudly by design
mod tests {
    use super::*;

    fn rows() -> Rows {
        Rows::new(
            vec![
                "id".into(),
                "sku".into(),
                "price".into(),
                "note".into(),
                "active".into(),
                "data".into(),
            ],
            vec![
                vec![
                    Value::Integer(1),
                    Value::Text("A-1".into()),
                    Value::Real(2.5),
                    Value::Null,
                    Value::Integer(1),
                    Value::Blob(b"ab".to_vec()),
                ],
                vec![
                    Value::Integer(2),
                    Value::Blob(b"B-2".to_vec()),
                    Value::Integer(3),
                    Value::Text("n".into()),
                    Value::Integer(7),
                    Value::Text("cd".into()),
                ],
            ],
        )
    }

    #[test]
    fn typed_gets() -> Result<(), Error> {
        let rows = rows();
        assert_eq!(rows.len(), 2);
        let r = rows.first().unwrap();
        assert_eq!(r.get::<i64>("id")?, 1);
        assert_eq!(r.get::<u32>("id")?, 1);
        assert_eq!(r.get::<String>("sku")?, "A-1");
        assert_eq!(r.get::<f64>("price")?, 2.5);
        assert_eq!(r.get::<Option<String>>("note")?, None);
        assert!(r.get::<bool>("active")?);
        assert_eq!(r.get::<Vec<u8>>("data")?, b"ab");
        assert_eq!(r.get::<Value>("id")?, Value::Integer(1));
        // Case-insensitive fallback.
        assert_eq!(r.get::<String>("SKU")?, "A-1");

        let r = &rows.iter().nth(1).unwrap();
        assert_eq!(r.get::<String>("sku")?, "B-2", "UTF-8 blob reads as text");
        assert_eq!(r.get::<f64>("price")?, 3.0, "integer widens to real");
        assert_eq!(r.get::<Option<String>>("note")?, Some("n".to_owned()));
        assert_eq!(r.get::<Vec<u8>>("data")?, b"cd");
        Ok(())
    }

    #[test]
    fn errors_name_the_column() {
        let rows = rows();
        let r = rows.first().unwrap();
        let e = r.get::<i64>("nope").unwrap_err();
        assert!(matches!(&e, Error::Column { column, .. } if column == "nope"));
        assert!(e.to_string().contains("`nope`"), "{e}");
        assert!(e.to_string().contains("id, sku"), "{e}");

        let e = r.get::<i64>("sku").unwrap_err();
        assert_eq!(e.to_string(), "column `sku`: expected integer, found text");
        let e = r.get::<String>("note").unwrap_err();
        assert_eq!(e.to_string(), "column `note`: expected text, found null");
        let e = rows
            .iter()
            .nth(1)
            .unwrap()
            .get::<bool>("active")
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "column `active`: expected boolean 0 or 1, found 7"
        );
        let neg = Rows::new(vec!["n".into()], vec![vec![Value::Integer(-1)]]);
        assert!(neg.first().unwrap().get::<u32>("n").is_err());
    }

    #[test]
    fn iterates_and_serialises() {
        let rows = rows();
        let ids: Vec<i64> = rows.iter().map(|r| r.get("id").unwrap()).collect();
        assert_eq!(ids, [1, 2]);
        let json = rows.to_json();
        assert_eq!(json["columns"][1], "sku");
        assert_eq!(json["rows"][0][0], 1);
        assert_eq!(json["rows"][0][3], serde_json::Value::Null);
        let owned: Vec<Row> = rows.into_iter().collect();
        assert_eq!(owned.len(), 2);
    }

    #[test]
    fn values_from_rust() {
        assert_eq!(Value::from(5_i64), Value::Integer(5));
        assert_eq!(Value::from(5_i32), Value::Integer(5));
        assert_eq!(Value::from("a"), Value::Text("a".into()));
        assert_eq!(Value::from(String::from("a")), Value::Text("a".into()));
        assert_eq!(Value::from(1.5), Value::Real(1.5));
        assert_eq!(Value::from(true), Value::Integer(1));
        assert_eq!(Value::from(None::<i64>), Value::Null);
        assert_eq!(Value::from(Some("x")), Value::Text("x".into()));
        assert_eq!(Value::from(vec![1_u8, 2]), Value::Blob(vec![1, 2]));
    }

    #[test]
    fn unique_violations() {
        for m in [
            "UNIQUE constraint failed: goods_items.sku",
            "duplicate key value violates unique constraint \"goods_items_sku_key\"",
            "Duplicate entry 'A-1' for key 'sku'",
        ] {
            assert!(Error::Failed(m.into()).is_unique_violation(), "{m}");
        }
        assert!(!Error::Failed("no such table".into()).is_unique_violation());
        assert!(!Error::Refused("unique".into()).is_unique_violation());
    }

    #[test]
    #[should_panic(expected = "only works inside a wasm32 plugin")]
    fn host_calls_panic_natively() {
        let _ = query("SELECT 1", &[]);
    }
}
