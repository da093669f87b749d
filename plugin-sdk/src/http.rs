//! Outbound HTTP to the hosts the plugin may reach (host API 0.2): its
//! manifest's `capabilities.outbound_hosts`, as the operator adjusted them.
//! The host refuses anything else, checks the addresses a name resolves to
//! and every redirect, and applies a time-out and a response-size cap; the
//! [`HttpError`] says which rule stopped a call.
//!
//! ```no_run
//! # fn f() -> Result<(), plinth_sdk::Error> {
//! let rates: serde_json::Value = plinth_sdk::http::get("https://api.example.com/rates")?.json()?;
//! let created = plinth_sdk::http::Request::post("https://api.example.com/orders")
//!     .header("authorization", "Bearer …")
//!     .json(&rates)?
//!     .timeout_ms(2_000)
//!     .send()?;
//! # Ok(()) }
//! ```
//!
//! `?` turns an [`HttpError`] into a 502 [`Error`](crate::Error) carrying
//! the host's message.

use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::__bindings::plinth::plugin::outbound_http as wit;
use crate::__bindings::plinth::plugin::types::Header;
use crate::Error;

/// `GET url`.
pub fn get(url: &str) -> Result<Response, HttpError> {
    Request::get(url).send()
}

/// `POST url` with `body` as JSON.
pub fn post_json<T: Serialize + ?Sized>(url: &str, body: &T) -> Result<Response, HttpError> {
    Request::post(url)
        .json(body)
        .map_err(|e| HttpError::Failed(e.message().to_owned()))?
        .send()
}

/// An outgoing request, built and then sent.
#[derive(Debug, Clone)]
pub struct Request {
    inner: wit::OutgoingRequest,
}

impl Request {
    pub fn new(method: &str, url: &str) -> Self {
        Self {
            inner: wit::OutgoingRequest {
                method: method.to_ascii_uppercase(),
                url: url.to_owned(),
                headers: Vec::new(),
                body: Vec::new(),
                timeout_ms: None,
            },
        }
    }

    pub fn get(url: &str) -> Self {
        Self::new("GET", url)
    }

    pub fn post(url: &str) -> Self {
        Self::new("POST", url)
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.inner.headers.push(Header {
            name: name.to_owned(),
            value: value.to_owned(),
        });
        self
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.inner.body = body.into();
        self
    }

    /// Sets the body to `value` as JSON, with its content type.
    pub fn json<T: Serialize + ?Sized>(self, value: &T) -> Result<Self, Error> {
        let body = serde_json::to_vec(value)
            .map_err(|e| Error::internal(format!("cannot encode the request body: {e}")))?;
        Ok(self.header("content-type", "application/json").body(body))
    }

    /// A time-out shorter than the host's own.
    pub fn timeout_ms(mut self, ms: u32) -> Self {
        self.inner.timeout_ms = Some(ms);
        self
    }

    pub fn send(self) -> Result<Response, HttpError> {
        crate::guest_only("http::send");
        wit::send(&self.inner)
            .map(|inner| Response { inner })
            .map_err(HttpError::from)
    }
}

/// The final response, after any redirects.
#[derive(Debug, Clone)]
pub struct Response {
    inner: wit::IncomingResponse,
}

impl Response {
    pub fn status(&self) -> u16 {
        self.inner.status
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.inner
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.as_str())
    }

    pub fn bytes(&self) -> &[u8] {
        &self.inner.body
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.inner.body
    }

    /// The body as UTF-8 text (invalid bytes become U+FFFD).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.inner.body).into_owned()
    }

    /// The body parsed as JSON; a body that is not that JSON is a 502.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_slice(&self.inner.body).map_err(|e| {
            Error::new(
                502,
                format!("the upstream answer is not the JSON expected: {e}"),
            )
        })
    }
}

/// Why a call failed: which rule of the host stopped it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpError {
    /// The host is not allowed; `setting` says where to allow it.
    Denied {
        host: String,
        setting: String,
    },
    /// The name resolved to a private, loopback or otherwise guarded
    /// address.
    BlockedAddress(String),
    Timeout(String),
    TooLarge(String),
    Failed(String),
}

impl From<wit::OutboundError> for HttpError {
    fn from(error: wit::OutboundError) -> Self {
        match error {
            wit::OutboundError::Denied(d) => HttpError::Denied {
                host: d.host,
                setting: d.setting,
            },
            wit::OutboundError::BlockedAddress(m) => HttpError::BlockedAddress(m),
            wit::OutboundError::Timeout(m) => HttpError::Timeout(m),
            wit::OutboundError::TooLarge(m) => HttpError::TooLarge(m),
            wit::OutboundError::Failed(m) => HttpError::Failed(m),
        }
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::Denied { host, setting } => {
                write!(
                    f,
                    "{host} is not an allowed outbound host; allow it in {setting}"
                )
            }
            HttpError::BlockedAddress(m)
            | HttpError::Timeout(m)
            | HttpError::TooLarge(m)
            | HttpError::Failed(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for HttpError {}

impl From<HttpError> for Error {
    /// 504 for a time-out, 502 for everything else: the plugin's upstream
    /// failed it, not the caller.
    fn from(error: HttpError) -> Self {
        let status = match error {
            HttpError::Timeout(_) => 504,
            _ => 502,
        };
        Error::new(status, error.to_string())
    }
}
