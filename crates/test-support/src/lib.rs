//! Fakes of the services the relay talks to, served on 127.0.0.1 inside the tests: the
//! CamionBack API and the WhatsApp Cloud API, each following its documented HTTP contract and
//! recording what it received. Independent of the engine, so they test it from outside. And a
//! disk that fills up on demand under the relay's SQLite ([`disk`]). And the QR secret of a
//! WhatsApp Web session file ([`whatsapp_session`]).

// Test code only: a fake whose state is poisoned or whose answer cannot be built ends the test
// that uses it, with the message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod camionback;
pub mod cloud_api;
pub mod disk;
pub mod signing;
pub mod twilio;
pub mod whatsapp_session;

pub use camionback::FakeCamionBack;
pub use cloud_api::{FakeCloudApi, Reply};
pub use disk::FullDisk;
pub use twilio::FakeTwilio;
