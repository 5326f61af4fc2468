//! Queueing one order for 10,000 carriers (`Store::fan_out`), and the carrier list's
//! replacement it follows.
//!
//! Run with `cargo bench -p camionback-relay --bench fan_out`. This program measures and prints;
//! it never fails on a timing.
// A bench is a test program: a failed set-up stops it with its reason.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Instant;

use relay_engine::Store;
use relay_engine::clock::now_ms;
use relay_engine::store::OrderSource;

use common::fixtures::*;
use common::*;

async fn fan_out_10k(report: &mut Report) {
    const CARRIERS: usize = 10_000;
    const RUNS: i64 = 5;
    println!("3. mise en file d'une commande pour {CARRIERS} transporteurs ({RUNS} essais)");
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&dir.path().join("relay.db"))
        .await
        .expect("store opens");
    let carriers = validated_carriers(CARRIERS);
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

#[tokio::main]
async fn main() {
    common::run(fan_out_10k).await;
}
