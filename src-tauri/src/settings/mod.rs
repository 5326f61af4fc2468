//! The Paramètres screen: the form built from the engine's table of settings (`form`) and the
//! commands the webview calls (`commands`, re-exported here under their registered names).

pub mod commands;
pub mod form;

pub use commands::*;
