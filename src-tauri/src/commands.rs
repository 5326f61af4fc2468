//! The Tauri commands: each one turns a request of the webview into engine calls and answers
//! with a view (a serialisable struct of this module) or a [`UiError`]. No logic lives here
//! that the engine could own; no secret ever leaves this module.

use std::sync::Arc;

use relay_domain::OrderId;
use relay_engine::Ops;
use relay_engine::clock::now_ms;
use relay_engine::export::{CsvStyle, export_file_name, write_history_csv};
use relay_engine::ops::{self, OrderKey};
use relay_engine::store::{HistoryFilter, RelaunchMode, StateKey, Store};
use serde::{Deserialize, Serialize};
use tauri::State;

use crate::error::UiError;
use crate::relay::{PhaseKind, Relay};
use crate::views::{self, ActivityView, TimedMessage, WhatsAppView};

type Shared<'a> = State<'a, Arc<Relay>>;

/// At most this many history rows per page: a page is one screen or two.
const MAX_PAGE_ROWS: u32 = 500;

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

async fn timed(store: &Store, key: StateKey) -> Result<Option<TimedMessage>, UiError> {
    Ok(store.problem(key).await?.map(TimedMessage::from))
}

#[tauri::command]
pub async fn whatsapp_state(relay: Shared<'_>) -> Result<WhatsAppView, UiError> {
    let channel = relay.settings()?.dispatch.channel;
    match relay.handles().await {
        Ok(handles) => Ok(match handles.whatsapp {
            Some(whatsapp) => WhatsAppView::of(&whatsapp.state().borrow()),
            None => WhatsAppView::not_used(channel),
        }),
        // Before the engine runs there is no connection to describe yet.
        Err(err) if err.code == "starting" => Ok(WhatsAppView::starting(channel)),
        Err(err) => Err(err),
    }
}

async fn whatsapp(
    relay: &Relay,
) -> Result<relay_engine::channel::whatsapp_web::WhatsAppWeb, UiError> {
    relay.handles().await?.whatsapp.ok_or_else(|| {
        UiError::new(
            "not_whatsapp_web",
            "le relais envoie par l'API Cloud de WhatsApp : aucune connexion à relier ici",
        )
    })
}

/// "Déconnecter": WhatsApp removes this device from the account; a new QR code follows.
#[tauri::command]
pub async fn whatsapp_unlink(relay: Shared<'_>) -> Result<(), UiError> {
    whatsapp(&relay)
        .await?
        .unlink()
        .await
        .map_err(|err| UiError::new("unlink", err.to_string()))
}

#[tauri::command]
pub async fn whatsapp_new_qr(relay: Shared<'_>) -> Result<(), UiError> {
    whatsapp(&relay)
        .await?
        .command(relay_engine::channel::whatsapp_web::Command::NewQr);
    Ok(())
}

/// The account number as staff type it (`+212 664 37 35 34`, `212664373534`, `0664373534`).
pub fn pairing_phone(raw: &str) -> Result<relay_domain::PhoneNumber, UiError> {
    relay_domain::PhoneNumber::parse(raw).map_err(|err| {
        UiError::invalid(format!(
            "{err} : numéro du compte attendu avec l'indicatif du pays (ex. 212664373534)"
        ))
    })
}

/// Asks WhatsApp for a pairing code; a refusal (no linking connection, too many requests)
/// comes back to the window instead of only reaching the log.
#[tauri::command]
pub async fn whatsapp_pair_with_phone(relay: Shared<'_>, phone: String) -> Result<(), UiError> {
    let phone = pairing_phone(&phone)?;
    whatsapp(&relay)
        .await?
        .pair_with_phone(&phone)
        .await
        .map_err(|err| UiError::new("pair_code", err.to_string()))
}

#[derive(Debug, Default, Deserialize)]
pub struct HistoryQuery {
    /// Id or reference of an order, as staff type it.
    pub order: Option<String>,
    pub status: Option<String>,
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    pub text: Option<String>,
    /// `date` (default), `carrier`, `status` or `reference`.
    pub sort: Option<String>,
    /// Newest / last first; the default with no sort given.
    pub descending: Option<bool>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize)]
