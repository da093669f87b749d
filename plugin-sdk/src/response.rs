//! Building the plugin's answer.

use serde::Serialize;

use crate::Error;

/// An HTTP response: status, headers and body.
///
/// ```
/// use plinth_sdk::Response;
///
/// let r = Response::json(201, &serde_json::json!({ "id": 7 })).with_header("location", "/api/items/7");
/// assert_eq!(r.status(), 201);
/// assert_eq!(r.header("content-type"), Some("application/json"));
/// assert_eq!(r.body(), br#"{"id":7}"#);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    /// A response with `status`, a `content-type` and `body`.
    pub fn bytes(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status,
            headers: vec![("content-type".to_owned(), content_type.to_owned())],
            body: body.into(),
        }
    }

    /// A response with `status` and no body or headers (e.g. 204).
    pub fn empty(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// `value` serialised as JSON (`application/json`). Should serialisation
    /// fail (a map with non-string keys, say) the answer is a 500 error.
    pub fn json<T: Serialize + ?Sized>(status: u16, value: &T) -> Self {
        match serde_json::to_vec(value) {
            Ok(body) => Self::bytes(status, "application/json", body),
            Err(e) => Self::error(500, &format!("could not serialise response: {e}")),
        }
    }

    /// Plain text (`text/plain; charset=utf-8`).
    pub fn text(status: u16, body: impl Into<String>) -> Self {
        Self::bytes(status, "text/plain; charset=utf-8", body.into())
    }

    /// An HTML page (`text/html; charset=utf-8`). Escape interpolated text
    /// with [`html::escape`](crate::html::escape).
    pub fn html(status: u16, body: impl Into<String>) -> Self {
        Self::bytes(status, "text/html; charset=utf-8", body.into())
    }

    /// A JSON error body `{"error": message}`.
    pub fn error(status: u16, message: &str) -> Self {
        Self::json(status, &serde_json::json!({ "error": message }))
    }

    /// A redirect (`303 See Other`) to `location`.
    pub fn redirect(location: &str) -> Self {
        Self::empty(303).with_header("location", location)
    }

    /// Adds a header. Names are sent lower-case.
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers
            .push((name.to_ascii_lowercase(), value.to_owned()));
        self
    }

    /// Replaces the status.
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    /// The status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The first value of header `name`, compared without regard to case.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// All headers as `(name, value)` pairs.
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    /// The body.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// Drops the body, keeping status and headers (for `HEAD`).
    pub(crate) fn without_body(mut self) -> Self {
        self.body.clear();
        self
    }

    /// Splits into `(status, headers, body)`.
    #[doc(hidden)]
    pub fn into_parts(self) -> (u16, Vec<(String, String)>, Vec<u8>) {
        (self.status, self.headers, self.body)
    }
}

/// Anything a handler may return.
///
/// Implemented for [`Response`], [`Error`], `&'static str` and `String`
/// (200 plain text), and `Result<T, E>` where both sides convert, so a
/// handler can return `Result<Response, Error>` and use `?`.
pub trait IntoResponse {
    /// Converts into the response sent to the client.
    fn into_response(self) -> Response;
}

impl IntoResponse for Response {
    fn into_response(self) -> Response {
        self
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        self.into()
    }
}

impl IntoResponse for &'static str {
    fn into_response(self) -> Response {
        Response::text(200, self)
    }
}

impl IntoResponse for String {
    fn into_response(self) -> Response {
        Response::text(200, self)
    }
}

impl<T: IntoResponse, E: IntoResponse> IntoResponse for Result<T, E> {
    fn into_response(self) -> Response {
        match self {
            Ok(t) => t.into_response(),
            Err(e) => e.into_response(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests fail loudly by design
mod tests {
    use super::*;

    #[test]
    fn builders() {
        let r = Response::text(200, "hi").with_header("X-Thing", "1");
        assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
        assert_eq!(r.header("x-thing"), Some("1"));
        assert_eq!(r.body(), b"hi");

        let e = Response::error(404, "not \"found\"");
        assert_eq!(e.status(), 404);
        let v: serde_json::Value = serde_json::from_slice(e.body()).unwrap();
        assert_eq!(v, serde_json::json!({ "error": "not \"found\"" }));

        assert_eq!(
            Response::html(200, "<p>").header("content-type"),
            Some("text/html; charset=utf-8")
        );
        assert_eq!(Response::redirect("/x").header("location"), Some("/x"));
    }

    #[test]
    fn into_response() {
        let ok: Result<Response, Error> = Ok(Response::empty(204));
        assert_eq!(ok.into_response().status(), 204);
        let err: Result<Response, Error> = Err(Error::conflict("taken"));
        let r = err.into_response();
        assert_eq!(r.status(), 409);
        assert_eq!(r.body(), br#"{"error":"taken"}"#);
        assert_eq!("ok".into_response().body(), b"ok");
    }
}
