//! Browser tests: the web UI in real headless Chromium, driven through
//! `chromedriver` with fantoccini, against a real server on port 0 with a
//! fresh store per test. One binary, so the whole server links once.
//!
//! Needs Debian's `chromium` and `chromium-driver`; without them a test
//! skips loudly on a developer's machine and fails under `CI=true`.
//! Screenshots of the main pages land in `target/screenshots/`.

#[path = "../support/mod.rs"]
mod support;

mod bot;
mod call_tracking;
mod calls;
mod channel_kinds;
mod channels;
mod email;
mod inbox;
mod live;
mod pages;
mod profiles;
mod webhooks;
mod widget;
