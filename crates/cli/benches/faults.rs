//! What the outbox does when things go wrong, in figures (never a pass/fail):
//!
//! 1. `disk-full`: a broadcast at 1 message/s with the disk full for 15 s (a SQLite VFS that
//!    fails every write, `relay_test_support::disk`): copies each carrier received at the fake
//!    Cloud API, and whether `/metrics` showed the outbox alert meanwhile;
//! 2. `timeout`: a message the provider took but answered too late (past
//!    `RELAY_SEND_TIMEOUT_SECS`): copies received, and the row's status;
//! 3. `soak`: N rounds (`RELAY_SOAK_ROUNDS`, default 20) of `kill -9` of `camionback-relay
//!    serve` in the middle of a 50-carrier broadcast (`RELAY_SOAK_CARRIERS`) on the Cloud API
//!    fake, each followed by a restart that finishes the broadcast; then the fake's status
//!    notifications are posted to the relay as Meta posts them; then a default `relaunch` of
//!    every order. After each stage: duplicates (pairs with more than one copy at the fake),
//!    missing (pairs with none) and doubtful rows (`interrupted` + `uncertain`).
//!    `RELAY_SOAK_BIN=/path/to/camionback-relay` runs the soak against another build (main's).
//!
//! `cargo bench -p camionback-relay --bench faults` runs all three; `RELAY_BENCH_ONLY=disk-full`
//! (or `timeout`, `soak`) one of them.

// Bench code: a failed expectation ends the run with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use relay_domain::DeliveryStatus;
use relay_engine::store::HistoryFilter;
use relay_engine::{Engine, Settings};
use relay_test_support::cloud_api::{self, Received};
use relay_test_support::signing::{camionback_headers, hmac_sha256_header, unix_now};
use relay_test_support::{FakeCamionBack, FakeCloudApi, FullDisk, Reply, camionback};
use serde_json::{Value, json};

const SECRET: &str = "bench-webhook-secret";
const APP_SECRET: &str = "bench-app-secret";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn order_json(id: i64) -> Value {
    camionback::order_json(
        id,
        &format!("CMD-2025-{id}"),
        &chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    )
}

async fn post_order(http: &reqwest::Client, addr: SocketAddr, id: i64) {
    let body = serde_json::to_vec(&json!({ "event": "order.created", "order": order_json(id) }))
        .expect("json");
    let mut request = http
        .post(format!("http://{addr}/webhooks/orders"))
        .body(body.clone());
    for (name, value) in camionback_headers(SECRET, unix_now(), &body) {
        request = request.header(name, value);
    }
    let status = request.send().await.expect("order webhook").status();
    assert_eq!(status, 202, "order {id} accepted");
}

fn add_carriers(camionback: &FakeCamionBack, count: i64) {
    for id in 1..=count {
        camionback.add_carrier(
            id,
            &format!("Transporteur {id}"),
            &format!("0612{id:06}"),
            "valide",
        );
    }
}

