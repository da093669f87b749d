//! Package downloads into `data/download/`, resumable and bounded.
//!
//! A download writes to `<name>-<version>-<sha256 prefix>.part`. A broken
//! connection leaves what arrived on disk, and the next attempt asks for the
//! rest with `Range: bytes=<have>-`; a server that answers 200 instead of
//! 206 gets the file restarted from zero. The signed size is a hard limit:
//! a `Content-Length` or a body that would go past it ends the download at
//! once and deletes the file, so a hostile or broken server cannot fill the
//! disk. The finished file must match the signed sha256.

use std::path::{Path, PathBuf};
use std::time::Duration;

use plinth_package::DeploymentPackage;
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// One chunk must arrive within this long.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    /// The server refused (4xx); retrying will not help.
    #[error("the vendor refused the download of {url} with {status}{detail}")]
    Refused {
        url: String,
        status: u16,
        detail: String,
    },
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
}

/// The file a package downloads into.
pub fn part_path(dir: &Path, package: &DeploymentPackage) -> PathBuf {
    let prefix = package.sha256.get(..16).unwrap_or(&package.sha256);
    dir.join(format!(
        "{}-{}-{prefix}.part",
        package.name, package.version
    ))
}

/// Downloads `package`, resuming a partial file; returns the complete file,
/// which [`verify`] checks next.
/// `progress(bytes)` is called as bytes arrive;
/// `cancelled()` is polled between chunks.
pub async fn fetch(
    request: &DownloadRequest<'_>,
    package: &DeploymentPackage,
    mut progress: impl FnMut(u64),
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
    let mut last_error = String::new();
    for attempt in 1..=request.attempts.max(1) {
        if cancelled() {
            return Err(DownloadError::Cancelled);
        }
        match attempt_once(request, package, &url, &path, &mut progress, &cancelled).await {
            Ok(()) => return Ok(path),
            Err(Attempt::Final(e)) => {
                if !matches!(e, DownloadError::Cancelled) {
                    let _ = tokio::fs::remove_file(&path).await;
                }
                return Err(e);
            }
            Err(Attempt::Retry(e)) => {
                tracing::warn!(%url, attempt, error = %e, "package download interrupted; will resume");
                last_error = e;
                tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
            }
        }
    }
    Err(DownloadError::GaveUp {
        url,
        attempts: request.attempts,
        last: last_error,
    })
}

enum Attempt {
    Final(DownloadError),
    Retry(String),
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
    let size = package.size;
    let mut have = match tokio::fs::metadata(path).await {
        Ok(meta) if meta.len() <= size => meta.len(),
        _ => 0,
    };
    if have == size && size > 0 {
        return Ok(());
    }
    let mut builder = request
        .client
        .get(url)
        .bearer_auth(request.token)
        .timeout(Duration::from_secs(3600));
    if have > 0 {
        builder = builder.header(http::header::RANGE, format!("bytes={have}-"));
    }
    let mut response = builder
        .send()
        .await
        .map_err(|e| Attempt::Retry(format!("request failed: {e}")))?;
    let status = response.status();
    if status.is_client_error() && status != reqwest::StatusCode::RANGE_NOT_SATISFIABLE {
        let body = response.text().await.unwrap_or_default();
        let detail = if body.is_empty() {
            String::new()
        } else {
            format!(": {}", &body[..body.len().min(300)])
        };
        return Err(Attempt::Final(DownloadError::Refused {
            url: url.to_owned(),
            status: status.as_u16(),
            detail,
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
    let mut file = tokio::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .append(resumed)
        .truncate(!resumed)
        .open(path)
        .await
        .map_err(io)?;
    progress(have);
    loop {
        if cancelled() {
            return Err(Attempt::Final(DownloadError::Cancelled));
        }
        let chunk = match tokio::time::timeout(READ_TIMEOUT, response.chunk()).await {
            Err(_) => {
                return Err(Attempt::Retry(format!(
                    "no data for {} s",
                    READ_TIMEOUT.as_secs()
                )));
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
        have += len;
        progress(have);
    }
    file.flush().await.map_err(io)?;
    file.sync_all().await.map_err(io)?;
    if have < size {
        return Err(Attempt::Retry(format!(
            "the connection ended after {have} of {size} bytes"
        )));
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

/// Checks the downloaded file against the signed sha256; deletes it when
/// it does not match.
pub async fn verify(path: &Path, package: &DeploymentPackage) -> Result<(), DownloadError> {
    let io = |source| DownloadError::Io {
        path: path.display().to_string(),
        source,
    };
    let mut file = tokio::fs::File::open(path).await.map_err(io)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf).await.map_err(io)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    let actual = hex::encode(hasher.finalize());
    if actual != package.sha256 {
        let _ = tokio::fs::remove_file(path).await;
        return Err(DownloadError::Tampered {
            expected: package.sha256.clone(),
            actual,
        });
    }
    Ok(())
}
