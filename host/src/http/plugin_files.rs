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
//! and the plugin's quota (over either: 413, and the temporary file is
//! removed). A raw body is the file; a `multipart/form-data` body (parsed
//! as it streams, by `multer`) has one file part, which is the file, named
//! after the part's file name where the template says `{filename}`; its
//! other fields, at most 64 KiB, go to the plugin. The plugin is then
//! called on the same route with `{"stored": {"file", "size",
//! "content_type"}}` (plus `"filename"` and `"fields"` for a form) as its
//! body and the `x-plinth-stored-file` header, and only when it answers 2xx
//! is the file put in place, so an upload the plugin refuses (unknown item,
//! no permission) leaves nothing behind.

use std::sync::Arc;

use axum::body::{Body, BodyDataStream};
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
use crate::plugin_files::{FileError, FileStat, PendingUpload, PluginFiles, file_name_problem};
use crate::registry::LoadedPlugin;
use plinth_package::plugin_files::{FILENAME_PLACEHOLDER, Upload};

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
    let files = host.plugin_files(&loaded.manifest);
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

/// An upload stored in a temporary file, waiting for the plugin's answer.
pub struct StoredUpload {
    pending: PendingUpload,
    /// The stored file's name, relative to the plugin's folder.
    file: String,
    /// What the plugin receives instead of the upload.
    pub body: Bytes,
}

/// The request header that names the stored file for the plugin.
pub const STORED_FILE_HEADER: &str = "x-plinth-stored-file";

impl StoredUpload {
    /// Puts the file in place once the plugin accepted it.
    pub fn keep(self) -> Result<FileStat, ApiError> {
        self.pending.finish().map_err(file_error)
    }

    /// The request headers the plugin sees: its body is now JSON, and a
    /// header names the stored file.
    pub fn describe_in(&self, headers: &mut HeaderMap) {
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.remove(header::CONTENT_LENGTH);
        if let Ok(value) = HeaderValue::from_str(&self.file) {
            headers.insert(STORED_FILE_HEADER, value);
        }
    }
}

/// Bytes of a multipart upload's other fields, names included, all
/// together: unlike the file they are handed to the plugin in memory.
const MAX_FIELD_BYTES: usize = 64 * 1024;

/// After a refusal, how much more of the body is read and thrown away (and
/// for how long) so the client, still sending, reads the answer instead of
/// a connection reset. Past either bound the connection is just closed.
const DRAIN_BYTES: usize = 32 * 1024 * 1024;
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(5);

/// The request body, shared between the parser reading it and the drain
/// after a refusal.
type SharedBody = Arc<tokio::sync::Mutex<BodyDataStream>>;

/// When `rest` (the path below the plugin's mount point) and the method
/// match one of the plugin's `[[uploads]]`, streams `body` (or the file
/// part of a `multipart/form-data` body) into its file and returns it, with
/// the JSON body for the plugin (hand `body` back when no upload matches).
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
            .map(|captured| (upload, captured))
    });
    let Some((upload, captured)) = found else {
        return Ok(Err(body));
    };
    let target = Target {
        files: host.plugin_files(&plugin.manifest),
        upload,
        captured,
        limit: u64::from(upload.max_mb) * 1024 * 1024,
        path: &path,
    };
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/octet-stream")
        .to_owned();
    let shared: SharedBody = Arc::new(tokio::sync::Mutex::new(body.into_data_stream()));
    let stored = if is_form_data(&content_type) {
        match multer::parse_boundary(&content_type) {
            Ok(boundary) => target.multipart(shared.clone(), boundary).await,
            Err(e) => Err(ApiError::bad_request(format!(
                "the multipart upload to {path} has no usable boundary: {e}"
            ))),
        }
    } else if upload.wants_file_name() {
        Err(ApiError::bad_request(format!(
            "{path} stores the file under the name it is sent with: send multipart/form-data with one file part"
        )))
    } else {
        target.raw(shared.clone(), content_type).await
    };
    match stored {
        Ok(stored) => Ok(Ok(stored)),
        Err(refusal) => {
            drain(&shared).await;
            Err(refusal)
        }
    }
}

/// Where one upload goes and how large it may be.
struct Target<'a> {
    files: PluginFiles,
    upload: &'a Upload,
    captured: Vec<(&'a str, &'a str)>,
    limit: u64,
    /// The path below the mount point, for messages.
    path: &'a str,
}

