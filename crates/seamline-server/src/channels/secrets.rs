//! Provider secrets sealed at rest: ChaCha20-Poly1305 (ring, already in the
//! build through rustls) under the installation's secret key, with the
//! account's id as associated data so a sealed value copied onto another
//! account does not open.
//!
//! The key comes from `SEAMLINE_SECRET_KEY` (32 bytes, base64 or hex) or,
//! for the single binary, from `secret.key` in the data dir, written on
//! first start. Losing it loses the channel tokens (re-enter them), never
//! other data.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::OnceLock;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};
use seamline_core::ChannelAccountId;
use seamline_store::SealedSecrets;

const VERSION: &str = "v1:";
const KEY_LEN: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("the secret key must be 32 bytes, base64 or hex")]
    BadKey,
    #[error("sealed secrets do not open with this key (was the key changed?)")]
    Unreadable,
    #[error("the system random source failed")]
    Random,
    #[error("secret key file {path}: {source}")]
    File {
        path: String,
        source: std::io::Error,
    },
}

/// The key that seals channel secrets. `Debug` prints nothing of it.
#[derive(Clone)]
pub struct SecretKey([u8; KEY_LEN]);

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(..)")
    }
}

/// A channel account's secrets in clear (a bot token). `Debug` hides values.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secrets(pub BTreeMap<String, String>);

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.0.keys()).finish()
    }
}

impl Secrets {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }
}

impl SecretKey {
    /// 32 bytes as base64 or hex.
    pub fn parse(text: &str) -> Result<Self, SecretError> {
        let text = text.trim();
        let bytes = hex::decode(text)
            .ok()
            .or_else(|| STANDARD.decode(text).ok())
            .ok_or(SecretError::BadKey)?;
        bytes.try_into().map(Self).map_err(|_| SecretError::BadKey)
    }

    pub fn generate() -> Result<Self, SecretError> {
        let mut key = [0u8; KEY_LEN];
        SystemRandom::new()
            .fill(&mut key)
            .map_err(|_| SecretError::Random)?;
        Ok(Self(key))
    }

    /// One random key for this process: servers built without a configured
    /// key (tests) share it, so a second instance opens the first's secrets.
    pub fn for_this_process() -> Self {
        static KEY: OnceLock<SecretKey> = OnceLock::new();
        KEY.get_or_init(|| Self::generate().unwrap_or(Self([7; KEY_LEN])))
            .clone()
    }

    /// The key in `path`, written there (owner-only) when missing.
    pub fn load_or_create(path: &Path) -> Result<Self, SecretError> {
        let file = |source| SecretError::File {
            path: path.display().to_string(),
            source,
        };
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(&text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = Self::generate()?;
                write_private(path, &STANDARD.encode(key.0)).map_err(file)?;
                Ok(key)
            }
            Err(e) => Err(file(e)),
        }
    }

    fn cipher(&self) -> LessSafeKey {
        // A 32-byte key always suits ChaCha20-Poly1305.
        let unbound = UnboundKey::new(&CHACHA20_POLY1305, &self.0)
            .unwrap_or_else(|_| unreachable!("32-byte ChaCha20 key"));
        LessSafeKey::new(unbound)
    }

    pub fn seal(
        &self,
        account: ChannelAccountId,
        secrets: &Secrets,
    ) -> Result<SealedSecrets, SecretError> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| SecretError::Random)?;
        let mut data = serde_json::to_vec(&secrets.0).map_err(|_| SecretError::Unreadable)?;
        self.cipher()
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(account.as_uuid().as_bytes()),
                &mut data,
            )
            .map_err(|_| SecretError::Unreadable)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&data);
        Ok(SealedSecrets(format!(
            "{VERSION}{}",
            URL_SAFE_NO_PAD.encode(out)
        )))
    }

    pub fn open(
        &self,
        account: ChannelAccountId,
        sealed: &SealedSecrets,
    ) -> Result<Secrets, SecretError> {
        let raw = sealed
            .0
            .strip_prefix(VERSION)
            .and_then(|b| URL_SAFE_NO_PAD.decode(b).ok())
            .filter(|raw| raw.len() > NONCE_LEN)
            .ok_or(SecretError::Unreadable)?;
        let (nonce, data) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SecretError::Unreadable)?;
        let mut data = data.to_vec();
        let clear = self
            .cipher()
            .open_in_place(nonce, Aad::from(account.as_uuid().as_bytes()), &mut data)
            .map_err(|_| SecretError::Unreadable)?;
        serde_json::from_slice(clear)
            .map(Secrets)
            .map_err(|_| SecretError::Unreadable)
    }
}

#[cfg(unix)]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(text.as_bytes())
}

#[cfg(not(unix))]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    std::fs::write(path, text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn token() -> Secrets {
        Secrets(BTreeMap::from([(
            "bot_token".into(),
            "123:ABC-секрет".into(),
        )]))
    }

    #[test]
    fn sealed_secrets_open_only_with_their_key_and_account() {
        let key = SecretKey::generate().expect("key");
        let account = ChannelAccountId(Uuid::now_v7());
        let sealed = key.seal(account, &token()).expect("seal");
        assert!(!sealed.0.contains("ABC"), "no clear text at rest");
        assert_eq!(key.open(account, &sealed).expect("open"), token());
        let other = ChannelAccountId(Uuid::now_v7());
        assert!(key.open(other, &sealed).is_err(), "bound to its account");
        let wrong = SecretKey::generate().expect("key");
        assert!(wrong.open(account, &sealed).is_err(), "bound to its key");
    }

    #[test]
    fn keys_parse_from_base64_or_hex_and_persist() {
        let hex_key = "00".repeat(32);
        assert!(SecretKey::parse(&hex_key).is_ok());
        assert!(SecretKey::parse(&STANDARD.encode([1u8; 32])).is_ok());
        assert!(SecretKey::parse("short").is_err());
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("secret.key");
        let first = SecretKey::load_or_create(&path).expect("create");
        let again = SecretKey::load_or_create(&path).expect("load");
        assert_eq!(first.0, again.0);
    }
}
