//! The server's integration tests: one binary, a real server per test.

#[path = "../support/mod.rs"]
mod support;

mod access;
mod conversations;
mod events_api;
mod identity_rules;
mod inbox;
mod inbox_ui;
mod live;
mod ops;
mod profiles;
mod tracking;
mod widget;