/// The order a message is about: the last path segment of its link.
fn order_of(message: &Received) -> Option<i64> {
    let text = message.text()?;
    let link = text.split("/commande/").nth(1)?;
    link.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// Copies the fake took per recipient (digits).
fn copies_per_carrier(received: &[Received]) -> HashMap<String, usize> {
    let mut copies: HashMap<String, usize> = HashMap::new();
    for message in received.iter().filter(|m| m.message_id.is_some()) {
        *copies.entry(message.to.clone()).or_default() += 1;
    }
    copies
}

fn env_for(
    dir: &std::path::Path,
    camionback: &FakeCamionBack,
    cloud: &FakeCloudApi,
    extra: &[(&str, &str)],
) -> HashMap<String, String> {
    let mut env: HashMap<String, String> = [
        ("RELAY_DATA_DIR", dir.display().to_string()),
        ("RELAY_WEBHOOK_ADDR", "127.0.0.1:0".into()),
        ("RELAY_WEBHOOK_SECRET", SECRET.into()),
        ("CAMIONBACK_API_URL", camionback.url()),
        ("CAMIONBACK_API_TOKEN", camionback::TOKEN.into()),
        ("CAMIONBACK_POLL_SECS", "0".into()),
        ("RELAY_CHANNEL", "cloud-api".into()),
        ("WHATSAPP_API_URL", cloud.url()),
        (
            "WHATSAPP_PHONE_NUMBER_ID",
            cloud_api::PHONE_NUMBER_ID.into(),
        ),
        ("WHATSAPP_TOKEN", cloud_api::TOKEN.into()),
        ("WHATSAPP_APP_SECRET", APP_SECRET.into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    for (k, v) in extra {
        env.insert(k.to_string(), v.to_string());
    }
    env
}

async fn wait_settled(engine: &Engine, order: i64, limit: Duration) -> Vec<(i64, String, i64)> {
    let deadline = Instant::now() + limit;
    loop {
        let rows = engine
            .store()
            .history(&HistoryFilter {
                order: Some(relay_domain::OrderId(order)),
                limit: 100_000,
                ..HistoryFilter::default()
            })
            .await
            .expect("history");
        let settled = !rows.is_empty()
            && rows
                .iter()
                .all(|r| r.status != DeliveryStatus::Queued && r.status != DeliveryStatus::Sending);
        if settled || Instant::now() > deadline {
            return rows
                .into_iter()
                .map(|r| (r.carrier_id, r.status.as_str().to_string(), r.attempts))
                .collect();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn status_summary(rows: &[(i64, String, i64)]) -> String {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for (_, status, _) in rows {
        *counts.entry(status.as_str()).or_default() += 1;
    }
    let mut counts: Vec<_> = counts.into_iter().collect();
    counts.sort();
    counts
        .iter()
        .map(|(s, n)| format!("{s} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

// ---------------------------------------------------------------------------------------------
// 1. Disk full for 15 s at 1 message/s
// ---------------------------------------------------------------------------------------------

async fn disk_full() {
    const CARRIERS: i64 = 10;
    const FULL_FOR: Duration = Duration::from_secs(15);
    println!(
        "1. disque plein {} s pendant une diffusion à 1 message/s ({CARRIERS} transporteurs)",
        FULL_FOR.as_secs()
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let camionback = FakeCamionBack::start().await;
    let cloud = FakeCloudApi::start().await;
    add_carriers(&camionback, CARRIERS);
    let env = env_for(
        dir.path(),
        &camionback,
        &cloud,
        &[("RELAY_THROTTLE_MS", "1000")],
    );
    let mut settings = Settings::load(|k| env.get(k).cloned()).expect("settings");
    let disk = FullDisk::under(dir.path());
    settings.store.vfs = Some(disk.vfs_name().to_string());
    let engine = Engine::start(settings).await.expect("engine");
    let http = reqwest::Client::new();
    post_order(&http, engine.addr(), 1).await;
    while cloud.received().len() < 2 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    disk.fill();
    let full_since = Instant::now();
    let mut alert_seen = false;
    while full_since.elapsed() < FULL_FOR {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if let Ok(metrics) = http
            .get(format!("http://{}/metrics", engine.addr()))
            .send()
            .await
        {
            let text = metrics.text().await.unwrap_or_default();
            alert_seen |= text.contains("relay_outbox_write_failing 1");
        }
    }
    let during = cloud.received().len();
    disk.free();
    let rows = wait_settled(&engine, 1, Duration::from_secs(120)).await;
    let copies = copies_per_carrier(&cloud.received());
    let max = copies.values().copied().max().unwrap_or(0);
    let doubled = copies.values().filter(|&&n| n > 1).count();
    println!("  messages reçus par le faux pendant le disque plein : {during}");
    println!(
        "  copies par transporteur : max {max}, {doubled} transporteur(s) avec plus d'une copie, {} transporteur(s) servis sur {CARRIERS}, {} messages au total",
        copies.len(),
        cloud.received().len()
    );
    let mut per: Vec<_> = copies.iter().collect();
    per.sort();
    println!(
        "  détail : {}",
        per.iter()
            .map(|(to, n)| format!("…{}={n}", &to[to.len() - 2..]))
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!(
        "  alerte relay_outbox_write_failing 1 vue dans /metrics : {}",
        if alert_seen { "oui" } else { "non" }
    );
    println!("  statuts : {}", status_summary(&rows));
    engine.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// 2. A timeout after the provider took the message
// ---------------------------------------------------------------------------------------------

async fn timeout_after_taken() {
    println!("2. délai dépassé alors que le fournisseur a pris le message (délai d'envoi 1 s)");
    let dir = tempfile::tempdir().expect("tempdir");
    let camionback = FakeCamionBack::start().await;
    let cloud = FakeCloudApi::start().await;
    add_carriers(&camionback, 3);
    let late = Reply::AcceptLate(Duration::from_secs(3));
    cloud.script("212612000001", vec![late.clone(), late.clone(), late]);
    let env = env_for(
        dir.path(),
        &camionback,
        &cloud,
        &[
            ("RELAY_THROTTLE_MS", "200"),
            ("RELAY_SEND_TIMEOUT_SECS", "1"),
        ],
    );
    let settings = Settings::load(|k| env.get(k).cloned()).expect("settings");
    let engine = Engine::start(settings).await.expect("engine");
    let http = reqwest::Client::new();
    let started = Instant::now();
    post_order(&http, engine.addr(), 1).await;
    let rows = wait_settled(&engine, 1, Duration::from_secs(90)).await;
    let copies = copies_per_carrier(&cloud.received());
    let row = rows.iter().find(|(c, _, _)| *c == 1);
    println!(
        "  copies reçues par le transporteur au message en retard : {}",
        copies.get("212612000001").copied().unwrap_or(0)
    );
    if let Some((_, status, attempts)) = row {
        println!("  sa ligne : {status}, {attempts} tentative(s)");
    }
    println!(
        "  les deux autres : {} copie(s) ; diffusion close en {:.1} s",
        copies.get("212612000002").copied().unwrap_or(0)
            + copies.get("212612000003").copied().unwrap_or(0),
        started.elapsed().as_secs_f64()
    );
    engine.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// 3. Crash soak
// ---------------------------------------------------------------------------------------------

struct SoakWorld {
    dir: tempfile::TempDir,
    camionback: FakeCamionBack,
    cloud: FakeCloudApi,
    bin: PathBuf,
    port: u16,
}

impl SoakWorld {
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.bin);
        command
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("RELAY_DATA_DIR", self.dir.path())
            .env("RELAY_WEBHOOK_ADDR", format!("127.0.0.1:{}", self.port))
            .env("RELAY_WEBHOOK_SECRET", SECRET)
            .env("RELAY_THROTTLE_MS", "50")
            .env("RELAY_LOG", "error")
            .env("CAMIONBACK_API_URL", self.camionback.url())
            .env("CAMIONBACK_API_TOKEN", camionback::TOKEN)
            .env("CAMIONBACK_POLL_SECS", "0")
            .env("RELAY_CHANNEL", "cloud-api")
            .env("WHATSAPP_API_URL", self.cloud.url())
            .env("WHATSAPP_PHONE_NUMBER_ID", cloud_api::PHONE_NUMBER_ID)
            .env("WHATSAPP_TOKEN", cloud_api::TOKEN)
            .env("WHATSAPP_APP_SECRET", APP_SECRET);
        command
    }

    async fn serve(&self) -> Serving {
        let child = Serving(
            self.command(&["serve"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("serve starts"),
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let health = reqwest::get(format!("http://127.0.0.1:{}/healthz", self.port)).await;
            if health.is_ok_and(|r| r.status().is_success()) {
                return child;
            }
            assert!(Instant::now() < deadline, "serve did not come up");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn history(&self, order: i64) -> Vec<Value> {
        let output = self
            .command(&[
                "history",
                "--order",
                &order.to_string(),
                "--limit",
                "100000",
                "--json",
            ])
            .output()
            .expect("history runs");
        serde_json::from_slice(&output.stdout).unwrap_or_default()
    }

    async fn wait_settled(&self, order: i64) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let rows = self.history(order);
            let settled = !rows.is_empty()
                && rows.iter().all(|r| {
                    let status = r["status"].as_str().unwrap_or_default();
                    status != "queued" && status != "sending"
                });
            if settled || Instant::now() > deadline {
                return rows;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Duplicates, missing and doubtful over `orders` × carriers.
    fn figures(&self, orders: &[i64], carriers: i64) -> (usize, usize, usize) {
        let mut copies: HashMap<(i64, String), usize> = HashMap::new();
        for message in self.cloud.received() {
            if message.message_id.is_none() {
                continue;
            }
            if let Some(order) = order_of(&message) {
                *copies.entry((order, message.to.clone())).or_default() += 1;
            }
        }
        let mut duplicates = 0;
        let mut missing = 0;
        let mut doubtful = 0;
        for &order in orders {
            for carrier in 1..=carriers {
                match copies
                    .get(&(order, format!("212612{carrier:06}")))
                    .copied()
                    .unwrap_or(0)
                {
                    0 => missing += 1,
                    1 => {}
                    _ => duplicates += 1,
                }
            }
            // The latest row of each carrier says where the relay stands with it.
            let mut latest: HashMap<i64, (i64, String)> = HashMap::new();
            for row in self.history(order) {
                let carrier = row["carrier_id"].as_i64().unwrap_or_default();
                let batch = row["batch"].as_i64().unwrap_or_default();
                let status = row["status"].as_str().unwrap_or_default().to_string();
                let entry = latest.entry(carrier).or_insert((batch, status.clone()));
                if batch > entry.0 {
                    *entry = (batch, status);
                }
            }
            doubtful += latest
                .values()
                .filter(|(_, s)| s == "interrupted" || s == "uncertain")
                .count();
        }
        (duplicates, missing, doubtful)
    }
}

/// A running `serve`; killed if the bench ends without stopping it.
struct Serving(Child);

impl Serving {
    fn kill_9(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }

    fn terminate(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            self.kill_9();
        }
    }
}

async fn soak() {
    let rounds: i64 = std::env::var("RELAY_SOAK_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let carriers: i64 = std::env::var("RELAY_SOAK_CARRIERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let bin = std::env::var("RELAY_SOAK_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_BIN_EXE_camionback-relay")));
    println!(
        "3. {rounds} × kill -9 de `serve` pendant une diffusion à {carriers} transporteurs ({})",
        bin.display()
    );
    let world = SoakWorld {
        dir: tempfile::tempdir().expect("tempdir"),
        camionback: FakeCamionBack::start().await,
        // Each answer takes 40 ms: a kill has a fair chance to land in the middle of a send.
        cloud: FakeCloudApi::start_with_delay(Duration::from_millis(40)).await,
        bin,
        port: free_port(),
    };
    add_carriers(&world.camionback, carriers);
    let http = reqwest::Client::new();
    let addr: SocketAddr = format!("127.0.0.1:{}", world.port).parse().expect("addr");
    // Where in each broadcast the kill lands: spread over it, the same every run.
    let mut seed: u64 = 0x5eed;
    let mut orders = Vec::new();
    let mut relay = world.serve().await;
    for round in 1..=rounds {
        let order = 1000 + round;
        orders.push(order);
        post_order(&http, addr, order).await;
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let kill_at = 2 + (seed >> 33) as usize % (carriers as usize - 4);
        // 0 to 90 ms after that message reached the fake: some kills land while Meta holds the
        // message (40 ms), some between two sends, some while the next one is being claimed.
        let kill_after = Duration::from_millis((seed >> 17) % 91);
        let deadline = Instant::now() + Duration::from_secs(60);
        while world
            .cloud
            .received()
            .iter()
            .filter(|m| order_of(m) == Some(order))
            .count()
            < kill_at
            && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        tokio::time::sleep(kill_after).await;
        relay.kill_9();
        relay = world.serve().await;
        world.wait_settled(order).await;
    }
    let report = |stage: &str, (duplicates, missing, doubtful): (usize, usize, usize)| {
        println!(
            "  {stage} : {} paires, {duplicates} en double, {missing} manquante(s), {doubtful} douteuse(s) (interrupted + uncertain)",
            orders.len() as i64 * carriers
        );
    };
    report("après les redémarrages", world.figures(&orders, carriers));

    // What Meta does next: it posts the statuses of every message it took.
    let taken: Vec<Received> = world
        .cloud
        .received()
        .into_iter()
        .filter(|m| m.message_id.is_some())
        .collect();
    for chunk in taken.chunks(50) {
        let items: Vec<(&Received, &str)> = chunk.iter().map(|m| (m, "delivered")).collect();
        let body = serde_json::to_vec(&world.cloud.status_notification(&items)).expect("json");
        let _ = http
            .post(format!("http://{addr}/webhooks/whatsapp"))
            .header("content-type", "application/json")
            .header("X-Hub-Signature-256", hmac_sha256_header(APP_SECRET, &body))
            .body(body)
            .send()
            .await;
    }
    report(
        "après les statuts de Meta (distribué)",
        world.figures(&orders, carriers),
    );

    for &order in &orders {
        let output = world
            .command(&["relaunch", &order.to_string()])
            .output()
            .expect("relaunch runs");
        if !output.status.success() {
            println!(
                "  relance {order} : {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        world.wait_settled(order).await;
    }
    report(
        "après une relance par défaut",
        world.figures(&orders, carriers),
    );
    relay.terminate();
}

#[tokio::main]
async fn main() {
    let _logs = relay_engine::telemetry::init("error", None).expect("console log");
    let started = Instant::now();
    let only = std::env::var("RELAY_BENCH_ONLY").unwrap_or_default();
    if only.is_empty() || only == "disk-full" {
        disk_full().await;
    }
    if only.is_empty() || only == "timeout" {
        timeout_after_taken().await;
    }
    if only.is_empty() || only == "soak" {
        soak().await;
    }
    println!(
        "durée totale du banc : {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
