//! The server's integration tests: one binary, a real server per test.

#[path = "../support/mod.rs"]
mod support;

mod access;
mod attachments;
mod automation;
mod call_tracking;
mod calls;
mod channel_common;
mod channel_viber;
mod channel_vk;
mod channel_whatsapp;
mod channels;
mod conversations;
mod email;
mod events_api;
mod identity_batch;
mod identity_rules;
mod inbox;
mod inbox_live;
mod inbox_ui;
mod live;
mod ops;
mod profiles;
mod seed_001;
mod sms;
mod tracking;
mod webhooks;
mod widget;
mod widget_site;
