//! The incoming HTTP request as a handler sees it.

use std::str::FromStr;

use serde::de::DeserializeOwned;

use crate::Error;

/// An HTTP request routed to the plugin.
///
/// The path is relative to the plugin's mount point: a request for
/// `/p/goods/api/items?q=x` reaches `goods` with `path() == "/api/items"` and
/// `query_string() == "q=x"`.
#[derive(Debug, Clone, Default)]
pub struct Request {
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    request_id: String,
    params: Vec<(String, String)>,
}

impl Request {
    /// A request with `method` and `path` (which may carry `?query`), no
    /// headers and no body. Useful in tests; plugins receive theirs from the
    /// host.
    pub fn new(method: &str, path: &str) -> Self {
        let (path, query) = path.split_once('?').unwrap_or((path, ""));
        Self {
            method: method.to_ascii_uppercase(),
            path: path.to_owned(),
            query: query.to_owned(),
            ..Self::default()
        }
    }

    /// The signed-in caller of this request ([`crate::auth::current_user`]);
    /// `None` when anonymous. Calls the host.
    pub fn user(&self) -> Option<crate::auth::User> {
        crate::auth::current_user()
    }

    /// Builds a request from the host's parts. Header names are expected
    /// lower-case (the host lower-cases them); lookups ignore case anyway.
    #[doc(hidden)]
    pub fn from_parts(
        method: String,
        path: String,
        query: String,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
        request_id: String,
    ) -> Self {
        Self {
            method,
            path,
            query,
            headers,
            body,
            request_id,
            params: Vec::new(),
        }
    }

    /// Adds a header (builder style, for tests).
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers
            .push((name.to_ascii_lowercase(), value.to_owned()));
        self
    }

    /// Replaces the body (builder style, for tests).
    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// The upper-case method, e.g. `GET`.
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The path below the plugin's mount point, starting with `/`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The raw query string without the leading `?`; empty when absent.
    pub fn query_string(&self) -> &str {
        &self.query
    }

    /// The first value of query parameter `name`, percent-decoded (`+` reads
    /// as a space). `None` when absent; `Some("")` for `?name` or `?name=`.
    pub fn query(&self, name: &str) -> Option<String> {
        self.query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| p.split_once('=').unwrap_or((p, "")))
            .find(|(k, _)| percent_decode(k, true) == name)
            .map(|(_, v)| percent_decode(v, true))
    }

    /// Query parameter `name` parsed as `T`; a 400 [`Error`] naming the
    /// parameter when it is missing or does not parse.
    pub fn query_parse<T: FromStr>(&self, name: &str) -> Result<T, Error> {
        let raw = self
            .query(name)
            .ok_or_else(|| Error::bad_request(format!("missing query parameter `{name}`")))?;
        raw.parse()
            .map_err(|_| Error::bad_request(format!("invalid query parameter `{name}`: {raw:?}")))
    }

    /// All query parameters in order, percent-decoded.
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        self.query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (percent_decode(k, true), percent_decode(v, true))
            })
            .collect()
    }

    /// The first value of field `name` in an `application/x-www-form-urlencoded`
    /// body (what an HTML `<form method="post">` sends), percent-decoded.
    pub fn form(&self, name: &str) -> Option<String> {
        let body = std::str::from_utf8(&self.body).ok()?;
        body.split('&')
            .filter(|p| !p.is_empty())
            .map(|p| p.split_once('=').unwrap_or((p, "")))
            .find(|(k, _)| percent_decode(k, true) == name)
            .map(|(_, v)| percent_decode(v, true))
    }

    /// The first value of header `name`, compared without regard to case.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// All headers as `(name, value)` pairs, names lower-case.
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    /// The raw body.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The body as UTF-8 text; a 400 [`Error`] when it is not.
    pub fn text(&self) -> Result<&str, Error> {
        std::str::from_utf8(&self.body)
            .map_err(|_| Error::bad_request("request body is not valid UTF-8"))
    }

    /// The body parsed as JSON into `T`; a 400 [`Error`] with serde's message
    /// (which names the offending field) when it does not parse.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_slice(&self.body)
            .map_err(|e| Error::bad_request(format!("invalid JSON body: {e}")))
    }

    /// The value of path parameter `name` (`:name` or `*name` in the route
    /// pattern), percent-decoded.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Path parameter `name` parsed as `T`; a 400 [`Error`] when it does not
    /// parse (e.g. `/api/items/abc` for an integer id).
    pub fn param_parse<T: FromStr>(&self, name: &str) -> Result<T, Error> {
        let raw = self
            .param(name)
            .ok_or_else(|| Error::bad_request(format!("missing path parameter `{name}`")))?;
        raw.parse()
            .map_err(|_| Error::bad_request(format!("invalid path parameter `{name}`: {raw:?}")))
    }

    /// The id the host gave this request (echoed in `x-request-id`).
    pub fn request_id(&self) -> &str {
        &self.request_id
    }

    pub(crate) fn set_params(&mut self, params: Vec<(String, String)>) {
        self.params = params;
    }
}

