//! A crash or a stop in the middle of a broadcast: nothing lost, nothing sent twice.

use std::collections::HashMap;
use std::time::Duration;

use crate::helpers::*;

#[tokio::test]
async fn kill_9_in_the_middle_of_a_broadcast_then_restart_sends_the_rest_exactly_once() {
    // Each answer of the fake takes 40 ms, so the kill has a fair chance to land in mid-send.
    let world = World::new(Duration::from_millis(40)).await;
    add_carriers(&world.camionback, 20);
    let mut relay = world.serve(&[]).await;
    assert_eq!(world.post_order(order(77)).await, 202);

    eventually(Duration::from_secs(20), || {
        (world.cloud.received().len() >= 6).then_some(())
    })
    .await;
    relay.kill_9();
    let before_restart = world.cloud.received().len();
    assert!(
        before_restart < 20,
        "the kill happened before the end of the broadcast"
    );

    let relay = world.serve(&[]).await;
    let rows = eventually(Duration::from_secs(30), || {
        let rows = world.history("CMD-2025-77");
        let statuses = statuses(&rows);
        (rows.len() == 20 && statuses.iter().all(|s| s != "queued" && s != "sending"))
            .then_some(rows)
    })
    .await;
    assert!(relay.terminate().status.success());

    let statuses = statuses(&rows);
    let interrupted = statuses.iter().filter(|s| *s == "interrupted").count();
    assert!(
        interrupted <= 1,
        "at most the one send in flight is interrupted: {statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| *s == "sent").count(),
        20 - interrupted
    );

    let mut per_number: HashMap<String, usize> = HashMap::new();
    for message in world.cloud.received() {
        *per_number.entry(message.to).or_default() += 1;
    }
    assert!(
        per_number.values().all(|&n| n == 1),
        "no carrier got the order twice: {per_number:?}"
    );
    assert!(
        per_number.len() >= 19,
        "every delivery still owed was sent after the restart"
    );
}

#[tokio::test]
async fn sigterm_finishes_the_send_in_flight_records_it_and_exits_0() {
    let world = World::new(Duration::from_millis(150)).await;
    add_carriers(&world.camionback, 10);
    let relay = world.serve(&[("RELAY_THROTTLE_MS", "200")]).await;
    assert_eq!(world.post_order(order(5)).await, 202);
    eventually(Duration::from_secs(10), || {
        (!world.cloud.received().is_empty()).then_some(())
    })
    .await;

    let output = relay.terminate();
    assert!(output.status.success(), "SIGTERM exits 0");

    let rows = world.history("CMD-2025-5");
    let statuses = statuses(&rows);
    assert!(
        !statuses
            .iter()
            .any(|s| s == "sending" || s == "interrupted"),
        "the send in flight was finished and recorded: {statuses:?}"
    );
    let sent = statuses.iter().filter(|s| *s == "sent").count();
    assert_eq!(
        sent,
        world.cloud.received().len(),
        "every message the fake got is recorded as sent"
    );
    assert!(sent < 10, "the relay stopped before the end");
}

#[tokio::test]
async fn kill_9_with_a_reply_waiting_for_camionback_then_restart_posts_it_once() {
    const APP_SECRET: &str = "meta-app-secret-cli";
    let world = World::new(Duration::ZERO).await;
    add_carriers(&world.camionback, 1);
    let env = [("WHATSAPP_APP_SECRET", APP_SECRET)];
    let mut relay = world.serve(&env).await;
    assert_eq!(world.post_order(order(31)).await, 202);
    eventually(Duration::from_secs(10), || {
        (world.cloud.received().len() == 1).then_some(())
    })
    .await;

    // CamionBack is down when the carrier answers: the forward fails and waits in the queue.
    world.camionback.set_replies_status(Some(503));
    let notification = serde_json::json!({
        "object": "whatsapp_business_account",
        "entry": [{ "id": "WABA", "changes": [{ "field": "messages", "value": {
            "messaging_product": "whatsapp",
            "contacts": [{ "profile": { "name": "Transporteur 1" }, "wa_id": "212612345601" }],
            "messages": [{ "from": "212612345601", "id": "wamid.KILL9", "timestamp": "1764000000",
                           "type": "text", "text": { "body": "Oui" } }]
        } }] }]
    });
    let body = serde_json::to_vec(&notification).expect("json");
    let answer = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{}/webhooks/whatsapp", world.port))
        .header(
            "X-Hub-Signature-256",
            relay_test_support::signing::hmac_sha256_header(APP_SECRET, &body),
        )
        .body(body)
        .send()
        .await
        .expect("webhook");
    assert_eq!(answer.status(), 200);
    eventually(Duration::from_secs(10), || {
        (!world.camionback.reply_posts().is_empty()).then_some(())
    })
    .await;
    relay.kill_9();
    world.camionback.set_replies_status(None);

    let relay = world.serve(&env).await;
    // The restarted relay takes the queue where it was (the retry is due 10 s after the failure).
    let replies = eventually(Duration::from_secs(30), || {
        let output = world.run(&["replies", "--json"]);
        let replies: Vec<serde_json::Value> = serde_json::from_slice(&output.stdout).ok()?;
        (replies.first()?["forwarded"] == "done").then_some(replies)
    })
    .await;
    assert!(relay.terminate().status.success());
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0]["order_id"], 31);
    assert_eq!(replies[0]["interested"], true);
    let posts = world.camionback.reply_posts();
    assert_eq!(
        posts.iter().filter(|p| p.accepted()).count(),
        1,
        "posted once: {posts:?}"
    );
    assert!(
        posts
            .iter()
            .all(|p| p.idempotency_key.as_deref() == Some("wamid.KILL9")),
        "every try with the message's key"
    );
}
