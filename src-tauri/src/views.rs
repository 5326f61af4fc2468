//! What the webview receives: plain serialisable views of engine values, built by hand here
//! (the engine's types stay free of serde and of UI concerns). Secrets never appear in a view
//! (the settings form is in `settings.rs`).

use std::time::Duration;

use chrono::{Local, TimeZone};
use relay_domain::CarrierStatus;
use relay_engine::channel::whatsapp_web::ConnectionState;
use relay_engine::config::ChannelKind;
use relay_engine::store::{
    BatchProgress, CarrierRow, HistoryRow, StateKey, StatusCount, TimedProblem,
};
use serde::Serialize;

use crate::error::UiError;
use crate::relay::Handles;

/// Unix ms of today's local midnight: "today" as staff mean it.
pub fn local_midnight_ms() -> i64 {
    let today = Local::now().date_naive();
    today
        .and_hms_opt(0, 0, 0)
        .and_then(|midnight| Local.from_local_datetime(&midnight).earliest())
        .map_or_else(
            || chrono::Utc::now().timestamp_millis() - 24 * 3600 * 1000,
            |midnight| midnight.timestamp_millis(),
        )
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BroadcastView {
    pub order_id: i64,
    pub reference: String,
    /// 0 for the automatic broadcast, 1, 2… for relaunches.
    pub batch: i64,
    pub total: i64,
    pub done: i64,
    pub succeeded: i64,
    pub failed: i64,
    pub skipped: i64,
    pub pending: i64,
}

impl From<BatchProgress> for BroadcastView {
    fn from(p: BatchProgress) -> Self {
        Self {
            done: p.done(),
            order_id: p.order_id,
            reference: p.order_reference,
            batch: p.batch,
            total: p.total,
            succeeded: p.succeeded,
            failed: p.failed,
            skipped: p.skipped,
            pending: p.pending,
        }
    }
}

/// A problem the engine keeps (the last poll or carrier sync failure): when, and what.
#[derive(Debug, Serialize)]
pub struct TimedMessage {
    pub at: Option<i64>,
    pub message: String,
}

impl From<TimedProblem> for TimedMessage {
    fn from(problem: TimedProblem) -> Self {
        Self {
            at: problem.at_ms,
            message: problem.text,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccountPause {
    pub until_ms: Option<i64>,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WhatsAppBrief {
    pub kind: &'static str,
    pub connected: bool,
    pub description: String,
}

/// What is happening right now: pushed to the webview every second and read by the tray.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActivityView {
    pub broadcasts: Vec<BroadcastView>,
    pub queue_depth: i64,
    /// Paused by staff ("Pause" in the tray, the dashboard or `camionback-relay pause`).
    pub paused: bool,
    /// Paused by the engine because the account cannot send (refused token, WhatsApp down).
    pub account_pause: Option<AccountPause>,
    /// `None` with the Cloud API channel.
    pub whatsapp: Option<WhatsAppBrief>,
    /// Set while the outbox cannot record its sends: sending is stopped, and why.
    pub outbox_write_failing: Option<String>,
}

pub async fn activity(handles: &Handles) -> Result<ActivityView, UiError> {
    let store = &handles.store;
    let account_pause = store
        .problem(StateKey::SendingPaused)
        .await?
        .map(|pause| AccountPause {
            until_ms: pause.at_ms,
            reason: pause.text,
        });
    Ok(ActivityView {
        broadcasts: store
            .active_batches()
            .await?
            .into_iter()
            .map(BroadcastView::from)
            .collect(),
        queue_depth: store.queue_depth().await?,
        paused: store.paused_by_staff_since().await?.is_some(),
        account_pause,
        whatsapp: handles.whatsapp.as_ref().map(|w| {
            let state = w.state().borrow().clone();
            WhatsAppBrief {
                kind: state_kind(&state),
                // A restricted account is linked but sends nothing: staff must see why.
                connected: state.can_send(),
                description: state.describe(),
            }
        }),
        outbox_write_failing: handles.outbox.write_failure().map(|f| f.error),
    })
}

#[derive(Debug, Serialize)]
pub struct StatusCountView {
    pub status: &'static str,
    pub count: i64,
}

impl From<StatusCount> for StatusCountView {
    fn from(c: StatusCount) -> Self {
        Self {
            status: c.status.as_str(),
            count: c.count,
        }
    }
}

pub fn state_kind(state: &ConnectionState) -> &'static str {
    match state {
        ConnectionState::Unlinked => "unlinked",
        ConnectionState::Connecting => "connecting",
        ConnectionState::Qr { .. } => "qr",
        ConnectionState::QrExpired => "qr_expired",
        ConnectionState::PairCode { .. } => "pair_code",
        ConnectionState::Connected { .. } => "connected",
        ConnectionState::Reconnecting { .. } => "reconnecting",
        ConnectionState::Unreachable { .. } => "unreachable",
        ConnectionState::Restricted { .. } => "restricted",
        ConnectionState::LoggedOut => "logged_out",
        ConnectionState::Locked { .. } => "locked",
        ConnectionState::Replaced => "replaced",
        ConnectionState::Banned { .. } => "banned",
    }
}

/// The WhatsApp connection screen's whole state, QR code drawn.
#[derive(Debug, Clone, Default, Serialize)]
pub struct WhatsAppView {
    /// `not_used` (Cloud API), `starting`, or one of [`state_kind`]'s.
    pub kind: &'static str,
    pub channel: &'static str,
    pub description: String,
    pub qr_svg: Option<String>,
    pub expires_at_ms: Option<i64>,
    pub pair_code: Option<String>,
    pub phone: Option<String>,
    pub attempt: Option<u32>,
    pub next_in_secs: Option<u64>,
    pub until_ms: Option<i64>,
}

impl WhatsAppView {
    pub fn of(state: &ConnectionState) -> Self {
        let mut view = Self {
            kind: state_kind(state),
            channel: ChannelKind::WhatsappWeb.as_str(),
            description: state.describe(),
            ..Self::default()
        };
        match state {
            ConnectionState::Qr { code, expires_at } => {
                // The countdown is drawn by the page from `expires_at_ms`.
                view.description =
                    "Scannez ce QR code avec le téléphone CamionBack : WhatsApp > Appareils connectés > Connecter un appareil".into();
                view.qr_svg = crate::qr::svg(code);
                view.expires_at_ms = Some(expires_at.timestamp_millis());
            }
            ConnectionState::PairCode { code } => view.pair_code = Some(code.clone()),
            ConnectionState::Connected { phone } => view.phone = Some(format!("+{phone}")),
            ConnectionState::Reconnecting { attempt, next_in }
            | ConnectionState::Unreachable {
                attempt, next_in, ..
            } => {
                view.attempt = Some(*attempt);
                view.next_in_secs = Some(next_in.as_secs());
            }
            ConnectionState::Restricted { phone, until } => {
                view.phone = Some(format!("+{phone}"));
                view.until_ms = until.map(|u| u.timestamp_millis());
            }
            ConnectionState::Banned { until, .. } => view.until_ms = Some(until.timestamp_millis()),
            _ => {}
        }
        view
    }

    pub fn not_used(channel: ChannelKind) -> Self {
        Self {
            kind: "not_used",
            channel: channel.as_str(),
            description: format!(
                "Le relais envoie par {} : pas de QR code à scanner. Pour relier le téléphone CamionBack par QR code, lancez le relais avec RELAY_CHANNEL=whatsapp-web.",
                match channel {
                    ChannelKind::CloudApi =>
                        "l'API Cloud officielle de WhatsApp (RELAY_CHANNEL=cloud-api)",
                    ChannelKind::Twilio => "l'API WhatsApp de Twilio (RELAY_CHANNEL=twilio)",
                    ChannelKind::WhatsappWeb => "WhatsApp Web",
                }
            ),
            ..Self::default()
        }
    }

    pub fn starting(channel: ChannelKind) -> Self {
        Self {
            kind: "starting",
            channel: channel.as_str(),
            description: "Le relais démarre…".into(),
            ..Self::default()
        }
    }
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct ErrorHelpView {
    pub explanation: &'static str,
    pub action: &'static str,
}

#[derive(Debug, Serialize)]
pub struct HistoryRowView {
    pub id: i64,
    pub order_id: i64,
    pub order_reference: String,
    pub route: String,
    pub carrier_id: i64,
    pub carrier_name: String,
    pub phone: String,
    pub status: &'static str,
    /// Sent, but no delivery receipt after `RELAY_UNCONFIRMED_HOURS`.
    pub unconfirmed: bool,
    pub attempts: i64,
    /// The provider's (or the relay's) text as stored: the cell's tooltip when `error_help`
    /// explains the code.
    pub error: Option<String>,
    pub error_code: Option<String>,
    /// What the code means and what to do, in French (`relay_domain::error_help`), for a code
    /// the table knows.
    pub error_help: Option<ErrorHelpView>,
    pub batch: i64,
    pub queued_at: i64,
    pub sent_at: Option<i64>,
    pub updated_at: i64,
}

impl HistoryRowView {
    pub fn of(row: HistoryRow, unconfirmed_after: Duration, now: i64) -> Self {
        let unconfirmed = row.is_unconfirmed(unconfirmed_after, now);
        let error_help = row.error_help().map(|help| ErrorHelpView {
            explanation: help.explanation,
            action: help.action,
        });
        Self {
            route: format!("{} → {}", row.ville_depart, row.ville_arrivee),
            id: row.id,
            order_id: row.order_id,
            order_reference: row.order_reference,
            carrier_id: row.carrier_id,
            carrier_name: row.carrier_name,
            phone: row.phone,
            status: row.status.as_str(),
            unconfirmed,
            attempts: row.attempts,
            error_help,
            // A skip reason reads in French in the grid ("commande pourvue : envoi évité").
            error: row
                .error
                .map(|error| match relay_domain::SkipReason::of_stored(&error) {
                    Some(reason) => reason.label().to_string(),
                    None => error,
                }),
            error_code: row.error_code,
            batch: row.batch,
            queued_at: row.queued_at,
            sent_at: row.sent_at,
            updated_at: row.updated_at,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct CarrierView {
    pub id: i64,
    pub name: String,
    /// E.164 when usable, else the number as the API gave it.
    pub phone: String,
    pub phone_error: Option<String>,
    /// `validé`, `bloqué`, `en attente` or `inconnu`.
    pub status_label: &'static str,
    /// The API's own word (or "absent de l'API").
    pub statut: String,
    pub eligible: bool,
    pub opted_out_at: Option<i64>,
    pub synced_at: i64,
    pub last_sent_at: Option<i64>,
}

impl From<CarrierRow> for CarrierView {
    fn from(row: CarrierRow) -> Self {
        Self {
            status_label: CarrierStatus::parse(&row.statut).label(),
            id: row.id,
            name: row.name,
            phone: row.phone.unwrap_or(row.phone_raw),
            phone_error: row.phone_error,
            statut: row.statut,
            eligible: row.eligible,
            opted_out_at: row.opted_out_at,
            synced_at: row.synced_at,
            last_sent_at: row.last_sent_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed_row(channel: Option<ChannelKind>, code: &str, error: &str) -> HistoryRow {
        HistoryRow {
            id: 7,
            order_id: 1,
            order_reference: "CMD-2025-1".into(),
            ville_depart: "Casablanca".into(),
            ville_arrivee: "Tanger".into(),
            carrier_id: 1,
            carrier_name: "Transports Atlas".into(),
            phone: "+212612345601".into(),
            status: relay_domain::DeliveryStatus::Failed,
            attempts: 1,
            error: Some(error.into()),
            error_code: Some(code.into()),
            channel,
            message_id: None,
            batch: 0,
            queued_at: 1,
            sent_at: None,
            updated_at: 1,
        }
    }

    #[test]
    fn the_grid_gets_the_french_help_of_a_known_code_and_keeps_the_provider_s_words() {
        let raw = "131026 : Message undeliverable (Message undeliverable)";
        let view = HistoryRowView::of(
            failed_row(Some(ChannelKind::CloudApi), "131026", raw),
            Duration::ZERO,
            2,
        );
        let help = relay_domain::error_help(ChannelKind::CloudApi, "131026").expect("known");
        assert_eq!(
            view.error_help,
            Some(ErrorHelpView {
                explanation: help.explanation,
                action: help.action,
            })
        );
        assert_eq!(view.error.as_deref(), Some(raw), "the tooltip's text");
        assert_eq!(view.error_code.as_deref(), Some("131026"));

        // The same number from another provider means nothing the table knows.
        let other = HistoryRowView::of(
            failed_row(Some(ChannelKind::WhatsappWeb), "131026", raw),
            Duration::ZERO,
            2,
        );
        assert_eq!(other.error_help, None);
    }
}
