//! The history screen ("Historique"): a page of the grid, and "Exporter CSV".

use relay_engine::Ops;
use relay_engine::clock::now_ms;
use relay_engine::export::{CsvStyle, export_file_name, write_history_csv};
use relay_engine::ops;
use relay_engine::store::{HistoryFilter, OrderCounters};
use serde::{Deserialize, Serialize};

use crate::commands::Shared;
use crate::error::UiError;
use crate::views;

/// At most this many history rows per page: a page is one screen or two.
const MAX_PAGE_ROWS: u32 = 500;

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
    /// The counters of the page's orders (every batch), for their headers.
    pub counters: Vec<OrderCounters>,
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
    let mut orders: Vec<i64> = rows.iter().map(|r| r.order_id).collect();
    orders.sort_unstable();
    orders.dedup();
    let counters = store.counters_of_orders(&orders).await?;
    Ok(HistoryPage {
        counters,
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

#[cfg(test)]
mod tests {
    use relay_engine::store::{HistorySort, SortColumn};

    use super::*;

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
