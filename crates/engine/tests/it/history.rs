//! The history grid's sorts, date range and CSV export, over a store filled the way the relay
//! fills it: carriers synced, orders fanned out on different days, sends settled.

use std::collections::HashSet;
use std::time::Duration;

use chrono::Utc;
use relay_domain::{CarrierId, DeliveryStatus, Order, OrderFields, OrderId};
use relay_engine::Store;
use relay_engine::export::{CsvStyle, write_history_csv};
use relay_engine::store::{
    CarrierRecord, HistoryFilter, HistoryRow, HistorySort, OrderSource, SortColumn,
};
use tempfile::TempDir;

const DAY_MS: i64 = 24 * 3600 * 1000;
/// 2025-11-03 08:00 UTC: the first order's day.
const DAY_1: i64 = 1_762_156_800_000;

fn order(id: i64, reference: &str) -> Order {
    Order::parse(
        OrderFields {
            id,
            reference: reference.into(),
            ..OrderFields::example()
        },
        OrderFields::EXAMPLE_TODAY,
    )
    .expect("valid order")
}

/// 12 carriers (three share a name, up to case; one name holds `;` and quotes; one number is
/// unusable) and five orders, one a day, each fanned out to all of them: 60 rows. Most sends
/// succeed, every fourth fails with a two-line error.
async fn five_days_of_broadcasts() -> (TempDir, Store) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&dir.path().join("relay.db"))
        .await
        .expect("store");
    let names = [
        "Transports Atlas",
        "transports atlas",
        "TRANSPORTS ATLAS",
        "Rif Express",
        "Souss Fret",
        "Oriental Cargo",
        "Atlas; Fils \"Le Rapide\"",
        "Bouregreg Logistique",
        "Sahara Transit",
        "Zagora Routes",
        "Agadir Frigo",
        "Numéro Cassé",
    ];
    let carriers: Vec<CarrierRecord> = names
        .iter()
        .enumerate()
        .map(|(i, name)| CarrierRecord {
            id: CarrierId(i as i64 + 1),
            name: (*name).into(),
            phone_raw: if *name == "Numéro Cassé" {
                "12".into()
            } else {
                format!("06123456{:02}", i + 1)
            },
            statut: "valide".into(),
        })
        .collect();
    store
        .replace_carriers(&carriers, DAY_1)
        .await
        .expect("carriers");
    // References out of id order, and two orders sharing one, so the reference sort differs
    // from the date sort and has ties across orders.
    let references = [
        "CMD-2025-300",
        "CMD-2025-100",
        "CMD-2025-200",
        "CMD-2025-100",
        "CMD-2025-050",
    ];
    let mut sent = 0;
    for (day, reference) in references.iter().enumerate() {
        let at = DAY_1 + day as i64 * DAY_MS;
        let order = order(day as i64 + 1, reference);
        store
            .insert_order(&order, OrderSource::Webhook, at)
            .await
            .expect("order");
        store.fan_out(&order, at).await.expect("fan out");
        while let Some(claim) = store.claim_next(None, at + 1, None).await.expect("claim") {
            sent += 1;
            if sent % 4 == 0 {
                store
                    .mark_final(
                        claim.id,
                        DeliveryStatus::Failed,
                        "HTTP 500\nrefusé par Meta",
                        Some("131000"),
                        at + 2,
                    )
                    .await
                    .expect("failed");
            } else {
                store
                    .mark_sent(claim.id, Some(&format!("wamid.{}", claim.id)), at + 60_000)
                    .await
                    .expect("sent");
            }
        }
    }
    (dir, store)
}

fn everything(filter: HistoryFilter) -> HistoryFilter {
    HistoryFilter {
        limit: 10_000,
        ..filter
    }
}

/// Pages through `filter` 7 rows at a time, each page starting after the last row of the
/// previous one, as the grid does; answers the pages.
async fn walk(store: &Store, filter: &HistoryFilter) -> Vec<Vec<HistoryRow>> {
    let mut pages = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .history(&HistoryFilter {
                after: after.clone(),
                limit: 7,
                ..filter.clone()
            })
            .await
            .expect("page");
        let Some(last) = page.last() else { break };
        after = Some(last.cursor(filter.sort.column));
        pages.push(page);
        assert!(pages.len() < 100, "the walk ends");
    }
    pages
}

