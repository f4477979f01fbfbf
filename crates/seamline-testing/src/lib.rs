//! Test support shared by Seamline's suites. Never a runtime dependency.
//!
//! The rule for outside services (PostgreSQL, NATS, Chromium): a test that
//! needs one skips with a loud message on a developer's machine without it,
//! and fails under `CI=true`, where everything must run.

/// True when running under CI (`CI=true`), where nothing may be skipped.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// The value of `var`, or `None` after printing a loud skip notice.
/// Panics under CI: a missing service there is a broken CI, not a skip.
pub fn require_env(var: &str, what: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(value) if !value.is_empty() => Some(value),
        _ => {
            skip_or_fail(&format!("{what} is not configured: set {var}"));
            None
        }
    }
}

/// Prints a loud skip notice, or panics under CI.
pub fn skip_or_fail(reason: &str) {
    assert!(
        !in_ci(),
        "CI=true and a required test service is missing: {reason}"
    );
    eprintln!("\n!!!!!!!! SKIPPED: {reason} !!!!!!!!\n");
}
