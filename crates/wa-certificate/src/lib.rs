//! No code: this crate holds the test that a build without the WhatsApp Web simulator refuses
//! a server whose certificate chain WhatsApp did not sign (`tests/refused.rs`).
