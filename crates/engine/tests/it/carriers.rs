//! Who receives a broadcast: validated carriers only, checked again at send time, and every
//! unusable number recorded rather than silently dropped.

use std::time::Duration;

use relay_domain::DeliveryStatus;
use relay_test_support::camionback::Outage;

use crate::helpers::*;

#[tokio::test]
async fn blocked_and_pending_carriers_never_receive_anything() {
    let app = spawn_app().await;
    add_usual_carriers(&app.camionback);
    // The API's `statut=valide` filter is not trusted: this fake lists everyone.
    app.post_order(order(1)).await;
    let rows = app.wait_for_broadcast(1).await;

    let names: Vec<&str> = rows.iter().map(|r| r.carrier_name.as_str()).collect();
    assert_eq!(names, ["Transports Atlas", "Rif Logistique", "Souss Fret"]);
    let sent_to: Vec<String> = app.cloud.received().into_iter().map(|r| r.to).collect();
    assert!(
        !sent_to.contains(&"212612345604".to_string()),
        "blocked carrier"
    );
    assert!(
        !sent_to.contains(&"212612345605".to_string()),
        "pending carrier"
    );
}

#[tokio::test]
async fn a_carrier_blocked_after_the_order_was_queued_is_skipped_at_send_time() {
    // A slow throttle so the block lands while the broadcast is still running.
    let app = spawn_app_with(&[("RELAY_THROTTLE_MS", "400")]).await;
    add_usual_carriers(&app.camionback);
    app.post_order(order(2)).await;
    eventually(Duration::from_secs(5), || async {
        (app.cloud.received().len() == 1).then_some(())
    })
    .await;

    // Carrier 3 (queued last) gets blocked; the next sync sees it.
    app.camionback.set_carrier_status(3, "bloqué");
    app.engine().carriers().sync_now().await.expect("sync");

    let rows = app.wait_for_broadcast(2).await;
    let souss = rows
        .iter()
        .find(|r| r.carrier_id == 3)
        .expect("row kept in history");
    assert_eq!(status_of(souss), DeliveryStatus::Skipped);
    assert!(
        souss.error.as_deref().unwrap_or("").contains("non validé"),
        "{:?}",
        souss.error
    );
    assert!(app.cloud.accepted_to("212612345603").is_empty());
}

#[tokio::test]
async fn an_invalid_number_is_recorded_and_the_others_are_still_sent() {
    let app = spawn_app().await;
    add_usual_carriers(&app.camionback);
    app.camionback
        .add_carrier(6, "Numéro Faux", "06-12", "valide");
    app.post_order(order(3)).await;

    let rows = app.wait_for_broadcast(3).await;
    assert_eq!(rows.len(), 4);
    let faux = rows
        .iter()
        .find(|r| r.carrier_id == 6)
        .expect("invalid carrier in history");
    assert_eq!(status_of(faux), DeliveryStatus::InvalidNumber);
    assert_eq!(
        faux.phone, "06-12",
        "the history shows the number as CamionBack has it"
    );
    assert!(faux.error.is_some());
    assert_eq!(
        rows.iter()
            .filter(|r| status_of(r) == DeliveryStatus::Sent)
            .count(),
        3
    );
    assert_eq!(
        app.cloud.received().len(),
        3,
        "nothing was sent to the invalid number"
    );
}

#[tokio::test]
async fn a_long_carrier_list_is_read_across_pages() {
    let app = world(&[("RELAY_THROTTLE_MS", "1")]).await;
    app.camionback.set_carriers_page_size(7);
    for id in 1..=30 {
        app.camionback.add_carrier(
            id,
            &format!("Transporteur {id}"),
            &format!("06123456{id:02}"),
            "valide",
        );
    }
    let app = app.start().await;
    app.post_order(order(4)).await;
    let rows = app.wait_for_broadcast(4).await;
    assert_eq!(rows.len(), 30);
    assert!(rows.iter().all(|r| status_of(r) == DeliveryStatus::Sent));
}

#[tokio::test]
async fn when_the_carrier_api_is_down_the_last_known_list_is_used() {
    let app = spawn_app().await;
    add_usual_carriers(&app.camionback);
    app.engine()
        .carriers()
        .sync_now()
        .await
        .expect("first sync");
    app.camionback.set_carriers_outage(Outage::Down);
    assert!(app.engine().carriers().sync_now().await.is_err());

    app.post_order(order(5)).await;
    let rows = app.wait_for_broadcast(5).await;
    assert_eq!(rows.len(), 3, "the broadcast went on with the last list");

    app.camionback.set_carriers_outage(Outage::Garbage);
    assert!(app.engine().carriers().sync_now().await.is_err());
    assert_eq!(
        app.store().eligible_carrier_count().await.expect("count"),
        3
    );
}
