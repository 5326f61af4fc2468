//! Watches the running relay for the shell. The engine's events (`Engine::events`) say when
//! a broadcast finishes and when the account stops or starts being able to send (refused
//! token…): each becomes a notification as it happens. Once a second it also reads what the
//! store holds, for what this process does not hear of (the CLI's pause on the same database)
//! and for the screens: it pushes the activity to the webview (`relay:activity`), updates the
//! tray, and notifies when the outbox cannot record its sends (full disk, locked database) or
//! the CamionBack API has been unreachable for five minutes. A second task follows the
//! WhatsApp Web connection (`relay:whatsapp`) and notifies when it drops, is logged out or
//! banned.

use std::sync::Arc;
use std::time::Duration;

use relay_engine::channel::whatsapp_web::ConnectionState;
use relay_engine::clock::now_ms;
use relay_engine::dispatcher::WriteFailure;
use relay_engine::store::{BatchProgress, StateKey, Store, StoreError};
use relay_engine::{EngineEvent, EngineEvents};
use tauri::{AppHandle, Emitter};
use tauri_plugin_notification::NotificationExt;
use tokio::sync::{broadcast, watch};

use crate::relay::{PhaseKind, Relay};
use crate::tray::{self, TrayStatus};
use crate::views::{self, ActivityView, WhatsAppView};

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

/// The notice of a finished broadcast or relaunch.
pub fn finished_notice(done: &BatchProgress) -> (String, String) {
    let what = if done.batch == 0 {
        "Diffusion terminée"
    } else {
        "Relance terminée"
    };
    (
        format!("{what} — {}", done.order_reference),
        finished_summary(done.succeeded, done.failed),
    )
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

/// What to tell staff when the engine's account pause starts or ends (the dispatcher tells
/// each once): a refused token, a suspended account. WhatsApp Web losing its connection is
/// told by `follow_whatsapp`, so it is not told twice here.
pub fn account_pause_notice(
    event: &EngineEvent,
    whatsapp_down: bool,
) -> Option<(&'static str, String)> {
    match event {
        EngineEvent::SendingPaused { until_ms, reason } if !whatsapp_down => Some((
            "Envois suspendus",
            format!(
                "{reason} (nouvel essai à {})",
                relay_engine::clock::format_local(*until_ms)
            ),
        )),
        EngineEvent::SendingResumed => Some((
            "Envois repris",
            "Le compte WhatsApp accepte de nouveau les messages.".to_string(),
        )),
        _ => None,
    }
}

/// The notification an engine event asks for, if any.
fn event_notice(event: &EngineEvent, whatsapp_down: bool) -> Option<(String, String)> {
    match event {
        EngineEvent::BatchFinished(done) => Some(finished_notice(done)),
        other => account_pause_notice(other, whatsapp_down)
            .map(|(title, body)| (title.to_string(), body)),
    }
}

/// The next event of the engine followed; never, when none is.
async fn next_event(
    followed: &mut Option<(EngineEvents, broadcast::Receiver<EngineEvent>)>,
) -> Result<EngineEvent, broadcast::error::RecvError> {
    match followed {
        Some((_, events)) => events.recv().await,
        None => std::future::pending().await,
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
    let mut followed: Option<(EngineEvents, broadcast::Receiver<EngineEvent>)> = None;
    let mut api = ApiWatch::default();
    let mut last_activity: Option<ActivityView> = None;
    let mut last_status: Option<TrayStatus> = None;
    let mut outbox_failing = false;
    loop {
        let event = tokio::select! {
            _ = ticks.tick() => None,
            event = next_event(&mut followed) => Some(event),
        };
        match event {
            None => {}
            Some(Ok(event)) => {
                // Read now, not from the last look: a drop at this very moment is told by
                // `follow_whatsapp` already.
                let whatsapp_down = relay.handles().await.is_ok_and(|h| {
                    h.whatsapp
                        .as_ref()
                        .is_some_and(|w| !w.state().borrow().is_connected())
                });
                if let Some((title, body)) = event_notice(&event, whatsapp_down) {
                    notify(&app, &title, &body);
                }
                continue;
            }
            Some(Err(broadcast::error::RecvError::Lagged(missed))) => {
                tracing::warn!("{missed} évènement(s) du relais manqué(s) : notifications perdues");
                continue;
            }
            // That engine stopped (a saved edit restarts it): the next one is followed below.
            Some(Err(broadcast::error::RecvError::Closed)) => {
                followed = None;
                continue;
            }
        }
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
                    // the one that stopped.
                    last_activity = None;
                    continue;
                }
            },
        };
        if !followed
            .as_ref()
            .is_some_and(|(events, _)| events.same_as(&handles.events))
        {
            followed = Some((handles.events.clone(), handles.events.subscribe()));
        }
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
        ConnectionState::Restricted { .. } => {
            Some("WhatsApp interdit temporairement les nouvelles conversations")
        }
        ConnectionState::Locked { .. } => Some("Compte WhatsApp verrouillé"),
        ConnectionState::Unreachable { .. } if was_connected => Some("WhatsApp injoignable"),
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

    /// Told once each way: the engine tells each start and end of a pause once
    /// (`engine_events::an_account_pause_is_told_once_when_it_starts_and_once_when_it_ends`).
    #[test]
    fn a_refused_token_is_told_once_when_sending_stops_and_once_when_it_resumes() {
        let refused = EngineEvent::SendingPaused {
            until_ms: 1_700_000_000_000,
            reason: "jeton Cloud API refusé (401) : renouvelez-le dans Paramètres".into(),
        };
        let (title, body) = account_pause_notice(&refused, false).expect("told");
        assert_eq!(title, "Envois suspendus");
        assert!(body.contains("jeton Cloud API refusé"), "{body}");
        assert!(body.contains("nouvel essai à"), "{body}");
        assert_eq!(
            account_pause_notice(&EngineEvent::SendingResumed, false).map(|n| n.0),
            Some("Envois repris")
        );
        // WhatsApp Web cut off: its own notice says so already.
        assert_eq!(account_pause_notice(&refused, true), None);
    }

    #[test]
    fn a_finished_broadcast_or_relaunch_reads_like_the_issue() {
        let done = BatchProgress {
            order_id: 123,
            order_reference: "CMD-2025-123".into(),
            batch: 0,
            total: 50,
            pending: 0,
            succeeded: 48,
            failed: 2,
            skipped: 0,
        };
        assert_eq!(
            finished_notice(&done),
            (
                "Diffusion terminée — CMD-2025-123".to_string(),
                "48 envoyés, 2 échecs".to_string()
            )
        );
        let relaunch = BatchProgress { batch: 1, ..done };
        assert_eq!(
            event_notice(&EngineEvent::BatchFinished(relaunch), true).map(|n| n.0),
            Some("Relance terminée — CMD-2025-123".to_string()),
            "told even while WhatsApp is down"
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
