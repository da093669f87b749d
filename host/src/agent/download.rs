//! Package downloads into `data/download/`, resumable and bounded.
//!
//! A download writes to `<name>-<version>-<sha256 prefix>.part` and hashes
//! the bytes as they arrive; the package is never read whole into memory
//! here. A broken connection leaves what arrived on disk, and the next
//! attempt asks for the rest with `Range: bytes=<have>-` (hashing the part
//! already on disk first); a server that answers 200 instead of 206 gets
//! the file restarted from zero. The signed size is a hard limit: a
//! `Content-Length` or a body that would go past it ends the download at
//! once and deletes the file, so a hostile or broken server cannot fill the
//! disk. The finished file must match the signed sha256.
//!
//! Redirects are never followed (a vendor answer must not make the host
//! fetch its own admin API or an internal address), and a refusal is
//! reported with its status code and a fixed reason, never the body. Each
//! read has an idle time-out, the rate must stay above a minimum over a
//! window, and the whole package has a deadline derived from its size.

use std::path::{Path, PathBuf};
use std::time::Duration;

use plinth_package::DeploymentPackage;
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::time::Instant;

use super::AgentLimits;
use super::bounded::{bounded, bounded_bytes};

/// Most bytes of an error answer read (for the log only).
const ERROR_BODY_LIMIT: usize = 4 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    /// The server refused (4xx); retrying will not help.
    #[error("the vendor refused the download of {url} with {status} {reason}")]
    Refused {
        url: String,
        status: u16,
        reason: &'static str,
    },
    #[error(
        "the vendor answered the download of {url} with {status}: redirect refused (package downloads never follow redirects)"
    )]
    Redirected { url: String, status: u16 },
    #[error(
        "the vendor sent more than the signed size of {size} bytes for {url}; the download was stopped and deleted"
    )]
    Oversized { url: String, size: u64 },
    #[error(
        "the downloaded package does not match its signed sha256 (expected {expected}, got {actual}): it was altered on the way or on the server; it was deleted and not installed"
    )]
    Tampered { expected: String, actual: String },
    #[error("the download of {url} failed after {attempts} attempts: {last}")]
    GaveUp {
        url: String,
        attempts: u32,
        last: String,
    },
    #[error(
        "the download of {url} did not finish within its deadline of {secs} s (derived from its size and the minimum rate); last interruption: {last}"
    )]
    Deadline {
        url: String,
        secs: u64,
        last: String,
    },
    #[error("cancelled by the vendor")]
    Cancelled,
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// What the downloader needs to know besides the package.
pub struct DownloadRequest<'a> {
    pub client: &'a reqwest::Client,
    pub http_base: &'a str,
    pub token: &'a str,
    pub dir: &'a Path,
    pub attempts: u32,
    pub limits: &'a AgentLimits,
}

/// The HTTP client for package downloads: no redirects, a connect
/// time-out.
pub fn client(limits: &AgentLimits) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .connect_timeout(limits.handshake_timeout())
        .redirect(reqwest::redirect::Policy::none())
        .build()
}

/// The file a package downloads into.
pub fn part_path(dir: &Path, package: &DeploymentPackage) -> PathBuf {
    let prefix = package.sha256.get(..16).unwrap_or(&package.sha256);
    dir.join(format!(
        "{}-{}-{prefix}.part",
        package.name, package.version
    ))
}

/// Removes the partial downloads of these packages (their deployment
/// ended).
pub async fn remove_parts(dir: &Path, packages: &[DeploymentPackage]) {
    for package in packages {
        let _ = tokio::fs::remove_file(part_path(dir, package)).await;
    }
}

/// Removes every partial download in `dir`; returns how many.
pub async fn remove_all_parts(dir: &Path) -> usize {
    let Ok(mut entries) = tokio::fs::read_dir(dir).await else {
        return 0;
    };
    let mut removed = 0;
    while let Ok(Some(entry)) = entries.next_entry().await {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "part")
            && tokio::fs::remove_file(&path).await.is_ok()
        {
            removed += 1;
        }
    }
    removed
}

