//! The WhatsApp Web channel against the loopback simulator (`relay-wa-sim`): connect-to-ready of
//! a relay whose session is already linked, webhook -> first message the simulator decrypted,
//! and the peak RSS of `camionback-relay serve` broadcasting to 10,000 carriers over WhatsApp Web.
//!
//! Run with `cargo bench -p camionback-relay --bench whatsapp_web`. This program measures and
//! prints; it never fails on a timing. The same file runs on the wa-rs 0.2 build (ef010b2), whose
//! simulator also takes the QR code as the client drew it, so both builds are measured alike.
// A bench is a test program: a failed set-up stops it with its reason.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use relay_engine::channel::whatsapp_web::ConnectionState;
use relay_engine::{Engine, Settings};
use relay_test_support::{FakeCamionBack, camionback};
use relay_wa_sim::{ReceivedText, WaSim};

use common::fixtures::*;
use common::*;

/// CamionBack's own number, as the phone that scans the QR code.
const ACCOUNT: &str = "212664373534";
const LIMIT: Duration = Duration::from_secs(60);

fn web_env(data_dir: &Path, api: &FakeCamionBack, sim: &WaSim, throttle_ms: u64) -> Settings {
    let env: HashMap<String, String> = web_env_vars(data_dir, api, sim, throttle_ms)
        .into_iter()
        .collect();
    Settings::load(|key| env.get(key).cloned()).expect("valid settings")
}

