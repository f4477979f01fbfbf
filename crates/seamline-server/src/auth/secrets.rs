//! Keys and tokens: random, prefixed by kind, and stored as SHA-256 hashes.
//! They carry 190+ bits of entropy, so a fast hash is enough to look them up.

use chrono::Utc;
use rand::distributions::{Alphanumeric, DistString};
use seamline_core::{KeyId, WorkspaceId};
use seamline_store::{ApiKey, KeyKind};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// A freshly made key and the one time its secret is known in full.
pub struct NewKey {
    pub record: ApiKey,
    pub secret: String,
}

pub fn new_key(workspace: WorkspaceId, kind: KeyKind, name: &str) -> NewKey {
    let prefix = match kind {
        KeyKind::Write => "wk_",
        KeyKind::Secret => "sk_",
    };
    let secret = format!(
        "{prefix}{}",
        Alphanumeric.sample_string(&mut rand::thread_rng(), 32)
    );
    let record = ApiKey {
        id: KeyId(Uuid::now_v7()),
        workspace_id: workspace,
        kind,
        name: name.to_owned(),
        prefix: secret.chars().take(9).collect(),
        plaintext: (kind == KeyKind::Write).then(|| secret.clone()),
        secret_hash: hash_secret(&secret),
        created_at: Utc::now(),
        revoked_at: None,
    };
    NewKey { record, secret }
}

/// A random token for sessions and CSRF.
pub fn new_token() -> String {
    Alphanumeric.sample_string(&mut rand::thread_rng(), 43)
}

pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}