/// Downloads `package`, resuming a partial file, and checks it against the
/// signed size and sha256; returns the verified file.
/// `progress(bytes)` is called as bytes arrive; `retrying(reason)` when an
/// attempt is interrupted and another follows; `cancelled()` is polled
/// between chunks.
pub async fn fetch(
    request: &DownloadRequest<'_>,
    package: &DeploymentPackage,
    mut progress: impl FnMut(u64),
    mut retrying: impl FnMut(&str),
    cancelled: impl Fn() -> bool,
) -> Result<PathBuf, DownloadError> {
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| DownloadError::Io { path, source }
    };
    tokio::fs::create_dir_all(request.dir)
        .await
        .map_err(io(request.dir))?;
    let path = part_path(request.dir, package);
    let url = format!("{}{}", request.http_base, package.url);
    let deadline = request.limits.download_deadline(package.size);
    let mut last_error = String::from("none");
    let attempts = async {
        for attempt in 1..=request.attempts.max(1) {
            if cancelled() {
                return Err(DownloadError::Cancelled);
            }
            match attempt_once(request, package, &url, &path, &mut progress, &cancelled).await {
                Ok(()) => return Ok(()),
                Err(Attempt::Final(e)) => {
                    if !matches!(e, DownloadError::Cancelled) {
                        let _ = tokio::fs::remove_file(&path).await;
                    }
                    return Err(e);
                }
                Err(Attempt::Retry(e)) => {
                    tracing::warn!(url = %bounded(&url), attempt, error = %e, "package download interrupted; will resume");
                    retrying(&e);
                    last_error = e;
                    if attempt < request.attempts {
                        tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
                    }
                }
            }
        }
        Err(DownloadError::GaveUp {
            url: url.clone(),
            attempts: request.attempts,
            last: last_error.clone(),
        })
    };
    let finished = tokio::time::timeout(deadline, attempts).await;
    match finished {
        Ok(Ok(())) => Ok(path),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(DownloadError::Deadline {
            url,
            secs: deadline.as_secs(),
            last: last_error,
        }),
    }
}

enum Attempt {
    Final(DownloadError),
    Retry(String),
}

/// SHA-256 of the first `len` bytes of the file at `path`, read in chunks.
async fn hash_prefix(path: &Path, len: u64) -> std::io::Result<Sha256> {
    let file = tokio::fs::File::open(path).await?;
    let mut file = file.take(len);
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        hasher.update(buf.get(..n).unwrap_or_default());
    }
    Ok(hasher)
}

/// Up to [`ERROR_BODY_LIMIT`] bytes of an answer's body, for the log.
async fn error_body(response: &mut reqwest::Response, idle: Duration) -> String {
    let mut body = Vec::new();
    while body.len() < ERROR_BODY_LIMIT {
        match tokio::time::timeout(idle, response.chunk()).await {
            Ok(Ok(Some(chunk))) => body.extend_from_slice(&chunk),
            _ => break,
        }
    }
    bounded_bytes(&body, ERROR_BODY_LIMIT)
}

