//! Meta's status webhooks: subscription check, signature, and statuses that only move forward.

use relay_domain::DeliveryStatus;
use relay_test_support::signing::hmac_sha256_header;
use serde_json::{Value, json};

use crate::helpers::*;

fn statuses(items: &[(&str, &str)]) -> Vec<u8> {
    let statuses: Vec<Value> = items
        .iter()
        .map(|(id, status)| {
            let mut s = json!({ "id": id, "status": status, "timestamp": "1700000000", "recipient_id": "212612345601" });
            if *status == "failed" {
                s["errors"] = json!([{ "code": 131026, "title": "Message undeliverable" }]);
            }
            s
        })
        .collect();
    serde_json::to_vec(&json!({
        "object": "whatsapp_business_account",
        "entry": [{ "id": "WABA", "changes": [{ "field": "messages", "value": {
            "messaging_product": "whatsapp", "statuses": statuses } }] }]
    }))
    .expect("json")
}

async fn post_statuses(app: &TestApp, body: Vec<u8>, secret: &str) -> reqwest::Response {
    app.http
        .post(app.url("/webhooks/whatsapp"))
        .header("content-type", "application/json")
        .header("X-Hub-Signature-256", hmac_sha256_header(secret, &body))
        .body(body)
        .send()
        .await
        .expect("status webhook")
}

#[tokio::test]
async fn meta_subscription_check_echoes_the_challenge_only_for_our_token() {
    let app = spawn_app().await;
    let check = |token: &str| {
        app.http
            .get(app.url("/webhooks/whatsapp"))
            .query(&[
                ("hub.mode", "subscribe"),
                ("hub.verify_token", token),
                ("hub.challenge", "1158201444"),
            ])
            .send()
    };
    let ok = check(VERIFY_TOKEN).await.expect("get");
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.text().await.expect("text"), "1158201444");
    assert_eq!(check("guess").await.expect("get").status(), 403);
    let no_mode = app
        .http
        .get(app.url("/webhooks/whatsapp"))
        .send()
        .await
        .expect("get");
    assert_eq!(no_mode.status(), 403);
}

#[tokio::test]
async fn delivered_and_read_reports_move_deliveries_forward_only() {
    let app = spawn_app().await;
    add_usual_carriers(&app.camionback);
    app.post_order(order(1)).await;
    let rows = app.wait_for_broadcast(1).await;
    let id_of = |carrier: i64| {
        rows.iter()
            .find(|r| r.carrier_id == carrier)
            .and_then(|r| r.message_id.clone())
            .expect("message id stored")
    };
    let (a, b, c) = (id_of(1), id_of(2), id_of(3));

    let body = statuses(&[(&a, "delivered"), (&b, "read"), (&c, "failed")]);
    let response = post_statuses(&app, body, APP_SECRET).await;
    assert_eq!(response.status(), 200);

    // Late and repeated reports: `delivered` after `read`, `failed` after `read`.
    let late = statuses(&[
        (&b, "delivered"),
        (&b, "failed"),
        (&a, "delivered"),
        (&a, "read"),
    ]);
    assert_eq!(post_statuses(&app, late, APP_SECRET).await.status(), 200);

    let rows = app.deliveries_of(1).await;
    let status =
        |carrier: i64| status_of(rows.iter().find(|r| r.carrier_id == carrier).expect("row"));
    assert_eq!(status(1), DeliveryStatus::Read);
    assert_eq!(
        status(2),
        DeliveryStatus::Read,
        "read never goes back to delivered or failed"
    );
    assert_eq!(status(3), DeliveryStatus::Failed);
    let failed = rows.iter().find(|r| r.carrier_id == 3).expect("row");
    assert!(failed.error.as_deref().unwrap_or("").contains("131026"));
}

#[tokio::test]
async fn a_badly_signed_status_report_changes_nothing() {
    let app = spawn_app().await;
    add_usual_carriers(&app.camionback);
    app.post_order(order(1)).await;
    let rows = app.wait_for_broadcast(1).await;
    let id = rows[0].message_id.clone().expect("id");

    let forged = post_statuses(&app, statuses(&[(&id, "read")]), "not-the-app-secret").await;
    assert_eq!(forged.status(), 401);
    let unsigned = app
        .http
        .post(app.url("/webhooks/whatsapp"))
        .body(statuses(&[(&id, "read")]))
        .send()
        .await
        .expect("post");
    assert_eq!(unsigned.status(), 401);
    let garbage = post_statuses(&app, b"{{{".to_vec(), APP_SECRET).await;
    assert_eq!(garbage.status(), 400);

    let rows = app.deliveries_of(1).await;
    assert!(rows.iter().all(|r| status_of(r) == DeliveryStatus::Sent));
}

#[tokio::test]
async fn a_report_that_overtakes_the_send_answer_is_applied_when_the_id_is_stored() {
    let app = spawn_app().await;
    // The fake numbers its ids from wamid.TEST1: the first message will carry this id.
    let body = statuses(&[("wamid.TEST1", "delivered")]);
    assert_eq!(post_statuses(&app, body, APP_SECRET).await.status(), 200);

    app.camionback
        .add_carrier(1, "Transports Atlas", "0612345601", "valide");
    app.post_order(order(1)).await;
    let rows = eventually(std::time::Duration::from_secs(5), || async {
        let rows = app.deliveries_of(1).await;
        (rows.len() == 1 && status_of(&rows[0]) == DeliveryStatus::Delivered).then_some(rows)
    })
    .await;
    assert_eq!(rows[0].message_id.as_deref(), Some("wamid.TEST1"));
}

#[tokio::test]
async fn a_delivery_report_after_a_failure_report_clears_the_old_error() {
    let app = spawn_app().await;
    add_usual_carriers(&app.camionback);
    app.post_order(order(1)).await;
    let rows = app.wait_for_broadcast(1).await;
    let id = rows[0].message_id.clone().expect("id");

    let failed = post_statuses(&app, statuses(&[(&id, "failed")]), APP_SECRET).await;
    assert_eq!(failed.status(), 200);
    let rows = app.deliveries_of(1).await;
    assert!(rows[0].error.as_deref().unwrap_or("").contains("131026"));

    // WhatsApp delivered it after all (a retry on Meta's side): the failure text would lie.
    let delivered = post_statuses(&app, statuses(&[(&id, "delivered")]), APP_SECRET).await;
    assert_eq!(delivered.status(), 200);
    let rows = app.deliveries_of(1).await;
    assert_eq!(status_of(&rows[0]), DeliveryStatus::Delivered);
    assert_eq!(rows[0].error, None);
    assert_eq!(rows[0].error_code, None);
}
