//! Watches the running relay for the shell: every second it reads what is being sent, pushes
//! it to the webview (`relay:activity`), updates the tray, and raises a notification when a
//! broadcast finishes, the account stops being able to send (refused token…), the outbox
//! cannot record its sends (full disk, locked database), or the CamionBack API has been
//! unreachable for five minutes. A second task follows the WhatsApp Web
//! connection (`relay:whatsapp`) and notifies when it drops, is logged out or banned.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::time::Duration;

use relay_domain::OrderId;
use relay_engine::channel::whatsapp_web::ConnectionState;
use relay_engine::clock::now_ms;
use relay_engine::dispatcher::WriteFailure;
use relay_engine::store::{StateKey, Store, StoreError};
use tauri::{AppHandle, Emitter};
use tauri_plugin_notification::NotificationExt;
use tokio::sync::watch;

use crate::relay::{PhaseKind, Relay};
use crate::tray::{self, TrayStatus};
use crate::views::{self, AccountPause, ActivityView, WhatsAppView};

pub const ACTIVITY_EVENT: &str = "relay:activity";
pub const WHATSAPP_EVENT: &str = "relay:whatsapp";
const TICK: Duration = Duration::from_secs(1);
/// How long the API may fail before staff are told.
const API_DOWN_NOTICE_MS: i64 = 5 * 60 * 1000;

fn notify(app: &AppHandle, title: &str, body: &str) {
    tracing::info!("notification : {title} — {body}");
    // `show` reports success whether or not a notification server displayed anything; a
    // failure here only costs the notice, never the relay.
    if let Err(err) = app.notification().builder().title(title).body(body).show() {
        tracing::warn!("notification impossible : {err}");
    }
}

/// "48 envoyés, 2 échecs": the figures of a finished broadcast.
pub fn finished_summary(succeeded: i64, failed: i64) -> String {
    // French puts 0 and 1 in the singular.
    let sent = if succeeded <= 1 {
        format!("{succeeded} envoyé")
    } else {
        format!("{succeeded} envoyés")
    };
    match failed {
        0 => sent,
        1 => format!("{sent}, 1 échec"),
        n => format!("{sent}, {n} échecs"),
    }
}

/// Finds the broadcasts that finished since the last look, including ones queued and done
/// between two looks.
#[derive(Default)]
struct FinishedBroadcasts {
    /// Highest delivery id seen; `None` until the first look, which notifies nothing old.
    watermark: Option<i64>,
    active: BTreeSet<(i64, i64)>,
    notified: HashSet<(i64, i64)>,
}

impl FinishedBroadcasts {
    async fn look(
        &mut self,
        store: &Store,
        activity: &ActivityView,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let now_active: BTreeSet<(i64, i64)> = activity
            .broadcasts
            .iter()
            .map(|b| (b.order_id, b.batch))
            .collect();
        let Some(watermark) = self.watermark else {
            self.watermark = Some(store.last_delivery_id().await?);
            self.active = now_active;
            return Ok(Vec::new());
        };
        let newest = store.last_delivery_id().await?;
        let mut candidates = std::mem::take(&mut self.active);
        candidates.extend(store.batches_after(watermark).await?);
        self.watermark = Some(newest);
        let mut notices = Vec::new();
        for (order, batch) in candidates {
            if now_active.contains(&(order, batch)) || self.notified.contains(&(order, batch)) {
                continue;
            }
            self.notified.insert((order, batch));
            if let Some(done) = store.batch_progress(OrderId(order), batch).await?
                && done.pending == 0
                && done.succeeded + done.failed > 0
            {
                let what = if batch == 0 {
                    "Diffusion terminée"
                } else {
                    "Relance terminée"
                };
                notices.push((
                    format!("{what} — {}", done.order_reference),
                    finished_summary(done.succeeded, done.failed),
                ));
            }
        }
        // A few pairs per order: bounded in practice, cleared now and then all the same.
        if self.notified.len() > 10_000 {
            self.notified.clear();
        }
        self.active = now_active;
        Ok(notices)
    }
}

/// Whether to tell staff the API has been unreachable for a while; once per outage.
#[derive(Default)]
struct ApiWatch {
    told: bool,
    first_seen_failing: Option<i64>,
}

impl ApiWatch {
    async fn look(&mut self, store: &Store, now: i64) -> Result<Option<String>, StoreError> {
        let Some(error) = store.problem(StateKey::LastPollError).await? else {
            self.told = false;
            self.first_seen_failing = None;
            return Ok(None);
        };
        let since = match store.get_state_i64(StateKey::LastPollOkAt).await? {
            Some(ok) => ok,
            None => *self.first_seen_failing.get_or_insert(now),
        };
        if self.told || now - since < API_DOWN_NOTICE_MS {
            return Ok(None);
        }
        self.told = true;
        Ok(Some(format!(
            "Aucune réponse de l'API CamionBack depuis plus de 5 minutes : {}",
            error.text
        )))
    }
}

