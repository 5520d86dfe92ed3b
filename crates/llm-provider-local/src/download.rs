//! Downloading the model file: HTTP Range resume, sha256 verification, a free-space check, and a
//! temporary file renamed into place only when complete and verified.

use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::StreamExt;
use llm_core::{Error, ErrorKind, Progress, ProgressSink};
use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, ETAG, LOCATION, RANGE};
use reqwest::{StatusCode, Url};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::ID;

/// Redirects followed by hand (Hugging Face answers a file with a redirect to its CDN, and only the
/// redirect carries the file's sha256 as `X-Linked-Etag`).
const MAX_REDIRECTS: usize = 8;

/// Progress is reported at most once per this many bytes (and at the end).
const PROGRESS_STEP: u64 = 1 << 20;

/// One model file to download.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelDownload {
    /// Where the file is served.
    pub url: String,
    /// Where the complete file goes. Nothing else is ever written there.
    pub dest: PathBuf,
    /// The sha256 it must have; when `None`, the server's `X-Linked-Etag` or `ETag` when it is one.
    pub sha256: Option<String>,
    /// The bytes that may be written; `None`: the free space of the destination's file system.
    pub space_limit: Option<u64>,
}

impl ModelDownload {
    /// The temporary file the download is written to, beside the destination.
    pub fn partial_path(&self) -> PathBuf {
        let mut name = self.dest.as_os_str().to_owned();
        name.push(".part");
        PathBuf::from(name)
    }
}

/// The error of a failed download: names the file and how to place it by hand.
pub(crate) fn failed(job: &ModelDownload, kind: ErrorKind, why: &str) -> Error {
    Error::new(
        kind,
        format!(
            "downloading the local model from {} failed: {why}. To place it by hand, save the file \
             as {} or set LOCAL_MODEL_PATH to a GGUF file",
            job.url,
            job.dest.display()
        ),
    )
    .with_provider(ID)
}

/// Downloads `job.url` to `job.dest`, resuming a partial download left by an earlier attempt.
///
/// # Errors
/// A classified error naming the file: `network` (interrupted: run again to resume), `server_error`,
/// `rate_limit`, `config` (no such file, or not enough disk space), `malformed_answer` (wrong sha256:
/// the partial file is deleted).
pub async fn fetch(job: &ModelDownload, progress: ProgressSink<'_>) -> Result<(), Error> {
    if job.dest.is_file() {
        report(progress, "success", None, None);
        return Ok(());
    }
    let dir = job.dest.parent().unwrap_or_else(|| Path::new("."));
    tokio::fs::create_dir_all(dir).await.map_err(|e| {
        failed(
            job,
            ErrorKind::Config,
            &format!("cannot create {}: {e}", dir.display()),
        )
    })?;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| failed(job, ErrorKind::Config, &e.to_string()))?;
    let part = job.partial_path();
    // A server that rejects our range (the partial file is stale or too long) gets one fresh start.
    for _ in 0..2 {
        let offset = tokio::fs::metadata(&part).await.map_or(0, |m| m.len());
        let (response, linked_hash) = get(&client, job, offset).await?;
        if response.status() == StatusCode::RANGE_NOT_SATISFIABLE {
            remove(&part).await;
            continue;
        }
        return receive(job, response, offset, linked_hash, progress).await;
    }
    Err(failed(
        job,
        ErrorKind::ServerError,
        "the server rejected every byte range",
    ))
}

