//! The dashboard ("Tableau de bord"): everything it shows, in one call.

use serde::Serialize;

use crate::commands::{Shared, timed};
use crate::error::UiError;
use crate::relay::PhaseKind;
use crate::views::{self, ActivityView, TimedMessage};
use relay_engine::store::StateKey;

#[derive(Debug, Serialize)]
pub struct ApiHealth {
    pub configured: bool,
    pub polling: bool,
    pub last_poll_ok_at: Option<i64>,
    pub last_poll_error: Option<TimedMessage>,
    pub last_sync_at: Option<i64>,
    pub last_sync_error: Option<TimedMessage>,
}

#[derive(Debug, Serialize)]
pub struct LastOrder {
    pub id: i64,
    pub reference: String,
    pub route: String,
    pub source: String,
    pub received_at: i64,
    /// "Commande pourvue — N envois évités" when CamionBack closed it.
    pub closed: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Overview {
    pub phase: PhaseKind,
    pub error: Option<UiError>,
    pub activity: Option<ActivityView>,
    pub today: Vec<views::StatusCountView>,
    pub last_order: Option<LastOrder>,
    pub api: Option<ApiHealth>,
    pub throttle_ms: u64,
    pub jitter_ms: u64,
}

/// Everything the dashboard shows, in one call (it refreshes every few seconds).
#[tauri::command]
pub async fn overview(relay: Shared<'_>) -> Result<Overview, UiError> {
    let (phase, error) = relay.phase().await;
    let settings = relay.settings().ok();
    let (throttle_ms, jitter_ms) = settings.as_ref().map_or((0, 0), |s| {
        (
            u64::try_from(s.dispatch.throttle.as_millis()).unwrap_or(u64::MAX),
            u64::try_from(s.dispatch.jitter.as_millis()).unwrap_or(u64::MAX),
        )
    });
    let mut overview = Overview {
        phase,
        error,
        activity: None,
        today: Vec::new(),
        last_order: None,
        api: None,
        throttle_ms,
        jitter_ms,
    };
    let Ok(handles) = relay.handles().await else {
        return Ok(overview);
    };
    let store = &handles.store;
    overview.activity = Some(views::activity(&handles).await?);
    overview.today = store
        .status_counts_since(views::local_midnight_ms())
        .await?
        .into_iter()
        .map(views::StatusCountView::from)
        .collect();
    overview.last_order = store.last_order().await?.map(|o| LastOrder {
        id: o.id,
        route: format!("{} → {}", o.ville_depart, o.ville_arrivee),
        reference: o.reference,
        source: o.source,
        received_at: o.received_at,
        closed: o
            .closed
            .then(|| relay_engine::ops::closed_headline(o.avoided)),
    });
    overview.api = Some(ApiHealth {
        configured: settings
            .as_ref()
            .is_some_and(|s| s.camionback.api_url.is_some()),
        polling: settings.as_ref().is_some_and(|s| {
            s.camionback.api_url.is_some() && !s.camionback.poll_interval.is_zero()
        }),
        last_poll_ok_at: store.get_state_i64(StateKey::LastPollOkAt).await?,
        last_poll_error: timed(store, StateKey::LastPollError).await?,
        last_sync_at: store.get_state_i64(StateKey::LastCarrierSyncAt).await?,
        last_sync_error: timed(store, StateKey::LastCarrierSyncError).await?,
    });
    Ok(overview)
}
