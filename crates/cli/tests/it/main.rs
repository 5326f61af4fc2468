//! The `camionback-relay` binary as staff and servers run it: a real process, killed, stopped
//! and restarted, with the fakes of CamionBack and of the Cloud API in the test process.

// Test code: a failed expectation is the test failing, with its message (clippy.toml allows
// it inside `#[test]` functions only, not in the helpers they share).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod closed_orders;
mod commands;
mod crash;
mod data_files;
mod helpers;
mod startup;
mod whatsapp_web;
