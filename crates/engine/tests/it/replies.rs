//! Carriers' answers on the Cloud API, as Meta posts them to `POST /webhooks/whatsapp`: stored
//! once, signed or refused; which order each is about (button payload, quoted broadcast, the
//! last order sent within the window, none); interest and STOP; and their forward to CamionBack
//! through the durable queue, with the API down, refusing, off, and across a restart.

use std::time::Duration;

use relay_engine::store::{Attribution, ForwardState, ReplyFilter, ReplyRow};
use relay_test_support::camionback::ReplyPost;
use relay_test_support::signing::hmac_sha256_header;
use serde_json::{Value, json};

use crate::helpers::*;

/// Transports Atlas (carrier 1) as WhatsApp names them.
const ATLAS: &str = "212612345601";
const ATLAS_USER_ID: &str = "MA.1348820196851234";

/// A `messages` notification as Meta documents it: one message from `from`, with the contact's
/// business-scoped user id when given.
fn notification(from: &str, user_id: Option<&str>, message: Value) -> Value {
    let mut contact = json!({ "profile": { "name": "Transports Atlas" }, "wa_id": from });
    if let Some(user_id) = user_id {
        contact["user_id"] = json!(user_id);
    }
    let mut message = message;
    message["from"] = json!(from);
    message["timestamp"] = json!(chrono::Utc::now().timestamp().to_string());
    json!({
        "object": "whatsapp_business_account",
        "entry": [{ "id": "102290129340398", "changes": [{ "field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {
                "display_phone_number": "212664373534",
                "phone_number_id": relay_test_support::cloud_api::PHONE_NUMBER_ID
            },
            "contacts": [contact],
            "messages": [message]
        } }] }]
    })
}

fn text(id: &str, body: &str) -> Value {
    json!({ "id": id, "type": "text", "text": { "body": body } })
}

fn quoting(mut message: Value, quoted: &str) -> Value {
    message["context"] = json!({ "from": "212664373534", "id": quoted });
    message
}

/// A tap on a template's quick-reply button.
fn button(id: &str, label: &str, payload: &str, template_message: &str) -> Value {
    json!({
        "id": id, "type": "button",
        "context": { "from": "212664373534", "id": template_message },
        "button": { "text": label, "payload": payload }
    })
}

/// A tap on an interactive message's reply button.
fn button_reply(id: &str, reply_id: &str, title: &str) -> Value {
    json!({
        "id": id, "type": "interactive",
        "interactive": { "type": "button_reply", "button_reply": { "id": reply_id, "title": title } }
    })
}

async fn post_signed(app: &TestApp, body: &Value, secret: Option<&str>) -> reqwest::Response {
    let body = serde_json::to_vec(body).expect("json");
    let mut request = app
        .http
        .post(app.url("/webhooks/whatsapp"))
        .header("content-type", "application/json");
    if let Some(secret) = secret {
        request = request.header("X-Hub-Signature-256", hmac_sha256_header(secret, &body));
    }
    request.body(body).send().await.expect("whatsapp webhook")
}

async fn post(app: &TestApp, body: &Value) {
    let response = post_signed(app, body, Some(APP_SECRET)).await;
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
}

async fn replies(app: &TestApp) -> Vec<ReplyRow> {
    app.store().replies(100).await.expect("replies")
}

async fn reply(app: &TestApp, message_id: &str) -> ReplyRow {
    replies(app)
        .await
        .into_iter()
        .find(|r| r.message_id.as_deref() == Some(message_id))
        .unwrap_or_else(|| panic!("reply {message_id} stored"))
}

/// A relay on the Cloud API with the usual carriers, forwards retried quickly.
async fn cloud_app(overrides: &[(&str, &str)]) -> TestApp {
    let app = world(overrides).await;
    add_usual_carriers(&app.camionback);
    app.start_with(|s| s.replies.forward_first_retry = Duration::from_millis(50))
        .await
}

/// Broadcasts order `id` and returns the id of the message Atlas got.
async fn broadcast_to_atlas(app: &TestApp, id: i64) -> String {
    assert_eq!(app.post_order(order(id)).await.status(), 202);
    app.wait_for_broadcast(id)
        .await
        .into_iter()
        .find(|r| r.carrier_id == 1)
        .and_then(|r| r.message_id)
        .expect("Atlas got the order")
}

