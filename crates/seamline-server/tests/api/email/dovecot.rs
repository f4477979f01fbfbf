//! A throwaway Dovecot IMAP server for one test: its own config, a
//! passwd-file user, Maildir storage in a temp dir, plaintext login on
//! loopback, an ephemeral port; stopped (SIGTERM) when dropped. Mail is
//! delivered by writing Maildir files, as a local delivery agent does.

use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub const USER: &str = "support";
pub const PASSWORD: &str = "imap-secret";

pub struct Dovecot {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Child,
    delivered: AtomicU32,
}

fn binary() -> Option<PathBuf> {
    ["/usr/sbin/dovecot", "/usr/local/sbin/dovecot"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("address").port()
}

/// As root, the mail belongs to `nobody` (Dovecot refuses uid 0); else to
/// the user running the test, who then also runs Dovecot's own processes.
fn identity(dir: &Path) -> (u32, String) {
    use std::os::unix::fs::MetadataExt;
    let uid = std::fs::metadata(dir).expect("temp dir").uid();
    if uid == 0 {
        (65534, String::new())
    } else {
        let user = std::env::var("USER").unwrap_or_default();
        let users = format!("default_login_user = {user}\ndefault_internal_user = {user}\n");
        (uid, users)
    }
}

fn config(dir: &Path, port: u16) -> String {
    let (uid, users) = identity(dir);
    let d = dir.display();
    format!(
        "base_dir = {d}/run\nstate_dir = {d}/state\nlog_path = {d}/dovecot.log\n\
         protocols = imap\nlisten = 127.0.0.1\nssl = no\ndisable_plaintext_auth = no\n\
         auth_mechanisms = plain login\nmail_location = maildir:{d}/mail/%u\n\
         first_valid_uid = 0\n{users}\
         passdb {{\n  driver = passwd-file\n  args = {d}/passwd\n}}\n\
         userdb {{\n  driver = static\n  args = uid={uid} gid={uid} home={d}/mail/%u\n}}\n\
         service imap-login {{\n  chroot =\n  inet_listener imap {{\n    address = 127.0.0.1\n    port = {port}\n  }}\n  inet_listener imaps {{\n    port = 0\n  }}\n}}\n\
         service anvil {{\n  chroot =\n}}\n"
    )
}

impl Dovecot {
    /// A running server, or `None` (after `skip_or_fail`) without Dovecot.
    pub fn start() -> Option<Self> {
        let Some(binary) = binary() else {
            seamline_testing::skip_or_fail(
                "dovecot is not installed (apt-get install dovecot-imapd)",
            );
            return None;
        };
        let dir = tempfile::tempdir().expect("temp dir");
        for sub in ["run", "state", "mail"] {
            std::fs::create_dir_all(dir.path().join(sub)).expect("dovecot dirs");
        }
        set_mode(&dir.path().join("mail"), 0o777);
        std::fs::write(
            dir.path().join("passwd"),
            format!("{USER}:{{PLAIN}}{PASSWORD}::::::\n"),
        )
        .expect("passwd file");
        let port = free_port();
        let conf = dir.path().join("dovecot.conf");
        std::fs::write(&conf, config(dir.path(), port)).expect("dovecot.conf");
        let child = Command::new(binary)
            .arg("-F")
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("dovecot starts");
        let server = Self {
            port,
            dir,
            child,
            delivered: AtomicU32::new(0),
        };
        server.wait_ready();
        Some(server)
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            assert!(
                Instant::now() < deadline,
                "dovecot never listened: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dovecot.log")).unwrap_or_default()
    }

    /// Drops `raw` into the user's INBOX (tmp, then renamed into new).
    pub fn deliver(&self, raw: &str) {
        let maildir = self.dir.path().join("mail").join(USER);
        for sub in ["tmp", "new", "cur"] {
            std::fs::create_dir_all(maildir.join(sub)).expect("maildir");
        }
        set_mode(&maildir, 0o777);
        for sub in ["tmp", "new", "cur"] {
            set_mode(&maildir.join(sub), 0o777);
        }
        let n = self.delivered.fetch_add(1, Ordering::SeqCst);
        let name = format!("{}.{n}.seamline-test", uuid::Uuid::now_v7().simple());
        let tmp = maildir.join("tmp").join(&name);
        let mut file = std::fs::File::create(&tmp).expect("mail file");
        // Maildir files end lines the Unix way; Dovecot serves them as CRLF.
        file.write_all(raw.replace("\r\n", "\n").as_bytes())
            .expect("mail written");
        file.sync_all().expect("synced");
        set_mode(&tmp, 0o666);
        std::fs::rename(&tmp, maildir.join("new").join(&name)).expect("delivered");
    }
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode));
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        // SIGTERM lets the master stop its auth and login processes too.
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}
