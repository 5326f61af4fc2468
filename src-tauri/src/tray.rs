//! The tray icon, always present: its picture and title say whether the relay is idle, sending
//! (`Envoi 12/48 — CMD-2025-123`), paused or cut off from WhatsApp; its menu opens the window,
//! pauses or resumes sending, and quits (the only way to stop the relay).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tauri::image::Image;
use tauri::menu::{Menu, MenuItem, PredefinedMenuItem};
use tauri::tray::TrayIconBuilder;
use tauri::{AppHandle, Manager, Wry};

use crate::relay::Relay;
use crate::views::ActivityView;

const TRAY_ID: &str = "relay";
const MENU_OPEN: &str = "open";
const MENU_PAUSE: &str = "pause";
const MENU_QUIT: &str = "quit";

/// What the tray shows, in order of precedence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrayStatus {
    Idle,
    Sending {
        done: i64,
        total: i64,
        reference: String,
        /// Other orders being sent at the same time (taken in turn by the dispatcher).
        others: usize,
    },
    Paused {
        /// Paused by the engine (the account cannot send), not by staff.
        by_account: bool,
    },
    Disconnected {
        what: &'static str,
    },
    /// WhatsApp temporarily forbids new conversations from the number: paused by WhatsApp.
    Restricted,
    /// The outbox cannot record its sends (full disk, locked database): sending stopped.
    StorageFailing,
    /// The engine could not start (bad configuration, data directory in use).
    Failed,
    Stopping,
}

impl TrayStatus {
    pub fn of(activity: &ActivityView) -> Self {
        if activity.outbox_write_failing.is_some() {
            return Self::StorageFailing;
        }
        if activity
            .whatsapp
            .as_ref()
            .is_some_and(|w| w.kind == "restricted")
        {
            return Self::Restricted;
        }
        if let Some(whatsapp) = &activity.whatsapp
            && !whatsapp.connected
            && whatsapp.kind != "connecting"
        {
            return Self::Disconnected {
                what: match whatsapp.kind {
                    "unlinked" | "qr" | "qr_expired" | "pair_code" | "logged_out" => {
                        "WhatsApp non relié"
                    }
                    "banned" => "WhatsApp suspendu",
                    "locked" => "WhatsApp verrouillé",
                    "unreachable" => "WhatsApp injoignable",
                    _ => "WhatsApp déconnecté",
                },
            };
        }
        if activity.paused {
            return Self::Paused { by_account: false };
        }
        if activity.account_pause.is_some() {
            return Self::Paused { by_account: true };
        }
        match activity.broadcasts.first() {
            Some(first) => Self::Sending {
                done: first.done,
                total: first.total,
                reference: first.reference.clone(),
                others: activity.broadcasts.len() - 1,
            },
            None => Self::Idle,
        }
    }

    /// The label panels show next to the icon (AppIndicator title on Linux).
    pub fn title(&self) -> String {
        match self {
            Self::Idle => String::new(),
            Self::Sending {
                done,
                total,
                reference,
                others,
            } => {
                let more = if *others > 0 {
                    format!(" (+{others})")
                } else {
                    String::new()
                };
                format!("Envoi {done}/{total} — {reference}{more}")
            }
            Self::Paused { by_account: false } => "En pause".into(),
            Self::Paused { by_account: true } => "Envois suspendus".into(),
            Self::Disconnected { what } => (*what).into(),
            Self::Restricted => "Envois suspendus : WhatsApp restreint le numéro".into(),
            Self::StorageFailing => "Envois arrêtés : base de données".into(),
            Self::Failed => "Relais arrêté (erreur)".into(),
            Self::Stopping => "Arrêt…".into(),
        }
    }

    fn tooltip(&self) -> String {
        match self {
            Self::Idle => "CamionBack Relay : en attente de commandes".into(),
            other => format!("CamionBack Relay : {}", other.title()),
        }
    }

    fn icon(&self) -> Image<'static> {
        match self {
            Self::Idle => tauri::include_image!("../icons/tray-idle.png"),
            Self::Sending { .. } => tauri::include_image!("../icons/tray-sending.png"),
            Self::Paused { .. } | Self::Restricted | Self::Stopping => {
                tauri::include_image!("../icons/tray-paused.png")
            }
            Self::Disconnected { .. } | Self::StorageFailing | Self::Failed => {
                tauri::include_image!("../icons/tray-disconnected.png")
            }
        }
    }
}

/// The pause entry, kept to relabel it.
struct PauseItem(MenuItem<Wry>);

/// Set once "Quitter" was chosen: a second click does not start a second shutdown.
struct Quitting(AtomicBool);

pub fn build(app: &AppHandle) -> tauri::Result<()> {
    let open = MenuItem::with_id(app, MENU_OPEN, "Ouvrir", true, None::<&str>)?;
    let quit_item = MenuItem::with_id(app, MENU_QUIT, "Quitter", true, None::<&str>)?;
    let separator = PredefinedMenuItem::separator(app)?;
    let pause = MenuItem::with_id(app, MENU_PAUSE, "Mettre en pause", true, None::<&str>)?;
    let menu = Menu::with_items(app, &[&open, &pause, &separator, &quit_item])?;
    app.manage(PauseItem(pause));
    app.manage(Quitting(AtomicBool::new(false)));
    let status = TrayStatus::Idle;
    TrayIconBuilder::with_id(TRAY_ID)
        .icon(status.icon())
        .tooltip(status.tooltip())
        .menu(&menu)
        .show_menu_on_left_click(true)
        .on_menu_event(|app, event| match event.id().as_ref() {
            MENU_OPEN => show_main_window(app),
            MENU_PAUSE => toggle_pause(app),
            MENU_QUIT => quit(app),
            _ => {}
        })
        .build(app)?;
    Ok(())
}

