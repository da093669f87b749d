//! Every request gets an id: taken from a well-formed incoming
//! `x-request-id`, otherwise made here. It is put in the request's
//! extensions, echoed in the response header and written into error bodies,
//! so an operator can find the log lines behind a user's error report.
//!
//! The same layer is the panic guard: a handler that panics answers a JSON
//! 500 carrying the id instead of dropping the connection.
//!
//! This sits on every request, plugin routes included, so it is a plain
//! tower layer with its own future: no boxed future, no re-boxed body (as
//! `axum::middleware::from_fn` or tower-http's `CatchPanicLayer` would
//! add), and the id is a `HeaderValue` that clones by reference count.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use tower::{Layer, Service};

use super::ApiError;
use super::error::{ErrorDetails, render};

pub const HEADER: &str = "x-request-id";

/// [`HEADER`] as a `HeaderName`: a `&str` name is parsed, and a
/// non-standard one allocated, on every use.
static HEADER_NAME: HeaderName = HeaderName::from_static(HEADER);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(HeaderValue);

impl RequestId {
    pub fn as_str(&self) -> &str {
        // Only ever built from checked ASCII.
        self.0.to_str().unwrap_or("-")
    }

    /// A fresh id: a per-process random prefix and a counter, which is
    /// unique without a syscall per request. One allocation, and clones
    /// only count references (a `Bytes` made from a `Vec` allocates again
    /// on its first clone).
    pub fn generate() -> Self {
        static PREFIX: OnceLock<[u8; 9]> = OnceLock::new();
        static COUNTER: AtomicU64 = AtomicU64::new(1);
        let prefix = PREFIX.get_or_init(|| {
            let mut prefix = [b'-'; 9];
            hex(&mut prefix[..8], u64::from(rand::random::<u32>()));
            prefix
        });
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let mut id = IdBytes {
            bytes: [0; 9 + 16],
            len: 0,
        };
        id.bytes[..9].copy_from_slice(prefix);
        let digits = (16 - n.leading_zeros() as usize / 4).max(1);
        hex(&mut id.bytes[9..9 + digits], n);
        id.len = 9 + digits as u8;
        match HeaderValue::from_maybe_shared(Bytes::from_owner(id)) {
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

/// A generated id's bytes, owned by the `Bytes` of its header value.
struct IdBytes {
    bytes: [u8; 9 + 16],
    len: u8,
}

impl AsRef<[u8]> for IdBytes {
    fn as_ref(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

/// Writes the low `out.len()` hex digits of `n` into `out`.
fn hex(out: &mut [u8], mut n: u64) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for b in out.iter_mut().rev() {
        *b = DIGITS[(n & 0xf) as usize];
        n >>= 4;
    }
}

/// Adds [`RequestId`] handling and the panic guard to a router.
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
    S: Service<Request, Response = Response>,
    // axum's route futures are `Unpin`, which lets the future below poll
    // them without boxing or unsafe pin projection.
    S::Future: Unpin,
{
    type Response = Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        let id = request
            .headers()
            .get(&HEADER_NAME)
            .and_then(RequestId::from_header)
            .unwrap_or_else(RequestId::generate);
        request.extensions_mut().insert(id.clone());
        // `None`: the handler panicked before it returned a future.
        let inner = catch_unwind(AssertUnwindSafe(|| self.inner.call(request))).ok();
        ResponseFuture {
            inner,
            id: Some(id),
        }
    }
}

/// The response future of [`RequestIdService`].
pub struct ResponseFuture<F> {
    inner: Option<F>,
    id: Option<RequestId>,
}

impl<F, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response, E>> + Unpin,
{
    type Output = Result<Response, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let polled = match this.inner.as_mut() {
            Some(inner) => catch_unwind(AssertUnwindSafe(|| Pin::new(inner).poll(cx))).ok(),
            None => None,
        };
        let mut id = || this.id.take().unwrap_or_else(RequestId::generate);
        match polled {
            Some(Poll::Pending) => Poll::Pending,
            Some(Poll::Ready(Ok(response))) => Poll::Ready(Ok(finish(response, id()))),
            Some(Poll::Ready(Err(e))) => Poll::Ready(Err(e)),
            None => {
                let id = id();
                tracing::error!(request_id = id.as_str(), "a handler panicked");
                let response = ApiError::internal(
                    "the host failed while handling this request; the details are logged under its request id",
                )
                .into_response();
                Poll::Ready(Ok(finish(response, id)))
            }
        }
    }
}

/// Puts the id on the way out: in the header, and in the body of an error
/// rendered by [`super::ApiError`].
fn finish(mut response: Response, id: RequestId) -> Response {
    if let Some(details) = response.extensions_mut().remove::<ErrorDetails>() {
        let status = response.status();
        let mut rendered = render(status, details.code, &details.message, Some(id.as_str()));
        for (name, value) in response.headers() {
            if name != axum::http::header::CONTENT_LENGTH
                && name != axum::http::header::CONTENT_TYPE
            {
                rendered.headers_mut().append(name.clone(), value.clone());
            }
        }
        response = rendered;
    }
    response.headers_mut().insert(HEADER_NAME.clone(), id.0);
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
    fn hex_digits() {
        let mut buf = [0u8; 4];
        hex(&mut buf, 0xbeef);
        assert_eq!(&buf, b"beef");
        hex(&mut buf[..1], 0xf3);
        assert_eq!(&buf, b"3eef");
    }

    #[test]
    fn generated_ids_carry_prefix_and_counter() {
        let id = RequestId::generate();
        let (prefix, counter) = id.as_str().split_once('-').expect("prefix-counter");
        assert_eq!(prefix.len(), 8);
        assert!(u64::from_str_radix(counter, 16).is_ok(), "{id:?}");
    }
}
