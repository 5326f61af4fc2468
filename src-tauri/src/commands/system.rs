//! What belongs to the app rather than a screen: its version and channel, staff's pause
//! (dashboard and tray), and starting with the desktop session.

use serde::Serialize;

use crate::commands::Shared;
use crate::error::UiError;

#[derive(Debug, Serialize)]
pub struct AppInfo {
    pub version: &'static str,
    pub channel: Option<&'static str>,
}

#[tauri::command]
pub async fn app_info(relay: Shared<'_>) -> Result<AppInfo, UiError> {
    Ok(AppInfo {
        version: env!("CARGO_PKG_VERSION"),
        channel: relay.settings().ok().map(|s| s.dispatch.channel.as_str()),
    })
}

#[tauri::command]
pub async fn set_paused(
    app: tauri::AppHandle,
    relay: Shared<'_>,
    paused: bool,
) -> Result<bool, UiError> {
    relay.set_paused(paused).await?;
    crate::tray::refresh_pause_item(&app, paused);
    Ok(paused)
}

/// Whether the app starts with the desktop session ("Lancer à l'ouverture de session").
#[tauri::command]
pub fn autostart_state(app: tauri::AppHandle) -> Result<bool, UiError> {
    use tauri_plugin_autostart::ManagerExt;
    app.autolaunch().is_enabled().map_err(|err| {
        UiError::new(
            "autostart",
            format!("démarrage automatique illisible : {err}"),
        )
    })
}

#[tauri::command]
pub fn set_autostart(app: tauri::AppHandle, enabled: bool) -> Result<bool, UiError> {
    use tauri_plugin_autostart::ManagerExt;
    let autolaunch = app.autolaunch();
    let done = if enabled {
        autolaunch.enable()
    } else {
        autolaunch.disable()
    };
    done.map_err(|err| {
        UiError::new(
            "autostart",
            format!("démarrage automatique impossible à modifier : {err}"),
        )
    })?;
    tracing::info!(
        "démarrage à l'ouverture de session {}",
        if enabled { "activé" } else { "désactivé" }
    );
    Ok(enabled)
}