async fn wait_for_forward(app: &TestApp, message_id: &str, state: ForwardState) -> ReplyRow {
    eventually(Duration::from_secs(10), || async {
        let row = reply(app, message_id).await;
        (row.forwarded == state).then_some(row)
    })
    .await
}

fn posts_of(posts: &[ReplyPost], key: &str) -> usize {
    posts
        .iter()
        .filter(|p| p.idempotency_key.as_deref() == Some(key))
        .count()
}

#[tokio::test]
async fn a_text_reply_is_stored_once_with_the_carrier_and_meta_s_user_id_whatever_the_redeliveries()
{
    let app = cloud_app(&[]).await;
    let with_id = notification(
        ATLAS,
        Some(ATLAS_USER_ID),
        text("wamid.T1", "Bonjour, c'est pour quand ?"),
    );
    for _ in 0..3 {
        post(&app, &with_id).await;
    }
    post(
        &app,
        &notification("212612345602", None, text("wamid.T2", "Salam")),
    )
    .await;

    let all = replies(&app).await;
    assert_eq!(all.len(), 2, "one row per provider message id");
    let atlas = reply(&app, "wamid.T1").await;
    assert_eq!(atlas.phone, "+212612345601");
    assert_eq!(atlas.carrier_name.as_deref(), Some("Transports Atlas"));
    assert_eq!(atlas.user_id.as_deref(), Some(ATLAS_USER_ID));
    assert_eq!(atlas.channel.as_deref(), Some("cloud-api"));
    assert_eq!(atlas.text, "Bonjour, c'est pour quand ?");
    assert!(!atlas.interested && !atlas.opt_out);
    let rif = reply(&app, "wamid.T2").await;
    assert_eq!(rif.user_id, None, "no user_id given, none kept");
    assert_eq!(rif.carrier_name.as_deref(), Some("Rif Logistique"));
}

#[tokio::test]
async fn a_carrier_who_later_hides_their_number_is_known_by_meta_s_user_id() {
    let app = cloud_app(&[]).await;
    post(
        &app,
        &notification(ATLAS, Some(ATLAS_USER_ID), text("wamid.U1", "Bonjour")),
    )
    .await;
    // A username adopted since: no `from`, no `wa_id`, only the business-scoped id.
    let mut hidden = notification(ATLAS, Some(ATLAS_USER_ID), text("wamid.U2", "Toujours là"));
    let value = &mut hidden["entry"][0]["changes"][0]["value"];
    value["messages"][0]
        .as_object_mut()
        .expect("message")
        .remove("from");
    value["contacts"][0]
        .as_object_mut()
        .expect("contact")
        .remove("wa_id");
    post(&app, &hidden).await;
    // Unknown id and no number: nothing to tie it to, answered 200 so Meta does not resend it.
    let mut stranger = notification(ATLAS, Some("MA.999"), text("wamid.U3", "?"));
    let value = &mut stranger["entry"][0]["changes"][0]["value"];
    value["messages"][0]
        .as_object_mut()
        .expect("message")
        .remove("from");
    value["contacts"][0]
        .as_object_mut()
        .expect("contact")
        .remove("wa_id");
    post(&app, &stranger).await;
    // A sender that is not a number is no number either.
    post(
        &app,
        &notification("+2126<script>", None, text("wamid.U4", "oui")),
    )
    .await;

    let row = reply(&app, "wamid.U2").await;
    assert_eq!(row.phone, "+212612345601");
    assert_eq!(row.carrier_name.as_deref(), Some("Transports Atlas"));
    assert_eq!(row.user_id.as_deref(), Some(ATLAS_USER_ID));
    assert_eq!(replies(&app).await.len(), 2);
}

#[tokio::test]
async fn a_badly_signed_unsigned_or_malformed_message_notification_stores_nothing() {
    let app = cloud_app(&[]).await;
    let body = notification(ATLAS, Some(ATLAS_USER_ID), text("wamid.BAD", "STOP"));
    assert_eq!(
        post_signed(&app, &body, Some("not-the-secret"))
            .await
            .status(),
        401
    );
    assert_eq!(post_signed(&app, &body, None).await.status(), 401);
    let garbage = app
        .http
        .post(app.url("/webhooks/whatsapp"))
        .header(
            "X-Hub-Signature-256",
            hmac_sha256_header(APP_SECRET, b"{not json"),
        )
        .body("{not json")
        .send()
        .await
        .expect("post");
    assert_eq!(garbage.status(), 400);
    assert!(replies(&app).await.is_empty());
    let carriers = app.store().list_carriers().await.expect("carriers");
    assert!(
        carriers.iter().all(|c| c.opted_out_at.is_none()),
        "a refused STOP opts no one out"
    );
}

