//! "Commande pourvue": CamionBack says an order is no longer open (its `order.updated` /
//! `order.closed` webhook, or its API asked while deliveries are queued), and the relay stops
//! sending it. Measured at the fake Cloud API: no message leaves after the relay learnt it; the
//! message in flight then finishes; the rest is `skipped` with `order_closed`.

use std::time::{Duration, Instant};

use relay_domain::{DeliveryStatus, OrderId, SkipReason};
use relay_engine::clock::now_ms;
use relay_engine::export::{CsvStyle, write_history_csv};
use relay_engine::ops::{OpsError, OrderKey};
use relay_engine::store::{HistoryFilter, HistoryRow, RelaunchMode};
use relay_test_support::Reply;
use relay_test_support::camionback::Outage;
use relay_test_support::signing::{camionback_headers, unix_now};
use serde_json::{Value, json};

use crate::helpers::*;

/// The number of carrier `k` as the Cloud API's `to` has it.
fn to(k: i64) -> String {
    format!("2126123456{k:02}")
}

/// Ten validated carriers, 1 to 10.
fn add_ten_carriers(app: &TestApp) {
    for k in 1..=10 {
        app.camionback.add_carrier(
            k,
            &format!("Transporteur {k}"),
            &format!("06123456{k:02}"),
            "valide",
        );
    }
}

/// Posts an `order.updated` / `order.closed` webhook signed as CamionBack signs it.
async fn post_order_event(app: &TestApp, event: &str, order: Value) -> reqwest::Response {
    let body = serde_json::to_vec(&json!({ "event": event, "order": order })).expect("json");
    let headers = camionback_headers(WEBHOOK_SECRET, unix_now(), &body);
    app.post_order_raw(body, &headers).await
}

/// Waits until the fake Cloud API has received a message for carrier `k`.
async fn wait_for_message_to(app: &TestApp, k: i64) {
    eventually(Duration::from_secs(20), || async {
        app.cloud
            .received()
            .iter()
            .any(|r| r.to == to(k))
            .then_some(())
    })
    .await;
}

fn carriers_with(rows: &[HistoryRow], status: DeliveryStatus) -> Vec<i64> {
    let mut ids: Vec<i64> = rows
        .iter()
        .filter(|r| r.status == status)
        .map(|r| r.carrier_id)
        .collect();
    ids.sort_unstable();
    ids
}

fn sent_after(app: &TestApp, instant: Instant) -> usize {
    app.cloud
        .received()
        .iter()
        .filter(|r| r.at > instant)
        .count()
}

#[tokio::test]
async fn an_order_closed_by_webhook_mid_broadcast_sends_nothing_more_and_the_rest_is_skipped() {
    let app = spawn_app().await;
    add_ten_carriers(&app);
    // Carrier 3's message is taken at once but answered 3 s later: it is in flight when the
    // order closes.
    app.cloud
        .script(&to(3), vec![Reply::AcceptLate(Duration::from_secs(3))]);
    assert_eq!(app.post_order(order(1)).await.status(), 202);
    wait_for_message_to(&app, 3).await;

    let answer = post_order_event(
        &app,
        "order.closed",
        json!({ "id": 1, "statut": "attribuee", "reference": "CMD-2025-1" }),
    )
    .await;
    let learnt = Instant::now();
    assert_eq!(answer.status(), 202);
    let body: Value = answer.json().await.expect("json");
    assert_eq!(
        body,
        json!({ "status": "closed", "order_id": 1, "cancelled": 7, "known": true })
    );

    let rows = app.wait_for_broadcast(1).await;
    assert_eq!(sent_after(&app, learnt), 0, "no message after the 202");
    assert_eq!(
        carriers_with(&rows, DeliveryStatus::Sent),
        [1, 2, 3],
        "the message in flight finished and is recorded"
    );
    assert_eq!(
        carriers_with(&rows, DeliveryStatus::Skipped),
        (4..=10).collect::<Vec<_>>()
    );
    assert!(
        rows.iter()
            .filter(|r| r.status == DeliveryStatus::Skipped)
            .all(|r| r.error.as_deref() == Some(SkipReason::OrderClosed.as_str()))
    );
    assert_eq!(app.cloud.received().len(), 3);

    // The CSV staff export says why, in the grid's French words.
    let mut csv = Vec::new();
    let style = CsvStyle {
        time_zone: chrono::Utc,
        unconfirmed_after: Duration::from_secs(24 * 3600),
        now_ms: now_ms(),
    };
    let filter = HistoryFilter {
        order: Some(OrderId(1)),
        ..HistoryFilter::default()
    };
    write_history_csv(app.store(), &filter, &style, &mut csv)
        .await
        .expect("export");
    let csv = String::from_utf8(csv).expect("UTF-8");
    assert_eq!(
        csv.matches(";Ignoré;0;commande pourvue : envoi évité")
            .count(),
        7,
        "never attempted, and why: {csv}"
    );

    let counters = app.store().order_counters(10).await.expect("counters");
    assert_eq!(
        (
            counters[0].closed,
            counters[0].closed_statut.as_deref(),
            counters[0].avoided,
            counters[0].skipped
        ),
        (true, Some("attribuee"), 7, 7),
        "orders --json says closed"
    );
    // CamionBack repeats its notice: the same answer, nothing more to cancel.
    let again = post_order_event(
        &app,
        "order.updated",
        json!({ "id": 1, "statut": "attribuee" }),
    )
    .await
    .json::<Value>()
    .await
    .expect("json");
    assert_eq!(again["cancelled"], 0);
    assert_eq!(again["status"], "closed");
}

