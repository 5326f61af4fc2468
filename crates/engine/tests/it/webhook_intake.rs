//! CamionBack pushes a new order: every validated carrier gets the exact message, once.

use relay_domain::DeliveryStatus;
use relay_engine::store::HistoryFilter;
use relay_test_support::camionback;
use relay_test_support::signing::{camionback_headers, unix_now};
use serde_json::{Value, json};

use crate::helpers::*;

/// The spec's message for order 123 as [`order`] publishes it.
fn expected_message(order: &Value) -> String {
    format!(
        "🚛 *Nouvelle commande disponible sur CamionBack !*

📍 Ville de départ : Casablanca
🎯 Ville d’arrivée : Marrakech
🗓️ Date souhaitée : {}
💰 Prix proposé : 4 500 MAD
📦 Type de marchandise : Palettes

👉 Cliquez ici pour voir la commande :
🔗 https://camionback.com/commande/123

Ne laissez pas votre camion revenir à vide !
🌐 www.camionback.com",
        camionback::french_date(order)
    )
}

#[tokio::test]
async fn a_signed_order_webhook_reaches_every_validated_carrier_with_the_exact_message() {
    let app = spawn_app().await;
    add_usual_carriers(&app.camionback);

    let posted = order(123);
    let response = app.post_order(posted.clone()).await;
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
        assert_eq!(message.text(), Some(expected_message(&posted).as_str()));
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

    // An order posted after the duplicate, broadcast in full: whatever the duplicate had
    // wrongly queued would have been queued and sent by then.
    assert_eq!(app.post_order(order(8)).await.status(), 202);
    app.wait_for_broadcast(8).await;
    app.wait_for_broadcast(7).await;
    assert_eq!(
        sent_for(&app, 7).len(),
        3,
        "one message per validated carrier"
    );
    assert_eq!(app.deliveries_of(7).await.len(), 3);
}

/// The messages the fake Cloud API took for `order_id` (its link ends the line).
fn sent_for(app: &TestApp, order_id: i64) -> Vec<String> {
    let link = format!("/commande/{order_id}\n");
    app.cloud
        .received()
        .iter()
        .filter(|r| r.text().is_some_and(|text| text.contains(&link)))
        .map(|r| r.to.clone())
        .collect()
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
    assert_refused(&app, body, headers.to_vec(), 400, "invalid_order").await;

    // Over 64 KiB.
    let mut huge = order(500);
    huge["type_marchandise"] = json!("x".repeat(70 * 1024));
    let body = body_of(huge);
    let headers = camionback_headers(WEBHOOK_SECRET, unix_now(), &body);
    assert_refused(&app, body, headers.to_vec(), 413, "payload_too_large").await;

    // A valid order after them, broadcast in full: anything a refused request had queued
    // would have been sent by then.
    assert_eq!(app.post_order(order(501)).await.status(), 202);
    app.wait_for_broadcast(501).await;
    assert_eq!(
        app.cloud.received().len(),
        sent_for(&app, 501).len(),
        "nothing was sent for refused requests"
    );
    assert_eq!(sent_for(&app, 501).len(), 3);
}

