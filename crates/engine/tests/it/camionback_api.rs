//! A CamionBack API that misbehaves: ignores `since_id`, lists an unreadable order with a wild
//! id, answers far too much, or does not answer at all. The poller and the carrier sync must
//! neither spin, nor skip orders, nor take in unbounded answers, nor hold a stop.

use std::future::Future;
use std::time::Duration;

use relay_engine::camionback::{
    MAX_CARRIER_PAGES, MAX_CARRIERS, MAX_CARRIERS_PAGE_BYTES, MAX_ORDERS_PAGE_BYTES,
};
use relay_engine::store::StateKey;
use relay_engine::{Engine, EngineError, Store};
use relay_test_support::camionback::{EndlessApi, Outage, order_json};
use tokio_util::sync::CancellationToken;

use crate::helpers::*;

/// How long a test waits for what should take milliseconds: well under the API client's 20 s
/// request timeout, so a stop that waited for the hung request would fail the test.
const PATIENCE: Duration = Duration::from_secs(15);

async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(PATIENCE, future)
        .await
        .unwrap_or_else(|_| panic!("{what}: not within {PATIENCE:?}"))
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

async fn state(store: &Store, key: StateKey) -> Option<String> {
    store.get_state(key).await.expect("state")
}

#[tokio::test]
async fn an_api_that_ignores_since_id_is_asked_once_more_then_the_poll_stops_with_an_error() {
    // One poll at start-up and none after it within the test.
    let app = world(&[("CAMIONBACK_POLL_SECS", "3600")]).await;
    for id in 1..=150 {
        app.camionback
            .add_order(order_json(id, &format!("CMD-2025-{id}"), &now()));
    }
    app.camionback.ignore_since_id();
    let app = app.start().await;

    let error = eventually(PATIENCE, || state(app.store(), StateKey::LastPollError)).await;
    assert!(error.contains("since_id"), "{error}");
    assert!(error.contains("prochaine interrogation"), "{error}");
    let queries = app.camionback.order_queries();
    assert_eq!(
        queries.len(),
        2,
        "the first page, then the same page again: no third request: {queries:?}"
    );
    assert!(queries[1].contains("since_id=100"), "{queries:?}");
    assert!(
        app.store()
            .find_order("100")
            .await
            .expect("query")
            .is_some(),
        "the orders of the page are stored"
    );
    assert_eq!(
        app.store()
            .get_state_i64(StateKey::PollCursor)
            .await
            .expect("cursor"),
        Some(100)
    );
    assert!(
        app.metrics()
            .await
            .lines()
            .any(|line| line == "relay_poll_failing 1")
    );
}

#[tokio::test]
async fn an_unreadable_order_with_a_huge_id_never_hides_the_orders_created_after_it() {
    let app = world(&[("CAMIONBACK_POLL_SECS", "1")]).await;
    let mut broken = order_json(9_000_000_000_000, "CMD-CASSÉE", &now());
    broken["date_souhaitee"] = serde_json::json!("bientôt");
    app.camionback.add_order(broken);
    let app = app.start().await;
    // The relay has seen the unreadable order (at least two polls).
    eventually(PATIENCE, || async {
        (app.camionback.order_queries().len() >= 2).then_some(())
    })
    .await;

    // Created afterwards, with a lower id, as real order ids are.
    app.camionback
        .add_order(order_json(1000, "CMD-2025-1000", &now()));
    // The cursor is the last order stored, not the unreadable one.
    eventually(PATIENCE, || async {
        let cursor = app
            .store()
            .get_state_i64(StateKey::PollCursor)
            .await
            .expect("cursor");
        (cursor == Some(1000)).then_some(())
    })
    .await;
    assert!(
        app.store()
            .find_order("1000")
            .await
            .expect("query")
            .is_some()
    );
    let seen = app.camionback.order_queries().len();
    eventually(PATIENCE, || async {
        (app.camionback.order_queries().len() > seen).then_some(())
    })
    .await;
    let last = app.camionback.order_queries().last().cloned();
    assert!(
        last.as_deref().is_some_and(|q| q.contains("since_id=1000")),
        "{last:?}"
    );
    assert!(
        app.store()
            .find_order("9000000000000")
            .await
            .expect("query")
            .is_none()
    );
    assert_eq!(
        state(app.store(), StateKey::LastPollError).await,
        None,
        "an unreadable order is logged, it does not make the poll fail"
    );
}

#[tokio::test]
async fn an_orders_page_over_the_cap_is_refused_with_a_clear_error_then_polling_resumes() {
    let app = world(&[("CAMIONBACK_POLL_SECS", "1")]).await;
    app.camionback
        .set_orders_outage(Outage::Huge(MAX_ORDERS_PAGE_BYTES + 1));
    let app = app.start().await;

    let error = eventually(PATIENCE, || state(app.store(), StateKey::LastPollError)).await;
    assert!(
        error.contains("réponse de l'API CamionBack trop grande (liste des commandes)"),
        "{error}"
    );
    assert!(error.contains("plus de 2 Mio"), "{error}");

    app.camionback.set_orders_outage(Outage::None);
    app.camionback
        .add_order(order_json(5, "CMD-2025-5", &now()));
    eventually(PATIENCE, || async {
        app.store().find_order("5").await.expect("query")
    })
    .await;
}

