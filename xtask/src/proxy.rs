//! A loopback recording proxy: listens on `127.0.0.1` (random port), forwards every request to the
//! real upstream, answers with the upstream's exact status, headers and body bytes, and keeps a copy.
//!
//! One request per connection (`connection: close`), HTTP/1.1 with a `content-length` body: what our
//! `reqwest`-based providers send. The upstream's response is read whole before it is relayed, so
//! stream bodies are recorded byte for byte (timing is not recorded).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use llm_protocol::http::error_chain;
use reqwest::Url;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// The largest request head accepted.
const MAX_HEAD_BYTES: usize = 64 * 1024;

/// Headers that belong to one connection, not to the exchange; never forwarded. `accept-encoding` is
/// dropped so the upstream answers uncompressed and the recorded bytes are the real body.
const HOP_BY_HOP: &[&str] = &[
    "host",
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
    "accept-encoding",
];

/// One request and its response, as they crossed the proxy (unscrubbed: never written as is).
#[derive(Clone)]
pub struct Exchange {
    /// HTTP method.
    pub method: String,
    /// Path and query as the client sent them.
    pub path: String,
    /// The request body.
    pub request_body: Vec<u8>,
    /// The upstream's status.
    pub status: u16,
    /// The upstream's response headers (lowercase names).
    pub response_headers: Vec<(String, String)>,
    /// The upstream's body, byte for byte.
    pub response_body: Vec<u8>,
}

impl std::fmt::Debug for Exchange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Bodies and headers may hold secrets until scrubbed.
        f.debug_struct("Exchange")
            .field("method", &self.method)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Log {
    exchanges: Vec<Exchange>,
    failures: Vec<String>,
}

/// A running recording proxy; stops when dropped.
pub struct RecordingProxy {
    addr: SocketAddr,
    base_path: String,
    log: Arc<Mutex<Log>>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for RecordingProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordingProxy")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl RecordingProxy {
    /// Starts a proxy in front of `upstream_base_url` (e.g. `https://api.groq.com/openai/v1`).
    ///
    /// # Errors
    /// A message when the URL is not http(s) or no loopback port can be bound.
    pub async fn start(upstream_base_url: &str) -> Result<Self, String> {
        let upstream = Url::parse(upstream_base_url)
            .map_err(|e| format!("`{upstream_base_url}` is not a URL: {e}"))?;
        if !matches!(upstream.scheme(), "http" | "https") || upstream.host_str().is_none() {
            return Err(format!("`{upstream_base_url}` is not an http(s) URL"));
        }
        let origin = upstream.origin().ascii_serialization();
        let base_path = upstream.path().trim_end_matches('/').to_owned();
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| format!("binding a loopback port: {e}"))?;
        let addr = listener
            .local_addr()
            .map_err(|e| format!("reading the proxy's address: {e}"))?;
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("building the proxy's HTTP client: {e}"))?;
        let log = Arc::new(Mutex::new(Log::default()));
        let task_log = Arc::clone(&log);
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let client = client.clone();
                let origin = origin.clone();
                let log = Arc::clone(&task_log);
                tokio::spawn(async move {
                    if let Err(why) = relay(socket, &client, &origin, &log).await {
                        lock(&log).failures.push(why);
                    }
                });
            }
        });
        Ok(Self {
            addr,
            base_path,
            log,
            task,
        })
    }

    /// The base URL to give the provider: the proxy's address plus the upstream's path.
    pub fn base_url(&self) -> String {
        format!("http://{}{}", self.addr, self.base_path)
    }

    /// The exchanges and relay failures since the last call, oldest first.
    pub fn take(&self) -> (Vec<Exchange>, Vec<String>) {
        let mut log = lock(&self.log);
        (
            std::mem::take(&mut log.exchanges),
            std::mem::take(&mut log.failures),
        )
    }
}

impl Drop for RecordingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn lock(log: &Mutex<Log>) -> std::sync::MutexGuard<'_, Log> {
    log.lock().unwrap_or_else(PoisonError::into_inner)
}

struct RequestHead {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    content_length: usize,
}

