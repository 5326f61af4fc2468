//! The Paramètres screen's commands: the settings form (`form`), saving an edit through the
//! engine's `config::edit` (which checks and writes it) then restarting the relay with it, the
//! live message preview, and the data / log folder buttons.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use relay_engine::Settings;
use relay_engine::config::edit::{self, Change, EditError, SettingsEdit};
use serde::{Deserialize, Serialize};
use tauri::State;

use super::form::{SettingGroup, groups};
use crate::error::{FieldProblem, UiError};
use crate::relay::Relay;

type Shared<'a> = State<'a, Arc<Relay>>;

fn process_env(key: &str) -> Option<String> {
    std::env::var(key).ok()
}

#[derive(Debug, Serialize)]
pub struct SettingsView {
    pub groups: Vec<SettingGroup>,
    /// The running template, as staff write it (`{{reference}}`…).
    pub template: String,
    pub preview: PreviewView,
    /// With an approved Cloud API template, WhatsApp shows Meta's text, not this one.
    pub approved_template: Option<String>,
    pub data_dir: String,
    pub log_dir: String,
    pub config_file: String,
}

#[derive(Debug, Serialize)]
pub struct PreviewView {
    pub text: String,
    pub reference: String,
    pub placeholder: bool,
}

async fn store_of(relay: &Relay) -> Option<relay_engine::Store> {
    relay.handles().await.ok().map(|h| h.store)
}

async fn preview_of(
    relay: &Relay,
    settings: &Settings,
    template: &str,
) -> Result<PreviewView, UiError> {
    let store = store_of(relay).await;
    let preview = edit::preview(store.as_ref(), template, &settings.order_link_base)
        .await
        .map_err(|err| match err {
            edit::PreviewError::Template(err) => UiError::new("invalid_template", err.to_string()),
            other => UiError::new("store", other.to_string()),
        })?;
    Ok(PreviewView {
        text: preview.text,
        reference: preview.reference,
        placeholder: preview.placeholder,
    })
}

pub async fn view(relay: &Relay) -> Result<SettingsView, UiError> {
    let settings = relay.settings()?;
    let origins =
        edit::origins(process_env).map_err(|err| UiError::new("config", err.to_string()))?;
    let template = settings.template.text();
    let preview = preview_of(relay, &settings, &template).await?;
    Ok(SettingsView {
        groups: groups(&settings, &origins),
        preview,
        template,
        approved_template: (settings.dispatch.channel
            == relay_engine::config::ChannelKind::CloudApi)
            .then(|| settings.cloud_api.template.clone())
            .flatten(),
        data_dir: settings.data_dir.display().to_string(),
        log_dir: settings.log_dir().display().to_string(),
        config_file: settings
            .data_dir
            .join(relay_engine::config::CONFIG_FILE)
            .display()
            .to_string(),
    })
}

#[tauri::command]
pub async fn settings_view(relay: Shared<'_>) -> Result<SettingsView, UiError> {
    view(&relay).await
}

/// The message as carriers would read it with `template`, for the newest order.
#[tauri::command]
pub async fn preview_message(relay: Shared<'_>, template: String) -> Result<PreviewView, UiError> {
    let settings = relay.settings()?;
    preview_of(&relay, &settings, &template).await
}

/// What the form sends: the fields staff changed (a value, or `null` to clear one) and the
/// template when it was edited. Secrets left empty are simply not sent.
#[derive(Debug, Default, Deserialize)]
pub struct SettingsForm {
    #[serde(default)]
    pub changes: BTreeMap<String, Option<String>>,
    pub template: Option<String>,
}