/// The sort key of a row as staff compare it (names without regard to case).
fn key(row: &HistoryRow, column: SortColumn) -> (String, i64) {
    match column {
        SortColumn::Date => (format!("{:020}", row.queued_at), row.id),
        SortColumn::Carrier => (row.carrier_name.to_lowercase(), row.id),
        SortColumn::Status => (row.status.as_str().to_string(), row.id),
        SortColumn::Reference => (row.order_reference.clone(), row.id),
    }
}

#[tokio::test]
async fn every_sort_both_ways_shows_each_row_once_in_order_across_pages() {
    let (_dir, store) = five_days_of_broadcasts().await;
    let all: HashSet<i64> = store
        .history(&everything(HistoryFilter::default()))
        .await
        .expect("all")
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(all.len(), 60, "5 orders x 12 carriers");

    for column in SortColumn::ALL {
        for descending in [false, true] {
            let sort = HistorySort { column, descending };
            let pages = walk(
                &store,
                &HistoryFilter {
                    sort,
                    ..HistoryFilter::default()
                },
            )
            .await;
            let rows: Vec<&HistoryRow> = pages.iter().flatten().collect();
            let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
            let seen: HashSet<i64> = ids.iter().copied().collect();
            assert_eq!(ids.len(), 60, "{sort:?}: no row repeated");
            assert_eq!(seen, all, "{sort:?}: no row lost");
            for pair in rows.windows(2) {
                let (a, b) = (key(pair[0], column), key(pair[1], column));
                assert!(
                    if descending { a > b } else { a < b },
                    "{sort:?}: {a:?} then {b:?}"
                );
            }
            // Every sort has rows sharing a key on both sides of some page boundary, so the
            // id in the cursor is what kept them apart.
            let tie_cut = pages.windows(2).any(|p| {
                let (last, first) = (p[0].last(), p[1].first());
                last.zip(first)
                    .is_some_and(|(l, f)| key(l, column).0 == key(f, column).0)
            });
            assert!(tie_cut, "{sort:?}: a tie crosses a page boundary");
        }
    }
}

#[tokio::test]
async fn the_default_sort_is_newest_broadcast_first_in_sending_order_within_it() {
    let (_dir, store) = five_days_of_broadcasts().await;
    let page = store
        .history(&HistoryFilter {
            limit: 13,
            ..HistoryFilter::default()
        })
        .await
        .expect("page");
    assert!(
        page[..12].iter().all(|r| r.order_id == 5),
        "the newest order's 12 rows come first"
    );
    assert_eq!(page[12].order_id, 4);
}

#[tokio::test]
async fn a_sort_applies_within_the_filters() {
    let (_dir, store) = five_days_of_broadcasts().await;
    let failed_by_name = walk(
        &store,
        &HistoryFilter {
            status: Some(DeliveryStatus::Failed),
            sort: HistorySort {
                column: SortColumn::Carrier,
                descending: false,
            },
            ..HistoryFilter::default()
        },
    )
    .await;
    let rows: Vec<&HistoryRow> = failed_by_name.iter().flatten().collect();
    assert_eq!(
        rows.len(),
        13,
        "every fourth of the 55 sends failed (5 numbers were unusable)"
    );
    assert!(rows.iter().all(|r| r.status == DeliveryStatus::Failed));
    assert!(
        rows.windows(2)
            .all(|p| key(p[0], SortColumn::Carrier) < key(p[1], SortColumn::Carrier))
    );
}

#[tokio::test]
async fn a_day_range_shows_only_that_days_broadcast() {
    let (_dir, store) = five_days_of_broadcasts().await;
    let day_2 = DAY_1 + DAY_MS - 8 * 3600 * 1000;
    let rows = store
        .history(&everything(HistoryFilter {
            from_ms: Some(day_2),
            to_ms: Some(day_2 + DAY_MS),
            ..HistoryFilter::default()
        }))
        .await
        .expect("range");
    assert_eq!(rows.len(), 12);
    assert!(
        rows.iter().all(|r| r.order_id == 2),
        "only the order queued on day 2"
    );
    let before_everything = store
        .history(&everything(HistoryFilter {
            to_ms: Some(DAY_1),
            ..HistoryFilter::default()
        }))
        .await
        .expect("range");
    assert!(before_everything.is_empty());
}

/// Splits a CSV text into records of fields, honouring quotes (as Excel reads it).
pub(crate) fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ';') => record.push(std::mem::take(&mut field)),
            (false, '\r') => {}
            (false, '\n') => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
            }
            (false, c) => field.push(c),
        }
    }
    records
}

