//! The carriers screen ("Transporteurs"): the synced list, and a sync now.

use relay_engine::store::StateKey;
use serde::Serialize;

use crate::commands::{Shared, timed};
use crate::error::UiError;
use crate::views::{self, TimedMessage};

#[derive(Debug, Serialize)]
pub struct CarrierList {
    pub carriers: Vec<views::CarrierView>,
    pub last_sync_at: Option<i64>,
    pub last_sync_error: Option<TimedMessage>,
    pub api_configured: bool,
}

#[tauri::command]
pub async fn list_carriers(relay: Shared<'_>) -> Result<CarrierList, UiError> {
    let store = relay.handles().await?.store;
    Ok(CarrierList {
        carriers: store
            .list_carriers()
            .await?
            .into_iter()
            .map(views::CarrierView::from)
            .collect(),
        last_sync_at: store.get_state_i64(StateKey::LastCarrierSyncAt).await?,
        last_sync_error: timed(&store, StateKey::LastCarrierSyncError).await?,
        api_configured: relay
            .settings()
            .is_ok_and(|s| s.camionback.api_url.is_some()),
    })
}

#[derive(Debug, Serialize)]
pub struct SyncOutcome {
    pub listed: usize,
    pub eligible: i64,
}

#[tauri::command]
pub async fn sync_carriers(relay: Shared<'_>) -> Result<SyncOutcome, UiError> {
    let report = relay.handles().await?.ops.sync_carriers().await?;
    Ok(SyncOutcome {
        listed: report.listed,
        eligible: report.eligible,
    })
}