pub struct HistoryPage {
    pub rows: Vec<views::HistoryRowView>,
    /// Pass as `cursor` for the next page; `None` on the last page.
    pub next_cursor: Option<String>,
}

fn blank_to_none(value: Option<String>) -> Option<String> {
    value
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// The grid's query as the store's filter; a bad status, sort or cursor, or an unknown order,
/// is refused with a message to show.
async fn history_filter(ops: &Ops, query: HistoryQuery) -> Result<HistoryFilter, UiError> {
    Ok(ops
        .history_filter(ops::HistoryQuery {
            order: blank_to_none(query.order),
            status: blank_to_none(query.status),
            from_ms: query.from_ms,
            to_ms: query.to_ms,
            text: blank_to_none(query.text),
            sort: blank_to_none(query.sort),
            descending: query.descending,
            cursor: blank_to_none(query.cursor),
            limit: query.limit.unwrap_or(100).clamp(1, MAX_PAGE_ROWS),
        })
        .await?)
}

#[tauri::command]
pub async fn history_page(relay: Shared<'_>, query: HistoryQuery) -> Result<HistoryPage, UiError> {
    let handles = relay.handles().await?;
    let store = &handles.store;
    let filter = history_filter(&handles.ops, query).await?;
    let limit = filter.limit;
    // One row more than shown says whether a next page exists.
    let mut rows = store
        .history(&HistoryFilter {
            limit: limit + 1,
            ..filter.clone()
        })
        .await?;
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let unconfirmed_after = relay
        .settings()
        .map(|s| s.unconfirmed_after)
        .unwrap_or_default();
    let now = now_ms();
    Ok(HistoryPage {
        next_cursor: if more {
            rows.last().map(|r| r.cursor(filter.sort.column).token())
        } else {
            None
        },
        rows: rows
            .into_iter()
            .map(|row| views::HistoryRowView::of(row, unconfirmed_after, now))
            .collect(),
    })
}

#[derive(Debug, Serialize)]
pub struct ExportOutcome {
    pub path: String,
    pub rows: u64,
}

/// Where "Exporter CSV" writes: the user's Downloads folder (XDG), else the home folder.
pub fn export_dir() -> Result<std::path::PathBuf, UiError> {
    dirs::download_dir()
        .filter(|dir| dir.is_dir())
        .or_else(dirs::home_dir)
        .ok_or_else(|| {
            UiError::new(
                "no_download_dir",
                "ni dossier Téléchargements ni dossier personnel : export impossible",
            )
        })
}

/// `historique-AAAAMMJJ-HHMM.csv` in `dir`, or `…-2.csv`, `…-3.csv` when an export of the
/// same minute is already there (never overwritten).
pub fn free_export_path(dir: &std::path::Path, file_name: &str) -> std::path::PathBuf {
    let stem = file_name.trim_end_matches(".csv");
    let mut path = dir.join(file_name);
    let mut n = 2;
    while path.exists() {
        path = dir.join(format!("{stem}-{n}.csv"));
        n += 1;
    }
    path
}

/// "Exporter CSV": every row of the current filter (not only the page shown), streamed from
/// the store into the Downloads folder. The file appears complete or not at all.
#[tauri::command]
pub async fn history_export_csv(
    relay: Shared<'_>,
    query: HistoryQuery,
) -> Result<ExportOutcome, UiError> {
    let handles = relay.handles().await?;
    let filter = history_filter(&handles.ops, query).await?;
    let now = now_ms();
    let dir = export_dir()?;
    let path = free_export_path(&dir, &export_file_name(&chrono::Local, now));
    let partial = path.with_extension("csv.part");
    let io_error = |err: std::io::Error| {
        UiError::new(
            "export_failed",
            format!("écriture de {} impossible : {err}", partial.display()),
        )
    };
    let file = tokio::fs::File::create(&partial).await.map_err(io_error)?;
    let style = CsvStyle {
        time_zone: chrono::Local,
        unconfirmed_after: relay
            .settings()
            .map(|s| s.unconfirmed_after)
            .unwrap_or_default(),
        now_ms: now,
    };
    let written = match write_history_csv(&handles.store, &filter, &style, file).await {
        Ok(written) => written,
        Err(err) => {
            let _ = tokio::fs::remove_file(&partial).await;
            return Err(UiError::new("export_failed", err.to_string()));
        }
    };
    tokio::fs::rename(&partial, &path).await.map_err(io_error)?;
    tracing::info!(
        "historique exporté en CSV : {written} ligne(s) dans {}",
        path.display()
    );
    Ok(ExportOutcome {
        path: path.display().to_string(),
        rows: written,
    })
}

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
}