async fn export(store: &Store, filter: &HistoryFilter) -> (u64, String) {
    let mut out = Vec::new();
    let style = CsvStyle {
        time_zone: Utc,
        unconfirmed_after: Duration::ZERO,
        now_ms: DAY_1 + 10 * DAY_MS,
    };
    let written = write_history_csv(store, filter, &style, &mut out)
        .await
        .expect("export");
    (written, String::from_utf8(out).expect("UTF-8"))
}

#[tokio::test]
async fn the_csv_export_holds_every_row_of_the_filter_in_excels_french_format() {
    let (_dir, store) = five_days_of_broadcasts().await;
    let failed = HistoryFilter {
        status: Some(DeliveryStatus::Failed),
        // The visible page is 7 rows; the export ignores paging.
        limit: 7,
        ..HistoryFilter::default()
    };
    let (written, text) = export(&store, &failed).await;
    assert!(text.starts_with('\u{feff}'), "a BOM, for Excel");
    let records = parse_csv(text.trim_start_matches('\u{feff}'));
    assert_eq!(
        records[0],
        [
            "Date d'envoi",
            "Transporteur",
            "Numéro",
            "Référence commande",
            "Statut",
            "Tentatives",
            "Erreur",
            "Code erreur"
        ]
    );
    let expected = store
        .history(&everything(HistoryFilter {
            status: Some(DeliveryStatus::Failed),
            ..HistoryFilter::default()
        }))
        .await
        .expect("count");
    assert_eq!(written, 13);
    assert_eq!(
        records.len() - 1,
        expected.len(),
        "one line per matching row"
    );
    for (record, row) in records[1..].iter().zip(&expected) {
        assert_eq!(record.len(), 8, "{record:?}");
        assert_eq!(record[1], row.carrier_name);
        assert_eq!(record[2], row.phone);
        assert_eq!(record[3], row.order_reference);
        assert_eq!(record[4], "Échec");
        assert_eq!(record[5], "1");
        assert_eq!(
            record[6], "HTTP 500\nrefusé par Meta (131000)",
            "the line break stays inside its field"
        );
        assert_eq!(record[7], "131000");
    }
    // Never sent: the grid's date is the queue date, as JJ/MM/AAAA HH:MM.
    assert_eq!(records[1][0], "07/11/2025 08:00");

    let (_, text) = export(
        &store,
        &HistoryFilter {
            text: Some("Le Rapide".into()),
            order: Some(OrderId(1)),
            ..HistoryFilter::default()
        },
    )
    .await;
    let records = parse_csv(text.trim_start_matches('\u{feff}'));
    assert_eq!(records.len(), 2, "{text}");
    assert_eq!(records[1][1], "Atlas; Fils \"Le Rapide\"");
    assert_eq!(records[1][0], "03/11/2025 08:01", "the send date");
    assert!(
        text.contains("\"Atlas; Fils \"\"Le Rapide\"\"\""),
        "quoted, quotes doubled: {text}"
    );
}

#[tokio::test]
async fn a_large_export_writes_every_row_once_in_the_grids_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&dir.path().join("relay.db"))
        .await
        .expect("store");
    let carriers: Vec<CarrierRecord> = (1..=25)
        .map(|i| CarrierRecord {
            id: CarrierId(i),
            name: format!("Transporteur {i}"),
            phone_raw: format!("06123456{i:02}"),
            statut: "valide".into(),
        })
        .collect();
    store
        .replace_carriers(&carriers, DAY_1)
        .await
        .expect("carriers");
    // 60 orders x 25 carriers: 1,500 rows, several of the store's hand-over chunks.
    for id in 1..=60 {
        let order = order(id, &format!("CMD-2025-{id:03}"));
        let at = DAY_1 + id * 60_000;
        store
            .insert_order(&order, OrderSource::Polling, at)
            .await
            .expect("order");
        store.fan_out(&order, at).await.expect("fan out");
    }
    let by_reference = HistoryFilter {
        sort: HistorySort {
            column: SortColumn::Reference,
            descending: true,
        },
        ..HistoryFilter::default()
    };
    let (written, text) = export(&store, &by_reference).await;
    let exported: Vec<(String, String)> = parse_csv(text.trim_start_matches('\u{feff}'))[1..]
        .iter()
        .map(|r| (r[3].clone(), r[1].clone()))
        .collect();
    let shown: Vec<(String, String)> = store
        .history(&everything(by_reference))
        .await
        .expect("grid")
        .into_iter()
        .map(|r| (r.order_reference, r.carrier_name))
        .collect();
    assert_eq!(written, 1_500);
    assert_eq!(exported.len(), 1_500);
    assert_eq!(exported, shown, "the grid's rows, in the grid's order");
}