/// What to tell staff when the engine's account pause changes between two looks: once when
/// sending stops (a refused token, a suspended account), once when it resumes. WhatsApp Web
/// losing its connection is told by `follow_whatsapp`, so it is not told twice here.
pub fn account_pause_notice(
    before: Option<&AccountPause>,
    now: &ActivityView,
) -> Option<(&'static str, String)> {
    let whatsapp_down = now.whatsapp.as_ref().is_some_and(|w| !w.connected);
    match (before, &now.account_pause) {
        (None, Some(pause)) if !whatsapp_down => {
            let until = pause
                .until_ms
                .map(|ms| {
                    format!(
                        " (nouvel essai à {})",
                        relay_engine::clock::format_local(ms)
                    )
                })
                .unwrap_or_default();
            Some(("Envois suspendus", format!("{}{until}", pause.reason)))
        }
        (Some(_), None) => Some((
            "Envois repris",
            "Le compte WhatsApp accepte de nouveau les messages.".to_string(),
        )),
        _ => None,
    }
}

/// What to tell staff when the outbox's alert changes between two looks: once when its writes
/// start failing (sending stops), once when they land again.
pub fn outbox_notice(
    was_failing: bool,
    now: Option<&WriteFailure>,
) -> Option<(&'static str, String)> {
    match (was_failing, now) {
        (false, Some(failure)) => Some((
            "Envois arrêtés : base de données",
            format!(
                "Le relais ne peut pas enregistrer ses envois ({}) : rien ne part, rien n'est renvoyé deux fois. Libérez de la place sur le disque ou fermez le programme qui bloque la base ; les envois reprennent seuls.",
                failure.error
            ),
        )),
        (true, None) => Some((
            "Envois repris",
            "La base de données enregistre de nouveau les envois.".to_string(),
        )),
        _ => None,
    }
}

pub async fn run_until_stopped(app: AppHandle, relay: Arc<Relay>) {
    let mut ticks = tokio::time::interval(TICK);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut finished = FinishedBroadcasts::default();
    let mut api = ApiWatch::default();
    let mut last_activity: Option<ActivityView> = None;
    let mut last_status: Option<TrayStatus> = None;
    let mut outbox_failing = false;
    loop {
        ticks.tick().await;
        let handles = match relay.handles().await {
            Ok(handles) => handles,
            Err(_) => match relay.phase().await.0 {
                PhaseKind::Stopping => return,
                PhaseKind::Failed => {
                    if last_status != Some(TrayStatus::Failed) {
                        tray::show(&app, &TrayStatus::Failed);
                        last_status = Some(TrayStatus::Failed);
                    }
                    continue;
                }
                PhaseKind::Starting | PhaseKind::Running => {
                    // A new engine follows (a saved edit): compare it with nothing, not with
                    // the one that stopped, whose account pause it does not inherit.
                    last_activity = None;
                    continue;
                }
            },
        };
        // Read from memory before anything asks the database, which may be what fails.
        let failure = handles.outbox.write_failure();
        if let Some((title, body)) = outbox_notice(outbox_failing, failure.as_ref()) {
            notify(&app, title, &body);
        }
        outbox_failing = failure.is_some();
        let activity = match views::activity(&handles).await {
            Ok(activity) => activity,
            Err(err) => {
                tracing::warn!("état du relais illisible : {}", err.message);
                continue;
            }
        };
        match finished.look(&handles.store, &activity).await {
            Ok(notices) => {
                for (title, body) in notices {
                    notify(&app, &title, &body);
                }
            }
            Err(err) => tracing::warn!("suivi des diffusions : {err}"),
        }
        let before = last_activity
            .as_ref()
            .and_then(|a| a.account_pause.as_ref());
        if let Some((title, body)) = account_pause_notice(before, &activity) {
            notify(&app, title, &body);
        }
        match api.look(&handles.store, now_ms()).await {
            Ok(Some(body)) => notify(&app, "API CamionBack injoignable", &body),
            Ok(None) => {}
            Err(err) => tracing::warn!("suivi de l'API : {err}"),
        }
        // The pause may come from elsewhere (the CLI, a previous run): the menu follows it.
        if last_activity.as_ref().map(|a| a.paused) != Some(activity.paused) {
            tray::refresh_pause_item(&app, activity.paused);
        }
        let status = TrayStatus::of(&activity);
        if last_status.as_ref() != Some(&status) {
            tray::show(&app, &status);
            last_status = Some(status);
        }
        if last_activity.as_ref() != Some(&activity) {
            let _ = app.emit(ACTIVITY_EVENT, &activity);
            last_activity = Some(activity);
        }
    }
}

