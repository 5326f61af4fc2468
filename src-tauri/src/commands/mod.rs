//! The Tauri commands, one module per screen or area: each one turns a request of the
//! webview into engine calls (`relay_engine::Ops` for what the CLI does too) and answers with a
//! view (a serialisable struct of its module or of `views`) or a [`UiError`]. No logic lives
//! here that the engine could own; no secret ever leaves these modules.

pub mod carriers;
pub mod dashboard;
pub mod history;
pub mod relaunch;
pub mod system;
pub mod whatsapp;

use std::sync::Arc;

use relay_engine::store::{StateKey, Store};
use tauri::State;

use crate::error::UiError;
use crate::relay::Relay;
use crate::views::TimedMessage;

type Shared<'a> = State<'a, Arc<Relay>>;

/// A problem the engine keeps (the last poll or carrier sync failure), as the screens show it.
async fn timed(store: &Store, key: StateKey) -> Result<Option<TimedMessage>, UiError> {
    Ok(store.problem(key).await?.map(TimedMessage::from))
}
