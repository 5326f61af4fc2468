//! The dispatch overhead per message beyond the throttle (500 carriers, throttle 0 and 5 ms),
//! and its parts measured apart: the database work of one delivery, one HTTP round trip to
//! the fake Cloud API, a zero-length timer wait.
//!
//! Run with `cargo bench -p camionback-relay --bench dispatch`. This program measures and prints;
//! it never fails on a timing.
// A bench is a test program: a failed set-up stops it with its reason.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use relay_engine::Store;
use relay_engine::clock::now_ms;
use relay_engine::store::OrderSource;
use relay_test_support::FakeCloudApi;
use relay_test_support::cloud_api;
use serde_json::json;

use common::fixtures::*;
use common::*;

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
    let carriers = validated_carriers(N);
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
            .claim_next(last, now_ms(), None)
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
        "{}/v25.0/{}/messages",
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
        "{}/v25.0/{}/messages",
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

#[tokio::main]
async fn main() {
    common::run(dispatch_overhead).await;
}
