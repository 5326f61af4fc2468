//! Sending: retries of transient errors, permanent errors, fairness between orders, and an
//! account that cannot send. The throttle's gaps and the retry times are checked to the
//! millisecond on a manual clock in the dispatcher's own tests (`dispatcher/tests.rs`).

use std::time::Duration;

use relay_domain::DeliveryStatus;
use relay_test_support::Reply;

use crate::helpers::*;

#[tokio::test]
async fn permanent_errors_are_recorded_once_and_the_broadcast_goes_on() {
    let app = spawn_app().await;
    add_usual_carriers(&app.camionback);
    app.cloud.script(
        "212612345601",
        vec![Reply::meta(400, 131026, "Message undeliverable")],
    );
    app.cloud.script(
        "212612345602",
        vec![Reply::meta(
            400,
            100,
            "Invalid parameter: phone number is not valid",
        )],
    );
    app.post_order(order(1)).await;
    let rows = app.wait_for_broadcast(1).await;

    let atlas = rows.iter().find(|r| r.carrier_id == 1).expect("row");
    assert_eq!(status_of(atlas), DeliveryStatus::Failed);
    assert_eq!(atlas.attempts, 1, "a permanent error is not retried");
    assert_eq!(atlas.error_code.as_deref(), Some("131026"));
    assert!(
        atlas
            .error
            .as_deref()
            .unwrap_or("")
            .contains("undeliverable")
    );

    let rif = rows.iter().find(|r| r.carrier_id == 2).expect("row");
    assert_eq!(status_of(rif), DeliveryStatus::InvalidNumber);

    let souss = rows.iter().find(|r| r.carrier_id == 3).expect("row");
    assert_eq!(
        status_of(souss),
        DeliveryStatus::Sent,
        "one failure never stops the rest"
    );
    assert_eq!(app.cloud.received().len(), 3);
}

#[tokio::test]
async fn transient_errors_are_retried_then_succeed_or_fail_after_three_attempts() {
    let app = spawn_app().await;
    app.camionback
        .add_carrier(1, "Retry Then OK", "0612345601", "valide");
    app.camionback
        .add_carrier(2, "Always Down", "0612345602", "valide");
    // The fake answers errors with `Retry-After: 1`, which the relay honours; without it the
    // relay waits 5 s then 20 s. Each answer says the message was not taken: Meta's own
    // error codes, a 429, a 503.
    app.cloud.script(
        "212612345601",
        vec![Reply::meta(429, 130429, "Rate limit hit"), Reply::Http(503)],
    );
    app.cloud.script(
        "212612345602",
        vec![
            Reply::meta(500, 131000, "Something went wrong"),
            Reply::Http(503),
            Reply::meta(503, 2, "Temporarily unavailable"),
            Reply::Http(503),
        ],
    );
    app.post_order(order(1)).await;

    let rows = app.wait_for_broadcast(1).await;
    let ok = rows.iter().find(|r| r.carrier_id == 1).expect("row");
    assert_eq!(status_of(ok), DeliveryStatus::Sent);
    assert_eq!(ok.attempts, 3);
    let down = rows.iter().find(|r| r.carrier_id == 2).expect("row");
    assert_eq!(status_of(down), DeliveryStatus::Failed);
    assert_eq!(down.attempts, 3, "three attempts at most");
    assert!(
        down.error.as_deref().unwrap_or("").contains("3 tentatives"),
        "{:?}",
        down.error
    );
    assert_eq!(
        app.cloud
            .received()
            .iter()
            .filter(|r| r.to == "212612345602")
            .count(),
        3
    );
}

