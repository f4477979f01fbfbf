//! Fake provider servers for channel connectors: they answer, fail and
//! re-send webhooks the way the real providers do
//! (`/work/shared/reference/channels.md`), and log what they received, so
//! tests can count exactly what was delivered.
//!
//! Architecture invariants:
//! - Knows nothing of Seamline's crates: it speaks only the providers'
//!   wire formats, so it cannot agree with a connector's bug.
//! - A runtime dependency of the binary only for `seamline dev
//!   fake-providers` (the demo); `seamline-testing` stays test-only.

#![forbid(unsafe_code)]

pub mod hook;
pub mod pbx;
pub mod sms;
pub mod telegram;
pub mod viber;
pub mod vk;
pub mod whatsapp;