/// Decodes `%XX` escapes (and `+` as a space when `plus_as_space`); invalid
/// escapes stay as they are and invalid UTF-8 becomes U+FFFD.
pub(crate) fn percent_decode(s: &str, plus_as_space: bool) -> String {
    if !s.bytes().any(|b| b == b'%' || (plus_as_space && b == b'+')) {
        return s.to_owned();
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' if plus_as_space => out.push(b' '),
            b'%' => match hex_pair(bytes, i) {
                Some(b) => {
                    out.push(b);
                    i += 2;
                }
                None => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_pair(bytes: &[u8], i: usize) -> Option<u8> {
    let hi = (*bytes.get(i + 1)? as char).to_digit(16)?;
    let lo = (*bytes.get(i + 2)? as char).to_digit(16)?;
    Some((hi * 16 + lo) as u8)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests fail loudly by design
mod tests {
    use super::*;

    #[test]
    fn decodes_percent_and_plus() {
        assert_eq!(percent_decode("a%20b+c", true), "a b c");
        assert_eq!(percent_decode("a%20b+c", false), "a b+c");
        assert_eq!(percent_decode("caf%C3%A9", true), "café");
        assert_eq!(percent_decode("100%", true), "100%");
        assert_eq!(percent_decode("%zz%4", true), "%zz%4");
        assert_eq!(percent_decode("%4a", true), "J");
        assert_eq!(percent_decode("plain", true), "plain");
    }

    #[test]
    fn query_lookup() {
        let req = Request::new(
            "get",
            "/x?q=hello+world&empty&n=42&sql=SELECT%20*%20FROM%20t&q=second",
        );
        assert_eq!(req.method(), "GET");
        assert_eq!(req.path(), "/x");
        assert_eq!(req.query("q").as_deref(), Some("hello world"));
        assert_eq!(req.query("empty").as_deref(), Some(""));
        assert_eq!(req.query("missing"), None);
        assert_eq!(req.query("sql").as_deref(), Some("SELECT * FROM t"));
        assert_eq!(req.query_parse::<u32>("n"), Ok(42));
        assert_eq!(req.query_parse::<u32>("q").unwrap_err().status(), 400);
        assert_eq!(req.query_parse::<u32>("missing").unwrap_err().status(), 400);
        assert_eq!(req.query_pairs().len(), 5);
    }

    #[test]
    fn form_fields() {
        let req = Request::new("POST", "/").with_body("sku=A-1&name=Big+%22anvil%22&empty=");
        assert_eq!(req.form("sku").as_deref(), Some("A-1"));
        assert_eq!(req.form("name").as_deref(), Some("Big \"anvil\""));
        assert_eq!(req.form("empty").as_deref(), Some(""));
        assert_eq!(req.form("nope"), None);
    }

    #[test]
    fn headers_ignore_case() {
        let req = Request::new("GET", "/").with_header("Content-Type", "application/json");
        assert_eq!(req.header("content-type"), Some("application/json"));
        assert_eq!(req.header("CONTENT-TYPE"), Some("application/json"));
        assert_eq!(req.header("accept"), None);
    }

    #[test]
    fn json_body() {
        #[derive(serde::Deserialize, Debug, PartialEq)]
        struct Body {
            delta: i64,
        }
        let ok = Request::new("POST", "/").with_body(r#"{"delta": -3}"#);
        assert_eq!(ok.json::<Body>(), Ok(Body { delta: -3 }));
        let bad = Request::new("POST", "/").with_body(r#"{"delta": "x"}"#);
        let err = bad.json::<Body>().unwrap_err();
        assert_eq!(err.status(), 400);
        assert!(err.message().contains("invalid JSON body"), "{err}");
    }
}