#[tokio::test]
async fn a_refused_token_pauses_sending_without_failing_deliveries() {
    let app = spawn_app_with(&[("WHATSAPP_TOKEN", "wrong-token")]).await;
    add_usual_carriers(&app.camionback);
    app.post_order(order(1)).await;
    // Once the pause is recorded the dispatcher waits its 5 minutes before trying again
    // (checked on a manual clock in `dispatcher/tests.rs`).
    eventually(Duration::from_secs(5), || async {
        app.metrics()
            .await
            .lines()
            .any(|line| line == "relay_sending_paused 1")
            .then_some(())
    })
    .await;

    assert_eq!(
        app.cloud.rejected_auth(),
        1,
        "sending paused after the first refusal"
    );
    let rows = app.deliveries_of(1).await;
    assert_eq!(rows.len(), 3);
    assert!(
        rows.iter()
            .all(|r| status_of(r) == DeliveryStatus::Queued && r.attempts == 0),
        "nothing is marked failed because the account cannot send: {:?}",
        rows.iter()
            .map(|r| (&r.status, r.attempts))
            .collect::<Vec<_>>()
    );
    let metrics = app.metrics().await;
    // The value line, not the HELP line that also starts with these words.
    assert!(
        metrics.lines().any(|line| line == "relay_sending_paused 1"),
        "{metrics}"
    );
    let health: serde_json::Value = app
        .http
        .get(app.url("/healthz"))
        .send()
        .await
        .expect("healthz")
        .json()
        .await
        .expect("json");
    assert!(
        health["sending_paused"]
            .as_str()
            .unwrap_or("")
            .contains("190"),
        "{health}"
    );
    assert!(
        !health.to_string().contains("wrong-token"),
        "the token never shows"
    );
}

#[tokio::test]
async fn several_orders_at_once_are_served_in_turn() {
    let app = world(&[("RELAY_THROTTLE_MS", "30")]).await;
    for id in 1..=10 {
        app.camionback
            .add_carrier(id, &format!("T{id}"), &format!("06123456{id:02}"), "valide");
    }
    let app = app.start().await;
    app.post_order(order(100)).await;
    app.post_order(order(200)).await;
    app.wait_for_broadcast(100).await;
    app.wait_for_broadcast(200).await;

    let orders: Vec<String> = app
        .cloud
        .received()
        .iter()
        .map(|r| {
            r.text()
                .unwrap_or("")
                .rsplit('/')
                .next()
                .unwrap_or("")
                .lines()
                .next()
                .unwrap_or("")
                .to_string()
        })
        .collect();
    // Once both orders are queued, neither waits for the other to finish.
    let first_200 = orders
        .iter()
        .position(|o| o == "200")
        .expect("order 200 sent");
    let last_100 = orders
        .iter()
        .rposition(|o| o == "100")
        .expect("order 100 sent");
    assert!(
        first_200 < last_100,
        "order 200 started before order 100 finished: {orders:?}"
    );
}

#[tokio::test]
async fn with_an_approved_template_the_order_fields_are_sent_as_its_parameters() {
    let app = spawn_app_with(&[
        ("WHATSAPP_TEMPLATE", "nouvelle_commande"),
        ("WHATSAPP_TEMPLATE_LANG", "fr"),
    ])
    .await;
    app.camionback
        .add_carrier(1, "Transports Atlas", "0612345601", "valide");
    let mut big = order(321);
    big["prix"] = serde_json::json!(12500.5);
    app.post_order(big.clone()).await;
    app.wait_for_broadcast(321).await;

    let received = app.cloud.received();
    assert_eq!(received.len(), 1);
    let body = &received[0].body;
    assert_eq!(body["type"], "template");
    assert_eq!(body["template"]["name"], "nouvelle_commande");
    assert_eq!(body["template"]["language"]["code"], "fr");
    let parameters: Vec<&str> = body["template"]["components"][0]["parameters"]
        .as_array()
        .expect("parameters")
        .iter()
        .map(|p| p["text"].as_str().expect("text parameter"))
        .collect();
    assert_eq!(
        parameters,
        [
            "Casablanca",
            "Marrakech",
            relay_test_support::camionback::french_date(&big).as_str(),
            "12 500,50",
            "Palettes",
            "https://camionback.com/commande/321"
        ]
    );
}
