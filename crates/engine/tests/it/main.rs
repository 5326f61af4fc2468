//! Integration tests of the relay engine, each against a fresh world: a temporary data
//! directory, the real HTTP server on a free port, and fakes of the CamionBack API and of the
//! WhatsApp Cloud API on 127.0.0.1.

// Test code: a failed expectation is the test failing, with its message (clippy.toml allows
// it inside `#[test]` functions only, not in the helpers they share).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod camionback_api;
mod carriers;
mod data_files;
mod engine_events;
mod error_help;
mod helpers;
mod history;
mod http_server;
mod order_closing;
mod outbox;
mod polling;
mod relaunch;
mod replies;
mod sending;
mod settings_edit;
mod settings_table;
mod status_webhooks;
mod tidy;
mod twilio;
mod webhook_intake;
mod whatsapp_web;
mod whatsapp_web_server;
