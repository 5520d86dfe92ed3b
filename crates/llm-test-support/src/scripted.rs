//! A loopback HTTP server that answers every connection with the same timed script.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// One step of a scripted response.
#[derive(Debug, Clone)]
pub enum Step {
    /// Write these bytes.
    Send(Vec<u8>),
    /// Wait before the next step.
    Wait(Duration),
    /// Keep the connection open without sending anything more (until the client gives up).
    Hang,
}

impl Step {
    /// The status line and headers of a streamed (chunk-less, close-delimited) response.
    pub fn head(status: u16, content_type: &str) -> Step {
        Step::Send(
            format!("HTTP/1.1 {status} Scripted\r\ncontent-type: {content_type}\r\nconnection: close\r\n\r\n")
                .into_bytes(),
        )
    }

    /// Text to write.
    pub fn text(text: &str) -> Step {
        Step::Send(text.as_bytes().to_vec())
    }
}

/// The server; it stops when dropped.
#[derive(Debug)]
pub struct ScriptedServer {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl ScriptedServer {
    /// Starts serving `script` to every connection on 127.0.0.1.
    pub async fn start(script: Vec<Step>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let task = tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let script = script.clone();
                tokio::spawn(async move {
                    read_request_head(&mut socket).await;
                    for step in script {
                        match step {
                            Step::Send(bytes) => {
                                if socket.write_all(&bytes).await.is_err() {
                                    return;
                                }
                                let _ = socket.flush().await;
                            }
                            Step::Wait(duration) => tokio::time::sleep(duration).await,
                            Step::Hang => {
                                tokio::time::sleep(Duration::from_secs(3600)).await;
                            }
                        }
                    }
                });
            }
        });
        Self { addr, task }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn uri(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for ScriptedServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads until the end of the request head and as much body as arrives with it; the script does not
/// depend on the request.
async fn read_request_head(socket: &mut tokio::net::TcpStream) {
    let mut seen = Vec::new();
    let mut buf = [0_u8; 4096];
    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
        match socket.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
    // Give the body a moment to arrive so the client is not reset mid-send.
    let _ = tokio::time::timeout(Duration::from_millis(20), socket.read(&mut buf)).await;
}
