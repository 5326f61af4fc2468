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