pub fn show(app: &AppHandle, status: &TrayStatus) {
    let Some(tray) = app.tray_by_id(TRAY_ID) else {
        return;
    };
    // A tray that refuses an update keeps its last picture: not worth stopping anything for.
    let _ = tray.set_icon(Some(status.icon()));
    let title = status.title();
    let _ = tray.set_title(if title.is_empty() { None } else { Some(title) });
    let _ = tray.set_tooltip(Some(status.tooltip()));
}

pub fn show_main_window(app: &AppHandle) {
    if let Some(window) = app.get_webview_window("main") {
        let _ = window.unminimize();
        let _ = window.show();
        let _ = window.set_focus();
    }
}

pub fn refresh_pause_item(app: &AppHandle, paused: bool) {
    if let Some(PauseItem(item)) = app.try_state::<PauseItem>().as_deref() {
        let _ = item.set_text(if paused {
            "Reprendre les envois"
        } else {
            "Mettre en pause"
        });
    }
}

fn toggle_pause(app: &AppHandle) {
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        let relay = app.state::<Arc<Relay>>().inner().clone();
        let flipped = async {
            let store = relay.handles().await?.store;
            let paused = store.paused_by_staff_since().await?.is_none();
            relay.set_paused(paused).await
        };
        match flipped.await {
            Ok(paused) => refresh_pause_item(&app, paused),
            Err(err) => tracing::warn!("pause depuis la barre système impossible : {err}"),
        }
    });
}

/// "Quitter": the send in flight is finished and recorded, then the app exits.
pub fn quit(app: &AppHandle) {
    if let Some(quitting) = app.try_state::<Quitting>()
        && quitting.0.swap(true, Ordering::SeqCst)
    {
        return;
    }
    show(app, &TrayStatus::Stopping);
    if let Some(window) = app.get_webview_window("main") {
        let _ = window.hide();
    }
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        tracing::info!("arrêt demandé : fin de l'envoi en cours…");
        let relay = app.state::<Arc<Relay>>().inner().clone();
        relay.shutdown().await;
        app.exit(0);
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::views::{AccountPause, BroadcastView, WhatsAppBrief};

    fn idle() -> ActivityView {
        ActivityView {
            broadcasts: Vec::new(),
            queue_depth: 0,
            paused: false,
            account_pause: None,
            whatsapp: None,
            outbox_write_failing: None,
        }
    }

    fn broadcast(reference: &str, done: i64, total: i64) -> BroadcastView {
        BroadcastView {
            order_id: 123,
            reference: reference.into(),
            batch: 0,
            total,
            done,
            succeeded: done,
            failed: 0,
            skipped: 0,
            pending: total - done,
        }
    }

    #[test]
    fn sending_shows_progress_and_reference_as_the_issue_spells_it() {
        let mut activity = idle();
        activity.broadcasts = vec![broadcast("CMD-2025-123", 12, 48)];
        assert_eq!(
            TrayStatus::of(&activity).title(),
            "Envoi 12/48 — CMD-2025-123"
        );
        activity.broadcasts.push(broadcast("CMD-2025-124", 0, 48));
        assert_eq!(
            TrayStatus::of(&activity).title(),
            "Envoi 12/48 — CMD-2025-123 (+1)"
        );
        assert_eq!(TrayStatus::of(&idle()), TrayStatus::Idle);
        assert_eq!(TrayStatus::of(&idle()).title(), "");
    }

    #[test]
    fn a_lost_connection_outranks_a_pause_which_outranks_sending() {
        let mut activity = idle();
        activity.broadcasts = vec![broadcast("CMD-1", 1, 2)];
        activity.account_pause = Some(AccountPause {
            until_ms: None,
            reason: "jeton refusé".into(),
        });
        assert_eq!(
            TrayStatus::of(&activity),
            TrayStatus::Paused { by_account: true }
        );
        activity.paused = true;
        assert_eq!(TrayStatus::of(&activity).title(), "En pause");
        activity.whatsapp = Some(WhatsAppBrief {
            kind: "reconnecting",
            connected: false,
            description: String::new(),
        });
        assert_eq!(TrayStatus::of(&activity).title(), "WhatsApp déconnecté");
        // Still dialling at start-up is not a disconnection worth a red icon.
        activity.whatsapp = Some(WhatsAppBrief {
            kind: "connecting",
            connected: false,
            description: String::new(),
        });
        assert_eq!(TrayStatus::of(&activity).title(), "En pause");
        // Sends that cannot be recorded outrank everything: nothing leaves until they are.
        activity.outbox_write_failing = Some("database or disk is full".into());
        assert_eq!(
            TrayStatus::of(&activity).title(),
            "Envois arrêtés : base de données"
        );
    }
}
