//! Performance figures of the relay, each printed next to its target:
//!
//! 1. webhook received -> first send started (real engine in-process, fakes on 127.0.0.1);
//! 2. dispatch overhead per message beyond the throttle;
//! 3. queueing one order for 10,000 carriers (`Store::fan_out`);
//! 4. one history page among 1,000,000 deliveries: filtered by status, in each sort both ways
//!    (first page and mid-table), for a far-past day range with and without a text search;
//!    then the CSV export of all 1,000,000 rows (time, size, peak memory);
//! 5. peak RSS of `camionback-relay serve` while broadcasting to 10,000 carriers.
//!
//! Run with `cargo bench -p camionback-relay --bench relay` (`RELAY_BENCH_ONLY=history` for
//! section 4 alone). This program measures and prints; it never fails on a timing.
#![allow(clippy::unwrap_used, clippy::expect_used)] // bench code (workspace lints, #11)

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use relay_domain::{CarrierId, DeliveryStatus, Order, OrderFields};
use relay_engine::clock::now_ms;
use relay_engine::export::{CsvStyle, write_history_csv};
use relay_engine::store::{
    CarrierRecord, CursorKey, HistoryCursor, HistoryFilter, HistorySort, OrderSource, SortColumn,
};
use relay_engine::{Engine, Settings, Store};
use relay_test_support::cloud_api::{self, Received};
use relay_test_support::signing::{camionback_headers, unix_now};
use relay_test_support::{FakeCamionBack, FakeCloudApi, camionback};
use serde_json::json;
use sqlx::ConnectOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};

const SECRET: &str = "bench-webhook-secret";

// ---------------------------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------------------------

struct Row {
    measure: String,
    figure: String,
    target: String,
    /// `None` for figures printed for context, without a target.
    met: Option<bool>,
}

#[derive(Default)]
struct Report(Vec<Row>);

impl Report {
    fn target(&mut self, measure: &str, figure: String, target: &str, met: bool) {
        println!("  {measure}: {figure} (cible {target})");
        self.0.push(Row {
            measure: measure.into(),
            figure,
            target: target.into(),
            met: Some(met),
        });
    }

    fn info(&mut self, measure: &str, figure: String) {
        println!("  {measure}: {figure}");
        self.0.push(Row {
            measure: measure.into(),
            figure,
            target: "-".into(),
            met: None,
        });
    }

    fn print(&self) {
        let header = ("measure", "figure", "target", "met");
        let width = |column: &dyn Fn(&Row) -> &str, head: &str| {
            self.0
                .iter()
                .map(|r| column(r).chars().count())
                .chain([head.len()])
                .max()
                .unwrap_or(0)
        };
        let w0 = width(&|r| r.measure.as_str(), header.0);
        let w1 = width(&|r| r.figure.as_str(), header.1);
        let w2 = width(&|r| r.target.as_str(), header.2);
        let line = format!(
            "+-{}-+-{}-+-{}-+-{}-+",
            "-".repeat(w0),
            "-".repeat(w1),
            "-".repeat(w2),
            "-".repeat(7)
        );
        println!();
        println!("{line}");
        println!(
            "| {:w0$} | {:w1$} | {:w2$} | {:7} |",
            header.0, header.1, header.2, header.3
        );
        println!("{line}");
        for row in &self.0 {
            let met = match row.met {
                Some(true) => "met",
                Some(false) => "NOT met",
                None => "",
            };
            println!(
                "| {} | {} | {} | {met:7} |",
                pad(&row.measure, w0),
                pad(&row.figure, w1),
                pad(&row.target, w2)
            );
        }
        println!("{line}");
    }
}

/// Pads to a width in characters (the figures hold `µ`-free ASCII, measures may not).
fn pad(text: &str, width: usize) -> String {
    let n = text.chars().count();
    format!("{text}{}", " ".repeat(width.saturating_sub(n)))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1]
}

