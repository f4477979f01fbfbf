//! Each workspace's identity rules, kept as its `identity` setting.

use chrono::Utc;
use seamline_core::identity::IdentityPolicy;
use seamline_core::{FieldError, WorkspaceId};
use seamline_store::{Store, StoreError, StoreResult};

const SETTING: &str = "identity";

/// The workspace's rules; the defaults until someone changes them.
pub async fn policy_of(store: &dyn Store, workspace: WorkspaceId) -> StoreResult<IdentityPolicy> {
    match store.setting(workspace, SETTING).await? {
        None => Ok(IdentityPolicy::default()),
        Some(value) => serde_json::from_value(value)
            .map_err(|e| StoreError::Corrupt(format!("identity setting: {e}"))),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    #[error(transparent)]
    Invalid(#[from] FieldError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Validates and saves the workspace's rules. They apply to events resolved
/// from now on; what was resolved before stays as it is.
pub async fn save_policy(
    store: &dyn Store,
    workspace: WorkspaceId,
    policy: &IdentityPolicy,
) -> Result<(), SaveError> {
    policy.validate()?;
    let value = serde_json::to_value(policy.clone().canonical())
        .map_err(|e| StoreError::Corrupt(format!("identity setting: {e}")))?;
    store
        .put_setting(workspace, SETTING, &value, Utc::now())
        .await?;
    Ok(())
}