#[tokio::test]
async fn timestamps_at_the_ends_of_the_integer_range_are_refused_not_crashed_on() {
    let app = spawn_app().await;
    add_usual_carriers(&app.camionback);
    let body = body_of(order(500));
    for timestamp in [i64::MIN, i64::MAX, i64::MIN + 1] {
        let headers = camionback_headers(WEBHOOK_SECRET, timestamp, &body);
        assert_refused(&app, body.clone(), headers.to_vec(), 401, "bad_signature").await;
    }
    // The relay still answers: nothing panicked.
    assert_eq!(app.post_order(order(501)).await.status(), 202);
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
    let body = serde_json::to_vec(&json!({ "event": "carrier.updated", "order": order(9) }))
        .expect("json");
    let headers = camionback_headers(WEBHOOK_SECRET, unix_now(), &body);
    let response = app.post_order_raw(body, &headers).await;
    assert_eq!(response.status(), 202);
    let answer: Value = response.json().await.expect("json");
    assert_eq!(answer["status"], "ignored");
    assert!(app.store().find_order("9").await.expect("query").is_none());

    // An update of an order still open is no new order either: nothing is stored or sent.
    let body =
        serde_json::to_vec(&json!({ "event": "order.updated", "order": order(9) })).expect("json");
    let headers = camionback_headers(WEBHOOK_SECRET, unix_now(), &body);
    let answer: Value = app
        .post_order_raw(body, &headers)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(answer, json!({ "status": "open", "order_id": 9 }));
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

/// Posts order 500 changed by `change`, checks it was refused with 400 `invalid_order` and
/// stored nothing, and returns the error message.
async fn refused_order(app: &TestApp, change: impl FnOnce(&mut Value)) -> String {
    let mut bad = order(500);
    change(&mut bad);
    let body = body_of(bad);
    let headers = camionback_headers(WEBHOOK_SECRET, unix_now(), &body);
    let response = app.post_order_raw(body.clone(), &headers).await;
    assert_eq!(response.status(), 400);
    let answer: Value = response.json().await.expect("json error body");
    assert_eq!(answer["error"]["code"], "invalid_order", "{answer}");
    assert!(
        app.store()
            .find_order("500")
            .await
            .expect("query")
            .is_none(),
        "a refused order is not stored"
    );
    answer["error"]["message"]
        .as_str()
        .expect("message")
        .to_string()
}

#[tokio::test]
async fn an_order_that_would_put_a_link_or_a_wall_of_text_in_our_message_is_refused_naming_the_field()
 {
    let app = spawn_app().await;
    add_usual_carriers(&app.camionback);

    for (field, value) in [
        ("ville_depart", "evil.ma/x"),
        ("ville_depart", "Casablanca https://camionback-paiement.com"),
        ("ville_arrivee", "www.camionback-promo.com"),
        ("type_marchandise", "Palettes, infos sur bit.ly/abc"),
        ("reference", "wa.me/212600000000"),
    ] {
        let message = refused_order(&app, |o| o[field] = json!(value)).await;
        assert!(
            message.contains(&format!("« {field} »")) && message.contains("lien"),
            "{field} = {value}: {message}"
        );
    }

    let message = refused_order(&app, |o| o["type_marchandise"] = json!("x".repeat(60_000))).await;
    assert!(
        message.contains("type_marchandise") && message.contains("200 au plus"),
        "{message}"
    );
    let message = refused_order(&app, |o| {
        o["ville_arrivee"] = json!("Marrakech ".repeat(20))
    })
    .await;
    assert!(message.contains("ville_arrivee"), "{message}");

    let message = refused_order(&app, |o| o["prix"] = json!(1e20)).await;
    assert!(message.contains("prix"), "{message}");
    let message = refused_order(&app, |o| o["prix"] = json!(0)).await;
    assert!(message.contains("prix"), "{message}");

    let in_three_years = (chrono::Utc::now().date_naive() + chrono::Days::new(3 * 365))
        .format("%Y-%m-%d")
        .to_string();
    let message = refused_order(&app, |o| o["date_souhaitee"] = json!(in_three_years)).await;
    assert!(message.contains("date_souhaitee"), "{message}");
    let message = refused_order(&app, |o| o["date_souhaitee"] = json!("2019-05-01")).await;
    assert!(message.contains("date_souhaitee"), "{message}");

    app.post_order(order(501)).await;
    app.wait_for_broadcast(501).await;
    assert_eq!(
        app.cloud.received().len(),
        3,
        "only the valid order was sent, to the three validated carriers"
    );
}

#[tokio::test]
async fn line_breaks_control_and_bidi_characters_never_reach_the_message() {
    let app = spawn_app().await;
    app.camionback
        .add_carrier(1, "Transports Atlas", "0612345601", "valide");
    let mut dirty = order(123);
    dirty["ville_depart"] = json!("Casa\u{0}blanca\u{202E}");
    dirty["ville_arrivee"] = json!(format!("Marrakech{}", "\n".repeat(10_000)));
    dirty["type_marchandise"] = json!("Palettes\u{200B}\r\n\r\n2026-01-01T00:00:00Z ERROR faux");
    dirty["reference"] = json!("CMD-2025-123\nINFO annulée");
    assert_eq!(app.post_order(dirty.clone()).await.status(), 202);
    app.wait_for_broadcast(123).await;

    let received = app.cloud.received();
    let text = received[0].text().expect("a text message");
    let clean = order(123);
    assert_eq!(
        text.lines().count(),
        expected_message(&clean).lines().count(),
        "not one line more than the template's: {text}"
    );
    assert!(text.contains("📍 Ville de départ : Casablanca\n"), "{text}");
    assert!(text.contains("🎯 Ville d’arrivée : Marrakech\n"), "{text}");
    assert!(
        text.contains("📦 Type de marchandise : Palettes 2026-01-01T00:00:00Z ERROR faux\n"),
        "{text}"
    );
    assert!(
        !text.contains(['\u{0}', '\u{202E}', '\u{200B}', '\r']),
        "{text:?}"
    );
    let stored = app
        .store()
        .find_order("123")
        .await
        .expect("query")
        .expect("stored");
    assert_eq!(
        stored.order.reference, "CMD-2025-123 INFO annulée",
        "one line: it cannot forge a line of the logs"
    );
}

#[tokio::test]
async fn a_customer_cannot_format_our_message_nor_inject_a_placeholder() {
    let app = spawn_app().await;
    app.camionback
        .add_carrier(1, "Transports Atlas", "0612345601", "valide");
    let mut styled = order(123);
    styled["ville_depart"] = json!("*GRATUIT* {{lien_commande}}");
    styled["type_marchandise"] = json!("~4500~ _payez d'abord_ ```x```");
    assert_eq!(app.post_order(styled).await.status(), 202);
    app.wait_for_broadcast(123).await;

    let received = app.cloud.received();
    let text = received[0].text().expect("a text message");
    assert!(
        text.contains("📍 Ville de départ : ∗GRATUIT∗ {{lienˍcommande}}\n"),
        "{text}"
    );
    assert!(
        text.contains("📦 Type de marchandise : ∼4500∼ ˍpayez d'abordˍ ˋˋˋxˋˋˋ\n"),
        "{text}"
    );
    assert_eq!(
        text.matches("https://").count(),
        1,
        "the order's own link is the only one: {text}"
    );
    assert_eq!(
        text.matches('*').count(),
        2,
        "only the template's bold title"
    );
}

#[tokio::test]
async fn an_order_whose_status_was_sent_empty_is_recorded_but_not_broadcast() {
    let app = spawn_app().await;
    add_usual_carriers(&app.camionback);
    let mut empty = order(12);
    empty["statut"] = json!("");
    assert_eq!(app.post_order(empty).await.status(), 202);
    let mut absent = order(13);
    absent.as_object_mut().expect("object").remove("statut");
    assert_eq!(app.post_order(absent).await.status(), 202);

    assert_eq!(
        app.wait_for_broadcast(13).await.len(),
        3,
        "an order without a status is open"
    );
    let stored = eventually(std::time::Duration::from_secs(5), || async {
        app.store()
            .get_order(relay_domain::OrderId(12))
            .await
            .expect("query")
            .filter(|o| o.fanned_out_at.is_some())
    })
    .await;
    assert_eq!(stored.order.statut.as_deref(), Some(""));
    assert!(
        app.deliveries_of(12).await.is_empty(),
        "an empty status is not open"
    );
    assert_eq!(app.cloud.received().len(), 3);
}
