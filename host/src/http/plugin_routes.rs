//! `/p/<plugin>/…`: adapts an HTTP request to the runtime and the plugin's
//! answer back to HTTP.
//!
//! The plugin sees the path below its mount point. Its failures become JSON
//! errors carrying the request id (500, or 504 when it ran out of time);
//! the details go to the log with the plugin's name. Before any of that,
//! [`super::plugin_access::check`] decides whether the caller may make the
//! request at all; the plugin never sees the `cookie` or `authorization`
//! header.

use axum::body::{Body, HttpBody};
use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use super::plugin_access::{self, Refusal, is_credential_header};
use super::request_id::RequestId;
use super::{ApiError, AppState};

use crate::runtime::CallContext;
use crate::runtime::plugin_calls::CALLING_PLUGIN_HEADER;
use crate::runtime::{CallError, LoadedComponent, WitHeader, WitRequest, WitResponse};

pub async fn serve(State(state): State<AppState>, request: Request) -> Response {
    match dispatch(&state, request).await {
        Ok(response) => response,
        Err(refusal) => refusal.into_response(),
    }
}

async fn dispatch(state: &AppState, request: Request) -> Result<Response, Refusal> {
    let host = state.host()?;
    let (mut parts, body) = request.into_parts();
    let below = parts.uri.path().strip_prefix("/p/").unwrap_or_default();
    let (route, rest) = match below.split_once('/') {
        Some((route, rest)) => (route, rest),
        None => (below, ""),
    };
    let plugin = host
        .registry
        .by_route(route)
        .ok_or_else(|| ApiError::not_found(format!("no plugin is mounted at /p/{route}/")))?;
    // The check reads the path the plugin will see: "/" plus the rest.
    let plugin_path = below
        .get(route.len()..)
        .filter(|p| !p.is_empty())
        .unwrap_or("/");
    let caller = plugin_access::check(&plugin.routes, &parts, plugin_path, plugin.name())?;
    let request_id = parts
        .extensions
        .get::<RequestId>()
        .cloned()
        .unwrap_or_else(RequestId::generate);
    if let Some(refused) =
        state
            .route_limits()
            .check(plugin.name(), &plugin.manifest.limits, &parts, plugin_path)
    {
        return Ok(refused);
    }
    // A declared upload is streamed into a file; the plugin gets its name.
    let (body, upload) =
        match super::plugin_files::store_upload(host, &plugin, &parts, rest, body).await? {
            Ok(stored) => {
                stored.describe_in(&mut parts.headers);
                (stored.body.clone(), Some(stored))
            }
            Err(body) => (collect_body(state, body).await?, None),
        };
    let keep = |upload: Option<super::plugin_files::StoredUpload>, status: u16| match upload {
        Some(upload) if (200..300).contains(&status) => upload.keep().map(drop),
        _ => Ok(()),
    };

    match &plugin.component {
        LoadedComponent::Plinth(component) => {
            // Only the host says which plugin called: a client's claim is dropped.
            parts.headers.remove(CALLING_PLUGIN_HEADER);
            let context = CallContext {
                caller,
                chain: Vec::new(),
            };
            let answer = component
                .handle_in(context, |wit| {
                    fill_request(wit, &parts, rest, &body, &request_id)
                })
                .await
                .map_err(|e| call_error(e, &request_id))?;
            keep(upload, answer.status)?;
            Ok(into_response(plugin.name(), answer))
        }
        LoadedComponent::WasiHttp(component) => {
            let mut builder = http::Request::builder()
                .method(parts.method.clone())
                .uri(format!(
                    "http://{}/{rest}{}",
                    parts
                        .headers
                        .get(http::header::HOST)
                        .and_then(|h| h.to_str().ok())
                        .unwrap_or("localhost"),
                    parts
                        .uri
                        .query()
                        .map(|q| format!("?{q}"))
                        .unwrap_or_default()
                ));
            for (name, value) in &parts.headers {
                if !is_credential_header(name.as_str()) {
                    builder = builder.header(name, value);
                }
            }
            let request = builder
                .header(super::request_id::HEADER, request_id.as_str())
                .body(body)
                .map_err(|e| ApiError::bad_request(format!("cannot forward this request: {e}")))?;
            let response = component
                .handle(request)
                .await
                .map_err(|e| call_error(e, &request_id))?;
            keep(upload, response.status().as_u16())?;
            Ok(response.map(Body::new))
        }
    }
}

