//! The error type handlers return with `?`.

use std::fmt;

use crate::Response;
use crate::db;

/// An error that becomes an HTTP answer: a status and a message, sent as
/// `{"error": message}` (see [`Response::error`]).
///
/// Handlers returning `Result<Response, Error>` can use `?` on
/// [`Request::json`](crate::Request::json), [`db`] calls, [`kv`](crate::kv)
/// and [`events`](crate::events). Lifecycle hooks, which return
/// `Result<(), String>`, can use `?` on it too (it converts to its message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    status: u16,
    message: String,
}

impl Error {
    /// An error with any status.
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    /// 400 Bad Request.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, message)
    }

    /// 403 Forbidden.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, message)
    }

    /// 404 Not Found.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(404, message)
    }

    /// 409 Conflict.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(409, message)
    }

    /// 500 Internal Server Error.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, message)
    }

    /// The HTTP status this error answers with.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The message sent as `{"error": message}`.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.status)
    }
}

impl std::error::Error for Error {}

impl From<Error> for Response {
    fn from(e: Error) -> Self {
        Response::error(e.status, &e.message)
    }
}

/// SQL errors map to statuses by kind: a refused statement is 403, an
/// unparsable one 400, and a database failure or a column-typing error 500.
/// The message is the host's or decoder's text unchanged.
impl From<db::Error> for Error {
    fn from(e: db::Error) -> Self {
        let status = match &e {
            db::Error::Refused(_) => 403,
            db::Error::Invalid(_) => 400,
            db::Error::Failed(_) | db::Error::Column { .. } => 500,
        };
        let message = match e {
            db::Error::Refused(m) | db::Error::Invalid(m) | db::Error::Failed(m) => m,
            other @ db::Error::Column { .. } => other.to_string(),
        };
        Self::new(status, message)
    }
}

/// Lets lifecycle hooks (which return `Result<(), String>`) use `?`.
impl From<Error> for String {
    fn from(e: Error) -> Self {
        e.message
    }
}