#[tauri::command]
pub async fn relaunch_preview(
    relay: Shared<'_>,
    order_id: i64,
) -> Result<RelaunchPreview, UiError> {
    let ops = relay.handles().await?.ops;
    let ops::RelaunchPreview { order, counts } = ops
        .relaunch_preview(OrderKey::Id(OrderId(order_id)))
        .await?;
    Ok(RelaunchPreview {
        order_id,
        missing: counts.missing,
        doubtful: counts.doubtful,
        all: counts.all,
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
) -> Result<RelaunchOutcome, UiError> {
    let ops = relay.handles().await?.ops;
    let order = ops.relaunchable(OrderKey::Id(OrderId(order_id))).await?;
    let mode = match mode {
        RelaunchChoice::Missing => RelaunchMode::Missing,
        RelaunchChoice::MissingAndDoubtful => RelaunchMode::MissingAndDoubtful,
        RelaunchChoice::All => RelaunchMode::All,
    };
    let relaunched = ops.relaunch(&order, mode, now_ms()).await?;
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

#[cfg(test)]
mod tests {
    use relay_engine::store::{HistorySort, SortColumn};

    use super::*;

    #[test]
    fn pairing_numbers_keep_digits_and_refuse_the_rest() {
        assert_eq!(
            pairing_phone("+212 664-373-534").expect("valid").digits(),
            "212664373534"
        );
        assert_eq!(pairing_phone("abc").unwrap_err().code, "invalid");
        assert_eq!(pairing_phone("0612").unwrap_err().code, "invalid");
    }

    #[tokio::test]
    async fn the_grid_query_becomes_the_store_filter_or_a_clear_refusal() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data_dir = dir.path().display().to_string();
        let env = move |key: &str| (key == "RELAY_DATA_DIR").then(|| data_dir.clone());
        let settings = relay_engine::Settings::load(&env).expect("settings");
        let store = Ops::open(&settings).await.expect("store");
        let by_name = history_filter(
            &store,
            HistoryQuery {
                sort: Some("carrier".into()),
                cursor: Some("41:Transports Atlas".into()),
                ..HistoryQuery::default()
            },
        )
        .await
        .expect("valid query");
        assert_eq!(
            by_name.sort,
            HistorySort {
                column: SortColumn::Carrier,
                descending: false
            },
            "names from A unless asked otherwise"
        );
        assert_eq!(by_name.after.map(|c| c.id), Some(41));
        assert!(
            history_filter(&store, HistoryQuery::default())
                .await
                .expect("default")
                .sort
                .descending,
            "the grid opens newest first"
        );

        for (query, words) in [
            (
                HistoryQuery {
                    sort: Some("statut".into()),
                    ..HistoryQuery::default()
                },
                "tri inconnu",
            ),
            (
                HistoryQuery {
                    cursor: Some("41:pas-une-date".into()),
                    ..HistoryQuery::default()
                },
                "position de page illisible",
            ),
            (
                HistoryQuery {
                    status: Some("perdu".into()),
                    ..HistoryQuery::default()
                },
                "statut inconnu",
            ),
            (
                HistoryQuery {
                    order: Some("CMD-INCONNUE".into()),
                    ..HistoryQuery::default()
                },
                "commande « CMD-INCONNUE » inconnue",
            ),
        ] {
            let err = history_filter(&store, query).await.expect_err("refused");
            assert!(err.message.contains(words), "{err:?}");
        }
    }

    #[test]
    fn an_export_never_overwrites_an_earlier_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let name = "historique-20251121-1842.csv";
        let first = free_export_path(dir.path(), name);
        assert_eq!(first, dir.path().join(name));
        std::fs::write(&first, "x").expect("write");
        assert_eq!(
            free_export_path(dir.path(), name),
            dir.path().join("historique-20251121-1842-2.csv")
        );
    }
}