#[tokio::test]
async fn a_tap_on_the_interest_button_is_about_the_order_its_payload_names() {
    let app = cloud_app(&[]).await;
    let first = broadcast_to_atlas(&app, 1).await;
    broadcast_to_atlas(&app, 2).await;
    // Atlas taps the button of the first order's message, after the second one came.
    post(
        &app,
        &notification(
            ATLAS,
            Some(ATLAS_USER_ID),
            button("wamid.B1", "Intéressé", "INTERESSE:1", &first),
        ),
    )
    .await;
    let row = reply(&app, "wamid.B1").await;
    assert_eq!(row.order_id, Some(1));
    assert_eq!(row.order_reference.as_deref(), Some("CMD-2025-1"));
    assert_eq!(row.attributed_by, Some(Attribution::Payload));
    assert!(row.interested, "a tap on INTERESSE… is interest");

    let row = wait_for_forward(&app, "wamid.B1", ForwardState::Done).await;
    let posts = app.camionback.accepted_replies();
    assert_eq!(posts.len(), 1);
    let post = &posts[0];
    assert_eq!(post.order_id, 1);
    assert!(post.authorized, "the API's bearer token");
    assert_eq!(post.idempotency_key.as_deref(), Some("wamid.B1"));
    assert_eq!(post.body["transporteur_id"], json!(1));
    assert_eq!(post.body["telephone"], json!("+212612345601"));
    assert_eq!(post.body["texte"], json!("Intéressé"));
    assert_eq!(post.body["interesse"], json!(true));
    assert_eq!(post.body["canal"], json!("cloud-api"));
    assert_eq!(post.body["message_id"], json!("wamid.B1"));
    let received =
        chrono::DateTime::parse_from_rfc3339(post.body["recu_le"].as_str().expect("recu_le"))
            .expect("RFC 3339");
    assert_eq!(received.timestamp(), row.received_at / 1000);
}

#[tokio::test]
async fn a_quoted_reply_is_about_the_broadcast_it_quotes_not_the_last_one() {
    let app = cloud_app(&[]).await;
    let first = broadcast_to_atlas(&app, 1).await;
    broadcast_to_atlas(&app, 2).await;
    post(
        &app,
        &notification(
            ATLAS,
            None,
            quoting(text("wamid.Q1", "Toujours dispo ?"), &first),
        ),
    )
    .await;
    // An interactive button reply that quotes our message too.
    post(
        &app,
        &notification(
            ATLAS,
            None,
            quoting(button_reply("wamid.Q2", "oui-1", "Oui"), &first),
        ),
    )
    .await;

    let q1 = reply(&app, "wamid.Q1").await;
    assert_eq!(
        (q1.order_id, q1.attributed_by),
        (Some(1), Some(Attribution::Quote))
    );
    assert!(!q1.interested, "a question is not interest");
    let q2 = reply(&app, "wamid.Q2").await;
    assert_eq!(
        (q2.order_id, q2.attributed_by),
        (Some(1), Some(Attribution::Quote))
    );
    assert_eq!(q2.text, "Oui");
    assert!(q2.interested, "« Oui » is an interest word");
    wait_for_forward(&app, "wamid.Q2", ForwardState::Done).await;
    wait_for_forward(&app, "wamid.Q1", ForwardState::Done).await;
    let posts = app.camionback.accepted_replies();
    assert!(posts.iter().all(|p| p.order_id == 1), "{posts:?}");
}

