//! Who is calling: turns the credentials a request carries into an
//! [`Caller`] in its extensions, before any route runs.
//!
//! A route that needs a caller reads `Option<Extension<Arc<Caller>>>`; a
//! request whose credentials do not check out simply has none, so every
//! route denies it the same way. Credentials, in the order tried:
//! `Authorization: Bearer <token>` (the bootstrap `admin.token`, acting as
//! super-admin, or a service token), then the session cookie set by
//! `POST /api/auth/login`. Both resolve through the
//! [`CallerCache`](crate::accounts::callers::CallerCache).
//!
//! Two rules sit here because they hang on how the caller was identified:
//! - CSRF: a state-changing request (anything but GET, HEAD, OPTIONS)
//!   authenticated by the cookie, and every sign-in, must come from this
//!   host's own pages: `Sec-Fetch-Site` must be `same-origin` or `none`
//!   when sent, and otherwise `Origin`, when sent, must name this host. A
//!   bearer token is never sent by a browser on its own, so it needs no
//!   such check.
//! - [`sign_in_redirect`]: a browser asking for a page without a caller is
//!   sent to `/login.html?next=…`, with a `next` that [`safe_next`] keeps
//!   inside this host.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{ApiError, AppState};
use crate::accounts::callers::Credential;
use crate::caller::{Caller, CallerKind, PermissionSet};

/// The name of the session cookie.
pub const SESSION_COOKIE: &str = "plinth_session";

/// Resolves the request's credentials into an `Arc<Caller>` extension.
pub async fn identify(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let ip = client_ip(request.extensions());
    request.extensions_mut().insert(ClientIp(ip));
    // Extensions never come from the network; an in-process caller (a test
    // driving the router) may set one itself.
    if request.extensions().get::<Arc<Caller>>().is_some() {
        return next.run(request).await;
    }
    let (caller, by_cookie) = resolve(&state, request.headers()).await;
    let unsafe_method = !matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    let sign_in = request.uri().path() == "/api/auth/login";
    if unsafe_method && (by_cookie || sign_in) && is_cross_site(request.headers()) {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "cross_site",
            "a state-changing request from another site is refused: send it from this host's own pages",
        )
        .into_response();
    }
    if let Some(caller) = caller {
        request.extensions_mut().insert(caller);
    }
    next.run(request).await
}

/// The caller, and whether the session cookie identified them.
async fn resolve(state: &AppState, headers: &HeaderMap) -> (Option<Arc<Caller>>, bool) {
    if let Some(bearer) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    {
        let expected = state.config().admin.token.as_bytes();
        if !expected.is_empty() && constant_time_eq(bearer.as_bytes(), expected) {
            return (Some(bootstrap_caller()), false);
        }
        return (lookup(state, Credential::ServiceToken, bearer).await, false);
    }
    match session_cookie(headers) {
        Some(secret) => {
            let caller = lookup(state, Credential::Session, secret).await;
            let found = caller.is_some();
            (caller, found)
        }
        None => (None, false),
    }
}

async fn lookup(state: &AppState, kind: Credential, secret: &str) -> Option<Arc<Caller>> {
    // Secrets are 64 hex characters; anything else is refused before a
    // hash or a database round trip.
    if secret.len() != 64 || !secret.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let host = state.host().ok()?;
    match state
        .callers()
        .resolve(&host.db, &host.grants, kind, secret)
        .await
    {
        Ok(caller) => caller,
        Err(e) => {
            tracing::error!(error = %e, "could not look up a session or service token");
            None
        }
    }
}

/// The session cookie's value, if the request carries one.
pub fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == SESSION_COOKIE).then_some(value)
        })
}

/// Whether the browser says the request came from another site.
fn is_cross_site(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        return !matches!(site, "same-origin" | "none");
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return false;
    };
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let origin_host = origin
        .to_str()
        .ok()
        .and_then(|o| o.split_once("://"))
        .map(|(_, rest)| rest);
    match (origin_host, host) {
        (Some(origin_host), Some(host)) => !origin_host.eq_ignore_ascii_case(host),
        _ => true,
    }
}

