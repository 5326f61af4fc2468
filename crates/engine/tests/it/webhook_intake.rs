//! CamionBack pushes a new order: every validated carrier gets the exact message, once.

use relay_domain::DeliveryStatus;
use relay_engine::store::HistoryFilter;
use relay_test_support::signing::{camionback_headers, unix_now};
use serde_json::{Value, json};

use crate::helpers::*;

const EXPECTED_MESSAGE: &str = "🚛 *Nouvelle commande disponible sur CamionBack !*

📍 Ville de départ : Casablanca
🎯 Ville d’arrivée : Marrakech
🗓️ Date souhaitée : 03/11/2025
💰 Prix proposé : 4 500 MAD
📦 Type de marchandise : Palettes

👉 Cliquez ici pour voir la commande :
🔗 https://camionback.com/commande/123

Ne laissez pas votre camion revenir à vide !
🌐 www.camionback.com";

#[tokio::test]
async fn a_signed_order_webhook_reaches_every_validated_carrier_with_the_exact_message() {
    let app = spawn_app().await;
    add_usual_carriers(&app.camionback);

    let response = app.post_order(order(123)).await;
    assert_eq!(response.status(), 202);
    let answer: Value = response.json().await.expect("json answer");
    assert_eq!(answer["status"], "accepted");

    let rows = app.wait_for_broadcast(123).await;
    assert_eq!(
        rows.len(),
        3,
        "only the three validated carriers get a delivery"
    );
    assert!(rows.iter().all(|r| status_of(r) == DeliveryStatus::Sent));
    assert!(rows.iter().all(|r| {
        r.message_id
            .as_deref()
            .is_some_and(|id| id.starts_with("wamid."))
    }));

    let received = app.cloud.received();
    let mut recipients: Vec<&str> = received.iter().map(|r| r.to.as_str()).collect();
    recipients.sort();
    assert_eq!(recipients, ["212612345601", "212612345602", "212612345603"]);
    for message in &received {
        assert_eq!(message.body["type"], "text");
        assert_eq!(message.body["text"]["preview_url"], true);
        assert_eq!(message.text(), Some(EXPECTED_MESSAGE));
    }
}

#[tokio::test]
async fn the_same_order_twice_is_broadcast_once() {
    let app = spawn_app().await;
    add_usual_carriers(&app.camionback);

    assert_eq!(app.post_order(order(7)).await.status(), 202);
    let second = app.post_order(order(7)).await;
    assert_eq!(
        second.status(),
        202,
        "a duplicate is acknowledged so CamionBack stops retrying"
    );
    let answer: Value = second.json().await.expect("json");
    assert_eq!(answer["status"], "duplicate");

    app.wait_for_broadcast(7).await;
    // Give a wrongly queued second broadcast the time to show up.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(
        app.cloud.received().len(),
        3,
        "one message per validated carrier"
    );
    assert_eq!(app.deliveries_of(7).await.len(), 3);
}

/// Posts a request and checks it was refused with `status` and stored nothing.
async fn assert_refused(
    app: &TestApp,
    body: Vec<u8>,
    headers: Vec<(String, String)>,
    status: u16,
    code: &str,
) {
    let response = app.post_order_raw(body, &headers).await;
    assert_eq!(response.status(), status);
    let answer: Value = response.json().await.expect("json error body");
    assert_eq!(answer["error"]["code"], code, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );
    assert!(
        app.history(HistoryFilter {
            limit: 10,
            ..HistoryFilter::default()
        })
        .await
        .is_empty(),
        "a refused request stores nothing"
    );
    assert!(
        app.store()
            .find_order("500")
            .await
            .expect("query")
            .is_none()
    );
}

fn body_of(order: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({ "event": "order.created", "order": order })).expect("json")
}

