//! "📤 Relancer les transporteurs": a manual relaunch of one order.

use relay_domain::{DeliveryStatus, OrderId};
use relay_engine::clock::now_ms;
use relay_engine::ops::OrderKey;
use relay_engine::store::RelaunchMode;
use relay_test_support::Reply;

use crate::helpers::*;

#[tokio::test]
async fn relaunch_by_default_reaches_only_carriers_who_do_not_have_the_order() {
    let app = spawn_app().await;
    add_usual_carriers(&app.camionback);
    app.cloud.script(
        "212612345602",
        vec![Reply::meta(400, 131026, "Message undeliverable")],
    );
    app.post_order(order(1)).await;
    app.wait_for_broadcast(1).await;
    assert_eq!(app.cloud.accepted_to("212612345602").len(), 0);

    // A carrier validated since the broadcast, and one whose number cannot be used: its
    // number is reported once, not again at each relaunch.
    app.camionback
        .add_carrier(7, "Nouveau Transport", "0612345607", "valide");
    app.camionback
        .add_carrier(8, "Sans Numéro", "06 12", "valide");
    app.engine().carriers().sync_now().await.expect("sync");

    let store = app.store();
    assert_eq!(
        store
            .relaunch_preview(OrderId(1), RelaunchMode::Missing)
            .await
            .expect("preview"),
        2
    );
    let outcome = store
        .relaunch(OrderId(1), RelaunchMode::Missing, now_ms())
        .await
        .expect("relaunch");
    assert_eq!(outcome.queued, 2);
    assert_eq!(outcome.invalid_numbers, 1, "{outcome:?}");
    app.engine().wake_dispatcher();
    app.wait_for_broadcast(1).await;

    assert_eq!(
        app.cloud.accepted_to("212612345602").len(),
        1,
        "the failed carrier got it now"
    );
    assert_eq!(
        app.cloud.accepted_to("212612345607").len(),
        1,
        "the new carrier got it"
    );
    assert_eq!(
        app.cloud.accepted_to("212612345601").len(),
        1,
        "no duplicate for the others"
    );
    assert_eq!(app.cloud.accepted_to("212612345603").len(), 1);

    let again = store
        .relaunch(OrderId(1), RelaunchMode::Missing, now_ms())
        .await
        .expect("second relaunch");
    assert_eq!(
        (again.queued, again.invalid_numbers),
        (0, 0),
        "nothing new to send, and the unusable number is not reported again"
    );
}

#[tokio::test]
async fn relaunch_all_reaches_every_validated_carrier_again() {
    let app = spawn_app().await;
    add_usual_carriers(&app.camionback);
    app.post_order(order(1)).await;
    app.wait_for_broadcast(1).await;

    let outcome = app
        .store()
        .relaunch(OrderId(1), RelaunchMode::All, now_ms())
        .await
        .expect("relaunch");
    assert_eq!(outcome.queued, 3);
    app.engine().wake_dispatcher();
    let rows = app.wait_for_broadcast(1).await;
    assert_eq!(rows.len(), 6, "the history keeps both rounds");
    assert_eq!(rows.iter().filter(|r| r.batch == 1).count(), 3);
    assert!(rows.iter().all(|r| status_of(r) == DeliveryStatus::Sent));
    for to in ["212612345601", "212612345602", "212612345603"] {
        assert_eq!(app.cloud.accepted_to(to).len(), 2);
    }
    assert!(
        app.cloud.accepted_to("212612345604").is_empty(),
        "blocked carriers still get nothing"
    );
}

/// Staff relaunch from a shell (`Engine::ops`, as the desktop does): the order is found by
/// its reference, carriers validated since are fetched first, the running dispatcher sends
/// the new batch, and what was done reads as the CLI prints it.
#[tokio::test]
async fn a_relaunch_by_the_shells_operations_refreshes_carriers_and_sends_at_once() {
    let app = spawn_app().await;
    add_usual_carriers(&app.camionback);
    app.post_order(order(1)).await;
    app.wait_for_broadcast(1).await;
    app.camionback
        .add_carrier(7, "Nouveau Transport", "0612345607", "valide");

    let ops = app.engine().ops();
    let reference = ops.find_order("1").await.expect("found").order.reference;
    let order = ops
        .relaunchable(OrderKey::Typed(&reference))
        .await
        .expect("broadcast already");
    let relaunched = ops
        .relaunch(&order, RelaunchMode::Missing, now_ms())
        .await
        .expect("relaunch");
    assert_eq!(relaunched.queued.queued, 1, "only the new carrier");
    assert_eq!(relaunched.sync_warning, None);
    assert_eq!(
        relaunched.summary(),
        format!(
            "{reference} : 1 transporteur(s) en file — le relais en cours d'exécution les envoie dans la seconde"
        )
    );
    assert_eq!(relaunched.doubtful_note("--include-doubtful"), None);
    app.wait_for_broadcast(1).await;
    assert_eq!(app.cloud.accepted_to("212612345607").len(), 1);
    assert_eq!(
        app.cloud.accepted_to("212612345601").len(),
        1,
        "no duplicate"
    );

    match ops.relaunchable(OrderKey::Typed("CMD-INCONNUE")).await {
        Err(err) => assert_eq!(err.to_string(), "commande « CMD-INCONNUE » inconnue"),
        Ok(order) => panic!("an unknown order was found: {order:?}"),
    }
}
