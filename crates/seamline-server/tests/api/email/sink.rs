//! A small SMTP server for tests: speaks enough ESMTP for lettre, keeps
//! every mail it accepted and the answer it gave to every attempt, and
//! answers the next attempts with the failures it was told to (`451`,
//! `550`) after the data, as a real server that refuses the mail does.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

#[derive(Default)]
struct Log {
    /// Accepted mails (the DATA, dot-unstuffed).
    received: Vec<String>,
    /// The answer code to each mail's DATA, in order.
    answers: Vec<u16>,
    failures: VecDeque<u16>,
}

#[derive(Clone)]
pub struct Sink {
    pub addr: SocketAddr,
    log: Arc<Mutex<Log>>,
}

fn reply_text(code: u16) -> String {
    match code {
        451 => "451 4.3.0 Temporary local problem, try later".into(),
        550 => "550 5.1.1 <customer@example.com>: Recipient address rejected: User unknown".into(),
        code => format!("{code} refused"),
    }
}

impl Sink {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("sink binds");
        let sink = Self {
            addr: listener.local_addr().expect("sink address"),
            log: Arc::default(),
        };
        let log = sink.log.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(session(stream, log.clone()));
            }
        });
        sink
    }

    /// The next mail is answered `code` (queued after earlier ones).
    pub fn fail_next(&self, code: u16) {
        self.log.lock().expect("log").failures.push_back(code);
    }

    pub fn received(&self) -> Vec<String> {
        self.log.lock().expect("log").received.clone()
    }

    pub fn answers(&self) -> Vec<u16> {
        self.log.lock().expect("log").answers.clone()
    }
}

async fn session(stream: TcpStream, log: Arc<Mutex<Log>>) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    write.write_all(b"220 sink.test ESMTP\r\n").await?;
    while let Some(line) = lines.next_line().await? {
        let verb = line
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase();
        let answer = match verb.as_str() {
            "EHLO" => "250-sink.test\r\n250-8BITMIME\r\n250 SMTPUTF8".to_owned(),
            "DATA" => {
                write.write_all(b"354 go ahead\r\n").await?;
                let mut data = String::new();
                while let Some(line) = lines.next_line().await? {
                    if line == "." {
                        break;
                    }
                    let line = line
                        .strip_prefix('.')
                        .filter(|_| line.starts_with(".."))
                        .unwrap_or(&line);
                    data.push_str(line);
                    data.push_str("\r\n");
                }
                let mut log = log.lock().expect("log");
                let code = log.failures.pop_front().unwrap_or(250);
                log.answers.push(code);
                if code == 250 {
                    log.received.push(data);
                    "250 2.0.0 queued".to_owned()
                } else {
                    reply_text(code)
                }
            }
            "QUIT" => {
                write.write_all(b"221 bye\r\n").await?;
                return Ok(());
            }
            _ => "250 ok".to_owned(),
        };
        write.write_all(format!("{answer}\r\n").as_bytes()).await?;
    }
    Ok(())
}