/// What to tell staff when the connection moves to `state`, if anything.
pub fn disconnection_notice(was_connected: bool, state: &ConnectionState) -> Option<&'static str> {
    match state {
        ConnectionState::Reconnecting { .. } if was_connected => Some("WhatsApp déconnecté"),
        ConnectionState::LoggedOut => Some("WhatsApp déconnecté depuis le téléphone"),
        ConnectionState::Replaced => Some("Session WhatsApp reprise ailleurs"),
        ConnectionState::Banned { .. } => Some("Compte WhatsApp suspendu temporairement"),
        _ => None,
    }
}

/// Takes the state stream, not the `WhatsAppWeb` handle: holding the handle would keep the
/// connection of a stopped engine alive and this task with it (one more at each restart).
pub async fn follow_whatsapp(app: AppHandle, mut states: watch::Receiver<ConnectionState>) {
    let mut was_connected = false;
    loop {
        let state = states.borrow_and_update().clone();
        let _ = app.emit(WHATSAPP_EVENT, WhatsAppView::of(&state));
        if let Some(title) = disconnection_notice(was_connected, &state) {
            notify(&app, title, &state.describe());
        }
        was_connected = state.is_connected();
        // The sender lives as long as the engine: an error means it stopped.
        if states.changed().await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_read_like_the_issue() {
        assert_eq!(finished_summary(48, 2), "48 envoyés, 2 échecs");
        assert_eq!(finished_summary(1, 1), "1 envoyé, 1 échec");
        assert_eq!(finished_summary(5, 0), "5 envoyés");
        assert_eq!(finished_summary(0, 3), "0 envoyé, 3 échecs");
    }

    fn activity(
        account_pause: Option<AccountPause>,
        whatsapp_connected: Option<bool>,
    ) -> ActivityView {
        ActivityView {
            broadcasts: Vec::new(),
            queue_depth: 0,
            paused: false,
            account_pause,
            whatsapp: whatsapp_connected.map(|connected| crate::views::WhatsAppBrief {
                kind: if connected {
                    "connected"
                } else {
                    "reconnecting"
                },
                connected,
                description: String::new(),
            }),
            outbox_write_failing: None,
        }
    }

    #[test]
    fn failing_outbox_writes_are_told_once_when_sending_stops_and_once_when_it_resumes() {
        let failure = WriteFailure {
            since_ms: 0,
            attempts: 3,
            error: "base de données : database or disk is full".into(),
            waiting_for: Some("Transports Atlas (+2126…01)".into()),
        };
        let (title, body) = outbox_notice(false, Some(&failure)).expect("told");
        assert_eq!(title, "Envois arrêtés : base de données");
        assert!(body.contains("disk is full"), "{body}");
        assert_eq!(outbox_notice(true, Some(&failure)), None, "not again");
        assert_eq!(
            outbox_notice(true, None).map(|n| n.0),
            Some("Envois repris")
        );
        assert_eq!(outbox_notice(false, None), None);
    }

    #[test]
    fn a_refused_token_is_told_once_when_sending_stops_and_once_when_it_resumes() {
        let refused = AccountPause {
            until_ms: None,
            reason: "jeton Cloud API refusé (401) : renouvelez-le dans Paramètres".into(),
        };
        let (title, body) =
            account_pause_notice(None, &activity(Some(refused.clone()), None)).expect("told");
        assert_eq!(title, "Envois suspendus");
        assert!(body.contains("jeton Cloud API refusé"), "{body}");
        assert_eq!(
            account_pause_notice(Some(&refused), &activity(Some(refused.clone()), None)),
            None,
            "not again while it lasts"
        );
        assert_eq!(
            account_pause_notice(Some(&refused), &activity(None, None)).map(|n| n.0),
            Some("Envois repris")
        );
        // WhatsApp Web cut off: its own notice says so already.
        assert_eq!(
            account_pause_notice(None, &activity(Some(refused), Some(false))),
            None
        );
    }

    #[test]
    fn only_a_drop_from_connected_or_a_final_loss_is_notified() {
        let reconnecting = ConnectionState::Reconnecting {
            attempt: 1,
            next_in: Duration::from_secs(2),
        };
        assert_eq!(
            disconnection_notice(true, &reconnecting),
            Some("WhatsApp déconnecté")
        );
        assert_eq!(disconnection_notice(false, &reconnecting), None);
        assert!(disconnection_notice(false, &ConnectionState::LoggedOut).is_some());
        assert_eq!(
            disconnection_notice(true, &ConnectionState::Connecting),
            None
        );
    }
}
