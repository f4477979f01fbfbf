//! Reading the account's mailbox over IMAP: log in, select `INBOX`, fetch
//! what came after the last UID seen (`BODY.PEEK[]`, so `\Seen` is left
//! for the customer's own client).

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use async_imap::Session;
use futures::TryStreamExt;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::{ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;

use super::settings::{Server, TlsMode};

/// Bounds every wait on the server.
const TIMEOUT: Duration = Duration::from_secs(30);

pub trait Io: AsyncRead + AsyncWrite + Unpin + Send + Debug {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + Debug> Io for T {}

pub type Mailbox = Session<Box<dyn Io>>;

#[derive(Debug, thiserror::Error)]
pub enum ImapError {
    #[error("IMAP connection: {0}")]
    Io(#[from] std::io::Error),
    #[error("IMAP: {0}")]
    Protocol(#[from] async_imap::error::Error),
    #[error("the IMAP server did not answer in time")]
    Timeout,
    #[error("the IMAP server's name is not valid for TLS")]
    Name,
    #[error("the IMAP server has no UIDVALIDITY for INBOX")]
    NoUidValidity,
}

/// Where the mailbox stands: mail with a UID above `last_uid` is new.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub uid_validity: u32,
    pub last_uid: u32,
}

async fn timed<T, E: Into<ImapError>>(
    work: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, ImapError> {
    tokio::time::timeout(TIMEOUT, work)
        .await
        .map_err(|_| ImapError::Timeout)?
        .map_err(Into::into)
}

fn tls_connector() -> TlsConnector {
    let roots = RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let config = ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    TlsConnector::from(Arc::new(config))
}

async fn wrap_tls(server: &Server, tcp: TcpStream) -> Result<Box<dyn Io>, ImapError> {
    let name = ServerName::try_from(server.host.clone()).map_err(|_| ImapError::Name)?;
    Ok(Box::new(timed(tls_connector().connect(name, tcp)).await?))
}

type Client = async_imap::Client<Box<dyn Io>>;

/// A client past the server's greeting, on TLS unless the mode is `none`.
async fn greeted(server: &Server, tcp: TcpStream) -> Result<Client, ImapError> {
    if server.tls == TlsMode::Starttls {
        let mut plain = async_imap::Client::new(tcp);
        timed(plain.read_response()).await?;
        timed(plain.run_command_and_check_ok("STARTTLS", None)).await?;
        // No second greeting after STARTTLS (RFC 3501 §6.2.1).
        return Ok(async_imap::Client::new(
            wrap_tls(server, plain.into_inner()).await?,
        ));
    }
    let stream: Box<dyn Io> = match server.tls {
        TlsMode::Tls => wrap_tls(server, tcp).await?,
        _ => Box::new(tcp),
    };
    let mut client = async_imap::Client::new(stream);
    timed(client.read_response()).await?;
    Ok(client)
}

/// Connects and logs in; `INBOX` selected, with its UIDVALIDITY.
pub async fn open(server: &Server, password: &str) -> Result<(Mailbox, u32), ImapError> {
    let tcp = timed(TcpStream::connect((server.host.as_str(), server.port))).await?;
    let client = greeted(server, tcp).await?;
    let login = tokio::time::timeout(TIMEOUT, client.login(&server.user, password))
        .await
        .map_err(|_| ImapError::Timeout)?;
    let mut session = login.map_err(|(error, _)| error)?;
    let inbox = timed(session.select("INBOX")).await?;
    let validity = inbox.uid_validity.ok_or(ImapError::NoUidValidity)?;
    Ok((session, validity))
}

/// The mail after `after` (UID and bytes), oldest first.
pub async fn fetch_after(
    session: &mut Mailbox,
    after: u32,
) -> Result<Vec<(u32, Vec<u8>)>, ImapError> {
    let range = format!("{}:*", after.saturating_add(1));
    let fetched: Vec<_> = timed(async {
        let stream = session.uid_fetch(range, "(UID BODY.PEEK[])").await?;
        stream.try_collect::<Vec<_>>().await
    })
    .await?;
    // `n:*` also names the last mail when nothing is above n.
    let mut mail: Vec<(u32, Vec<u8>)> = fetched
        .iter()
        .filter_map(|f| Some((f.uid?, f.body()?.to_vec())))
        .filter(|(uid, _)| *uid > after)
        .collect();
    mail.sort_by_key(|(uid, _)| *uid);
    Ok(mail)
}

pub async fn close(mut session: Mailbox) {
    let _ = timed(session.logout()).await;
}
