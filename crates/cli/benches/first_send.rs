//! Webhook received -> first send started: the real engine in-process, the fakes on
//! 127.0.0.1, 30 orders to 10 carriers (and the carrier sync it runs before each fan-out).
//!
//! Run with `cargo bench -p camionback-relay --bench first_send`. This program measures and prints;
//! it never fails on a timing.
// A bench is a test program: a failed set-up stops it with its reason.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use relay_test_support::FakeCloudApi;

use common::fixtures::*;
use common::*;

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

#[tokio::main]
async fn main() {
    common::run(webhook_to_first_send).await;
}