#[tokio::test]
async fn a_reply_naming_no_order_is_about_the_last_order_sent_to_that_carrier() {
    let app = cloud_app(&[]).await;
    broadcast_to_atlas(&app, 1).await;
    broadcast_to_atlas(&app, 2).await;
    post(
        &app,
        &notification(ATLAS, None, text("wamid.W1", "  WAKHA ")),
    )
    .await;
    let row = reply(&app, "wamid.W1").await;
    assert_eq!(
        (row.order_id, row.attributed_by),
        (Some(2), Some(Attribution::Window))
    );
    assert!(row.interested);

    // A number the relay never sent anything to: about no order, kept, not forwarded.
    post(
        &app,
        &notification("212699999999", None, text("wamid.N1", "oui")),
    )
    .await;
    let none = reply(&app, "wamid.N1").await;
    assert_eq!((none.order_id, none.attributed_by), (None, None));
    assert_eq!(none.forwarded, ForwardState::None);
    assert!(none.interested, "interest is read even without an order");

    wait_for_forward(&app, "wamid.W1", ForwardState::Done).await;
    assert_eq!(posts_of(&app.camionback.reply_posts(), "wamid.N1"), 0);
    let interested = app
        .store()
        .replies_matching(
            ReplyFilter {
                order_id: Some(2),
                interested_only: true,
            },
            10,
        )
        .await
        .expect("replies");
    assert_eq!(interested.len(), 1);
}

#[tokio::test]
async fn outside_the_window_a_reply_is_about_no_order() {
    let app = cloud_app(&[("RELAY_REPLY_WINDOW_HOURS", "0")]).await;
    broadcast_to_atlas(&app, 1).await;
    post(&app, &notification(ATLAS, None, text("wamid.L1", "oui"))).await;
    let row = reply(&app, "wamid.L1").await;
    assert_eq!(row.order_id, None);
    assert_eq!(row.forwarded, ForwardState::None);
}

#[tokio::test]
async fn stop_on_the_cloud_api_opts_the_carrier_out_and_is_confirmed_once() {
    let app = cloud_app(&[]).await;
    broadcast_to_atlas(&app, 1).await;
    post(&app, &notification(ATLAS, None, text("wamid.S1", "Stop"))).await;
    post(&app, &notification(ATLAS, None, text("wamid.S1", "Stop"))).await;
    post(&app, &notification(ATLAS, None, text("wamid.S2", "STOP !"))).await;

    let confirmations = eventually(Duration::from_secs(10), || async {
        let sent: Vec<_> = app
            .cloud
            .received()
            .into_iter()
            .filter(|r| r.to == ATLAS && r.text().is_some_and(|t| t.starts_with("C'est noté")))
            .collect();
        (!sent.is_empty()).then_some(sent)
    })
    .await;
    let row = reply(&app, "wamid.S1").await;
    assert!(row.opt_out);
    assert_eq!(
        row.order_id, None,
        "an opt-out is about every broadcast, not one order"
    );
    assert!(reply(&app, "wamid.S2").await.opt_out);

    // The next order goes to everyone but Atlas; by then any second confirmation would be there.
    assert_eq!(app.post_order(order(2)).await.status(), 202);
    let rows = app.wait_for_broadcast(2).await;
    assert!(
        rows.iter()
            .all(|r| r.carrier_id != 1 || r.status.as_str() == "skipped"),
        "{rows:?}"
    );
    let confirmations_now = app
        .cloud
        .received()
        .into_iter()
        .filter(|r| r.to == ATLAS && r.text().is_some_and(|t| t.starts_with("C'est noté")))
        .count();
    assert_eq!(confirmations.len(), 1);
    assert_eq!(confirmations_now, 1, "confirmed once");
    assert_eq!(
        app.camionback.reply_posts().len(),
        0,
        "a STOP is not forwarded"
    );
}

#[tokio::test]
async fn the_approved_template_s_interest_button_carries_the_order_id() {
    let app = cloud_app(&[
        ("WHATSAPP_TEMPLATE", "nouvelle_commande"),
        ("WHATSAPP_TEMPLATE_INTEREST_BUTTON", "1"),
    ])
    .await;
    broadcast_to_atlas(&app, 7).await;
    let sent = app.cloud.accepted_to(ATLAS);
    let components = sent[0].body["template"]["components"]
        .as_array()
        .expect("components")
        .clone();
    assert_eq!(components[0]["type"], json!("body"));
    assert_eq!(
        components[1],
        json!({
            "type": "button", "sub_type": "quick_reply", "index": "1",
            "parameters": [{ "type": "payload", "payload": "INTERESSE:7" }]
        })
    );
}

