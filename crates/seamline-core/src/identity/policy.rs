//! A workspace's identity settings, each with a safe default.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use std::str::FromStr;

use super::identifier::{Identifier, IdentifierKind};
use crate::FieldError;

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
    /// How long a shared device stays with the person last active on it
    /// after its latest event; anonymous events after that belong to nobody.
    pub shared_device_session_minutes: u32,
}

/// Most identifiers of one kind a profile may hold under any setting.
const MAX_LIMIT: usize = 1000;
/// A day: a shared device's session lasts at most that long.
const MAX_SESSION_MINUTES: u32 = 1440;

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
            shared_device_session_minutes: 30,
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

    /// Checks a workspace's settings before they are saved; the error names
    /// the setting.
    pub fn validate(&self) -> Result<(), FieldError> {
        let region = self.default_region.to_ascii_uppercase();
        if phonenumber::country::Id::from_str(&region).is_err() {
            return Err(FieldError::new(
                "unknown_region",
                "default_region",
                format!(
                    "{:?} is not a two-letter region such as RU or DE",
                    self.default_region
                ),
            ));
        }
        for (kind, limit) in &self.limits {
            let field = format!("limits.{kind}");
            if kind.parse::<IdentifierKind>().is_err() {
                return Err(FieldError::new(
                    "unknown_kind",
                    field,
                    "not an identifier type",
                ));
            }
            if !(1..=MAX_LIMIT).contains(limit) {
                return Err(FieldError::new(
                    "out_of_range",
                    field,
                    format!("must be between 1 and {MAX_LIMIT}"),
                ));
            }
        }
        if !(1..=MAX_LIMIT).contains(&self.default_limit) {
            return Err(FieldError::new(
                "out_of_range",
                "default_limit",
                format!("must be between 1 and {MAX_LIMIT}"),
            ));
        }
        for (n, entry) in self.block_list.iter().enumerate() {
            // Custom kinds have a colon of their own (`custom:crm_id:42`).
            let typed = [entry.split_once(':'), entry.rsplit_once(':')]
                .into_iter()
                .flatten()
                .any(|(kind, value)| !value.is_empty() && kind.parse::<IdentifierKind>().is_ok());
            if !typed {
                return Err(FieldError::new(
                    "bad_block_entry",
                    format!("block_list[{n}]"),
                    "write each entry as type:value, e.g. phone:+79160000000",
                ));
            }
        }
        if !(1..=MAX_SESSION_MINUTES).contains(&self.shared_device_session_minutes) {
            return Err(FieldError::new(
                "out_of_range",
                "shared_device_session_minutes",
                format!("must be between 1 and {MAX_SESSION_MINUTES}"),
            ));
        }
        Ok(())
    }

    /// The same rules written the way they are compared: kinds by their
    /// canonical names (`card` → `loyalty_card`), block-list values
    /// normalised like identifiers (`phone:8 916 …` → `phone:+7916…`).
    /// Call after [`Self::validate`].
    pub fn canonical(mut self) -> Self {
        let kind_name = |kind: &str| {
            kind.parse::<IdentifierKind>()
                .map_or_else(|_| kind.to_owned(), |k| k.as_str().to_owned())
        };
        self.limits = std::mem::take(&mut self.limits)
            .into_iter()
            .map(|(kind, limit)| (kind_name(&kind), limit))
            .collect();
        let unblocked = IdentityPolicy {
            block_list: Vec::new(),
            ..self.clone()
        };
        self.block_list = std::mem::take(&mut self.block_list)
            .into_iter()
            .map(|entry| {
                let split = [entry.split_once(':'), entry.rsplit_once(':')]
                    .into_iter()
                    .flatten()
                    .find_map(|(kind, value)| {
                        kind.parse::<IdentifierKind>().ok().map(|k| (k, value))
                    });
                match split {
                    Some((kind, value)) => match Identifier::parse(kind.clone(), value, &unblocked)
                    {
                        Ok(id) => format!("{}:{}", id.kind, id.value).to_lowercase(),
                        Err(_) => format!("{}:{}", kind.as_str(), value.trim()).to_lowercase(),
                    },
                    None => entry.to_lowercase(),
                }
            })
            .collect();
        self
    }

    pub fn shared_device_session(&self) -> chrono::TimeDelta {
        chrono::TimeDelta::minutes(i64::from(self.shared_device_session_minutes))
    }

    pub fn is_blocked(&self, identifier: &Identifier) -> bool {
        let key = format!("{}:{}", identifier.kind, identifier.value).to_lowercase();
        self.block_list.iter().any(|blocked| blocked == &key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(change: impl FnOnce(&mut IdentityPolicy)) -> String {
        let mut policy = IdentityPolicy::default();
        change(&mut policy);
        policy.validate().expect_err("refused").field
    }

    #[test]
    fn the_default_is_valid_and_each_bad_setting_is_named() {
        assert_eq!(IdentityPolicy::default().validate(), Ok(()));
        assert_eq!(
            refused(|p| p.default_region = "XX".into()),
            "default_region"
        );
        assert_eq!(
            refused(|p| {
                p.limits.insert("email".into(), 0);
            }),
            "limits.email"
        );
        assert_eq!(
            refused(|p| {
                p.limits.insert("shoe size".into(), 2);
            }),
            "limits.shoe size"
        );
        assert_eq!(refused(|p| p.default_limit = 5000), "default_limit");
        assert_eq!(
            refused(|p| p.block_list = vec!["phone:+79160000000".into(), "nonsense".into()]),
            "block_list[1]"
        );
        assert_eq!(
            refused(|p| p.shared_device_session_minutes = 0),
            "shared_device_session_minutes"
        );
    }

    #[test]
    fn rules_are_kept_the_way_they_are_compared() {
        let policy = IdentityPolicy {
            limits: [("card".to_owned(), 2)].into_iter().collect(),
            block_list: vec![
                "phone:8 916 000-11-22".into(),
                "Email: Office@Example.RU ".into(),
            ],
            ..IdentityPolicy::default()
        }
        .canonical();
        assert_eq!(policy.limit(&IdentifierKind::LoyaltyCard), 2);
        assert_eq!(
            policy.block_list,
            ["phone:+79160001122", "email:office@example.ru"]
        );
        let blocked = Identifier::parse(IdentifierKind::Phone, "+7 916 000 11 22", &policy);
        assert!(blocked.is_err(), "a number typed any way is blocked");
    }

    #[test]
    fn settings_saved_before_a_new_one_existed_still_load() {
        let old: IdentityPolicy =
            serde_json::from_str(r#"{"default_region": "DE", "fold_emails": true}"#)
                .expect("parses");
        assert_eq!(old.default_region, "DE");
        assert_eq!(old.shared_device_session_minutes, 30);
        assert_eq!(old.limit(&IdentifierKind::UserId), 1);
    }
}
