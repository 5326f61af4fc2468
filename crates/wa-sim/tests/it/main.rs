//! The real whatsapp-rust 0.7 client against the simulator, one module per milestone.

// Test code: a failed expectation is the test failing, with its message (clippy.toml allows
// it inside `#[test]` functions only, not in the helpers they share).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod handshake;
mod lifecycle;
mod messages;
mod pairing;
mod replies;
mod usync;
