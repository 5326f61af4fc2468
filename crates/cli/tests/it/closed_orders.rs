//! An order CamionBack closed: `orders --json` says so, and `relaunch` refuses it unless
//! `--force`.

use std::time::Duration;

use relay_test_support::signing::{camionback_headers, unix_now};
use serde_json::{Value, json};

use crate::helpers::*;

/// Posts `order.closed` for `id` to the running relay, signed as CamionBack signs it.
async fn close_order(world: &World, id: i64, statut: &str) -> Value {
    let body = serde_json::to_vec(
        &json!({ "event": "order.closed", "order": { "id": id, "statut": statut } }),
    )
    .expect("json");
    let mut request = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{}/webhooks/orders", world.port))
        .body(body.clone());
    for (name, value) in camionback_headers(WEBHOOK_SECRET, unix_now(), &body) {
        request = request.header(name, value);
    }
    let answer = request.send().await.expect("webhook");
    assert_eq!(answer.status(), 202);
    answer.json().await.expect("json")
}

#[tokio::test]
async fn relaunch_of_a_closed_order_is_refused_unless_forced() {
    let world = World::new(Duration::ZERO).await;
    add_carriers(&world.camionback, 2);
    let relay = world.serve(&[]).await;
    assert_eq!(world.post_order(order(5)).await, 202);
    eventually(Duration::from_secs(10), || {
        let s = statuses(&world.history("5"));
        (s.len() == 2 && s.iter().all(|s| s == "sent")).then_some(())
    })
    .await;
    let closed = close_order(&world, 5, "attribuee").await;
    assert_eq!(closed["status"], "closed");

    let orders = world.run(&["orders", "--json"]);
    let orders: Vec<Value> = serde_json::from_slice(&orders.stdout).expect("json");
    assert_eq!(
        (
            &orders[0]["order_id"],
            &orders[0]["closed"],
            &orders[0]["closed_statut"],
            &orders[0]["avoided"]
        ),
        (&json!(5), &json!(true), &json!("attribuee"), &json!(0))
    );

    let refused = world.run(&["relaunch", "CMD-2025-5", "--all"]);
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        said.contains("la commande CMD-2025-5 est pourvue (statut CamionBack « attribuee »)")
            && said.contains("`--force` pour la relancer quand même"),
        "{said}"
    );
    assert_eq!(world.history("5").len(), 2, "nothing queued");

    let forced = world.run(&["relaunch", "CMD-2025-5", "--all", "--force"]);
    assert!(
        forced.status.success(),
        "{}",
        String::from_utf8_lossy(&forced.stderr)
    );
    assert!(
        String::from_utf8_lossy(&forced.stdout)
            .contains("CMD-2025-5 (pourvue, relance forcée) : 2 transporteur(s) en file")
    );
    // The running relay sends the forced batch.
    eventually(Duration::from_secs(10), || {
        (world.cloud.accepted_to("212612345601").len() == 2).then_some(())
    })
    .await;
    assert!(relay.terminate().status.success());
}