/// Sends the GET (with `Range` when resuming), following redirects by hand; returns the final
/// response and the sha256 a redirect announced.
async fn get(
    client: &reqwest::Client,
    job: &ModelDownload,
    offset: u64,
) -> Result<(reqwest::Response, Option<String>), Error> {
    let mut url = Url::parse(&job.url)
        .map_err(|e| failed(job, ErrorKind::Config, &format!("invalid URL: {e}")))?;
    let mut linked_hash = None;
    for _ in 0..=MAX_REDIRECTS {
        let mut request = client.get(url.clone());
        if offset > 0 {
            request = request.header(RANGE, format!("bytes={offset}-"));
        }
        let response = request
            .send()
            .await
            .map_err(|e| failed(job, ErrorKind::Network, &e.to_string()))?;
        linked_hash = linked_hash.or_else(|| header_hash(&response, "x-linked-etag"));
        if !response.status().is_redirection() {
            return check_status(job, response).map(|r| (r, linked_hash));
        }
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| failed(job, ErrorKind::ServerError, "a redirect without Location"))?;
        url = url
            .join(location)
            .map_err(|e| failed(job, ErrorKind::ServerError, &format!("bad redirect: {e}")))?;
    }
    Err(failed(job, ErrorKind::ServerError, "too many redirects"))
}

fn check_status(
    job: &ModelDownload,
    response: reqwest::Response,
) -> Result<reqwest::Response, Error> {
    let status = response.status();
    if status.is_success() || status == StatusCode::RANGE_NOT_SATISFIABLE {
        return Ok(response);
    }
    let kind = match status.as_u16() {
        401 | 403 | 404 => ErrorKind::Config,
        429 => ErrorKind::RateLimit,
        500..=599 => ErrorKind::ServerError,
        _ => ErrorKind::Network,
    };
    Err(
        failed(job, kind, &format!("the server answered HTTP {status}"))
            .with_status(status.as_u16()),
    )
}

/// A sha256 from a header, when the header holds one (Hugging Face: `X-Linked-Etag` for large files,
/// `ETag` for files served directly); other ETags (md5, opaque) are not hashes we can check.
fn header_hash(response: &reqwest::Response, name: &str) -> Option<String> {
    let raw = response.headers().get(name)?.to_str().ok()?;
    let hash = raw
        .trim()
        .trim_start_matches("W/")
        .trim_matches('"')
        .to_ascii_lowercase();
    (hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit())).then_some(hash)
}

/// The file's total size from `Content-Range` (`bytes a-b/total`) or `Content-Length`.
fn total_size(response: &reqwest::Response, offset: u64) -> Option<u64> {
    let header = |name| response.headers().get(name).and_then(|v| v.to_str().ok());
    if response.status() == StatusCode::PARTIAL_CONTENT {
        return header(CONTENT_RANGE)?.rsplit('/').next()?.parse().ok();
    }
    let length: u64 = header(CONTENT_LENGTH)?.parse().ok()?;
    Some(length + offset)
}

/// The byte a 206 answer starts at (`bytes a-b/total`).
fn range_start(response: &reqwest::Response) -> Option<u64> {
    let header = response.headers().get(CONTENT_RANGE)?.to_str().ok()?;
    header
        .strip_prefix("bytes ")?
        .split('-')
        .next()?
        .parse()
        .ok()
}

