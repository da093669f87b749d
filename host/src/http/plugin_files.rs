//! Plugin files over HTTP: `GET /files/<plugin>/<name>` serves
//! `data/files/<plugin>/public/<name>`, and a request to a route the
//! manifest lists in `[[uploads]]` has its body streamed into a file
//! before the plugin is called.
//!
//! Serving goes through [`PluginFiles::public_file`] (the name rule and the
//! symlink refusal) and then tower-http's `ServeFile`, which answers
//! `Range` (206), `If-Modified-Since` and the content type from the
//! extension; this module adds an `ETag` (size and modification time) with
//! `If-None-Match`, `Cache-Control`, and `Content-Security-Policy: sandbox`
//! plus `nosniff`, because a plugin's public file is served from the admin
//! web's origin and must not run script there.
//!
//! An upload is never collected in memory nor handed to the guest: chunks
//! go to a temporary file as they arrive, bounded by the upload's `max_mb`
//! and the plugin's quota. The plugin is then called on the same route with
//! `{"stored": {"file", "size", "content_type"}}` as its body, and only when
//! it answers 2xx is the file put in place, so an upload the plugin refuses
//! (unknown item, no permission) leaves nothing behind.

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::StreamExt;
use tower::ServiceExt;
use tower_http::services::ServeFile;

use super::{ApiError, AppState};
use crate::Host;
use crate::plugin_files::{FileError, FileStat, PendingUpload, PluginFiles};
use crate::registry::LoadedPlugin;

/// Revalidate after a minute: a plugin may replace a file under the same
/// name (a new product image), so long-lived caching would show stale ones.
const CACHE_CONTROL: &str = "public, max-age=60";

/// `GET`/`HEAD /files/{plugin}/{*name}`.
pub async fn serve(
    State(state): State<AppState>,
    Path((plugin, name)): Path<(String, String)>,
    request: Request,
) -> Response {
    match serve_public(&state, &plugin, &name, request).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn serve_public(
    state: &AppState,
    plugin: &str,
    name: &str,
    request: Request,
) -> Result<Response, ApiError> {
    let host = state.host()?;
    let loaded = host
        .registry
        .by_name(plugin)
        .ok_or_else(|| ApiError::not_found(format!("no plugin named {plugin:?} is serving")))?;
    let files = files_of(host, &loaded);
    let (path, stat) = files
        .public_file(name)
        .map_err(file_error)?
        .ok_or_else(|| {
            ApiError::not_found(format!("plugin {plugin} has no public file {name:?}"))
        })?;
    let etag = format!("\"{:x}-{:x}\"", stat.size, stat.modified_ms);
    let matches_etag = request
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|tag| tag.trim() == etag || tag.trim() == "*")
        });
    let mut response = if matches_etag {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        match ServeFile::new(&path).oneshot(request).await {
            Ok(response) => response.map(Body::new),
            Err(infallible) => match infallible {},
        }
    };
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, value);
    }
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(CACHE_CONTROL),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    Ok(response)
}

/// A plugin's file store, with the quota its manifest declares.
pub fn files_of(host: &Host, plugin: &LoadedPlugin) -> PluginFiles {
    PluginFiles::new(
        &host.data,
        plugin.name(),
        plugin.manifest.capabilities.files_quota_mb,
    )
}

/// An upload stored in a temporary file, waiting for the plugin's answer.
pub struct StoredUpload {
    pending: PendingUpload,
    /// What the plugin receives instead of the upload.
    pub body: Bytes,
}

impl StoredUpload {
    /// Puts the file in place once the plugin accepted it.
    pub fn keep(self) -> Result<FileStat, ApiError> {
        self.pending.finish().map_err(file_error)
    }

    /// The request headers the plugin sees: its body is now JSON.
    pub fn describe_in(&self, headers: &mut HeaderMap) {
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.remove(header::CONTENT_LENGTH);
    }
}

/// When `rest` (the path below the plugin's mount point) and the method
/// match one of the plugin's `[[uploads]]`, streams `body` into its file
/// and returns it, with the JSON body for the plugin (hand `body` back
/// when no upload matches).
pub async fn store_upload(
    host: &Host,
    plugin: &LoadedPlugin,
    parts: &Parts,
    rest: &str,
    body: Body,
) -> Result<Result<StoredUpload, Body>, ApiError> {
    if plugin.manifest.uploads.is_empty() {
        return Ok(Err(body));
    }
    let path = format!("/{rest}");
    let found = plugin.manifest.uploads.iter().find_map(|upload| {
        (upload.method == parts.method.as_str())
            .then(|| upload.matches(&path))
            .flatten()
            .map(|captured| (upload, upload.file_for(&captured)))
    });
    let Some((upload, file)) = found else {
        return Ok(Err(body));
    };
    let files = files_of(host, plugin);
    let limit = u64::from(upload.max_mb) * 1024 * 1024;
    let mut pending = files.begin_upload(&file, limit).map_err(file_error)?;
    let mut stream = body.into_data_stream();
    let mut size = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk
            .map_err(|e| ApiError::bad_request(format!("the upload to {path} broke off: {e}")))?;
        size += chunk.len() as u64;
        // Chunks are small (tens of KiB) and land in the page cache; a
        // blocking-pool hop per chunk would cost more than the write.
        pending.write(&chunk).map_err(file_error)?;
    }
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/octet-stream")
        .to_owned();
    let body = serde_json::json!({
        "stored": { "file": file, "size": size, "content_type": content_type }
    });
    Ok(Ok(StoredUpload {
        pending,
        body: Bytes::from(body.to_string()),
    }))
}

/// The answer for a refused or failed file operation.
pub fn file_error(error: FileError) -> ApiError {
    let message = error.to_string();
    match error {
        FileError::BadName { .. } | FileError::Symlink { .. } | FileError::NotAFolder { .. } => {
            ApiError::new(StatusCode::BAD_REQUEST, "bad_file_name", message)
        }
        FileError::NotFound { .. } => ApiError::not_found(message),
        FileError::Quota { .. } => {
            ApiError::new(StatusCode::INSUFFICIENT_STORAGE, "files_quota", message)
        }
        FileError::TooLarge { .. } => {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", message)
        }
        FileError::Io { .. } => {
            tracing::error!(%error, "plugin file operation failed");
            ApiError::internal("the host could not store or read a plugin file; see its log")
        }
    }
}