#[tokio::test]
async fn a_carriers_page_over_the_cap_is_refused_and_the_last_list_is_kept() {
    let app = world(&[]).await;
    add_usual_carriers(&app.camionback);
    let app = app.start().await;
    let before = app.store().eligible_carrier_count().await.expect("count");
    assert_eq!(before, 3);

    app.camionback
        .set_carriers_outage(Outage::Huge(MAX_CARRIERS_PAGE_BYTES + 1));
    let err = app
        .engine()
        .carriers()
        .sync_now()
        .await
        .expect_err("refused");
    assert!(
        err.to_string()
            .contains("trop grande (liste des transporteurs) : plus de 4 Mio"),
        "{err}"
    );
    let stored = state(app.store(), StateKey::LastCarrierSyncError)
        .await
        .expect("the error is kept for the screens");
    assert!(stored.contains("trop grande"), "{stored}");
    assert_eq!(
        app.store().eligible_carrier_count().await.expect("count"),
        before
    );
}

#[tokio::test]
async fn a_carrier_list_that_never_ends_is_cut_at_the_cap() {
    let endless = EndlessApi::start().await;
    let app = world(&[("CAMIONBACK_API_URL", &endless.url())]).await;
    // The first sync at start-up meets the endless answer.
    let app = app.start().await;

    let error = state(app.store(), StateKey::LastCarrierSyncError)
        .await
        .expect("the first sync failed");
    assert!(
        error.contains("trop grande (liste des transporteurs)"),
        "cut at the cap, not at the request timeout: {error}"
    );
}

#[tokio::test]
async fn a_carrier_list_of_more_pages_than_the_cap_is_refused() {
    let app = world(&[]).await;
    app.camionback.set_carriers_page_size(1);
    for id in 1..=i64::from(MAX_CARRIER_PAGES) + 1 {
        app.camionback.add_carrier(
            id,
            &format!("Transporteur {id}"),
            &format!("061{id:07}"),
            "valide",
        );
    }
    let app = app.start().await;

    let error = state(app.store(), StateKey::LastCarrierSyncError)
        .await
        .expect("the sync failed");
    assert!(error.contains("plus de 1000 pages"), "{error}");
    assert_eq!(app.camionback.carrier_requests(), 1000);
    assert_eq!(
        app.store().eligible_carrier_count().await.expect("count"),
        0
    );
}

#[tokio::test]
async fn a_carrier_list_of_more_carriers_than_the_cap_is_refused_as_a_whole() {
    let app = world(&[]).await;
    // Pages of 25,000 (about 2 MiB each, under the page cap): the fifth goes over the total.
    app.camionback.set_carriers_page_size(25_000);
    app.camionback.add_new_carriers(
        (1..=i64::try_from(MAX_CARRIERS).expect("fits") + 1)
            .map(|id| (id, "Transporteur".to_string(), format!("06{id:08}"))),
    );
    let app = app.start().await;

    let error = state(app.store(), StateKey::LastCarrierSyncError)
        .await
        .expect("the sync failed");
    assert!(error.contains("plus de 100000 transporteurs"), "{error}");
    assert_eq!(app.camionback.carrier_requests(), 5);
    assert_eq!(
        app.store().eligible_carrier_count().await.expect("count"),
        0
    );
}

#[tokio::test]
async fn a_stop_during_a_hanging_poll_ends_at_once() {
    let app = world(&[("CAMIONBACK_POLL_SECS", "1")]).await;
    app.camionback.set_orders_delay(Duration::from_secs(3600));
    let mut app = app.start().await;
    eventually(PATIENCE, || async {
        (!app.camionback.order_queries().is_empty()).then_some(())
    })
    .await;

    within("the stop during a hanging poll", app.stop()).await;
}

#[tokio::test]
async fn a_stop_while_the_first_carrier_sync_hangs_ends_the_start_up_and_changes_nothing() {
    let app = world(&[]).await;
    add_usual_carriers(&app.camionback);
    app.camionback.set_carriers_delay(Duration::from_secs(3600));
    let settings = settings_for(&app.dir, &app.camionback, &app.cloud, &app.overrides);
    let stop = CancellationToken::new();
    let starting = tokio::spawn(Engine::start_unless_stopped(settings, stop.clone()));
    eventually(PATIENCE, || async {
        (app.camionback.carrier_requests() > 0).then_some(())
    })
    .await;

    stop.cancel();
    let started = within("the start-up ends", starting).await.expect("task");
    assert!(
        matches!(started, Err(EngineError::Stopped)),
        "the start-up gives up"
    );
    // The directory is free for the next relay, and the interrupted sync wrote nothing.
    let _lock = relay_engine::lock::InstanceLock::acquire(app.dir.path()).expect("lock released");
    let store = Store::open(&app.dir.path().join("relay.db"))
        .await
        .expect("database");
    assert_eq!(store.eligible_carrier_count().await.expect("count"), 0);
    assert_eq!(state(&store, StateKey::LastCarrierSyncError).await, None);
    store.close().await;
}
