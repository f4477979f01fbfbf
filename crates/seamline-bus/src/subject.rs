//! NATS-style subject matching, so the in-process bus filters exactly as NATS does.

use crate::{BusError, Message};

/// Does `subject` match `filter`? `*` matches one token, a final `>` one or more.
pub fn subject_matches(filter: &str, subject: &str) -> bool {
    let mut subject_tokens = subject.split('.');
    for token in filter.split('.') {
        match (token, subject_tokens.next()) {
            (">", Some(_)) => return true,
            (_, None) => return false,
            ("*", Some(_)) => {}
            (expected, Some(actual)) if expected == actual => {}
            _ => return false,
        }
    }
    subject_tokens.next().is_none()
}

/// A subject to publish on: non-empty tokens, no wildcards, no whitespace.
/// Both implementations check it, so a bad subject fails the same way everywhere.
pub(crate) fn check_subject(subject: &str) -> Result<(), BusError> {
    if subject.split('.').all(plain_token) {
        Ok(())
    } else {
        Err(BusError::Rejected(format!("invalid subject {subject:?}")))
    }
}

/// A filter: like a subject, but a token may be `*` and the last may be `>`.
pub(crate) fn check_filter(filter: &str) -> Result<(), BusError> {
    let tokens: Vec<&str> = filter.split('.').collect();
    let last = tokens.len() - 1;
    let valid = tokens
        .iter()
        .enumerate()
        .all(|(index, token)| match *token {
            "*" => true,
            ">" => index == last,
            token => plain_token(token),
        });
    if valid {
        Ok(())
    } else {
        Err(BusError::Rejected(format!("invalid filter {filter:?}")))
    }
}

/// A message to publish: a valid subject and a non-empty id that can travel
/// in a NATS header (no control characters).
pub(crate) fn check_message(message: &Message) -> Result<(), BusError> {
    check_subject(&message.subject)?;
    if message.id.is_empty() || message.id.chars().any(char::is_control) {
        return Err(BusError::Rejected(format!(
            "invalid message id {:?}",
            message.id
        )));
    }
    Ok(())
}

fn plain_token(token: &str) -> bool {
    !token.is_empty()
        && !token
            .chars()
            .any(|c| c == '*' || c == '>' || c.is_whitespace())
}

#[cfg(test)]
mod tests {
    use super::{check_filter, check_subject, subject_matches};

    #[test]
    fn wildcards_match_like_nats() {
        assert!(subject_matches("events.a", "events.a"));
        assert!(!subject_matches("events.a", "events.b"));
        assert!(subject_matches("events.*", "events.b"));
        assert!(!subject_matches("events.*", "events.b.c"));
        assert!(subject_matches("events.>", "events.b.c"));
        assert!(!subject_matches("events.>", "events"));
        assert!(!subject_matches("events.a.b", "events.a"));
    }

    #[test]
    fn subjects_and_filters_are_checked() {
        assert!(check_subject("events.a").is_ok());
        assert!(check_subject("events.*").is_err());
        assert!(check_subject("events..a").is_err());
        assert!(check_subject("").is_err());
        assert!(check_subject("events.a b").is_err());
        assert!(check_filter("events.*.x").is_ok());
        assert!(check_filter("events.>").is_ok());
        assert!(check_filter(">").is_ok());
        assert!(check_filter("events.>.x").is_err());
        assert!(check_filter("events.a*").is_err());
        assert!(check_filter("").is_err());
    }
}
