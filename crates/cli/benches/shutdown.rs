//! Seconds from SIGTERM to the exit of `camionback-relay serve`, in the cases that used to hold
//! it open (issue #10):
//!
//! 1. 100 connections that sent half their request headers;
//! 2. 100 connections that sent their headers and half their body (a signed order webhook);
//! 3. SIGTERM during start-up, while the first carrier sync waits on an API that never answers.
//!
//! Each case runs a real `serve` process against the CamionBack and Cloud API fakes on
//! 127.0.0.1, and waits at most `RELAY_BENCH_WAIT_SECS` (60) for the exit before killing it.
//! `RELAY_BENCH_BIN=/path/to/camionback-relay` measures another build (e.g. an older one).
//!
//! Run with `cargo bench -p camionback-relay --bench shutdown` (add `--profile dev` to reuse a
//! debug build). This program measures and prints; it never fails on a timing.

// Bench code: a failed expectation ends the run with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use relay_test_support::signing::{camionback_headers, unix_now};
use relay_test_support::{FakeCamionBack, FakeCloudApi, camionback, cloud_api};
use serde_json::json;

const SECRET: &str = "bench-webhook-secret";
const SLOW_CONNECTIONS: usize = 100;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn binary() -> PathBuf {
    std::env::var_os("RELAY_BENCH_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_camionback-relay")))
}

fn wait_limit() -> Duration {
    Duration::from_secs(
        std::env::var("RELAY_BENCH_WAIT_SECS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(60),
    )
}

fn spawn_serve(dir: &Path, addr: SocketAddr, api: &FakeCamionBack, cloud: &FakeCloudApi) -> Child {
    Command::new(binary())
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RELAY_DATA_DIR", dir)
        .env("RELAY_WEBHOOK_ADDR", addr.to_string())
        .env("RELAY_WEBHOOK_SECRET", SECRET)
        .env("RELAY_LOG", "warn")
        .env("CAMIONBACK_API_URL", api.url())
        .env("CAMIONBACK_API_TOKEN", camionback::TOKEN)
        .env("CAMIONBACK_POLL_SECS", "0")
        .env("RELAY_CHANNEL", "cloud-api")
        .env("WHATSAPP_API_URL", cloud.url())
        .env("WHATSAPP_PHONE_NUMBER_ID", cloud_api::PHONE_NUMBER_ID)
        .env("WHATSAPP_TOKEN", cloud_api::TOKEN)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start camionback-relay serve")
}

async fn wait_until_up(addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if reqwest::get(format!("http://{addr}/healthz"))
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("serve did not come up on {addr}");
}

/// Sends SIGTERM and times the exit; kills the process if it outlives the wait limit.
async fn time_sigterm(child: &mut Child) -> (Duration, Option<ExitStatus>) {
    let started = Instant::now();
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let limit = wait_limit();
    loop {
        if let Some(status) = child.try_wait().expect("child status") {
            return (started.elapsed(), Some(status));
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return (started.elapsed(), None);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn describe(elapsed: Duration, status: Option<ExitStatus>) -> String {
    match status {
        Some(status) => format!(
            "{:.2} s, exit {}",
            elapsed.as_secs_f64(),
            status
                .code()
                .map_or_else(|| format!("by signal ({status})"), |c| c.to_string())
        ),
        None => format!(
            "still running after {:.0} s (killed)",
            elapsed.as_secs_f64()
        ),
    }
}

/// Opens the slow connections: each sends what `partial` gives it and then nothing more.
async fn open_slow(addr: SocketAddr, partial: impl Fn() -> Vec<u8>) -> Vec<tokio::net::TcpStream> {
    use tokio::io::AsyncWriteExt;
    let mut streams = Vec::with_capacity(SLOW_CONNECTIONS);
    for _ in 0..SLOW_CONNECTIONS {
        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        stream.write_all(&partial()).await.expect("partial request");
        streams.push(stream);
    }
    // Give the server a moment to read what each one sent (it is a figure, not a test).
    tokio::time::sleep(Duration::from_millis(500)).await;
    streams
}

fn half_headers() -> Vec<u8> {
    b"POST /webhooks/orders HTTP/1.1\r\nhost: relay\r\ncontent-type: appli".to_vec()
}

fn half_body() -> Vec<u8> {
    let order = camionback::order_json(
        1,
        "CMD-2025-1",
        &chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    );
    let body =
        serde_json::to_vec(&json!({ "event": "order.created", "order": order })).expect("json");
    let mut request = format!(
        "POST /webhooks/orders HTTP/1.1\r\nhost: relay\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (name, value) in camionback_headers(SECRET, unix_now(), &body) {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    let mut bytes = request.into_bytes();
    bytes.extend_from_slice(&body[..body.len() / 2]);
    bytes
}

async fn slow_clients(case: &str, partial: fn() -> Vec<u8>) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let api = FakeCamionBack::start().await;
    let cloud = FakeCloudApi::start().await;
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
    let mut child = spawn_serve(dir.path(), addr, &api, &cloud);
    wait_until_up(addr).await;
    let streams = open_slow(addr, partial).await;
    let (elapsed, status) = time_sigterm(&mut child).await;
    drop(streams);
    let figure = describe(elapsed, status);
    println!("  {case}: {figure}");
    figure
}

async fn during_start_up() -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let api = FakeCamionBack::start().await;
    api.add_carrier(1, "Transporteur 1", "0612345601", "valide");
    api.set_carriers_delay(Duration::from_secs(3600));
    let cloud = FakeCloudApi::start().await;
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
    let mut child = spawn_serve(dir.path(), addr, &api, &cloud);
    let deadline = Instant::now() + Duration::from_secs(60);
    while api.carrier_requests() == 0 {
        assert!(Instant::now() < deadline, "serve never asked for carriers");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (elapsed, status) = time_sigterm(&mut child).await;
    let figure = describe(elapsed, status);
    println!("  SIGTERM during the first carrier sync (API never answers): {figure}");
    figure
}

#[tokio::main]
async fn main() {
    println!(
        "SIGTERM -> exit of `{} serve` ({} slow connections per case)",
        binary().display(),
        SLOW_CONNECTIONS
    );
    let rows = [
        (
            "100 connections with half their headers",
            slow_clients("100 connections with half their headers", half_headers).await,
        ),
        (
            "100 connections with half their body",
            slow_clients("100 connections with half their body", half_body).await,
        ),
        (
            "SIGTERM during start-up (hung carrier sync)",
            during_start_up().await,
        ),
    ];
    println!();
    let width = rows.iter().map(|(c, _)| c.len()).max().unwrap_or(0);
    for (case, figure) in rows {
        println!("| {case:width$} | {figure} |");
    }
    let _ = std::io::stdout().flush();
}