async fn receive(
    job: &ModelDownload,
    response: reqwest::Response,
    offset: u64,
    linked_hash: Option<String>,
    progress: ProgressSink<'_>,
) -> Result<(), Error> {
    let part = job.partial_path();
    // A 200 to a ranged request (or a 206 from elsewhere) starts the file over.
    let resumed =
        response.status() == StatusCode::PARTIAL_CONTENT && range_start(&response) == Some(offset);
    let offset = if resumed { offset } else { 0 };
    let total = total_size(&response, offset);
    let expected = job
        .sha256
        .clone()
        .or(linked_hash)
        .or_else(|| header_hash(&response, ETAG.as_str()));
    let room = match job.space_limit {
        Some(limit) => limit,
        None => free_space(job.dest.parent().unwrap_or_else(|| Path::new("."))),
    };
    if let Some(total) = total
        && total.saturating_sub(offset) > room
    {
        return Err(failed(
            job,
            ErrorKind::Config,
            &format!(
                "not enough disk space: {} more bytes needed, {room} available",
                total - offset
            ),
        ));
    }
    let mut hasher = Sha256::new();
    let mut file = open_part(job, &part, resumed, &mut hasher).await?;
    let status = format!("downloading {}", file_name(&job.dest));
    let mut done = offset;
    let mut reported = offset;
    report(progress, &status, Some(done), total);
    let mut body = response.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(e) => {
                let _ = file.flush().await;
                return Err(interrupted(job, done, total, &e.to_string()));
            }
        };
        if done - offset + chunk.len() as u64 > room {
            drop(file);
            remove(&part).await;
            return Err(failed(
                job,
                ErrorKind::Config,
                &format!("not enough disk space ({room} bytes available)"),
            ));
        }
        if let Err(e) = file.write_all(&chunk).await {
            drop(file);
            remove(&part).await;
            return Err(failed(
                job,
                ErrorKind::Config,
                &format!("writing {} failed: {e}", part.display()),
            ));
        }
        hasher.update(&chunk);
        done += chunk.len() as u64;
        if done - reported >= PROGRESS_STEP {
            report(progress, &status, Some(done), total);
            reported = done;
        }
    }
    file.flush().await.and(file.sync_all().await).map_err(|e| {
        failed(
            job,
            ErrorKind::Config,
            &format!("writing {} failed: {e}", part.display()),
        )
    })?;
    drop(file);
    report(progress, &status, Some(done), total);
    if let Some(total) = total
        && done != total
    {
        return Err(interrupted(
            job,
            done,
            Some(total),
            "the connection closed early",
        ));
    }
    let actual = format!("{:x}", hasher.finalize());
    if let Some(expected) = expected
        && expected != actual
    {
        remove(&part).await;
        return Err(failed(
            job,
            ErrorKind::MalformedAnswer,
            &format!("its sha256 is {actual}, expected {expected} (the partial file was deleted)"),
        ));
    }
    tokio::fs::rename(&part, &job.dest).await.map_err(|e| {
        failed(
            job,
            ErrorKind::Config,
            &format!("renaming {} failed: {e}", part.display()),
        )
    })?;
    report(progress, "success", Some(done), total);
    Ok(())
}

/// Opens the partial file: appended to (after hashing what it holds) when resuming, else truncated.
async fn open_part(
    job: &ModelDownload,
    part: &Path,
    resume: bool,
    hasher: &mut Sha256,
) -> Result<tokio::fs::File, Error> {
    let io = |e: std::io::Error| {
        failed(
            job,
            ErrorKind::Config,
            &format!("cannot write {}: {e}", part.display()),
        )
    };
    if resume {
        let mut existing = tokio::fs::File::open(part).await.map_err(io)?;
        let mut buffer = vec![0; 1 << 20];
        loop {
            let n = existing.read(&mut buffer).await.map_err(io)?;
            if n == 0 {
                break;
            }
            hasher.update(&buffer[..n]);
        }
    }
    tokio::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .append(resume)
        .truncate(!resume)
        .open(part)
        .await
        .map_err(io)
}

fn interrupted(job: &ModelDownload, done: u64, total: Option<u64>, why: &str) -> Error {
    let of = total.map(|t| format!(" of {t}")).unwrap_or_default();
    failed(
        job,
        ErrorKind::Network,
        &format!(
            "interrupted after {done}{of} bytes ({why}); run `cascade pull local` again to resume"
        ),
    )
}

fn report(progress: ProgressSink<'_>, status: &str, completed: Option<u64>, total: Option<u64>) {
    progress(Progress {
        provider: ID.to_owned(),
        status: status.to_owned(),
        completed,
        total,
    });
}

async fn remove(path: &Path) {
    if let Err(error) = tokio::fs::remove_file(path).await
        && error.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(path = %path.display(), %error, "could not delete a partial download");
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
}

/// The bytes available to us on the file system holding `dir` (unknown: no limit).
#[cfg(unix)]
fn free_space(dir: &Path) -> u64 {
    rustix::fs::statvfs(dir).map_or(u64::MAX, |s| s.f_bavail.saturating_mul(s.f_frsize))
}

/// The bytes available to us on the file system holding `dir` (unknown: no limit).
#[cfg(not(unix))]
fn free_space(_dir: &Path) -> u64 {
    u64::MAX
}