impl SettingsForm {
    pub fn into_edit(self) -> SettingsEdit {
        SettingsEdit {
            changes: self
                .changes
                .into_iter()
                .map(|(key, value)| (key, value.map_or(Change::Clear, Change::Set)))
                .collect(),
            template: self.template,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct SaveOutcome {
    /// The relay was restarted with the new settings.
    pub applied: bool,
    /// What to tell staff, in French.
    pub message: String,
    /// Changed settings an environment variable still overrides.
    pub overridden: Vec<&'static str>,
    pub view: Option<SettingsView>,
}

/// The refused fields of an edit, or why it could not be saved at all.
pub fn edit_error(err: EditError) -> UiError {
    match err {
        EditError::Invalid(errors) => UiError::with_fields(
            "invalid_settings",
            format!(
                "{} : rien n'a été enregistré",
                if errors.len() == 1 {
                    "1 réglage refusé".to_string()
                } else {
                    format!("{} réglages refusés", errors.len())
                }
            ),
            errors
                .into_iter()
                .map(|e| FieldProblem {
                    field: e.field,
                    message: e.message,
                })
                .collect(),
        ),
        EditError::Current(err) => UiError::new(
            "config",
            format!("{err} — corrigez ce fichier à la main, rien n'a été enregistré"),
        ),
        err @ EditError::Write { .. } => UiError::new("write", err.to_string()),
    }
}

/// "Enregistrer": the engine checks and writes the edit; then the relay restarts with it (the
/// send in flight finishes first; what is queued stays queued).
#[tauri::command]
pub async fn save_settings(
    app: tauri::AppHandle,
    relay: Shared<'_>,
    form: SettingsForm,
) -> Result<SaveOutcome, UiError> {
    // One save at a time, write and restart together: two windows (or a double click) must
    // not interleave and leave the engine on settings other than the file's.
    static SAVING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _one_at_a_time = SAVING.lock().await;
    let saved = edit::save(process_env, &form.into_edit()).map_err(edit_error)?;
    tracing::info!("réglages enregistrés depuis l'application ; redémarrage du relais");
    let overridden = saved.overridden.clone();
    let (applied, mut message) = match relay.restart(saved.settings).await {
        Ok(()) => (
            true,
            "Réglages enregistrés et appliqués : le relais a redémarré.".to_string(),
        ),
        Err(err) => (
            false,
            format!(
                "Réglages enregistrés, mais le relais n'a pas redémarré : {}",
                err.message
            ),
        ),
    };
    if !overridden.is_empty() {
        message.push_str(&format!(
            " Sans effet tant que la variable d'environnement est définie : {}.",
            overridden.join(", ")
        ));
    }
    // Whichever engine runs now (the new one, or the previous one it fell back to) has a new
    // WhatsApp connection: follow it as the launch did.
    if let Ok(handles) = relay.handles().await
        && let Some(whatsapp) = handles.whatsapp
    {
        tauri::async_runtime::spawn(crate::monitor::follow_whatsapp(app, whatsapp.state()));
    }
    Ok(SaveOutcome {
        applied,
        message,
        overridden,
        view: view(&relay).await.ok(),
    })
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Folder {
    Data,
    Logs,
}

fn folder_path(settings: &Settings, folder: Folder) -> PathBuf {
    match folder {
        Folder::Data => settings.data_dir.clone(),
        Folder::Logs => settings.log_dir(),
    }
}

/// "Ouvrir le dossier des données / des journaux" in the system's file manager. The webview
/// names which folder, never a path: it cannot open anything else.
#[tauri::command]
pub async fn open_folder(relay: Shared<'_>, folder: Folder) -> Result<(), UiError> {
    let settings = relay.settings()?;
    let path = folder_path(&settings, folder);
    relay_engine::fs::create_private_dir(&path)
        .map_err(|err| UiError::new("open_folder", format!("{} : {err}", path.display())))?;
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else if cfg!(windows) {
        "explorer"
    } else {
        "xdg-open"
    };
    let mut child = tokio::process::Command::new(opener)
        .arg(&path)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|err| {
            UiError::new(
                "open_folder",
                format!(
                    "impossible d'ouvrir {} ({opener} : {err}) : ouvrez ce dossier à la main",
                    path.display()
                ),
            )
        })?;
    // Reaped in the background: some file managers stay in the foreground.
    tauri::async_runtime::spawn(async move {
        let _ = child.wait().await;
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Staff save a new throttle from the screen: the relay restarts with it, over the same
    /// database, and a later "Quitter" stops it cleanly.
    #[tokio::test]
    async fn a_saved_edit_restarts_the_relay_with_the_new_settings() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data_dir = dir.path().display().to_string();
        let env = move |key: &str| match key {
            "RELAY_DATA_DIR" => Some(data_dir.clone()),
            "RELAY_CHANNEL" => Some("cloud-api".into()),
            "RELAY_WEBHOOK_ADDR" => Some("127.0.0.1:0".into()),
            // Nothing is sent in this test: the Cloud API is never called.
            "WHATSAPP_API_URL" => Some("http://127.0.0.1:9".into()),
            "WHATSAPP_PHONE_NUMBER_ID" => Some("106540352242922".into()),
            "WHATSAPP_TOKEN" => Some("meta-token".into()),
            _ => None,
        };
        let relay = Relay::new(Ok(Settings::load(&env).expect("valid settings")));
        relay.start().await.expect("starts");
        let first_store = relay.handles().await.expect("running").store;
        let key = relay_engine::store::StateKey::LastCarrierSyncAt;
        first_store
            .set_state(key, "1700000000000")
            .await
            .expect("write");

        let saved = edit::save(
            &env,
            &SettingsForm {
                changes: BTreeMap::from([("RELAY_THROTTLE_MS".into(), Some("2500".into()))]),
                template: None,
            }
            .into_edit(),
        )
        .expect("saved");
        relay.restart(saved.settings).await.expect("restarted");

        assert_eq!(
            relay.settings().expect("settings").dispatch.throttle,
            Duration::from_millis(2500)
        );
        assert_eq!(relay.phase().await.0, crate::relay::PhaseKind::Running);
        // The new engine answers from the same database file.
        let store = relay.handles().await.expect("running again").store;
        assert_eq!(
            store.get_state(key).await.expect("read").as_deref(),
            Some("1700000000000")
        );
        relay.shutdown().await;
        assert_eq!(relay.phase().await.0, crate::relay::PhaseKind::Stopping);
        assert!(
            relay
                .restart(Settings::load(&env).expect("valid"))
                .await
                .is_err()
        );
    }

    #[test]
    fn a_form_becomes_an_edit_with_null_meaning_clear() {
        let form: SettingsForm = serde_json::from_str(
            r#"{"changes":{"RELAY_THROTTLE_MS":"2500","WHATSAPP_TOKEN":null},"template":"Commande {{reference}}"}"#,
        )
        .expect("form");
        let edit = form.into_edit();
        assert_eq!(
            edit.changes.get("RELAY_THROTTLE_MS"),
            Some(&Change::Set("2500".into()))
        );
        assert_eq!(edit.changes.get("WHATSAPP_TOKEN"), Some(&Change::Clear));
        assert_eq!(edit.template.as_deref(), Some("Commande {{reference}}"));
    }

    #[test]
    fn refused_fields_reach_the_webview_one_by_one() {
        let err = edit_error(EditError::Invalid(vec![
            edit::FieldError {
                field: "CAMIONBACK_API_URL".into(),
                message: "« x » n'est pas une URL".into(),
            },
            edit::FieldError {
                field: "template".into(),
                message: "variable inconnue {{ville}}".into(),
            },
        ]));
        assert_eq!(err.code, "invalid_settings");
        assert_eq!(err.message, "2 réglages refusés : rien n'a été enregistré");
        let json = serde_json::to_value(&err).expect("json");
        assert_eq!(json["fields"][0]["field"], "CAMIONBACK_API_URL");
        assert_eq!(json["fields"][1]["message"], "variable inconnue {{ville}}");
    }
}
