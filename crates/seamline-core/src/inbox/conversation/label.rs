//! Labels and priority: how operators sort conversations. Labels are
//! normalised so "VIP", " vip " and "vip" are one filter.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::FieldError;

pub const MAX_LABEL_CHARS: usize = 40;

/// Trimmed, lower-case, inner spaces collapsed, 1..=40 letters (any
/// alphabet: "доставка" is a label), digits, `-`, `_` and spaces.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct Label(String);

impl Label {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let value = raw
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase();
        if value.is_empty() {
            return Err(FieldError::new("required", "label", "a label is required"));
        }
        if value.chars().count() > MAX_LABEL_CHARS {
            return Err(FieldError::new(
                "too_long",
                "label",
                format!("at most {MAX_LABEL_CHARS} characters"),
            ));
        }
        let allowed = |c: char| c.is_alphanumeric() || "-_ ".contains(c);
        if let Some(bad) = value.chars().find(|c| !allowed(*c)) {
            return Err(FieldError::new(
                "invalid_label",
                "label",
                format!("{bad:?} is not allowed; use letters, digits, '-', '_' and spaces"),
            ));
        }
        Ok(Self(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<Label> for String {
    fn from(label: Label) -> Self {
        label.0
    }
}

impl TryFrom<String> for Label {
    type Error = FieldError;
    fn try_from(raw: String) -> Result<Self, FieldError> {
        Label::parse(&raw)
    }
}

/// Ordered: `Urgent` is the greatest, so the queue serves it first.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    #[default]
    None,
    Low,
    Medium,
    High,
    Urgent,
}

impl Priority {
    pub const ALL: [Priority; 5] = [
        Priority::None,
        Priority::Low,
        Priority::Medium,
        Priority::High,
        Priority::Urgent,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Priority::None => "none",
            Priority::Low => "low",
            Priority::Medium => "medium",
            Priority::High => "high",
            Priority::Urgent => "urgent",
        }
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Priority {
    type Err = FieldError;
    fn from_str(s: &str) -> Result<Self, FieldError> {
        let key = s.trim().to_ascii_lowercase();
        Priority::ALL
            .into_iter()
            .find(|p| p.as_str() == key)
            .ok_or_else(|| {
                FieldError::new(
                    "invalid_priority",
                    "priority",
                    "expected none, low, medium, high or urgent",
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn labels_are_normalised() {
        assert_eq!(Label::parse("  VIP ").unwrap().as_str(), "vip");
        assert_eq!(
            Label::parse("Needs   Call-Back").unwrap().as_str(),
            "needs call-back"
        );
        assert_eq!(Label::parse("order_42").unwrap().as_str(), "order_42");
        assert_eq!(Label::parse(" Доставка ").unwrap().as_str(), "доставка");
        assert_eq!(Label::parse(&"a".repeat(40)).unwrap().as_str().len(), 40);
    }

    #[test]
    fn bad_labels_are_refused_naming_the_field() {
        for (raw, code) in [
            ("", "required"),
            ("   ", "required"),
            ("<b>", "invalid_label"),
            ("vip!", "invalid_label"),
            ("a/b", "invalid_label"),
        ] {
            let err = Label::parse(raw).unwrap_err();
            assert_eq!((err.field.as_str(), err.code), ("label", code), "{raw:?}");
        }
        assert_eq!(Label::parse(&"a".repeat(41)).unwrap_err().code, "too_long");
    }

    #[test]
    fn labels_deserialise_through_validation() {
        let label: Label = serde_json::from_str("\" Urgent Refund \"").unwrap();
        assert_eq!(label.as_str(), "urgent refund");
        assert!(serde_json::from_str::<Label>("\"<b>\"").is_err());
    }

    #[test]
    fn priorities_order_and_parse() {
        assert!(Priority::Urgent > Priority::High);
        assert!(Priority::Low > Priority::None);
        assert_eq!(Priority::default(), Priority::None);
        for p in Priority::ALL {
            assert_eq!(p.as_str().parse::<Priority>(), Ok(p));
            assert_eq!(serde_json::to_value(p).unwrap(), p.as_str());
        }
        assert_eq!("HIGH".parse::<Priority>(), Ok(Priority::High));
        assert_eq!("asap".parse::<Priority>().unwrap_err().field, "priority");
    }

    proptest! {
        #[test]
        fn a_parsed_label_parses_to_itself(raw in "[ A-Za-z0-9_-]{0,50}") {
            if let Ok(label) = Label::parse(&raw) {
                prop_assert_eq!(Label::parse(label.as_str()), Ok(label.clone()));
                prop_assert!((1..=MAX_LABEL_CHARS).contains(&label.as_str().len()));
            }
        }
    }
}