/// The same settings as environment variables, for a `serve` process.
fn web_env_vars(
    data_dir: &Path,
    api: &FakeCamionBack,
    sim: &WaSim,
    throttle_ms: u64,
) -> Vec<(String, String)> {
    [
        ("RELAY_DATA_DIR", data_dir.display().to_string()),
        ("RELAY_WEBHOOK_ADDR", "127.0.0.1:0".to_string()),
        ("RELAY_WEBHOOK_SECRET", SECRET.to_string()),
        ("RELAY_THROTTLE_MS", throttle_ms.to_string()),
        ("CAMIONBACK_API_URL", api.url()),
        ("CAMIONBACK_API_TOKEN", camionback::TOKEN.to_string()),
        ("CAMIONBACK_POLL_SECS", "0".to_string()),
        ("RELAY_CHANNEL", "whatsapp-web".to_string()),
        ("WHATSAPP_WEB_URL", sim.url()),
        // Pinned, so no connect tries to discover the version online.
        ("WHATSAPP_WEB_VERSION", "2.3000.1023868176".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// The WhatsApp number a carrier of the fixtures has (`061…` -> `21261…`).
fn whatsapp_number(i: usize) -> String {
    format!("212{}", &phone(i)[1..])
}

async fn wait_state(
    engine: &Engine,
    what: &str,
    check: impl Fn(&ConnectionState) -> bool,
) -> ConnectionState {
    let whatsapp = engine.whatsapp().expect("whatsapp-web channel");
    let mut states = whatsapp.state();
    match tokio::time::timeout(LIMIT, states.wait_for(|s| check(s))).await {
        Ok(state) => state.expect("state stream open").clone(),
        Err(_) => panic!(
            "state never became {what}; last: {:?}",
            whatsapp.state().borrow().clone()
        ),
    }
}

/// Links the relay's session in `settings`' data dir once, by QR code, and stops it.
async fn link(settings: Settings, sim: &WaSim) {
    let engine = Engine::start(settings).await.expect("engine starts");
    let shown = wait_state(&engine, "qr", |s| matches!(s, ConnectionState::Qr { .. })).await;
    let ConnectionState::Qr { code, .. } = shown else {
        unreachable!()
    };
    assert!(sim.scan_qr_code(ACCOUNT, &code).await, "the phone scanned");
    wait_state(&engine, "connected", ConnectionState::is_connected).await;
    engine.shutdown().await;
}

async fn connect_to_ready(report: &mut Report, sim: &WaSim, dir: &Path) {
    const RESTARTS: usize = 5;
    println!("1. démarrage -> connecté, session déjà liée ({RESTARTS} redémarrages)");
    let api = fake_api_with_carriers(5, 50).await;
    link(web_env(dir, &api, sim, 1), sim).await;

    let mut ready = Vec::new();
    let mut started_only = Vec::new();
    for _ in 0..RESTARTS {
        let settings = web_env(dir, &api, sim, 1);
        let started = Instant::now();
        let engine = Engine::start(settings).await.expect("engine starts");
        started_only.push(ms(started.elapsed()));
        let state = wait_state(&engine, "connected", |s| {
            s.is_connected() || matches!(s, ConnectionState::Qr { .. } | ConnectionState::Unlinked)
        })
        .await;
        assert!(
            state.is_connected(),
            "a restart needs no QR code: {state:?}"
        );
        ready.push(ms(started.elapsed()));
        engine.shutdown().await;
    }
    let ready = sorted(ready);
    let started_only = sorted(started_only);
    report.info(
        "1. start -> Connected, median / max",
        format!(
            "{:.1} / {:.1} ms",
            percentile(&ready, 50.0),
            ready[ready.len() - 1]
        ),
    );
    report.info(
        "1. Engine::start returned, median",
        format!("{:.1} ms", percentile(&started_only, 50.0)),
    );
}

/// The texts about `order`, read from the link `…/commande/<id>` in them.
fn of_order(received: &[ReceivedText], order: i64) -> Vec<ReceivedText> {
    const MARK: &str = "/commande/";
    received
        .iter()
        .filter(|r| {
            r.text.find(MARK).is_some_and(|at| {
                let digits: String = r.text[at + MARK.len()..]
                    .chars()
                    .take_while(char::is_ascii_digit)
                    .collect();
                digits.parse() == Ok(order)
            })
        })
        .cloned()
        .collect()
}

async fn first_send(report: &mut Report, sim: &WaSim, dir: &Path) {
    const CARRIERS: usize = 5;
    const WARM_UP: i64 = 1;
    const ORDERS: i64 = 10;
    println!(
        "2. webhook -> 1er message reçu par le simulateur ({ORDERS} commandes, {CARRIERS} transporteurs, throttle 1 ms)"
    );
    let numbers: Vec<String> = (0..CARRIERS).map(whatsapp_number).collect();
    sim.set_registered(&numbers.iter().map(String::as_str).collect::<Vec<_>>());
    let api = fake_api_with_carriers(CARRIERS, 50).await;
    // The session linked by the first part.
    let engine = Engine::start(web_env(dir, &api, sim, 1))
        .await
        .expect("engine starts");
    wait_state(&engine, "connected", ConnectionState::is_connected).await;
    let http = http_client();

    let mut latencies = Vec::new();
    let mut all = Vec::new();
    for n in 0..WARM_UP + ORDERS {
        let id = 2_000 + n;
        let (started, _) = post_order(&http, engine.addr(), id).await;
        // Every message of the order is awaited, so each order starts on an idle relay.
        let deadline = Instant::now() + LIMIT;
        let messages = loop {
            let received = sim.received();
            let got = of_order(&received, id);
            if got.len() >= CARRIERS {
                break got;
            }
            assert!(
                Instant::now() < deadline,
                "order {id}: {} of {CARRIERS} messages reached the simulator",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        };
        let first = messages.iter().map(|m| m.at).min().expect("messages");
        let last = messages.iter().map(|m| m.at).max().expect("messages");
        if n >= WARM_UP {
            latencies.push(ms(first.saturating_duration_since(started)));
            all.push(ms(last.saturating_duration_since(started)));
        }
    }
    engine.shutdown().await;

    let latencies = sorted(latencies);
    report.info(
        "2. webhook -> 1st message at the sim, p50 / p95",
        format!(
            "{:.1} / {:.1} ms",
            percentile(&latencies, 50.0),
            percentile(&latencies, 95.0)
        ),
    );
    report.info(
        "2. webhook -> 1st message, min / max",
        format!(
            "{:.1} / {:.1} ms",
            latencies[0],
            latencies[latencies.len() - 1]
        ),
    );
    let all = sorted(all);
    report.info(
        "2. webhook -> all 5 messages at the sim, p50",
        format!("{:.1} ms", percentile(&all, 50.0)),
    );
}

async fn serve_peak_rss(report: &mut Report) {
    const CARRIERS: usize = 10_000;
    // The window measured: the simulator decrypts in this process, on the same 2 cores.
    const CAP_MESSAGES: usize = 2_000;
    const CAP_TIME: Duration = Duration::from_secs(60);
    println!(
        "3. mémoire de `serve` pendant une diffusion WhatsApp Web à {CARRIERS} transporteurs (fenêtre : {CAP_MESSAGES} messages ou {} s)",
        CAP_TIME.as_secs()
    );
    // A phone of its own: a new session links, as for a new install.
    let sim = &WaSim::start().await;
    let numbers: Vec<String> = (0..CARRIERS).map(whatsapp_number).collect();
    sim.set_registered(&numbers.iter().map(String::as_str).collect::<Vec<_>>());
    let api = fake_api_with_carriers(CARRIERS, 500).await;
    let dir = tempfile::tempdir().expect("tempdir");
    link(web_env(dir.path(), &api, sim, 0), sim).await;
    let before = sim.received().len();

    let mut child = Command::new(env!("CARGO_BIN_EXE_camionback-relay"))
        .arg("serve")
        .env_clear()
        .envs(web_env_vars(dir.path(), &api, sim, 0))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start camionback-relay serve");
    let pid = child.id();

    // The relay logs where it listens; the rest of its log is drained and the tail kept.
    let (addr_tx, addr_rx) = std::sync::mpsc::channel::<SocketAddr>();
    let (connected_tx, connected_rx) = std::sync::mpsc::channel::<()>();
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
            if line.contains("WhatsApp : connecté") {
                let _ = connected_tx.send(());
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
    // The order is posted once the session is up, so the window measures the broadcast, not
    // the connection (part 1 measures that).
    let connected = tokio::task::spawn_blocking(move || {
        connected_rx.recv_timeout(Duration::from_secs(60)).is_ok()
    })
    .await
    .expect("join");
    assert!(connected, "serve never connected to the simulator");
    let connect = started.elapsed();
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
    while posted.elapsed() < CAP_TIME {
        tokio::time::sleep(Duration::from_millis(500)).await;
        received = sim.received().len() - before;
        if received >= CAP_MESSAGES {
            break;
        }
    }
    let window = posted.elapsed();
    let first_send = sim.received()[before..]
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
            println!(
                "  serve still running 15 s after SIGTERM; its last log lines:\n{}",
                tail.lock().expect("tail").join("\n")
            );
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let _ = reader.join();

    report.info(
        "3. serve peak RSS (VmHWM) in the window",
        format!("{:.1} MB", mb(hwm_end)),
    );
    report.info(
        "3. serve VmHWM / VmRSS once connected",
        format!("{:.1} / {:.1} MB", mb(hwm_start), mb(rss_start)),
    );
    report.info(
        "3. serve max sampled VmRSS / at end",
        format!(
            "{:.1} / {:.1} MB",
            mb(max_rss.load(Ordering::Relaxed)),
            mb(rss_end)
        ),
    );
    report.info(
        "3. serve start-up (incl. sync of 10,000)",
        format!("{:.2} s", start_up.as_secs_f64()),
    );
    report.info(
        "3. serve start -> WhatsApp connected",
        format!("{:.2} s", connect.as_secs_f64()),
    );
    report.info(
        "3. messages at the sim / window",
        format!(
            "{received} / {:.1} s ({:.0} msg/s)",
            window.as_secs_f64(),
            received as f64 / window.as_secs_f64()
        ),
    );
    report.info(
        "3. serve webhook -> 1st message at the sim",
        match first_send {
            Some(d) => format!("{:.1} ms", ms(d)),
            None => "no message".to_string(),
        },
    );
    report.info(
        "3. serve exit after SIGTERM",
        match exit {
            Some(status) => status.to_string(),
            None => "no exit within 15 s: killed".to_string(),
        },
    );
}

#[tokio::main]
async fn main() {
    common::run(async |report: &mut Report| {
        let sim = WaSim::start().await;
        let dir = tempfile::tempdir().expect("tempdir");
        connect_to_ready(report, &sim, dir.path()).await;
        first_send(report, &sim, dir.path()).await;
        serve_peak_rss(report).await;
    })
    .await;
}
