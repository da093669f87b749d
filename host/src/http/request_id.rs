//! Every request gets an id: taken from a well-formed incoming
//! `x-request-id`, otherwise made here. It is put in the request's
//! extensions, echoed in the response header and written into error bodies,
//! so an operator can find the log lines behind a user's error report.
//!
//! This sits on every request, plugin routes included, so it is a plain
//! tower layer rather than `axum::middleware::from_fn` (which boxes a
//! future and clones the inner service per request), and the id is a
//! `HeaderValue` that clones by reference count.

use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::response::Response;
use tower::{Layer, Service};

use super::error::{ErrorDetails, render};

pub const HEADER: &str = "x-request-id";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(HeaderValue);

impl RequestId {
    pub fn as_str(&self) -> &str {
        // Only ever built from checked ASCII.
        self.0.to_str().unwrap_or("-")
    }

    /// A fresh id: a per-process random prefix and a counter, which is
    /// unique without a syscall per request.
    pub fn generate() -> Self {
        static PREFIX: OnceLock<String> = OnceLock::new();
        static COUNTER: AtomicU64 = AtomicU64::new(1);
        let prefix = PREFIX.get_or_init(|| format!("{:08x}-", rand::random::<u32>()));
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let mut id = String::with_capacity(prefix.len() + 16);
        id.push_str(prefix);
        push_hex(&mut id, n);
        match HeaderValue::from_maybe_shared(bytes::Bytes::from(id)) {
            Ok(value) => Self(value),
            Err(_) => Self(HeaderValue::from_static("unknown")),
        }
    }

    fn from_header(value: &HeaderValue) -> Option<Self> {
        let bytes = value.as_bytes();
        let ok = !bytes.is_empty()
            && bytes.len() <= 64
            && bytes
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        ok.then(|| Self(value.clone()))
    }
}

fn push_hex(out: &mut String, mut n: u64) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut buf = [0u8; 16];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = DIGITS[(n & 0xf) as usize];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    out.extend(buf[i..].iter().map(|&b| char::from(b)));
}

/// Adds [`RequestId`] handling to a router.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestIdLayer;

impl<S> Layer<S> for RequestIdLayer {
    type Service = RequestIdService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequestIdService { inner }
    }
}

#[derive(Debug, Clone)]
pub struct RequestIdService<S> {
    inner: S,
}

impl<S> Service<Request> for RequestIdService<S>
where
    S: Service<Request, Response = Response> + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        let id = request
            .headers()
            .get(HEADER)
            .and_then(RequestId::from_header)
            .unwrap_or_else(RequestId::generate);
        request.extensions_mut().insert(id.clone());
        let future = self.inner.call(request);
        Box::pin(async move {
            let response = future.await?;
            Ok(finish(response, id))
        })
    }
}

/// Puts the id on the way out: in the header, and in the body of an error
/// rendered by [`super::ApiError`].
fn finish(mut response: Response, id: RequestId) -> Response {
    if let Some(details) = response.extensions_mut().remove::<ErrorDetails>() {
        let status = response.status();
        let mut rendered = render(status, details.code, &details.message, Some(&id));
        for (name, value) in response.headers() {
            if name != axum::http::header::CONTENT_LENGTH
                && name != axum::http::header::CONTENT_TYPE
            {
                rendered.headers_mut().append(name.clone(), value.clone());
            }
        }
        response = rendered;
    }
    response.headers_mut().insert(HEADER, id.0);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_unique_and_header_safe() {
        let a = RequestId::generate();
        let b = RequestId::generate();
        assert_ne!(a, b);
        assert!(RequestId::from_header(&a.0).is_some());
    }

    #[test]
    fn incoming_ids_are_taken_only_when_well_formed() {
        let good = HeaderValue::from_static("trace-me_42.x");
        assert_eq!(
            RequestId::from_header(&good)
                .map(|r| r.as_str().to_owned())
                .as_deref(),
            Some("trace-me_42.x")
        );
        assert!(RequestId::from_header(&HeaderValue::from_static("has space")).is_none());
        assert!(RequestId::from_header(&HeaderValue::from_static("")).is_none());
        let long = HeaderValue::from_str(&"a".repeat(65)).expect("ascii");
        assert!(RequestId::from_header(&long).is_none());
    }

    #[test]
    fn hex_counter() {
        let mut s = String::new();
        push_hex(&mut s, 0);
        push_hex(&mut s, 255);
        assert_eq!(s, "0ff");
    }
}