#[tokio::test]
async fn an_order_found_closed_at_the_api_mid_broadcast_sends_nothing_more() {
    let app = world(&[("CAMIONBACK_ORDER_CHECK_SECS", "1")]).await;
    add_ten_carriers(&app);
    app.camionback.add_order(order(1));
    // Held long enough for a check or two of the API to come while it is in flight.
    app.cloud
        .script(&to(3), vec![Reply::AcceptLate(Duration::from_secs(5))]);
    let app = app.start().await;
    assert_eq!(app.post_order(order(1)).await.status(), 202);
    wait_for_message_to(&app, 3).await;

    app.camionback.set_order_statut(1, Some("attribuee"));
    let closure = eventually(Duration::from_secs(20), || async {
        app.store()
            .order_closure(OrderId(1))
            .await
            .expect("closure")
    })
    .await;
    let learnt = Instant::now();
    assert_eq!(
        (closure.statut.as_str(), closure.source.as_str()),
        ("attribuee", "polling")
    );

    let rows = app.wait_for_broadcast(1).await;
    assert_eq!(
        sent_after(&app, learnt),
        0,
        "no message after the relay knew"
    );
    assert_eq!(carriers_with(&rows, DeliveryStatus::Sent), [1, 2, 3]);
    assert_eq!(
        carriers_with(&rows, DeliveryStatus::Skipped),
        (4..=10).collect::<Vec<_>>()
    );
    assert_eq!(
        app.store()
            .avoided_by_closure(OrderId(1))
            .await
            .expect("avoided"),
        7
    );
    assert!(app.camionback.order_lookups().contains(&1));
}

#[tokio::test]
async fn an_order_still_open_or_an_api_that_cannot_say_changes_nothing() {
    let app = world(&[("CAMIONBACK_ORDER_CHECK_SECS", "1")]).await;
    add_usual_carriers(&app.camionback);
    app.camionback.add_order(order(1));
    let app = app.start().await;
    // Paused: the order's deliveries stay queued, so the relay keeps asking about it.
    app.engine().ops().pause_sending().await.expect("pause");
    assert_eq!(app.post_order(order(1)).await.status(), 202);

    // CamionBack's webhook says it is still open.
    let open = post_order_event(
        &app,
        "order.updated",
        json!({ "id": 1, "statut": "Ouverte" }),
    )
    .await;
    assert_eq!(open.status(), 202);
    assert_eq!(
        open.json::<Value>().await.expect("json"),
        json!({ "status": "open", "order_id": 1 })
    );
    let absent = post_order_event(&app, "order.updated", json!({ "id": 1 })).await;
    assert_eq!(
        absent.json::<Value>().await.expect("json")["status"],
        "open"
    );

    // Then the API: open, unknown (404), garbage, down. Each answer is waited for.
    let asked_once_more = |before: usize| {
        let app = &app;
        async move {
            eventually(Duration::from_secs(20), || async {
                (app.camionback.order_lookups().len() > before).then_some(())
            })
            .await;
        }
    };
    app.camionback.set_order_statut(1, Some("ouverte"));
    asked_once_more(app.camionback.order_lookups().len()).await;
    app.camionback.forget_order(1);
    asked_once_more(app.camionback.order_lookups().len()).await;
    app.camionback.set_order_lookup_outage(Outage::Garbage);
    asked_once_more(app.camionback.order_lookups().len()).await;
    app.camionback.set_order_lookup_outage(Outage::Down);
    // Two more: the first may have been on its way before the switch.
    let before = app.camionback.order_lookups().len();
    asked_once_more(before + 1).await;

    assert_eq!(
        app.store()
            .order_closure(OrderId(1))
            .await
            .expect("closure"),
        None
    );
    let rows = app.deliveries_of(1).await;
    assert_eq!(carriers_with(&rows, DeliveryStatus::Queued), [1, 2, 3]);

    app.engine().ops().resume_sending().await.expect("resume");
    let rows = app.wait_for_broadcast(1).await;
    assert_eq!(carriers_with(&rows, DeliveryStatus::Sent), [1, 2, 3]);
}