fn sorted(mut values: Vec<f64>) -> Vec<f64> {
    values.sort_by(f64::total_cmp);
    values
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

/// A valid Moroccan mobile number, distinct for each `i` below 10,000,000.
fn phone(i: usize) -> String {
    format!("061{i:07}")
}

fn relay_env(
    data_dir: &Path,
    api: &FakeCamionBack,
    cloud: &FakeCloudApi,
    throttle_ms: u64,
) -> HashMap<String, String> {
    [
        ("RELAY_DATA_DIR", data_dir.display().to_string()),
        ("RELAY_WEBHOOK_ADDR", "127.0.0.1:0".to_string()),
        ("RELAY_WEBHOOK_SECRET", SECRET.to_string()),
        ("RELAY_THROTTLE_MS", throttle_ms.to_string()),
        ("CAMIONBACK_API_URL", api.url()),
        ("CAMIONBACK_API_TOKEN", camionback::TOKEN.to_string()),
        ("CAMIONBACK_POLL_SECS", "0".to_string()),
        ("RELAY_CHANNEL", "cloud-api".to_string()),
        ("WHATSAPP_API_URL", cloud.url()),
        (
            "WHATSAPP_PHONE_NUMBER_ID",
            cloud_api::PHONE_NUMBER_ID.to_string(),
        ),
        ("WHATSAPP_TOKEN", cloud_api::TOKEN.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

async fn start_engine(env: &HashMap<String, String>) -> Engine {
    let settings = Settings::load(|key| env.get(key).cloned()).expect("valid settings");
    Engine::start(settings).await.expect("engine starts")
}

async fn fake_api_with_carriers(count: usize, page_size: usize) -> FakeCamionBack {
    let api = FakeCamionBack::start().await;
    for i in 0..count {
        api.add_carrier(
            i as i64 + 1,
            &format!("Transporteur {i}"),
            &phone(i),
            "valide",
        );
    }
    api.set_carriers_page_size(page_size);
    api
}

fn order(id: i64) -> Order {
    Order::parse(
        OrderFields {
            id,
            reference: format!("CMD-BENCH-{id}"),
            ville_depart: "Casablanca".into(),
            ville_arrivee: "Marrakech".into(),
            date_souhaitee: "2025-11-03".into(),
            prix: 4500.0,
            type_marchandise: "Palettes".into(),
            statut: Some("ouverte".into()),
            created_at: Some("2025-11-01T08:00:00Z".into()),
        },
        OrderFields::EXAMPLE_TODAY,
    )
    .expect("valid order")
}

fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("HTTP client")
}

/// Posts a signed `order.created` webhook; returns the instant taken just before the POST and
/// how long the relay took to answer.
async fn post_order(http: &reqwest::Client, addr: SocketAddr, id: i64) -> (Instant, Duration) {
    let body = serde_json::to_vec(&json!({
        "event": "order.created",
        "order": camionback::order_json(id, &format!("CMD-BENCH-{id}"), "2025-11-01T08:00:00Z"),
    }))
    .expect("JSON");
    let mut request = http
        .post(format!("http://{addr}/webhooks/orders"))
        .header("content-type", "application/json");
    for (name, value) in camionback_headers(SECRET, unix_now(), &body) {
        request = request.header(name, value);
    }
    let request = request.body(body);
    let started = Instant::now();
    let response = request.send().await.expect("webhook POST");
    let answered = started.elapsed();
    let status = response.status();
    if status.as_u16() != 202 {
        let text = response.text().await.unwrap_or_default();
        panic!("webhook for order {id} answered {status}: {text}");
    }
    (started, answered)
}

/// The order a message is about, read from the link `…/commande/<id>` in its text.
fn order_of(message: &Received) -> Option<i64> {
    const MARK: &str = "/commande/";
    let text = message.text()?;
    let rest = &text[text.find(MARK)? + MARK.len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// Waits until the fake Cloud API received `count` messages for `order`.
async fn wait_messages(
    cloud: &FakeCloudApi,
    order: i64,
    count: usize,
    limit: Duration,
    poll: Duration,
) -> Vec<Received> {
    let deadline = Instant::now() + limit;
    loop {
        let got: Vec<Received> = cloud
            .received()
            .into_iter()
            .filter(|r| order_of(r) == Some(order))
            .collect();
        if got.len() >= count {
            return got;
        }
        if Instant::now() > deadline {
            panic!(
                "order {order}: {} of {count} messages reached the fake Cloud API within {limit:?}",
                got.len()
            );
        }
        tokio::time::sleep(poll).await;
    }
}

// ---------------------------------------------------------------------------------------------
// 1. Webhook received -> first send started
// ---------------------------------------------------------------------------------------------

async fn webhook_to_first_send(report: &mut Report) {
    const CARRIERS: usize = 10;
    const WARM_UP: i64 = 3;
    const ORDERS: i64 = 30;
    println!(
        "1. webhook -> premier envoi ({ORDERS} commandes, {CARRIERS} transporteurs, throttle 1 ms)"
    );

    let api = fake_api_with_carriers(CARRIERS, 50).await;
    let cloud = FakeCloudApi::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = start_engine(&relay_env(dir.path(), &api, &cloud, 1)).await;
    let http = http_client();

    let mut latencies = Vec::new();
    let mut answers = Vec::new();
    for n in 0..WARM_UP + ORDERS {
        let id = 1_000 + n;
        let (started, answered) = post_order(&http, engine.addr(), id).await;
        // Every message of the order is awaited, so each order starts on an idle relay.
        let messages = wait_messages(
            &cloud,
            id,
            CARRIERS,
            Duration::from_secs(20),
            Duration::from_millis(1),
        )
        .await;
        let first = messages.iter().map(|m| m.at).min().expect("messages");
        if n >= WARM_UP {
            latencies.push(ms(first.saturating_duration_since(started)));
            answers.push(ms(answered));
        }
    }

    // The share of the carrier sync the broadcaster runs before each fan-out.
    let mut syncs = Vec::new();
    for _ in 0..10 {
        let started = Instant::now();
        engine.carriers().sync_now().await.expect("carrier sync");
        syncs.push(ms(started.elapsed()));
    }
    engine.shutdown().await;

    let latencies = sorted(latencies);
    let (p50, p95) = (percentile(&latencies, 50.0), percentile(&latencies, 95.0));
    report.target(
        "1. webhook -> 1st send, p50",
        format!("{p50:.2} ms"),
        "< 20 ms",
        p50 < 20.0,
    );
    report.info("1. webhook -> 1st send, p95", format!("{p95:.2} ms"));
    report.info(
        "1. webhook -> 1st send, min/max",
        format!(
            "{:.2} / {:.2} ms",
            latencies[0],
            latencies[latencies.len() - 1]
        ),
    );
    let answers = sorted(answers);
    report.info(
        "1. webhook HTTP answer (202), p50",
        format!("{:.2} ms", percentile(&answers, 50.0)),
    );
    let syncs = sorted(syncs);
    report.info(
        "1. carrier sync alone (10 carriers), p50",
        format!("{:.2} ms", percentile(&syncs, 50.0)),
    );
}

// ---------------------------------------------------------------------------------------------
// 2. Dispatch overhead per message beyond the throttle
// ---------------------------------------------------------------------------------------------

async fn dispatch_overhead(report: &mut Report) {
    const CARRIERS: usize = 500;
    println!("2. surcoût d'envoi par message ({CARRIERS} transporteurs)");
    let api = fake_api_with_carriers(CARRIERS, 500).await;
    let cloud = FakeCloudApi::start().await;
    let http = http_client();

    for (id, throttle_ms) in [(2_000_i64, 0_u64), (2_005, 5)] {
        let dir = tempfile::tempdir().expect("tempdir");
        let engine = start_engine(&relay_env(dir.path(), &api, &cloud, throttle_ms)).await;
        post_order(&http, engine.addr(), id).await;
        let limit = Duration::from_secs(30) + Duration::from_millis(throttle_ms * CARRIERS as u64);
        let messages = wait_messages(&cloud, id, CARRIERS, limit, Duration::from_millis(50)).await;
        engine.shutdown().await;

        let mut at: Vec<Instant> = messages.iter().map(|m| m.at).collect();
        at.sort();
        let overhead: Vec<f64> = at
            .windows(2)
            .map(|w| ms(w[1] - w[0]) - throttle_ms as f64)
            .collect();
        let avg = mean(&overhead);
        let overhead = sorted(overhead);
        let (p50, p95) = (percentile(&overhead, 50.0), percentile(&overhead, 95.0));
        report.target(
            &format!("2. gap - throttle, throttle {throttle_ms} ms, mean"),
            format!("{avg:.3} ms"),
            "< 2 ms",
            avg < 2.0,
        );
        report.info(
            &format!("2. gap - throttle, throttle {throttle_ms} ms, p50/p95"),
            format!("{p50:.3} / {p95:.3} ms"),
        );
        let total = ms(at[at.len() - 1] - at[0]);
        report.info(
            &format!("2. throughput, throttle {throttle_ms} ms"),
            format!("{:.0} msg/s", (at.len() - 1) as f64 / (total / 1000.0)),
        );
    }
    dispatch_breakdown(report).await;
}

/// The parts of one dispatch cycle measured apart, to explain the overhead: the database work
/// of one delivery, one HTTP round trip to the fake Cloud API, and a zero-length timer wait.
async fn dispatch_breakdown(report: &mut Report) {
    const N: usize = 500;

    // Database: claim, eligibility check, record the send (what `try_once` does per message).
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&dir.path().join("relay.db"))
        .await
        .expect("store opens");
    let carriers: Vec<CarrierRecord> = (0..N)
        .map(|i| CarrierRecord {
            id: CarrierId(i as i64 + 1),
            name: format!("Transporteur {i}"),
            phone_raw: phone(i),
            statut: "valide".into(),
        })
        .collect();
    store
        .replace_carriers(&carriers, now_ms())
        .await
        .expect("replace carriers");
    let order = order(2_100);
    store
        .insert_order(&order, OrderSource::Webhook, now_ms())
        .await
        .expect("insert order");
    store.fan_out(&order, now_ms()).await.expect("fan-out");
    let mut db = Vec::new();
    let mut last = None;
    for n in 0..N {
        let started = Instant::now();
        let claim = store
            .claim_next(last, now_ms())
            .await
            .expect("claim")
            .expect("a queued delivery");
        last = Some(claim.order());
        std::hint::black_box(
            store
                .carrier_refusal(claim.carrier())
                .await
                .expect("refusal"),
        );
        store
            .mark_sent(claim.id, Some(&format!("wamid.BREAKDOWN{n}")), now_ms())
            .await
            .expect("mark sent");
        db.push(ms(started.elapsed()));
    }
    store.close().await;

    // One send to the fake Cloud API, as the channel makes it.
    let cloud = FakeCloudApi::start().await;
    let http = http_client();
    let url = format!(
        "{}/v21.0/{}/messages",
        cloud.url(),
        cloud_api::PHONE_NUMBER_ID
    );
    let text = "x".repeat(400);
    let mut round_trips = Vec::new();
    for i in 0..N {
        let body = json!({
            "messaging_product": "whatsapp", "recipient_type": "individual",
            "to": format!("2126{i:08}"), "type": "text",
            "text": { "preview_url": true, "body": text },
        });
        let started = Instant::now();
        let response = http
            .post(&url)
            .bearer_auth(cloud_api::TOKEN)
            .json(&body)
            .send()
            .await
            .expect("POST to fake Cloud API");
        response.bytes().await.expect("answer");
        round_trips.push(ms(started.elapsed()));
    }

    // The same request to a bare wiremock mock: the fake Cloud API answers through
    // `ResponseTemplate::set_delay(Duration::ZERO)`, which wiremock turns into a timer wait.
    let bare = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(wiremock::ResponseTemplate::new(200).set_body_json(json!({
            "messaging_product": "whatsapp",
            "messages": [{ "id": "wamid.BARE" }],
        })))
        .mount(&bare)
        .await;
    let bare_url = format!(
        "{}/v21.0/{}/messages",
        bare.uri(),
        cloud_api::PHONE_NUMBER_ID
    );
    let mut bare_trips = Vec::new();
    for i in 0..N {
        let body = json!({
            "messaging_product": "whatsapp", "recipient_type": "individual",
            "to": format!("2126{i:08}"), "type": "text",
            "text": { "preview_url": true, "body": text },
        });
        let started = Instant::now();
        let response = http
            .post(&bare_url)
            .bearer_auth(cloud_api::TOKEN)
            .json(&body)
            .send()
            .await
            .expect("POST to bare mock");
        response.bytes().await.expect("answer");
        bare_trips.push(ms(started.elapsed()));
    }

    // What `sleep_until(next_send_at)` costs when the throttle is 0 (deadline already due).
    let mut sleeps = Vec::new();
    for _ in 0..N {
        let started = tokio::time::Instant::now();
        tokio::time::sleep_until(started).await;
        sleeps.push(ms(started.elapsed()));
    }

    let p50 = |v: Vec<f64>| {
        let v = sorted(v);
        (percentile(&v, 50.0), mean(&v))
    };
    let (db50, db_mean) = p50(db);
    let (rt50, rt_mean) = p50(round_trips);
    let (sl50, sl_mean) = p50(sleeps);
    let (bare50, bare_mean) = p50(bare_trips);
    report.info(
        "2. part: DB claim+check+mark_sent p50/mean",
        format!("{db50:.3} / {db_mean:.3} ms"),
    );
    report.info(
        "2. part: HTTP to fake Cloud API p50/mean",
        format!("{rt50:.3} / {rt_mean:.3} ms"),
    );
    report.info(
        "2. part: HTTP to bare wiremock p50/mean",
        format!("{bare50:.3} / {bare_mean:.3} ms"),
    );
    report.info(
        "2. part: tokio sleep_until(now) p50/mean",
        format!("{sl50:.3} / {sl_mean:.3} ms"),
    );
}

// ---------------------------------------------------------------------------------------------
// 3. Queueing one order for 10,000 carriers
// ---------------------------------------------------------------------------------------------

async fn fan_out_10k(report: &mut Report) {
    const CARRIERS: usize = 10_000;
    const RUNS: i64 = 5;
    println!("3. mise en file d'une commande pour {CARRIERS} transporteurs ({RUNS} essais)");
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&dir.path().join("relay.db"))
        .await
        .expect("store opens");
    let carriers: Vec<CarrierRecord> = (0..CARRIERS)
        .map(|i| CarrierRecord {
            id: CarrierId(i as i64 + 1),
            name: format!("Transporteur {i}"),
            phone_raw: phone(i),
            statut: "valide".into(),
        })
        .collect();
    let started = Instant::now();
    store
        .replace_carriers(&carriers, now_ms())
        .await
        .expect("replace carriers");
    let replace = started.elapsed();
    // The same list again: what the sync before each broadcast writes.
    let started = Instant::now();
    store
        .replace_carriers(&carriers, now_ms())
        .await
        .expect("replace carriers again");
    let resync = started.elapsed();
    // The share of the number checks in it.
    let started = Instant::now();
    for carrier in &carriers {
        std::hint::black_box(relay_domain::PhoneNumber::parse(&carrier.phone_raw).ok());
    }
    let parse = started.elapsed();

    let mut times = Vec::new();
    for run in 0..RUNS {
        let order = order(3_000 + run);
        store
            .insert_order(&order, OrderSource::Webhook, now_ms())
            .await
            .expect("insert order");
        let started = Instant::now();
        let outcome = store.fan_out(&order, now_ms()).await.expect("fan-out");
        times.push(ms(started.elapsed()));
        if outcome.queued != CARRIERS as u64 {
            panic!(
                "fan-out queued {} deliveries, expected {CARRIERS}",
                outcome.queued
            );
        }
    }
    store.close().await;

    let times = sorted(times);
    let (best, median) = (times[0], percentile(&times, 50.0));
    report.target(
        "3. fan-out 10,000 carriers, median",
        format!("{median:.1} ms"),
        "< 300 ms",
        median < 300.0,
    );
    report.info("3. fan-out 10,000 carriers, best", format!("{best:.1} ms"));
    report.info(
        "3. replace_carriers(10,000) first / re-sync",
        format!("{:.1} / {:.1} ms", ms(replace), ms(resync)),
    );
    report.info(
        "3. of which PhoneNumber::parse x 10,000",
        format!("{:.1} ms", ms(parse)),
    );
}

// ---------------------------------------------------------------------------------------------
// 4. One history page among 1,000,000 deliveries
// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------
// 5. Peak RSS of `serve` while broadcasting to 10,000 carriers
// ---------------------------------------------------------------------------------------------

/// `(VmHWM, VmRSS)` of a process in kB.
fn memory_kb(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status.lines().find_map(|line| {
            line.strip_prefix(name)?
                .strip_prefix(':')?
                .trim()
                .strip_suffix("kB")?
                .trim()
                .parse::<u64>()
                .ok()
        })
    };
    Some((field("VmHWM")?, field("VmRSS")?))
}

fn mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

async fn serve_peak_rss(report: &mut Report) {
    const CARRIERS: usize = 10_000;
    const LIMIT: Duration = Duration::from_secs(120);
    println!("5. mémoire de `serve` pendant une diffusion à {CARRIERS} transporteurs");
    let api = fake_api_with_carriers(CARRIERS, 500).await;
    let cloud = FakeCloudApi::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let env = relay_env(dir.path(), &api, &cloud, 0);

    let mut child = Command::new(env!("CARGO_BIN_EXE_camionback-relay"))
        .arg("serve")
        .env_clear()
        .envs(&env)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start camionback-relay serve");
    let pid = child.id();

    // The relay logs where it listens; the rest of its log is drained and the tail kept.
    let (addr_tx, addr_rx) = std::sync::mpsc::channel::<SocketAddr>();
    let tail = Arc::new(Mutex::new(Vec::<String>::new()));
    let stderr = child.stderr.take().expect("stderr piped");
    let reader_tail = tail.clone();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if line.contains("relais démarré")
                && let Some(addr) = line
                    .split("http://")
                    .nth(1)
                    .and_then(|rest| rest.split([',', ' ']).next())
                    .and_then(|addr| addr.parse().ok())
            {
                let _ = addr_tx.send(addr);
            }
            let mut tail = reader_tail.lock().expect("tail");
            tail.push(line);
            if tail.len() > 20 {
                tail.remove(0);
            }
        }
    });

    let started = Instant::now();
    let addr = tokio::task::spawn_blocking(move || addr_rx.recv_timeout(Duration::from_secs(60)))
        .await
        .expect("join")
        .unwrap_or_else(|_| {
            panic!(
                "serve did not start; last log lines:\n{}",
                tail.lock().expect("tail").join("\n")
            )
        });
    let start_up = started.elapsed();
    let (hwm_start, rss_start) = memory_kb(pid).expect("/proc status");

    // Sampled often so the peak RSS is seen too, not only the kernel's high-water mark.
    let stop = Arc::new(AtomicBool::new(false));
    let max_rss = Arc::new(AtomicU64::new(rss_start));
    let sampler = {
        let (stop, max_rss) = (stop.clone(), max_rss.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if let Some((_, rss)) = memory_kb(pid) {
                    max_rss.fetch_max(rss, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };

    let http = http_client();
    let (posted, _) = post_order(&http, addr, 4_000).await;
    let mut received = 0;
    while posted.elapsed() < LIMIT {
        tokio::time::sleep(Duration::from_millis(500)).await;
        received = cloud.received().len();
        if received >= CARRIERS {
            break;
        }
    }
    let broadcast = posted.elapsed();
    let first_send = cloud
        .received()
        .iter()
        .map(|m| m.at)
        .min()
        .map(|at| at.saturating_duration_since(posted));
    let (hwm_end, rss_end) = memory_kb(pid).expect("/proc status");
    stop.store(true, Ordering::Relaxed);
    sampler.join().expect("sampler");

    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(15);
    let exit = loop {
        if let Some(status) = child.try_wait().expect("child status") {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let _ = reader.join();

    report.target(
        "5. serve peak RSS (VmHWM), 10,000 carriers",
        format!("{:.1} MB", mb(hwm_end)),
        "< 40 MB",
        hwm_end < 40 * 1024,
    );
    report.info(
        "5. serve VmHWM / VmRSS after start-up",
        format!("{:.1} / {:.1} MB", mb(hwm_start), mb(rss_start)),
    );
    report.info(
        "5. serve max sampled VmRSS / at end",
        format!(
            "{:.1} / {:.1} MB",
            mb(max_rss.load(Ordering::Relaxed)),
            mb(rss_end)
        ),
    );
    report.info(
        "5. serve start-up (incl. sync of 10,000)",
        format!("{:.2} s", start_up.as_secs_f64()),
    );
    report.info(
        "5. messages sent / broadcast time",
        format!(
            "{received} / {:.1} s ({:.0} msg/s){}",
            broadcast.as_secs_f64(),
            received as f64 / broadcast.as_secs_f64(),
            if received < CARRIERS {
                " - TIME LIMIT REACHED"
            } else {
                ""
            }
        ),
    );
    report.info(
        "5. serve webhook -> 1st send, 10,000 carriers",
        match first_send {
            Some(d) => format!("{:.1} ms", ms(d)),
            None => "no message".to_string(),
        },
    );
    report.info(
        "5. serve exit after SIGTERM",
        match exit {
            Some(status) => status.to_string(),
            None => "no exit within 15 s: killed".to_string(),
        },
    );
}

#[tokio::main]
async fn main() {
    // The engine's warnings and errors (a failed fan-out, a slow carrier sync) go to stderr:
    // they explain an outlier in the figures.
    let _logs = relay_engine::telemetry::init("warn", None).expect("console log");
    let started = Instant::now();
    let mut report = Report::default();
    // `RELAY_BENCH_ONLY=history` measures the history alone (a minute instead of several).
    if std::env::var("RELAY_BENCH_ONLY").as_deref() == Ok("history") {
        history_page(&mut report).await;
    } else {
        webhook_to_first_send(&mut report).await;
        dispatch_overhead(&mut report).await;
        fan_out_10k(&mut report).await;
        history_page(&mut report).await;
        serve_peak_rss(&mut report).await;
    }
    report.print();
    println!(
        "durée totale du banc : {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