#[tokio::test]
async fn bad_signatures_stale_timestamps_garbage_and_huge_bodies_are_refused() {
    let app = spawn_app().await;
    add_usual_carriers(&app.camionback);
    let body = body_of(order(500));

    // Signed with another secret.
    let forged = camionback_headers("not-the-secret", unix_now(), &body);
    assert_refused(&app, body.clone(), forged.to_vec(), 401, "bad_signature").await;

    // No signature at all.
    assert_refused(&app, body.clone(), vec![], 401, "bad_signature").await;

    // Correctly signed, but six minutes old (a replay).
    let stale = camionback_headers(WEBHOOK_SECRET, unix_now() - 360, &body);
    assert_refused(&app, body.clone(), stale.to_vec(), 401, "bad_signature").await;

    // Signed body altered in transit.
    let headers = camionback_headers(WEBHOOK_SECRET, unix_now(), &body);
    let mut tampered = order(500);
    tampered["prix"] = json!(1);
    assert_refused(
        &app,
        body_of(tampered),
        headers.to_vec(),
        401,
        "bad_signature",
    )
    .await;

    // Signed, but not JSON.
    let garbage = b"{not json".to_vec();
    let headers = camionback_headers(WEBHOOK_SECRET, unix_now(), &garbage);
    assert_refused(&app, garbage, headers.to_vec(), 400, "malformed").await;

    // Signed JSON, but the order lacks its destination city.
    let mut incomplete = order(500);
    incomplete
        .as_object_mut()
        .expect("object")
        .remove("ville_arrivee");
    let body = body_of(incomplete);
    let headers = camionback_headers(WEBHOOK_SECRET, unix_now(), &body);
    let response = app.post_order_raw(body, &headers).await;
    assert_eq!(response.status(), 400);
    let answer: Value = response.json().await.expect("json");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("ville_arrivee"),
        "the error says which field: {answer}"
    );

    // Signed, with a date the message cannot show.
    let mut bad_date = order(500);
    bad_date["date_souhaitee"] = json!("demain");
    let body = body_of(bad_date);
    let headers = camionback_headers(WEBHOOK_SECRET, unix_now(), &body);
    assert_refused(&app, body, headers.to_vec(), 400, "malformed").await;

    // Over 64 KiB.
    let mut huge = order(500);
    huge["type_marchandise"] = json!("x".repeat(70 * 1024));
    let body = body_of(huge);
    let headers = camionback_headers(WEBHOOK_SECRET, unix_now(), &body);
    assert_refused(&app, body, headers.to_vec(), 413, "payload_too_large").await;

    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(
        app.cloud.received().is_empty(),
        "nothing was sent for refused requests"
    );
}

#[tokio::test]
async fn without_a_webhook_secret_every_webhook_is_refused() {
    let app = spawn_app_with(&[("RELAY_WEBHOOK_SECRET", "")]).await;
    add_usual_carriers(&app.camionback);
    let body = body_of(order(500));
    let headers = camionback_headers("anything", unix_now(), &body);
    let response = app.post_order_raw(body, &headers).await;
    assert_eq!(response.status(), 401);
    let answer: Value = response.json().await.expect("json");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("RELAY_WEBHOOK_SECRET"),
        "{answer}"
    );
}

#[tokio::test]
async fn other_events_are_acknowledged_and_ignored() {
    let app = spawn_app().await;
    add_usual_carriers(&app.camionback);
    let body =
        serde_json::to_vec(&json!({ "event": "order.updated", "order": order(9) })).expect("json");
    let headers = camionback_headers(WEBHOOK_SECRET, unix_now(), &body);
    let response = app.post_order_raw(body, &headers).await;
    assert_eq!(response.status(), 202);
    let answer: Value = response.json().await.expect("json");
    assert_eq!(answer["status"], "ignored");
    assert!(app.store().find_order("9").await.expect("query").is_none());
}

#[tokio::test]
async fn an_order_that_is_not_open_is_recorded_but_not_broadcast() {
    let app = spawn_app().await;
    add_usual_carriers(&app.camionback);
    let mut closed = order(11);
    closed["statut"] = json!("annulee");
    assert_eq!(app.post_order(closed).await.status(), 202);
    eventually(std::time::Duration::from_secs(5), || async {
        app.store()
            .get_order(relay_domain::OrderId(11))
            .await
            .expect("query")
            .and_then(|o| o.fanned_out_at)
    })
    .await;
    assert!(app.deliveries_of(11).await.is_empty());
    assert!(app.cloud.received().is_empty());
}