#[tokio::test]
async fn a_badly_signed_or_malformed_close_is_refused_and_changes_nothing() {
    let app = spawn_app().await;
    add_usual_carriers(&app.camionback);
    app.engine().ops().pause_sending().await.expect("pause");
    assert_eq!(app.post_order(order(1)).await.status(), 202);
    eventually(Duration::from_secs(20), || async {
        (app.deliveries_of(1).await.len() == 3).then_some(())
    })
    .await;

    let body = serde_json::to_vec(
        &json!({ "event": "order.closed", "order": { "id": 1, "statut": "attribuee" } }),
    )
    .expect("json");
    let forged = camionback_headers("not-the-secret", unix_now(), &body);
    let refused = app.post_order_raw(body.clone(), &forged).await;
    assert_eq!(refused.status(), 401);
    let stale = camionback_headers(WEBHOOK_SECRET, unix_now() - 3600, &body);
    assert_eq!(app.post_order_raw(body, &stale).await.status(), 401);
    for order in [
        json!({ "statut": "attribuee" }),
        json!({ "id": "un", "statut": "x" }),
        json!({ "id": 0, "statut": "x" }),
    ] {
        let answer = post_order_event(&app, "order.closed", order).await;
        assert_eq!(answer.status(), 400);
        let problem: Value = answer.json().await.expect("json");
        assert_eq!(problem["error"]["code"], "malformed");
    }

    assert_eq!(
        app.store()
            .order_closure(OrderId(1))
            .await
            .expect("closure"),
        None
    );
    app.engine().ops().resume_sending().await.expect("resume");
    let rows = app.wait_for_broadcast(1).await;
    assert_eq!(carriers_with(&rows, DeliveryStatus::Sent), [1, 2, 3]);
}

#[tokio::test]
async fn an_order_closed_before_the_relay_heard_of_it_is_never_broadcast() {
    let app = spawn_app().await;
    add_usual_carriers(&app.camionback);

    let answer = post_order_event(&app, "order.closed", json!({ "id": 77 })).await;
    assert_eq!(answer.status(), 202);
    assert_eq!(
        answer.json::<Value>().await.expect("json"),
        json!({ "status": "closed", "order_id": 77, "cancelled": 0, "known": false })
    );
    assert_eq!(app.post_order(order(77)).await.status(), 202);
    let stored = eventually(Duration::from_secs(20), || async {
        app.store()
            .get_order(OrderId(77))
            .await
            .expect("order")
            .filter(|o| o.fanned_out_at.is_some())
    })
    .await;
    assert_eq!(stored.order.reference, "CMD-2025-77");
    assert!(app.deliveries_of(77).await.is_empty());
    assert!(app.cloud.received().is_empty(), "nobody was sent it");
}

#[tokio::test]
async fn a_closed_order_is_relaunched_only_when_staff_force_it() {
    let app = spawn_app().await;
    add_usual_carriers(&app.camionback);
    app.post_order(order(1)).await;
    app.wait_for_broadcast(1).await;
    let closed = post_order_event(
        &app,
        "order.updated",
        json!({ "id": 1, "statut": "annulee" }),
    )
    .await
    .json::<Value>()
    .await
    .expect("json");
    assert_eq!(closed["cancelled"], 0, "everything had been sent already");
    app.camionback
        .add_carrier(7, "Nouveau Transport", "0612345607", "valide");

    let ops = app.engine().ops();
    let order = ops
        .relaunchable(OrderKey::Typed("CMD-2025-1"))
        .await
        .expect("found");
    let preview = ops
        .relaunch_preview(OrderKey::Typed("CMD-2025-1"))
        .await
        .expect("preview");
    assert_eq!(
        preview.closed.map(|c| c.headline()),
        Some("Commande pourvue — 0 envoi évité".to_string())
    );
    match ops.relaunch(&order, RelaunchMode::Missing, now_ms()).await {
        Err(err @ OpsError::OrderClosed { .. }) => assert_eq!(
            err.to_string(),
            "la commande CMD-2025-1 est pourvue (statut CamionBack « annulee ») : elle n'est pas relancée (0 envoi(s) évité(s) à sa fermeture)"
        ),
        other => panic!("a closed order was relaunched: {other:?}"),
    }
    assert_eq!(app.deliveries_of(1).await.len(), 3, "nothing queued");

    let forced = ops
        .relaunch_forced(&order, RelaunchMode::Missing, now_ms())
        .await
        .expect("forced");
    assert_eq!(forced.queued.queued, 1);
    assert!(forced.forced);
    assert_eq!(
        forced.summary(),
        "CMD-2025-1 (pourvue, relance forcée) : 1 transporteur(s) en file — le relais en cours d'exécution les envoie dans la seconde"
    );
    app.wait_for_broadcast(1).await;
    assert_eq!(app.cloud.accepted_to("212612345607").len(), 1);
    assert_eq!(app.cloud.received().len(), 4);
}