async fn attempt_once(
    request: &DownloadRequest<'_>,
    package: &DeploymentPackage,
    url: &str,
    path: &Path,
    progress: &mut impl FnMut(u64),
    cancelled: &impl Fn() -> bool,
) -> Result<(), Attempt> {
    let io = |e: std::io::Error| {
        Attempt::Final(DownloadError::Io {
            path: path.display().to_string(),
            source: e,
        })
    };
    let limits = request.limits;
    let size = package.size;
    let mut have = match tokio::fs::metadata(path).await {
        Ok(meta) if meta.len() <= size => meta.len(),
        _ => 0,
    };
    if have == size && size > 0 {
        let hasher = hash_prefix(path, have).await.map_err(io)?;
        return check_hash(path, package, hasher).await;
    }
    let mut builder = request.client.get(url).bearer_auth(request.token);
    if have > 0 {
        builder = builder.header(http::header::RANGE, format!("bytes={have}-"));
    }
    let mut response = tokio::time::timeout(limits.download_idle(), builder.send())
        .await
        .map_err(|_| {
            Attempt::Retry(format!(
                "no answer for {} ms",
                limits.download_idle().as_millis()
            ))
        })?
        .map_err(|e| Attempt::Retry(format!("request failed: {e}")))?;
    let status = response.status();
    if status.is_redirection() {
        return Err(Attempt::Final(DownloadError::Redirected {
            url: url.to_owned(),
            status: status.as_u16(),
        }));
    }
    if status.is_client_error() && status != reqwest::StatusCode::RANGE_NOT_SATISFIABLE {
        let body = error_body(&mut response, limits.download_idle()).await;
        tracing::warn!(url = %bounded(url), %status, %body, "package download refused");
        if matches!(status.as_u16(), 408 | 429) {
            return Err(Attempt::Retry(format!("the vendor answered {status}")));
        }
        return Err(Attempt::Final(DownloadError::Refused {
            url: url.to_owned(),
            status: status.as_u16(),
            reason: status.canonical_reason().unwrap_or("(no reason)"),
        }));
    }
    let resumed = status == reqwest::StatusCode::PARTIAL_CONTENT
        && content_range_start(&response) == Some(have);
    if !resumed {
        if !status.is_success() {
            // A 416 for our own range means the file on disk is not a
            // prefix of the package; start over.
            let _ = tokio::fs::remove_file(path).await;
            return Err(Attempt::Retry(format!("the vendor answered {status}")));
        }
        have = 0;
    }
    if let Some(length) = response.content_length()
        && have.saturating_add(length) > size
    {
        return Err(Attempt::Final(DownloadError::Oversized {
            url: url.to_owned(),
            size,
        }));
    }
    let mut hasher = if resumed {
        hash_prefix(path, have).await.map_err(io)?
    } else {
        Sha256::new()
    };
    let mut file = tokio::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .append(resumed)
        .truncate(!resumed)
        .open(path)
        .await
        .map_err(io)?;
    progress(have);
    let window = limits.download_rate_window();
    let window_minimum = limits
        .download_min_rate
        .saturating_mul(u64::try_from(window.as_millis()).unwrap_or(u64::MAX))
        / 1000;
    let mut window_end = Instant::now() + window;
    let mut window_bytes: u64 = 0;
    let mut last_data = Instant::now();
    loop {
        if cancelled() {
            return Err(Attempt::Final(DownloadError::Cancelled));
        }
        let now = Instant::now();
        if now >= window_end {
            if window_bytes < window_minimum {
                return Err(Attempt::Retry(format!(
                    "slower than the minimum rate of {} bytes/s: {window_bytes} bytes in {} ms",
                    limits.download_min_rate,
                    window.as_millis()
                )));
            }
            window_end = now + window;
            window_bytes = 0;
        }
        let idle_end = last_data + limits.download_idle();
        let wait = window_end.min(idle_end).saturating_duration_since(now);
        let chunk = match tokio::time::timeout(wait, response.chunk()).await {
            Err(_) => {
                if Instant::now() >= idle_end {
                    return Err(Attempt::Retry(format!(
                        "no data for {} ms",
                        limits.download_idle().as_millis()
                    )));
                }
                continue;
            }
            Ok(Err(e)) => return Err(Attempt::Retry(format!("connection broke: {e}"))),
            Ok(Ok(None)) => break,
            Ok(Ok(Some(chunk))) => chunk,
        };
        let len = chunk.len() as u64;
        if have.saturating_add(len) > size {
            return Err(Attempt::Final(DownloadError::Oversized {
                url: url.to_owned(),
                size,
            }));
        }
        file.write_all(&chunk).await.map_err(io)?;
        hasher.update(&chunk);
        have += len;
        window_bytes += len;
        last_data = Instant::now();
        progress(have);
    }
    file.flush().await.map_err(io)?;
    file.sync_all().await.map_err(io)?;
    if have < size {
        return Err(Attempt::Retry(format!(
            "the connection ended after {have} of {size} bytes"
        )));
    }
    check_hash(path, package, hasher).await
}

/// Compares the hash of the complete file with the signed one; deletes
/// the file when they differ.
async fn check_hash(
    path: &Path,
    package: &DeploymentPackage,
    hasher: Sha256,
) -> Result<(), Attempt> {
    let actual = hex::encode(hasher.finalize());
    if actual != package.sha256 {
        let _ = tokio::fs::remove_file(path).await;
        return Err(Attempt::Final(DownloadError::Tampered {
            expected: package.sha256.clone(),
            actual,
        }));
    }
    Ok(())
}

/// The first byte position of a `Content-Range: bytes a-b/n` header.
fn content_range_start(response: &reqwest::Response) -> Option<u64> {
    let value = response
        .headers()
        .get(http::header::CONTENT_RANGE)?
        .to_str()
        .ok()?;
    let range = value.strip_prefix("bytes ")?;
    range.split('-').next()?.trim().parse().ok()
}
