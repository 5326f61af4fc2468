//! `camionback-relay-desktop`: the relay with a window and a tray icon. A thin shell over
//! `relay-engine`, like the CLI: it starts the same engine with the same settings
//! (`config.toml` in the data directory, then the environment), and only adapts it to Tauri:
//! commands for the webview, events, the tray and notifications.
//!
//! Closing the window hides it; the relay keeps sending from the tray until "Quitter", which
//! finishes the send in flight before exiting.

#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

mod commands;
mod error;
mod monitor;
mod qr;
mod relay;
mod settings;
mod tray;
mod views;

use std::process::ExitCode;
use std::sync::Arc;

use relay_engine::Settings;
use tauri::{Manager, RunEvent, WindowEvent};
use tauri_plugin_window_state::StateFlags;

use crate::error::UiError;
use crate::relay::Relay;

/// The argument the session's autostart entry passes.
const STARTED_AT_LOGIN: &str = "--au-demarrage";

/// WebKitGTK's own switch (read by its processes at start) to paint the page in one layer
/// instead of composited layers, unless the user set it already (`=0` turns compositing back
/// on). The screens are plain documents (no animation, video or 3D) in a window open all day:
/// with compositing the web process kept ~75 MB of layer tiles and caches, without it ~30 MB
/// (docs/desktop.md, Benchmarks). It also avoids the blank windows some GPU drivers give
/// WebKitGTK's accelerated mode. (Setting `hardware-acceleration-policy` on the webview once
/// it exists left the window blank.)
const NO_COMPOSITING: &str = "WEBKIT_DISABLE_COMPOSITING_MODE";

fn main() -> ExitCode {
    if std::env::var_os(NO_COMPOSITING).is_none() {
        // SAFETY: first statement of `main`, before any thread is started (logs, Tauri, the
        // engine): nothing can read the environment concurrently.
        unsafe { std::env::set_var(NO_COMPOSITING, "1") };
    }
    let settings = Settings::from_env()
        .map_err(|err| UiError::new("config", format!("configuration invalide : {err}")));
    // Same log files as `camionback-relay serve`; a settings error is still logged to stderr.
    let logs = match &settings {
        Ok(s) => relay_engine::telemetry::init(&s.log_filter, Some(&s.log_dir())),
        Err(_) => relay_engine::telemetry::init("info", None),
    };
    let _logs = match logs {
        Ok(guard) => guard,
        Err(err) => {
            eprintln!("attention : journal impossible à ouvrir ({err}), l'application continue");
            None
        }
    };
    if let Err(err) = &settings {
        tracing::error!("{}", err.message);
    }
    let relay = Arc::new(Relay::new(settings));

    let app = tauri::Builder::default()
        // First, so a second launch only brings the running window forward: one relay per
        // data directory (the engine's lock would refuse the second one anyway).
        .plugin(tauri_plugin_single_instance::init(|app, _args, _cwd| {
            tray::show_main_window(app);
        }))
        // Size, position and maximised state only: a window hidden to the tray when the app
        // quit must still open visible next time.
        .plugin(
            tauri_plugin_window_state::Builder::default()
                .with_state_flags(StateFlags::SIZE | StateFlags::POSITION | StateFlags::MAXIMIZED)
                .build(),
        )
        .plugin(tauri_plugin_notification::init())
        // Off until staff tick it; the entry it writes starts the app hidden in the tray.
        .plugin(
            tauri_plugin_autostart::Builder::new()
                .app_name("CamionBack Relay")
                .arg(STARTED_AT_LOGIN)
                .build(),
        )
        .manage(relay.clone())
        .invoke_handler(tauri::generate_handler![
            commands::system::app_info,
            commands::dashboard::overview,
            commands::whatsapp::whatsapp_state,
            commands::whatsapp::whatsapp_new_qr,
            commands::whatsapp::whatsapp_unlink,
            commands::whatsapp::whatsapp_pair_with_phone,
            commands::history::history_page,
            commands::history::history_export_csv,
            commands::relaunch::relaunch_preview,
            commands::relaunch::relaunch_order,
            commands::carriers::list_carriers,
            commands::carriers::sync_carriers,
            settings::settings_view,
            settings::preview_message,
            settings::save_settings,
            settings::open_folder,
            commands::system::set_paused,
            commands::system::autostart_state,
            commands::system::set_autostart,
        ])
        .setup(move |app| {
            tray::build(app.handle())?;
            // The window is created hidden (tauri.conf.json): started with the session, it stays
            // so and waits for "Ouvrir" while sending starts; otherwise it shows now. Hiding it
            // here instead would let it flash on screen at each login.
            if !std::env::args().any(|arg| arg == STARTED_AT_LOGIN)
                && let Some(window) = app.get_webview_window("main")
            {
                let _ = window.show();
            }
            #[cfg(unix)]
            tauri::async_runtime::spawn(quit_on_sigterm(app.handle().clone()));
            let handle = app.handle().clone();
            let relay = relay.clone();
            tauri::async_runtime::spawn(async move {
                if relay.start().await.is_ok()
                    && let Ok(handles) = relay.handles().await
                    && let Some(whatsapp) = handles.whatsapp
                {
                    tauri::async_runtime::spawn(monitor::follow_whatsapp(
                        handle.clone(),
                        whatsapp.state(),
                    ));
                }
                monitor::run_until_stopped(handle, relay).await;
            });
            Ok(())
        })
        .on_window_event(|window, event| {
            // Closing hides: the relay keeps sending from the tray until "Quitter".
            if let WindowEvent::CloseRequested { api, .. } = event
                && window.label() == "main"
            {
                api.prevent_close();
                let _ = window.hide();
            }
        })
        .build(tauri::generate_context!("../tauri.conf.json"));
    let app = match app {
        Ok(app) => app,
        Err(err) => {
            eprintln!("erreur : l'application ne peut pas démarrer : {err}");
            return ExitCode::FAILURE;
        }
    };
    app.run(|_app, event| {
        // No window left is no reason to stop sending; only "Quitter" (an explicit exit code)
        // ends the process.
        if let RunEvent::ExitRequested {
            code: None, api, ..
        } = event
        {
            api.prevent_exit();
        }
    });
    ExitCode::SUCCESS
}

/// SIGTERM (session logout, `systemctl stop`, `kill`) quits like "Quitter": the send in
/// flight is finished and recorded instead of being left `interrupted`.
#[cfg(unix)]
async fn quit_on_sigterm(app: tauri::AppHandle) {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut terminate) => {
            if terminate.recv().await.is_some() {
                tray::quit(&app);
            }
        }
        Err(err) => tracing::warn!("signal SIGTERM non suivi : {err}"),
    }
}
