//! The check before a plugin runs: the plugin's compiled `[[routes]]` say
//! what a request needs, the request's `Arc<Caller>` (from [`super::authn`])
//! says what the caller holds. No database on this path: the route table
//! is compiled at load and the caller's permission set is resolved once.
//!
//! A public route passes anyone. A route needing a code passes a caller
//! holding it; a caller without it gets 403 naming the code; no caller gets
//! 401 JSON, or a redirect to the sign-in page for a browser navigating to
//! a page. A route no declared route covers is refused unless the caller
//! is a super-admin, who bypasses every check.

use std::sync::Arc;

use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use plinth_package::RouteTable;

use super::ApiError;
use crate::caller::{Caller, RouteVerdict, judge_route};

/// Why a request was refused before the plugin ran.
#[derive(Debug)]
pub enum Refusal {
    /// No caller, and the request is a browser navigating to a page.
    SignIn(Box<Response>),
    Api(ApiError),
}

impl From<ApiError> for Refusal {
    fn from(error: ApiError) -> Self {
        Refusal::Api(error)
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::SignIn(redirect) => *redirect,
            Refusal::Api(error) => error.into_response(),
        }
    }
}

/// Lets the request through to the plugin, or says why not. `path` is the
/// path below the plugin's mount point.
pub fn check(
    routes: &RouteTable,
    parts: &Parts,
    path: &str,
    plugin: &str,
) -> Result<Option<Arc<Caller>>, Refusal> {
    let caller = parts.extensions.get::<Arc<Caller>>();
    let code = match judge_route(routes, parts.method.as_str(), path, caller.map(|c| &**c)) {
        RouteVerdict::Allowed => return Ok(caller.cloned()),
        RouteVerdict::Lacks(code) => Some(code),
        RouteVerdict::NoCaller | RouteVerdict::Undeclared => None,
    };
    if caller.is_none() {
        if matches!(parts.method.as_str(), "GET" | "HEAD") && is_page_navigation(&parts.headers) {
            return Err(Refusal::SignIn(Box::new(super::authn::sign_in_redirect(
                &parts.uri,
            ))));
        }
        return Err(Refusal::Api(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "sign in first: this plugin route needs a signed-in user or a service token",
        )));
    }
    Err(Refusal::Api(match code {
        Some(code) => ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "this needs the permission {code:?}, which you do not hold; ask an administrator to grant it to one of your roles"
            ),
        ),
        None => ApiError::new(
            StatusCode::FORBIDDEN,
            "route_not_declared",
            format!(
                "plugin {plugin} declares no route for {} {path}, so it is refused; the plugin's [[routes]] must cover it",
                parts.method
            ),
        ),
    }))
}

/// Whether a browser is navigating to a page (rather than a script calling
/// an API): then a redirect to the sign-in page helps, where 401 JSON would
/// not.
fn is_page_navigation(headers: &HeaderMap) -> bool {
    if let Some(mode) = headers.get("sec-fetch-mode") {
        return mode.as_bytes() == b"navigate";
    }
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"))
}

/// Headers that carry the caller's credentials: the plugin learns who is
/// calling, never how.
pub fn is_credential_header(name: &str) -> bool {
    name.eq_ignore_ascii_case("cookie") || name.eq_ignore_ascii_case("authorization")
}
