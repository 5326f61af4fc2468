//! One history page among 1,000,000 deliveries: filtered by status, in each sort both ways
//! (first page and mid-table), for a far-past day range with and without a text search; then
//! the CSV export of all 1,000,000 rows (time, size, peak memory).
//!
//! Run with `cargo bench -p camionback-relay --bench history`. This program measures and prints;
//! it never fails on a timing.
// A bench is a test program: a failed set-up stops it with its reason.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use relay_domain::DeliveryStatus;
use relay_engine::Store;
use relay_engine::clock::now_ms;
use relay_engine::export::{CsvStyle, write_history_csv};
use relay_engine::store::{
    CursorKey, HistoryCursor, HistoryFilter, HistorySort, OrderSource, SortColumn,
};
use sqlx::ConnectOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};

use common::fixtures::*;
use common::*;

/// 1,000,000 deliveries over 100 orders of 10,000 carriers, with a realistic mix of statuses:
/// mostly delivered/read/sent, 5 % failed, a few of each other status, 0.1 % interrupted.
const FILL_SQL: &str = "
INSERT INTO deliveries (order_id, carrier_id, batch, carrier_name, phone, status, attempts,
                        error, message_id, queued_at, next_attempt_at, sent_at, updated_at)
WITH RECURSIVE seq(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM seq WHERE n < 999999),
rows AS (
    SELECT n,
           CASE WHEN n % 1000 = 999 THEN 'interrupted'
                WHEN n % 100 < 40 THEN 'delivered'
                WHEN n % 100 < 65 THEN 'read'
                WHEN n % 100 < 85 THEN 'sent'
                WHEN n % 100 < 90 THEN 'failed'
                WHEN n % 100 < 93 THEN 'invalid_number'
                WHEN n % 100 < 95 THEN 'not_on_whatsapp'
                WHEN n % 100 < 98 THEN 'skipped'
                ELSE 'queued' END AS status
    FROM seq
)
SELECT n / 10000 + 1, n % 10000 + 1, 0, 'Transporteur ' || (n % 10000),
       '+21261' || printf('%07d', n % 10000), status,
       CASE WHEN status = 'queued' THEN 0 ELSE 1 END,
       CASE WHEN status = 'failed' THEN 'HTTP 500 (après 3 tentatives)'
            WHEN status = 'invalid_number' THEN 'numéro invalide'
            WHEN status = 'interrupted' THEN 'envoi interrompu'
            ELSE NULL END,
       CASE WHEN status IN ('sent', 'delivered', 'read') THEN 'wamid.BENCH' || n ELSE NULL END,
       1700000000000 + n * 10, 1700000000000 + n * 10,
       CASE WHEN status IN ('sent', 'delivered', 'read') THEN 1700000000000 + n * 10 + 5
            ELSE NULL END,
       1700000000000 + n * 10 + 5
FROM rows";

