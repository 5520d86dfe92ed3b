//! A loopback HTTP server that answers every connection with the same timed script, or each
//! connection with the next of several.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

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

/// What happened on a connection, in order (see [`ScriptedServer::next_event`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionEvent {
    /// A request arrived; the script starts.
    Requested,
    /// Every step was played.
    Completed,
    /// The client closed the connection first, after this many `Send` steps were written.
    ClosedByClient {
        /// `Send` steps written before the close was seen.
        sent: usize,
    },
}

/// The server; it stops when dropped.
#[derive(Debug)]
pub struct ScriptedServer {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
    events: tokio::sync::Mutex<mpsc::UnboundedReceiver<ConnectionEvent>>,
}

impl ScriptedServer {
    /// Starts serving `script` to every connection on 127.0.0.1.
    pub async fn start(script: Vec<Step>) -> Self {
        Self::start_each(vec![script]).await
    }

    /// Starts serving `scripts[0]` to the first connection, `scripts[1]` to the second, and so on;
    /// the last script to every later connection (a cut stream, then the retry that completes it).
    ///
    /// # Panics
    /// When `scripts` is empty.
    pub async fn start_each(scripts: Vec<Vec<Step>>) -> Self {
        assert!(!scripts.is_empty(), "at least one script");
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let (events, receiver) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            let mut connection = 0;
            while let Ok((mut socket, _)) = listener.accept().await {
                let script = scripts[connection.min(scripts.len() - 1)].clone();
                connection += 1;
                let events = events.clone();
                tokio::spawn(async move {
                    read_request_head(&mut socket).await;
                    let _ = events.send(ConnectionEvent::Requested);
                    let _ = events.send(play(&mut socket, script).await);
                });
            }
        });
        Self {
            addr,
            task,
            events: tokio::sync::Mutex::new(receiver),
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn uri(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The next thing that happened on any connection (waits for it).
    pub async fn next_event(&self) -> ConnectionEvent {
        self.events
            .lock()
            .await
            .recv()
            .await
            .expect("the server task is running")
    }
}

/// Plays the script on one connection; during waits, watches for the client closing its end.
async fn play(socket: &mut tokio::net::TcpStream, script: Vec<Step>) -> ConnectionEvent {
    let mut sent = 0;
    for step in script {
        let closed = match step {
            Step::Send(bytes) => {
                let written = socket.write_all(&bytes).await.and(socket.flush().await);
                sent += usize::from(written.is_ok());
                written.is_err()
            }
            Step::Wait(duration) => closed_within(socket, duration).await,
            Step::Hang => closed_within(socket, Duration::from_secs(3600)).await,
        };
        if closed {
            return ConnectionEvent::ClosedByClient { sent };
        }
    }
    ConnectionEvent::Completed
}

/// Waits `duration`; true as soon as the client closes the connection meanwhile.
async fn closed_within(socket: &mut tokio::net::TcpStream, duration: Duration) -> bool {
    let sleep = tokio::time::sleep(duration);
    tokio::pin!(sleep);
    let mut buf = [0_u8; 1024];
    loop {
        tokio::select! {
            () = &mut sleep => return false,
            read = socket.read(&mut buf) => match read {
                Ok(0) | Err(_) => return true,
                // More of the request body: not a close.
                Ok(_) => {}
            },
        }
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
