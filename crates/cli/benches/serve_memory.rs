//! Peak RSS of `camionback-relay serve` while broadcasting to 10,000 carriers.
//!
//! Run with `cargo bench -p camionback-relay --bench serve_memory`. This program measures and prints;
//! it never fails on a timing.
// A bench is a test program: a failed set-up stops it with its reason.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use relay_test_support::FakeCloudApi;

use common::fixtures::*;
use common::*;

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
    common::run(serve_peak_rss).await;
}