async fn history_page(report: &mut Report) {
    const RUNS: usize = 9;
    println!("4. une page d'historique (100 lignes) parmi 1 000 000 envois");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("relay.db");
    let store = Store::open(&path).await.expect("store opens");
    for id in 1..=100 {
        store
            .insert_order(&order(id), OrderSource::Webhook, now_ms())
            .await
            .expect("insert order");
    }

    let started = Instant::now();
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(
            SqliteConnectOptions::new()
                .filename(&path)
                .busy_timeout(Duration::from_secs(30))
                // The fill takes seconds by design: no "slow statement" warning for it.
                .disable_statement_logging(),
        )
        .await
        .expect("direct connection");
    sqlx::query(FILL_SQL)
        .execute(&pool)
        .await
        .expect("fill deliveries");
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&pool)
        .await
        .expect("checkpoint");
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM deliveries")
        .fetch_one(&pool)
        .await
        .expect("count");
    let plan: Vec<(i64, i64, i64, String)> = sqlx::query_as(
        "EXPLAIN QUERY PLAN SELECT d.id FROM deliveries d JOIN orders o ON o.id = d.order_id
         WHERE 1 = 1 AND d.status = 'failed' ORDER BY d.id DESC LIMIT 100",
    )
    .fetch_all(&pool)
    .await
    .expect("query plan");
    pool.close().await;
    println!(
        "  {count} envois écrits en {:.1} s ; plan : {}",
        started.elapsed().as_secs_f64(),
        plan.iter()
            .map(|p| p.3.as_str())
            .collect::<Vec<_>>()
            .join(" ; ")
    );

    // The fill gives delivery `id` the queue date `1700000000000 + (id - 1) * 10`: the cursor
    // a reader holds after scrolling down to that row (newest first).
    let cursor_at = |id: i64| HistoryCursor {
        key: CursorKey::Int(1_700_000_000_000 + (id - 1) * 10),
        id,
    };
    let cases: [(&str, Option<DeliveryStatus>, Option<i64>); 5] = [
        ("failed (5 %)", Some(DeliveryStatus::Failed), None),
        ("queued (2 %)", Some(DeliveryStatus::Queued), None),
        (
            "interrupted (0.1 %)",
            Some(DeliveryStatus::Interrupted),
            None,
        ),
        (
            "failed, after row 500,000",
            Some(DeliveryStatus::Failed),
            Some(500_000),
        ),
        (
            "interrupted, after row 200,000",
            Some(DeliveryStatus::Interrupted),
            Some(200_000),
        ),
    ];
    for (label, status, after) in cases {
        let filter = HistoryFilter {
            status,
            after: after.map(cursor_at),
            limit: 100,
            ..HistoryFilter::default()
        };
        // One untimed run: the first query on a connection prepares its statement.
        let rows = store.history(&filter).await.expect("history");
        if rows.len() != 100 {
            panic!("history {label}: {} rows, expected 100", rows.len());
        }
        let mut times = Vec::new();
        for _ in 0..RUNS {
            let started = Instant::now();
            let rows = store.history(&filter).await.expect("history");
            times.push(ms(started.elapsed()));
            std::hint::black_box(rows);
        }
        let median = percentile(&sorted(times), 50.0);
        report.target(
            &format!("4. history page, {label}, median"),
            format!("{median:.2} ms"),
            "< 20 ms",
            median < 20.0,
        );
    }
    // A page change in each sort, both ways: the grid asks for the page after the last row
    // of the one shown (first page, then the page after row 500,000 of that order).
    for column in SortColumn::ALL {
        for descending in [false, true] {
            let sort = HistorySort { column, descending };
            let first = HistoryFilter {
                sort,
                limit: 101,
                ..HistoryFilter::default()
            };
            // The cursor of row 500,000 in this sort, as a reader deep in the grid would hold.
            let middle = store
                .history(&HistoryFilter {
                    after: Some(cursor_at(500_001)),
                    limit: 1,
                    ..HistoryFilter::default()
                })
                .await
                .expect("middle row");
            let after = middle.first().map(|row| row.cursor(column));
            let median_first = median_ms(RUNS, || store.history(&first)).await;
            let deep = HistoryFilter {
                after,
                ..first.clone()
            };
            let median_deep = median_ms(RUNS, || store.history(&deep)).await;
            report.target(
                &format!(
                    "4. page change, sort {} {}, first / mid-table page",
                    column.as_str(),
                    if descending { "desc" } else { "asc" }
                ),
                format!("{median_first:.2} / {median_deep:.2} ms"),
                "< 20 ms",
                median_first.max(median_deep) < 20.0,
            );
        }
    }
    // A narrow range far in the past, alone and with a text search.
    let far_past_day = HistoryFilter {
        from_ms: Some(1_700_000_000_000 + 100_000 * 10),
        to_ms: Some(1_700_000_000_000 + 100_000 * 10 + 86_400_000 / 100),
        limit: 101,
        ..HistoryFilter::default()
    };
    let median_range = median_ms(RUNS, || store.history(&far_past_day)).await;
    let with_text = HistoryFilter {
        text: Some("Transporteur 12".into()),
        ..far_past_day.clone()
    };
    let median_text = median_ms(RUNS, || store.history(&with_text)).await;
    report.target(
        "4. page, far-past day range / + text search",
        format!("{median_range:.2} / {median_text:.2} ms"),
        "< 20 ms",
        median_range.max(median_text) < 20.0,
    );
    let text_only = HistoryFilter {
        text: Some("Transporteur 12".into()),
        limit: 101,
        ..HistoryFilter::default()
    };
    let median_text_only = median_ms(RUNS, || store.history(&text_only)).await;
    report.info(
        "4. page, text search alone (LIKE, no index)",
        format!("{median_text_only:.2} ms"),
    );

    // The whole table as CSV, to a file, with the process's peak memory before and after.
    let csv_path = dir.path().join("historique.csv");
    let rss_before = memory_kb(std::process::id());
    let file = tokio::fs::File::create(&csv_path).await.expect("csv file");
    let style = CsvStyle {
        time_zone: chrono::Utc,
        unconfirmed_after: Duration::from_secs(48 * 3600),
        now_ms: now_ms(),
    };
    let started = Instant::now();
    let written = write_history_csv(&store, &HistoryFilter::default(), &style, file)
        .await
        .expect("csv export");
    let elapsed = started.elapsed();
    let rss_after = memory_kb(std::process::id());
    let size = std::fs::metadata(&csv_path).map_or(0, |m| m.len());
    report.info(
        "4. CSV export of 1,000,000 rows",
        format!(
            "{written} lignes, {:.1} s, {:.0} Mo",
            elapsed.as_secs_f64(),
            size as f64 / 1e6
        ),
    );
    if let (Some((hwm_before, _)), Some((hwm_after, rss))) = (rss_before, rss_after) {
        report.info(
            "4. CSV export: peak RSS before / after (process)",
            format!(
                "{:.0} / {:.0} MB (RSS now {:.0} MB)",
                mb(hwm_before),
                mb(hwm_after),
                mb(rss)
            ),
        );
    }

    let mut times = Vec::new();
    for _ in 0..RUNS {
        let started = Instant::now();
        std::hint::black_box(store.status_counts().await.expect("status counts"));
        times.push(ms(started.elapsed()));
    }
    report.info(
        "4. status_counts() over 1M (context)",
        format!("{:.1} ms", percentile(&sorted(times), 50.0)),
    );
    store.close().await;
}

/// The median time of `runs` calls of `query`, after one untimed call (statement preparation).
async fn median_ms<F, Fut>(runs: usize, mut query: F) -> f64
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<
            Output = Result<Vec<relay_engine::store::HistoryRow>, relay_engine::store::StoreError>,
        >,
{
    std::hint::black_box(query().await.expect("history"));
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        std::hint::black_box(query().await.expect("history"));
        times.push(ms(started.elapsed()));
    }
    percentile(&sorted(times), 50.0)
}

#[tokio::main]
async fn main() {
    common::run(history_page).await;
}
