//! Polling the CamionBack API: the catch-up after a stop, the first-start look-back, and an
//! API that is down or answers garbage.

use std::time::Duration;

use relay_domain::DeliveryStatus;
use relay_test_support::camionback::{Outage, order_json};

use crate::helpers::*;

fn iso(minutes_ago: i64) -> String {
    (chrono::Utc::now() - chrono::Duration::minutes(minutes_ago))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[tokio::test]
async fn orders_created_while_the_relay_was_stopped_are_broadcast_after_it_starts() {
    let mut app = world(&[("CAMIONBACK_POLL_SECS", "1")]).await.start().await;
    add_usual_carriers(&app.camionback);
    app.camionback
        .add_order(order_json(40, "CMD-2025-40", &iso(1)));
    app.wait_for_broadcast(40).await;
    app.stop().await;

    // While the relay is stopped, two orders are created.
    app.camionback
        .add_order(order_json(41, "CMD-2025-41", &iso(0)));
    app.camionback
        .add_order(order_json(42, "CMD-2025-42", &iso(0)));
    let app = app.start().await;

    for id in [41, 42] {
        let rows = app.wait_for_broadcast(id).await;
        assert_eq!(rows.len(), 3);
        assert!(rows.iter().all(|r| status_of(r) == DeliveryStatus::Sent));
    }
    assert_eq!(
        app.deliveries_of(40).await.len(),
        3,
        "the old order was not broadcast again"
    );
    assert_eq!(app.cloud.received().len(), 9);
    let queries = app.camionback.order_queries();
    assert!(
        queries.iter().any(|q| q.contains("since_id=40")),
        "after the restart the relay asks for what came after the last order it saw: {queries:?}"
    );
}

#[tokio::test]
async fn the_first_start_only_looks_back_the_backfill_window() {
    let app = world(&[
        ("CAMIONBACK_POLL_SECS", "1"),
        ("CAMIONBACK_BACKFILL_MINUTES", "10"),
    ])
    .await;
    add_usual_carriers(&app.camionback);
    app.camionback
        .add_order(order_json(1, "CMD-OLD", &iso(60 * 24)));
    app.camionback
        .add_order(order_json(2, "CMD-RECENT", &iso(3)));
    let app = app.start().await;

    app.wait_for_broadcast(2).await;
    assert!(
        app.store()
            .find_order("CMD-OLD")
            .await
            .expect("query")
            .is_none(),
        "a day-old order is not blasted to every carrier"
    );
    let first = app
        .camionback
        .order_queries()
        .first()
        .cloned()
        .unwrap_or_default();
    assert!(first.contains("created_after="), "{first}");
}

#[tokio::test]
async fn an_api_that_is_down_or_answers_garbage_is_retried_and_nothing_crashes() {
    let app = world(&[("CAMIONBACK_POLL_SECS", "1")]).await;
    add_usual_carriers(&app.camionback);
    app.camionback.set_orders_outage(Outage::Garbage);
    let app = app.start().await;

    // The poller records the failure and keeps going.
    eventually(Duration::from_secs(5), || async {
        app.store()
            .get_state(relay_engine::store::StateKey::LastPollError)
            .await
            .expect("state")
    })
    .await;
    // And tries again against an API that is down.
    let asked = app.camionback.order_queries().len();
    app.camionback.set_orders_outage(Outage::Down);
    eventually(Duration::from_secs(30), || async {
        (app.camionback.order_queries().len() > asked).then_some(())
    })
    .await;
    let health = app
        .http
        .get(app.url("/healthz"))
        .send()
        .await
        .expect("healthz");
    assert_eq!(health.status(), 200, "the relay is still up");

    app.camionback.set_orders_outage(Outage::None);
    app.camionback
        .add_order(order_json(5, "CMD-2025-5", &iso(0)));
    let rows = app.wait_for_broadcast(5).await;
    assert_eq!(
        rows.len(),
        3,
        "once the API is back, the order is broadcast"
    );
    let metrics = app.metrics().await;
    assert!(metrics.contains("relay_poll_failing 0"), "{metrics}");
}

#[tokio::test]
async fn an_unreadable_order_in_a_poll_is_skipped_without_blocking_the_next_ones() {
    let app = world(&[("CAMIONBACK_POLL_SECS", "1")]).await;
    add_usual_carriers(&app.camionback);
    let mut broken = order_json(10, "CMD-BROKEN", &iso(1));
    broken["date_souhaitee"] = serde_json::json!("bientôt");
    app.camionback.add_order(broken);
    app.camionback
        .add_order(order_json(11, "CMD-2025-11", &iso(1)));
    let app = app.start().await;

    assert_eq!(app.wait_for_broadcast(11).await.len(), 3);
    assert!(app.store().find_order("10").await.expect("query").is_none());
}

#[tokio::test]
async fn a_polled_order_that_breaks_the_order_rules_is_skipped_and_the_next_one_is_broadcast() {
    let app = world(&[("CAMIONBACK_POLL_SECS", "1")]).await;
    add_usual_carriers(&app.camionback);
    let mut phishing = order_json(20, "CMD-2025-20", &iso(1));
    phishing["ville_depart"] = serde_json::json!("Casablanca evil.ma/paiement");
    app.camionback.add_order(phishing);
    let mut absurd = order_json(21, "CMD-2025-21", &iso(1));
    absurd["prix"] = serde_json::json!(1e20);
    app.camionback.add_order(absurd);
    app.camionback
        .add_order(order_json(22, "CMD-2025-22", &iso(1)));
    let app = app.start().await;

    assert_eq!(app.wait_for_broadcast(22).await.len(), 3);
    for skipped in ["20", "21"] {
        assert!(
            app.store()
                .find_order(skipped)
                .await
                .expect("query")
                .is_none(),
            "order {skipped} breaks the rules: not stored, not sent"
        );
    }
    assert_eq!(app.cloud.received().len(), 3, "only order 22 was sent");
}
