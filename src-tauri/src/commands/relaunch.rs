//! "📤 Relancer les transporteurs": the preview staff confirm, and the relaunch.

use relay_domain::OrderId;
use relay_engine::clock::now_ms;
use relay_engine::ops::{self, OrderKey};
use relay_engine::store::RelaunchMode;
use serde::{Deserialize, Serialize};

use crate::commands::Shared;
use crate::error::UiError;

#[derive(Debug, Serialize)]
pub struct RelaunchPreview {
    pub order_id: i64,
    pub reference: String,
    pub route: String,
    /// Carriers that do not have the order yet ("seulement ceux qui ne l'ont pas reçue").
    pub missing: i64,
    /// Carriers left out of `missing` because they may have it (interrupted or uncertain
    /// send): included only when staff tick the box.
    pub doubtful: i64,
    /// Every eligible carrier that has not got it in the queue right now ("tous").
    pub all: i64,
    /// "Commande pourvue — N envois évités" when CamionBack closed it: the window asks staff
    /// to confirm that they relaunch it all the same.
    pub closed: Option<String>,
}

#[tauri::command]
pub async fn relaunch_preview(
    relay: Shared<'_>,
    order_id: i64,
) -> Result<RelaunchPreview, UiError> {
    let ops = relay.handles().await?.ops;
    let ops::RelaunchPreview {
        order,
        counts,
        closed,
    } = ops
        .relaunch_preview(OrderKey::Id(OrderId(order_id)))
        .await?;
    Ok(RelaunchPreview {
        order_id,
        missing: counts.missing,
        doubtful: counts.doubtful,
        all: counts.all,
        closed: closed.map(|c| c.headline()),
        route: format!("{} → {}", order.ville_depart, order.ville_arrivee),
        reference: order.reference,
    })
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RelaunchChoice {
    Missing,
    /// "Seulement ceux qui ne l'ont pas reçue" with the box for the carriers in doubt ticked.
    MissingAndDoubtful,
    All,
}

#[derive(Debug, Serialize)]
pub struct RelaunchOutcome {
    pub reference: String,
    pub queued: u64,
    pub invalid_numbers: u64,
    pub skipped: u64,
    /// Set when the carrier list could not be refreshed first (the last list was used).
    pub sync_warning: Option<String>,
}

/// "📤 Relancer les transporteurs", as the CLI's `relaunch` does it: refresh the carrier list
/// (so carriers validated since are included), queue a new batch, wake the dispatcher.
#[tauri::command]
pub async fn relaunch_order(
    relay: Shared<'_>,
    order_id: i64,
    mode: RelaunchChoice,
    // Staff confirmed relaunching an order CamionBack closed (the dialog asked them).
    force: Option<bool>,
) -> Result<RelaunchOutcome, UiError> {
    let ops = relay.handles().await?.ops;
    let order = ops.relaunchable(OrderKey::Id(OrderId(order_id))).await?;
    let mode = match mode {
        RelaunchChoice::Missing => RelaunchMode::Missing,
        RelaunchChoice::MissingAndDoubtful => RelaunchMode::MissingAndDoubtful,
        RelaunchChoice::All => RelaunchMode::All,
    };
    let relaunched = if force == Some(true) {
        ops.relaunch_forced(&order, mode, now_ms()).await?
    } else {
        ops.relaunch(&order, mode, now_ms()).await?
    };
    tracing::info!(
        "relance de la commande {} depuis l'application : {} transporteur(s) en file",
        order.reference,
        relaunched.queued.queued
    );
    Ok(RelaunchOutcome {
        reference: relaunched.reference,
        queued: relaunched.queued.queued,
        invalid_numbers: relaunched.queued.invalid_numbers,
        skipped: relaunched.queued.skipped,
        sync_warning: relaunched.sync_warning,
    })
}
