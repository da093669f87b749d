//! Who is calling: turns the credentials a request carries into an
//! [`Caller`] in its extensions, before any route runs.
//!
//! A route that needs a caller reads `Option<Extension<Arc<Caller>>>`; a
//! request whose credentials do not check out simply has none, so every
//! route denies it the same way. Today the only credential is the bootstrap
//! `admin.token` from config.json, sent as `Authorization: Bearer …`; it
//! acts as the super-admin.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;
use crate::caller::{Caller, CallerKind, PermissionSet};

/// Resolves the request's credentials into an `Arc<Caller>` extension.
pub async fn identify(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    // Extensions never come from the network; an in-process caller (a test
    // driving the router) may set one itself.
    if let Some(caller) = resolve(&state, &request) {
        request.extensions_mut().insert(caller);
    }
    next.run(request).await
}

fn resolve(state: &AppState, request: &Request) -> Option<Arc<Caller>> {
    let bearer = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))?;
    let expected = state.config().admin.token.as_bytes();
    if expected.is_empty() || !constant_time_eq(bearer.as_bytes(), expected) {
        return None;
    }
    Some(bootstrap_caller())
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

/// The answer for a browser that asked for a page without signing in: a
/// 303 to the sign-in page, which returns the user to `uri` afterwards.
/// `next` is this host's own path and query, so the redirect never leads
/// off the host.
pub fn sign_in_redirect(uri: &axum::http::Uri) -> Response {
    let target = uri.path_and_query().map_or("/", |pq| pq.as_str());
    let target = if target.starts_with('/') && !target.starts_with("//") {
        target
    } else {
        "/"
    };
    let mut next = String::with_capacity(target.len() + 8);
    for byte in target.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~/".contains(&byte) {
            next.push(byte as char);
        } else {
            next.push_str(&format!("%{byte:02X}"));
        }
    }
    axum::response::Redirect::to(&format!("/login.html?next={next}")).into_response()
}