fn parse_head(head: &[u8]) -> Result<RequestHead, String> {
    let text = std::str::from_utf8(head).map_err(|_| "request head is not UTF-8".to_owned())?;
    let mut lines = text.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let (Some(method), Some(path)) = (parts.next(), parts.next()) else {
        return Err(format!("malformed request line `{request_line}`"));
    };
    let mut headers = Vec::new();
    let mut content_length = 0;
    for line in lines.filter(|l| !l.is_empty()) {
        let Some((name, value)) = line.split_once(':') else {
            return Err("malformed request header".to_owned());
        };
        let name = name.trim().to_ascii_lowercase();
        let value = value.trim().to_owned();
        if name == "content-length" {
            content_length = value
                .parse()
                .map_err(|_| "malformed content-length".to_owned())?;
        }
        if name == "transfer-encoding" {
            return Err("chunked request bodies are not supported by the recorder".to_owned());
        }
        headers.push((name, value));
    }
    Ok(RequestHead {
        method: method.to_owned(),
        path: path.to_owned(),
        headers,
        content_length,
    })
}

async fn read_request(socket: &mut TcpStream) -> Result<(RequestHead, Vec<u8>), String> {
    let mut buf = Vec::new();
    let mut chunk = [0_u8; 8192];
    let head_end = loop {
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos;
        }
        if buf.len() > MAX_HEAD_BYTES {
            return Err("request head too large".to_owned());
        }
        let n = socket
            .read(&mut chunk)
            .await
            .map_err(|e| format!("reading the request: {e}"))?;
        if n == 0 {
            return Err("the client closed the connection before sending a request".to_owned());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = parse_head(&buf[..head_end])?;
    let mut body = buf.split_off(head_end + 4);
    while body.len() < head.content_length {
        let n = socket
            .read(&mut chunk)
            .await
            .map_err(|e| format!("reading the request body: {e}"))?;
        if n == 0 {
            return Err("the client closed the connection mid-body".to_owned());
        }
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(head.content_length);
    Ok((head, body))
}

async fn relay(
    mut socket: TcpStream,
    client: &reqwest::Client,
    origin: &str,
    log: &Mutex<Log>,
) -> Result<(), String> {
    let (head, request_body) = read_request(&mut socket).await?;
    let method = reqwest::Method::from_bytes(head.method.as_bytes())
        .map_err(|_| format!("unknown method `{}`", head.method))?;
    let mut upstream = client.request(method, format!("{origin}{}", head.path));
    for (name, value) in &head.headers {
        if !HOP_BY_HOP.contains(&name.as_str()) {
            upstream = upstream.header(name.as_str(), value.as_str());
        }
    }
    let outcome = async {
        let response = upstream
            .body(request_body.clone())
            .send()
            .await
            .map_err(|e| format!("upstream request failed: {}", error_chain(&e)))?;
        let status = response.status();
        let headers: Vec<(String, String)> = response
            .headers()
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect();
        let body = response
            .bytes()
            .await
            .map_err(|e| format!("reading the upstream body failed: {}", error_chain(&e)))?;
        Ok::<_, String>((status, headers, body.to_vec()))
    }
    .await;
    let (status, headers, body) = match outcome {
        Ok(parts) => parts,
        Err(why) => {
            let message = format!("recording proxy: {why}");
            let answer = format!(
                "HTTP/1.1 502 Bad Gateway\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{message}",
                message.len()
            );
            // Logged before answering, so the failure is there when the client's call returns. The
            // client sees a 502; the recorder reports the failure instead of recording it.
            lock(log).failures.push(why);
            let _ = socket.write_all(answer.as_bytes()).await;
            return Ok(());
        }
    };
    let mut answer = format!(
        "HTTP/1.1 {} {}\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or("Unknown")
    )
    .into_bytes();
    for (name, value) in &headers {
        if !HOP_BY_HOP.contains(&name.as_str()) {
            answer.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
        }
    }
    answer.extend_from_slice(
        format!(
            "content-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    answer.extend_from_slice(&body);
    lock(log).exchanges.push(Exchange {
        method: head.method,
        path: head.path,
        request_body,
        status: status.as_u16(),
        response_headers: headers,
        response_body: body,
    });
    socket
        .write_all(&answer)
        .await
        .map_err(|e| format!("answering the client: {e}"))?;
    let _ = socket.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_heads_parse() {
        let head = parse_head(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\nAuthorization: Bearer k",
        )
        .expect("head");
        assert_eq!(head.method, "POST");
        assert_eq!(head.path, "/v1/chat/completions");
        assert_eq!(head.content_length, 12);
        assert_eq!(head.headers.len(), 3);
        assert!(parse_head(b"GARBAGE").is_err());
        assert!(parse_head(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked").is_err());
    }
}
