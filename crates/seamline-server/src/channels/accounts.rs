//! Channel accounts as the server uses them: secrets opened on demand, the
//! webhook URL a provider is given, the account a reply goes out through.

use ring::rand::{SecureRandom, SystemRandom};
use seamline_core::inbox::conversation::Channel;
use seamline_core::WorkspaceId;
use seamline_store::{Backend, ChannelAccount, StoreResult};

use super::secrets::{SecretError, SecretKey};
use super::Account;

/// The account with its secrets in clear.
pub fn open(key: &SecretKey, stored: &ChannelAccount) -> Result<Account, SecretError> {
    Ok(Account {
        secrets: key.open(stored.id, &stored.secrets)?,
        stored: stored.clone(),
    })
}

/// A new webhook path token: 128 random bits as hex (also valid as a
/// Telegram `secret_token`: `A-Z a-z 0-9 _ -`).
pub fn new_token() -> Result<String, SecretError> {
    let mut bytes = [0u8; 16];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| SecretError::Random)?;
    Ok(hex::encode(bytes))
}

/// Where the provider posts this account's webhooks.
pub fn webhook_url(base: &str, account: &ChannelAccount) -> String {
    format!(
        "{}/channels/{}/{}",
        base.trim_end_matches('/'),
        account.kind.as_str(),
        account.path_token
    )
}

/// The account replies on `channel` go out through: the workspace's
/// oldest active one.
pub async fn sending_account(
    store: &dyn Backend,
    workspace: WorkspaceId,
    channel: Channel,
) -> StoreResult<Option<ChannelAccount>> {
    Ok(store
        .list_channel_accounts(workspace)
        .await?
        .into_iter()
        .find(|a| a.kind == channel && a.active))
}