/// The client's address as text ('' when the listener did not record it),
/// in every request's extensions.
#[derive(Debug, Clone)]
pub struct ClientIp(pub String);

/// The client's address, when the listener recorded it.
fn client_ip(request_extensions: &axum::http::Extensions) -> String {
    request_extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip().to_string())
        .unwrap_or_default()
}

/// The answer for a browser that asked for a page without signing in: a
/// 303 to the sign-in page, which returns the user to `uri` afterwards.
pub fn sign_in_redirect(uri: &Uri) -> Response {
    let next = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let next = safe_next(next);
    let location = format!("/login.html?next={}", percent_encode(next));
    (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response()
}

/// Before the static files: a browser asking for a page (a path ending in
/// `/` or `.html`, other than the sign-in page itself) without a caller is
/// sent to sign in. Scripts, styles and images stay public, since the
/// sign-in page needs them.
pub async fn pages_need_sign_in(request: Request, next: Next) -> Response {
    let path = request.uri().path();
    let page = (path.ends_with('/') || path.ends_with(".html")) && path != "/login.html";
    if page && request.extensions().get::<Arc<Caller>>().is_none() && wants_sign_in_page(&request) {
        return sign_in_redirect(request.uri());
    }
    next.run(request).await
}

/// Whether a request without a caller should be sent to the sign-in page
/// rather than answered 401: a browser (`Accept: text/html`) getting a page.
pub fn wants_sign_in_page(request: &Request) -> bool {
    request.method() == Method::GET
        && request
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|accept| accept.contains("text/html"))
}

/// `next` if it is a path on this host, else `/`. Refuses anything a
/// browser could read as another origin: absolute URLs, scheme-relative
/// `//host`, backslashes (which browsers treat as slashes) and control
/// characters.
pub fn safe_next(next: &str) -> &str {
    let ok = next.starts_with('/')
        && !next.starts_with("//")
        && !next.contains('\\')
        && !next.chars().any(|c| c.is_control())
        && next.len() <= 2048;
    if ok { next } else { "/" }
}

fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The caller the bootstrap `admin.token` stands for.
fn bootstrap_caller() -> Arc<Caller> {
    static BOOTSTRAP: std::sync::OnceLock<Arc<Caller>> = std::sync::OnceLock::new();
    BOOTSTRAP
        .get_or_init(|| {
            Arc::new(Caller {
                kind: CallerKind::Bootstrap,
                id: 0,
                login: "admin.token".into(),
                display_name: "Bootstrap token".into(),
                roles: vec!["super-admin".into()],
                data_scope: "all".into(),
                permissions: Arc::new(PermissionSet::super_admin()),
            })
        })
        .clone()
}

/// Compares without stopping at the first difference, so response timing
/// does not reveal how much of a secret was right.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_on_this_host() {
        assert_eq!(safe_next("/p/goods/?a=1"), "/p/goods/?a=1");
        for evil in [
            "//evil.example",
            "https://evil.example/",
            "/\\evil.example",
            "\\\\evil.example",
            "evil.example",
            "javascript:alert(1)",
            "/\nLocation: x",
            "",
        ] {
            assert_eq!(safe_next(evil), "/", "{evil:?}");
        }
    }

    #[test]
    fn cross_site_is_told_by_fetch_metadata_or_origin() {
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut map = HeaderMap::new();
            for (k, v) in pairs {
                map.insert(*k, v.parse().expect("header"));
            }
            map
        };
        assert!(is_cross_site(&headers(&[("sec-fetch-site", "cross-site")])));
        assert!(is_cross_site(&headers(&[("sec-fetch-site", "same-site")])));
        assert!(!is_cross_site(&headers(&[(
            "sec-fetch-site",
            "same-origin"
        )])));
        assert!(is_cross_site(&headers(&[
            ("origin", "https://evil.example"),
            ("host", "plinth.local:8080")
        ])));
        assert!(!is_cross_site(&headers(&[
            ("origin", "http://plinth.local:8080"),
            ("host", "plinth.local:8080")
        ])));
        assert!(is_cross_site(&headers(&[("origin", "null")])));
        // curl and scripts send neither: not a browser, not CSRF.
        assert!(!is_cross_site(&headers(&[])));
    }
}