#[tokio::test]
async fn replies_that_come_while_camionback_is_down_are_posted_once_when_it_is_back() {
    let app = cloud_app(&[]).await;
    broadcast_to_atlas(&app, 1).await;
    app.camionback.set_replies_status(Some(503));
    post(&app, &notification(ATLAS, None, text("wamid.D1", "oui"))).await;
    post(
        &app,
        &notification(ATLAS, None, text("wamid.D2", "ok, je passe")),
    )
    .await;
    // Each has failed at least twice: retried, still pending.
    eventually(Duration::from_secs(10), || async {
        let posts = app.camionback.reply_posts();
        (posts_of(&posts, "wamid.D1") >= 2 && posts_of(&posts, "wamid.D2") >= 2).then_some(())
    })
    .await;
    let waiting = reply(&app, "wamid.D1").await;
    assert_eq!(waiting.forwarded, ForwardState::Pending);
    assert!(
        waiting
            .forward_error
            .as_deref()
            .is_some_and(|e| e.contains("503")),
        "{waiting:?}"
    );
    app.camionback.set_replies_status(None);
    wait_for_forward(&app, "wamid.D1", ForwardState::Done).await;
    wait_for_forward(&app, "wamid.D2", ForwardState::Done).await;

    let accepted = app.camionback.accepted_replies();
    assert_eq!(posts_of(&accepted, "wamid.D1"), 1, "posted once");
    assert_eq!(posts_of(&accepted, "wamid.D2"), 1, "posted once");
    let all = app.camionback.reply_posts();
    assert!(
        all.iter()
            .all(|p| matches!(p.idempotency_key.as_deref(), Some("wamid.D1" | "wamid.D2"))),
        "every try carries its reply's key"
    );
    let d2 = accepted
        .iter()
        .find(|p| p.idempotency_key.as_deref() == Some("wamid.D2"))
        .expect("D2");
    assert_eq!(d2.body["interesse"], json!(false));
    assert_eq!(app.store().pending_forwards().await.expect("queue").0, 0);
}

#[tokio::test]
async fn a_reply_camionback_refuses_is_given_up_and_shown() {
    let app = cloud_app(&[]).await;
    broadcast_to_atlas(&app, 1).await;
    app.camionback.set_replies_status(Some(400));
    post(&app, &notification(ATLAS, None, text("wamid.R1", "oui"))).await;
    let row = wait_for_forward(&app, "wamid.R1", ForwardState::GivenUp).await;
    assert!(
        row.forward_error
            .as_deref()
            .is_some_and(|e| e.contains("400")),
        "{row:?}"
    );
    // A later reply goes through; the refused one was tried once only.
    app.camionback.set_replies_status(None);
    post(&app, &notification(ATLAS, None, text("wamid.R2", "dispo"))).await;
    wait_for_forward(&app, "wamid.R2", ForwardState::Done).await;
    assert_eq!(posts_of(&app.camionback.reply_posts(), "wamid.R1"), 1);
}

#[tokio::test]
async fn with_forwarding_off_replies_are_kept_and_never_posted() {
    let app = cloud_app(&[("RELAY_FORWARD_REPLIES", "0")]).await;
    broadcast_to_atlas(&app, 1).await;
    post(&app, &notification(ATLAS, None, text("wamid.O1", "oui"))).await;
    let row = reply(&app, "wamid.O1").await;
    assert_eq!(row.order_id, Some(1));
    assert_eq!(row.forwarded, ForwardState::Off);
    assert_eq!(app.store().pending_forwards().await.expect("queue").0, 0);
    assert!(app.camionback.reply_posts().is_empty());
}

#[tokio::test]
async fn forwards_pending_at_a_restart_are_posted_by_the_next_relay() {
    let mut app = cloud_app(&[]).await;
    broadcast_to_atlas(&app, 1).await;
    app.camionback.set_replies_status(Some(502));
    post(
        &app,
        &notification(ATLAS, None, text("wamid.P1", "intéressé")),
    )
    .await;
    eventually(Duration::from_secs(10), || async {
        (posts_of(&app.camionback.reply_posts(), "wamid.P1") >= 1).then_some(())
    })
    .await;
    app.stop().await;
    app.camionback.set_replies_status(None);

    let app = app
        .start_with(|s| s.replies.forward_first_retry = Duration::from_millis(50))
        .await;
    wait_for_forward(&app, "wamid.P1", ForwardState::Done).await;
    assert_eq!(posts_of(&app.camionback.accepted_replies(), "wamid.P1"), 1);
    assert_eq!(
        app.store().pending_forwards().await.expect("queue"),
        (0, None)
    );
}
