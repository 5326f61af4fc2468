//! A stop asked while `serve` is still starting: it ends cleanly, exit 0, nothing half-done.

use std::time::Duration;

use crate::helpers::*;

#[tokio::test]
async fn sigterm_while_the_first_carrier_sync_hangs_stops_serve_cleanly_with_exit_0() {
    let world = World::new(Duration::ZERO).await;
    add_carriers(&world.camionback, 3);
    // The API takes the request and never answers in time: start-up is stuck in the sync.
    world
        .camionback
        .set_carriers_delay(Duration::from_secs(3600));
    let relay = world.spawn_serve(&[]);
    eventually(Duration::from_secs(20), || {
        (world.camionback.carrier_requests() > 0).then_some(())
    })
    .await;

    let output = relay.terminate();
    let logs = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "SIGTERM during start-up exits 0, not killed: {:?}\n{logs}",
        output.status
    );
    assert!(logs.contains("démarrage interrompu"), "{logs}");

    // Nothing was half-written: the carrier list is untouched, and the next start is normal.
    let carriers = world.run(&["carriers", "list", "--json"]);
    assert!(carriers.status.success());
    let listed: Vec<serde_json::Value> =
        serde_json::from_slice(&carriers.stdout).expect("carriers json");
    assert!(listed.is_empty(), "the interrupted sync stored nothing");
    world.camionback.set_carriers_delay(Duration::ZERO);
    let relay = world.serve(&[]).await;
    assert_eq!(world.post_order(order(9)).await, 202);
    let rows = eventually(Duration::from_secs(20), || {
        let rows = world.history("9");
        (rows.len() == 3 && statuses(&rows).iter().all(|s| s == "sent")).then_some(rows)
    })
    .await;
    assert_eq!(rows.len(), 3);
    assert!(relay.terminate().status.success());
}