impl Target<'_> {
    /// The whole body is the file.
    async fn raw(&self, body: SharedBody, content_type: String) -> Result<StoredUpload, ApiError> {
        let file = self.upload.file_for(&self.captured);
        let mut pending = self
            .files
            .begin_upload(&file, self.limit)
            .map_err(file_error)?;
        let mut body = body.lock().await;
        let mut size = 0u64;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| self.broke_off(e))?;
            size += chunk.len() as u64;
            // Chunks are small (tens of KiB) and land in the page cache; a
            // blocking-pool hop per chunk would cost more than the write.
            pending.write(&chunk).map_err(file_error)?;
        }
        let stored =
            serde_json::json!({ "file": file, "size": size, "content_type": content_type });
        Ok(self.waiting(pending, file, serde_json::json!({ "stored": stored })))
    }

    /// The one file part is the file; the other fields, small, go to the
    /// plugin as `"fields"`.
    async fn multipart(
        &self,
        body: SharedBody,
        boundary: String,
    ) -> Result<StoredUpload, ApiError> {
        let stream = futures::stream::unfold(body, |body| async move {
            let next = body.lock().await.next().await;
            next.map(|chunk| (chunk, body))
        });
        let mut form = multer::Multipart::new(stream, boundary);
        let mut fields = serde_json::Map::new();
        let mut field_bytes = 0;
        let mut stored = None;
        while let Some(mut field) = form.next_field().await.map_err(|e| self.bad_form(e))? {
            let Some(sent_name) = field.file_name().map(str::to_owned) else {
                let name = field.name().unwrap_or_default().to_owned();
                field_bytes += name.len();
                let mut value = Vec::new();
                while let Some(chunk) = field.chunk().await.map_err(|e| self.bad_form(e))? {
                    field_bytes += chunk.len();
                    if field_bytes > MAX_FIELD_BYTES {
                        return Err(ApiError::new(
                            StatusCode::PAYLOAD_TOO_LARGE,
                            "payload_too_large",
                            format!(
                                "the form fields beside the file are limited to {MAX_FIELD_BYTES} bytes in all"
                            ),
                        ));
                    }
                    value.extend_from_slice(&chunk);
                }
                let value = String::from_utf8_lossy(&value).into_owned();
                fields.insert(name, serde_json::Value::String(value));
                continue;
            };
            if stored.is_some() {
                return Err(ApiError::bad_request(format!(
                    "the upload to {} has more than one file part; send one file per request",
                    self.path
                )));
            }
            let file = self.file_named(&sent_name)?;
            let content_type = field
                .content_type()
                .map_or_else(|| "application/octet-stream".to_owned(), |m| m.to_string());
            let mut pending = self
                .files
                .begin_upload(&file, self.limit)
                .map_err(file_error)?;
            let mut size = 0u64;
            while let Some(chunk) = field.chunk().await.map_err(|e| self.bad_form(e))? {
                size += chunk.len() as u64;
                pending.write(&chunk).map_err(file_error)?;
            }
            let described = serde_json::json!({
                "file": file, "size": size, "content_type": content_type, "filename": sent_name,
            });
            stored = Some((pending, file, described));
        }
        let Some((pending, file, described)) = stored else {
            return Err(ApiError::bad_request(format!(
                "the multipart upload to {} has no file part (a part with a filename)",
                self.path
            )));
        };
        let body = serde_json::json!({ "stored": described, "fields": fields });
        Ok(self.waiting(pending, file, body))
    }

    /// The stored file's name: the template filled from the path, and
    /// `{filename}` with the name the file part was sent with, which must
    /// itself be one valid file name.
    fn file_named(&self, sent_name: &str) -> Result<String, ApiError> {
        if !self.upload.wants_file_name() {
            return Ok(self.upload.file_for(&self.captured));
        }
        let problem = file_name_problem(sent_name).or_else(|| {
            sent_name
                .contains('/')
                .then_some("names a folder; send the file's own name")
        });
        if let Some(problem) = problem {
            return Err(file_error(FileError::BadName {
                name: sent_name.to_owned(),
                problem,
            }));
        }
        let mut captured = self.captured.clone();
        captured.push((FILENAME_PLACEHOLDER, sent_name));
        Ok(self.upload.file_for(&captured))
    }

    fn waiting(
        &self,
        pending: PendingUpload,
        file: String,
        body: serde_json::Value,
    ) -> StoredUpload {
        StoredUpload {
            pending,
            file,
            body: Bytes::from(body.to_string()),
        }
    }

    fn broke_off(&self, e: axum::Error) -> ApiError {
        ApiError::bad_request(format!("the upload to {} broke off: {e}", self.path))
    }

    /// A multipart parse failure; a refusal of the stored file inside it
    /// keeps its own answer.
    fn bad_form(&self, e: multer::Error) -> ApiError {
        ApiError::bad_request(format!(
            "the multipart upload to {} is malformed: {e}",
            self.path
        ))
    }
}

fn is_form_data(content_type: &str) -> bool {
    content_type
        .split(';')
        .next()
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("multipart/form-data"))
}

/// Reads and drops what is left of a refused upload, within [`DRAIN_BYTES`]
/// and [`DRAIN_TIME`].
async fn drain(body: &SharedBody) {
    let mut body = body.lock().await;
    let _ = tokio::time::timeout(DRAIN_TIME, async {
        let mut left = DRAIN_BYTES;
        while let Some(Ok(chunk)) = body.next().await {
            match left.checked_sub(chunk.len()) {
                Some(rest) => left = rest,
                None => break,
            }
        }
    })
    .await;
}

/// The answer for a refused or failed file operation.
pub fn file_error(error: FileError) -> ApiError {
    let message = error.to_string();
    match error {
        FileError::BadName { .. } | FileError::Symlink { .. } | FileError::NotAFolder { .. } => {
            ApiError::new(StatusCode::BAD_REQUEST, "bad_file_name", message)
        }
        FileError::NotFound { .. } => ApiError::not_found(message),
        // 413, not 507: the request is what is too large for the room the
        // plugin has left; the host's disk is fine.
        FileError::Quota { .. } => {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "files_quota", message)
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