/// The whole request body, within `server.body_limit_bytes`.
async fn collect_body(state: &AppState, body: Body) -> Result<Bytes, ApiError> {
    let limit = state.config().server.body_limit_bytes;
    // Most requests (every GET) have no body: skip collecting one.
    Ok(if body.is_end_stream() {
        Bytes::new()
    } else {
        axum::body::to_bytes(body, limit).await.map_err(|_| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("request bodies are limited to {limit} bytes"),
            )
        })?
    })
}

/// Writes the request into the warm instance's buffer, reusing its
/// allocations: every field is overwritten.
fn fill_request(wit: &mut WitRequest, parts: &Parts, rest: &str, body: &[u8], id: &RequestId) {
    fn set(field: &mut String, value: &str) {
        field.clear();
        field.push_str(value);
    }
    set(&mut wit.method, parts.method.as_str());
    wit.path.clear();
    wit.path.push('/');
    wit.path.push_str(rest);
    set(&mut wit.query, parts.uri.query().unwrap_or_default());
    let headers = parts
        .headers
        .iter()
        .filter(|(name, _)| !is_credential_header(name.as_str()));
    let mut count = 0;
    for (i, (name, value)) in headers.enumerate() {
        count = i + 1;
        // Header values are nearly always ASCII: check that first, as
        // `from_utf8_lossy` walks the bytes more slowly.
        let value = match value.to_str() {
            Ok(ascii) => std::borrow::Cow::Borrowed(ascii),
            Err(_) => String::from_utf8_lossy(value.as_bytes()),
        };
        match wit.headers.get_mut(i) {
            Some(header) => {
                set(&mut header.name, name.as_str());
                set(&mut header.value, &value);
            }
            None => wit.headers.push(WitHeader {
                name: name.as_str().to_owned(),
                value: value.into_owned(),
            }),
        }
    }
    wit.headers.truncate(count);
    wit.body.clear();
    wit.body.extend_from_slice(body);
    set(&mut wit.request_id, id.as_str());
}

fn call_error(error: CallError, request_id: &RequestId) -> ApiError {
    tracing::error!(request_id = request_id.as_str(), %error, "plugin request failed");
    match error {
        CallError::CpuBudget { plugin, .. } | CallError::Timeout { plugin, .. } => ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            "plugin_timeout",
            format!("plugin {plugin} took too long to answer; the request was stopped"),
        ),
        CallError::Memory { plugin, .. } => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "plugin_memory_limit",
            format!("plugin {plugin} ran out of memory while handling this request"),
        ),
        CallError::Trap { plugin, .. }
        | CallError::Instantiate { plugin, .. }
        | CallError::BadResponse { plugin, .. } => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "plugin_failed",
            format!(
                "plugin {plugin} failed while handling this request; the host logged the details under its request id"
            ),
        ),
    }
}

/// Hop-by-hop headers a plugin may not set; the host owns the connection.
fn is_hop_by_hop(name: &str) -> bool {
    [
        "connection",
        "keep-alive",
        "transfer-encoding",
        "upgrade",
        "proxy-connection",
        "te",
        "trailer",
        "content-length",
    ]
    .iter()
    .any(|h| h.eq_ignore_ascii_case(name))
}

fn into_response(plugin: &str, answer: WitResponse) -> Response {
    let status = match StatusCode::from_u16(answer.status) {
        Ok(status) => status,
        Err(_) => {
            tracing::warn!(
                plugin,
                status = answer.status,
                "plugin answered with an invalid status; sending 500"
            );
            StatusCode::INTERNAL_SERVER_ERROR
        }
    };
    let mut response = Response::new(Body::from(answer.body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    for header in answer.headers {
        if is_hop_by_hop(&header.name) {
            continue;
        }
        // `from_bytes` lower-cases as it parses; the value takes over the
        // lifted string's buffer instead of copying it.
        match (
            HeaderName::from_bytes(header.name.as_bytes()),
            HeaderValue::from_maybe_shared(Bytes::from(header.value)),
        ) {
            (Ok(name), Ok(value)) => {
                headers.append(name, value);
            }
            _ => {
                tracing::warn!(plugin, header = %header.name, "plugin sent an invalid header; dropped")
            }
        }
    }
    response
}
