//! A workspace's identity settings, each with a safe default.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::identifier::{Identifier, IdentifierKind};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct IdentityPolicy {
    /// ISO region for phones written without a country code.
    pub default_region: String,
    /// Fold gmail dots and `+tags` in e-mails.
    pub fold_emails: bool,
    /// Most identifiers of one kind on one profile; kinds not listed use
    /// `default_limit`.
    pub limits: BTreeMap<String, usize>,
    pub default_limit: usize,
    /// `kind:value` pairs (normalised, lower-case) that never link.
    pub block_list: Vec<String>,
}

impl Default for IdentityPolicy {
    fn default() -> Self {
        let limits = [
            ("user_id", 1),
            ("loyalty_card", 1),
            ("email", 5),
            ("phone", 5),
            ("anonymous_id", 200),
            ("device_id", 50),
        ];
        Self {
            default_region: "RU".into(),
            fold_emails: false,
            limits: limits.into_iter().map(|(k, n)| (k.to_owned(), n)).collect(),
            default_limit: 5,
            block_list: Vec::new(),
        }
    }
}

impl IdentityPolicy {
    pub fn limit(&self, kind: &IdentifierKind) -> usize {
        self.limits
            .get(kind.as_str())
            .copied()
            .unwrap_or(self.default_limit)
    }

    pub fn is_blocked(&self, identifier: &Identifier) -> bool {
        let key = format!("{}:{}", identifier.kind, identifier.value).to_lowercase();
        self.block_list.iter().any(|blocked| blocked == &key)
    }
}
