//! What the visitors' side costs in memory, so that it can be taken out of
//! the process's growth: the same client sockets and tasks, opened against
//! a holder that answers the WebSocket handshake by hand and then only
//! keeps the TCP stream (a few hundred bytes, no buffers, no task).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

/// The longest handshake request read.
const REQUEST_LIMIT: usize = 8 * 1024;

pub struct Holder {
    pub addr: SocketAddr,
    held: Arc<Mutex<Vec<TcpStream>>>,
    task: JoinHandle<()>,
}

impl Holder {
    pub async fn start() -> anyhow::Result<Self> {
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let addr = listener.local_addr()?;
        let held = Arc::new(Mutex::new(Vec::new()));
        let task = tokio::spawn(accept(listener, held.clone()));
        Ok(Self { addr, held, task })
    }

    /// Closes every held stream.
    pub fn stop(self) {
        self.task.abort();
        self.held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

async fn accept(listener: TcpListener, held: Arc<Mutex<Vec<TcpStream>>>) {
    while let Ok((mut stream, _)) = listener.accept().await {
        // One at a time: the visitors connect a few dozen at once at most.
        if handshake(&mut stream).await.is_ok() {
            held.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(stream);
        }
    }
}

async fn handshake(stream: &mut TcpStream) -> anyhow::Result<()> {
    let mut request = Vec::with_capacity(1024);
    let mut buffer = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        anyhow::ensure!(request.len() < REQUEST_LIMIT, "handshake too long");
        let read = stream.read(&mut buffer).await?;
        anyhow::ensure!(read > 0, "closed during the handshake");
        request.extend_from_slice(buffer.get(..read).unwrap_or_default());
    }
    let text = String::from_utf8_lossy(&request);
    let key = text
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("sec-websocket-key")
                .then(|| value.trim())
        })
        .ok_or_else(|| anyhow::anyhow!("no Sec-WebSocket-Key"))?;
    let answer = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n\r\n",
        derive_accept_key(key.as_bytes())
    );
    stream.write_all(answer.as_bytes()).await?;
    Ok(())
}
