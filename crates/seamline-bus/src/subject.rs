//! NATS-style subject matching, so the in-process bus filters exactly as NATS does.

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

#[cfg(test)]
mod tests {
    use super::subject_matches;

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
}
