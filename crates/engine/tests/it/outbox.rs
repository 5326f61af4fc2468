//! Never twice: an outcome the database refuses stops sending loudly and is written again until
//! it lands, and a send that may have reached Meta is recorded `uncertain`, never resent, then
//! settled by Meta's status report.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use relay_domain::{DeliveryStatus, OrderId};
use relay_engine::channel::{Accepted, Channel, OutgoingMessage, SendError};
use relay_engine::clock::now_ms;
use relay_engine::store::{HistoryRow, RelaunchMode};
use relay_engine::{Engine, Settings};
use relay_test_support::{FakeCloudApi, FullDisk, Reply};
use sqlx::ConnectOptions;

use crate::helpers::*;

fn add_carriers(app: &TestApp, count: i64) {
    for id in 1..=count {
        app.camionback
            .add_carrier(id, &format!("T{id}"), &format!("06123456{id:02}"), "valide");
    }
}

fn digits(carrier: i64) -> String {
    format!("2126123456{carrier:02}")
}

fn row_of(rows: &[HistoryRow], carrier: i64) -> &HistoryRow {
    rows.iter()
        .find(|r| r.carrier_id == carrier)
        .expect("a row for the carrier")
}

#[tokio::test]
async fn a_full_disk_during_a_broadcast_stops_sending_loudly_and_no_carrier_gets_two_copies() {
    // Slow enough that the broadcast is still under way when the disk fills up.
    let app = world(&[("RELAY_THROTTLE_MS", "300")]).await;
    add_carriers(&app, 6);
    let disk = FullDisk::under(app.dir.path());
    let app = app
        .start_with(|s| s.store.vfs = Some(disk.vfs_name().to_string()))
        .await;
    app.post_order(order(1)).await;
    eventually(Duration::from_secs(10), || async {
        (app.cloud.received().len() >= 2).then_some(())
    })
    .await;

    disk.fill();
    let health = app.engine().outbox_health();
    eventually(Duration::from_secs(10), || async {
        health.write_failure().is_some().then_some(())
    })
    .await;
    let sent_when_it_stopped = app.cloud.received().len();
    // The write is tried again and again; nothing is claimed or sent meanwhile.
    eventually(Duration::from_secs(20), || async {
        health
            .write_failure()
            .is_some_and(|f| f.attempts >= 6)
            .then_some(())
    })
    .await;
    assert_eq!(
        app.cloud.received().len(),
        sent_when_it_stopped,
        "nothing more leaves while the outcome cannot be written"
    );
    let failure = health.write_failure().expect("alert up");
    assert!(
        failure.error.contains("full") || failure.error.contains("plein"),
        "the alert says why: {failure:?}"
    );
    let metrics = app.metrics().await;
    assert!(
        metrics
            .lines()
            .any(|line| line == "relay_outbox_write_failing 1"),
        "{metrics}"
    );
    let (code, body) = app.health().await;
    assert_eq!(
        code, 503,
        "a relay that cannot record its sends is unhealthy"
    );
    assert_eq!(body["status"], "outbox_write_failing");
    assert!(body["outbox_write_failing"]["error"].is_string(), "{body}");

    disk.free();
    let rows = app.wait_for_broadcast(1).await;
    for carrier in 1..=6 {
        assert_eq!(
            app.cloud.accepted_to(&digits(carrier)).len(),
            1,
            "carrier {carrier} received exactly one copy"
        );
        let row = row_of(&rows, carrier);
        assert_eq!(status_of(row), DeliveryStatus::Sent, "{row:?}");
        assert_eq!(row.attempts, 1, "{row:?}");
        assert_eq!(
            row.message_id.as_deref(),
            app.cloud.accepted_to(&digits(carrier))[0]
                .message_id
                .as_deref(),
            "the message id Meta gave is the one stored"
        );
    }
    assert_eq!(health.write_failure(), None, "the alert is cleared");
    assert!(app.metrics().await.contains("relay_outbox_write_failing 0"));
    assert_eq!(app.health().await.0, 200);
}

#[tokio::test]
async fn a_write_lock_held_past_the_busy_timeout_right_after_a_send_loses_neither_outcome_nor_id() {
    let app = world(&[]).await;
    add_carriers(&app, 2);
    // Meta takes the first message at once but answers 3 s later: time enough to take the
    // database's write lock before the relay records the send.
    app.cloud
        .script(&digits(1), vec![Reply::AcceptLate(Duration::from_secs(3))]);
    let app = app
        .start_with(|s| s.store.busy_timeout = Duration::from_millis(100))
        .await;
    app.post_order(order(1)).await;
    eventually(Duration::from_secs(10), || async {
        (app.cloud.received().len() == 1).then_some(())
    })
    .await;

    // Another process (a backup, a `sqlite3` shell) holds the write lock for a long while.
    let mut other = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(app.dir.path().join("relay.db"))
        .busy_timeout(Duration::from_secs(5))
        .connect()
        .await
        .expect("second connection");
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut other)
        .await
        .expect("write lock");
    let rows = app.deliveries_of(1).await;
    assert_eq!(
        status_of(row_of(&rows, 1)),
        DeliveryStatus::Sending,
        "the lock is held before the relay records the send"
    );
    let health = app.engine().outbox_health();
    eventually(Duration::from_secs(20), || async {
        health
            .write_failure()
            .is_some_and(|f| f.attempts >= 3)
            .then_some(())
    })
    .await;
    assert!(
        health
            .write_failure()
            .and_then(|f| f.waiting_for)
            .is_some_and(|who| who.contains("T1")),
        "the alert names whose outcome waits"
    );
    assert_eq!(
        app.cloud.received().len(),
        1,
        "nothing else is sent meanwhile"
    );

    sqlx::query("ROLLBACK")
        .execute(&mut other)
        .await
        .expect("lock released");
    let rows = app.wait_for_broadcast(1).await;
    let first = row_of(&rows, 1);
    assert_eq!(status_of(first), DeliveryStatus::Sent);
    assert_eq!(first.attempts, 1);
    assert_eq!(
        first.message_id,
        app.cloud.accepted_to(&digits(1))[0].message_id,
        "Meta's id is kept through the wait"
    );
    assert_eq!(app.cloud.accepted_to(&digits(1)).len(), 1);
    assert_eq!(app.cloud.accepted_to(&digits(2)).len(), 1);
    assert_eq!(health.write_failure(), None);
}

#[tokio::test]
async fn a_timeout_after_meta_took_the_message_is_uncertain_never_resent_then_settled_by_its_report()
 {
    let app = world(&[("RELAY_SEND_TIMEOUT_SECS", "1")]).await;
    add_carriers(&app, 2);
    let late = Reply::AcceptLate(Duration::from_secs(3));
    app.cloud
        .script(&digits(1), vec![late.clone(), late.clone(), late]);
    let app = app.start().await;
    app.post_order(order(1)).await;
    let rows = app.wait_for_broadcast(1).await;

    let slow = row_of(&rows, 1);
    assert_eq!(status_of(slow), DeliveryStatus::Uncertain, "{slow:?}");
    assert_eq!(slow.attempts, 1, "never tried again");
    assert!(
        slow.error.as_deref().unwrap_or("").contains("peut-être"),
        "the history explains the doubt: {:?}",
        slow.error
    );
    assert_eq!(DeliveryStatus::Uncertain.label(), "Incertain");
    assert_eq!(
        app.cloud.accepted_to(&digits(1)).len(),
        1,
        "the carrier has one copy"
    );
    assert_eq!(status_of(row_of(&rows, 2)), DeliveryStatus::Sent);
    assert!(
        app.metrics()
            .await
            .contains("relay_deliveries{status=\"uncertain\"} 1")
    );

    // Meta reports the message delivered; its answer never reached the relay, so only the
    // delivery id Meta echoes (`biz_opaque_callback_data`) can say which row it is.
    let taken = app.cloud.accepted_to(&digits(1)).remove(0);
    assert!(
        taken.body["biz_opaque_callback_data"].is_string(),
        "every send carries its delivery id"
    );
    let notification = app.cloud.status_notification(&[(&taken, "delivered")]);
    assert_eq!(
        app.post_status_notification(&notification).await.status(),
        200
    );
    let rows = app.deliveries_of(1).await;
    let settled = row_of(&rows, 1);
    assert_eq!(status_of(settled), DeliveryStatus::Delivered);
    assert_eq!(settled.message_id, taken.message_id, "Meta's id is stored");
    assert_eq!(settled.error, None, "the doubt is lifted");
}

#[tokio::test]
async fn a_2xx_with_an_unreadable_body_is_uncertain_and_a_report_settles_it() {
    let app = world(&[]).await;
    add_carriers(&app, 1);
    app.cloud.script(&digits(1), vec![Reply::AcceptGarbled]);
    let app = app.start().await;
    app.post_order(order(1)).await;
    let rows = app.wait_for_broadcast(1).await;
    let row = row_of(&rows, 1);
    assert_eq!(status_of(row), DeliveryStatus::Uncertain, "{row:?}");
    assert_eq!(row.attempts, 1);
    assert_eq!(row.message_id, None);
    assert_eq!(app.cloud.received().len(), 1, "not resent");

    let taken = app.cloud.accepted_to(&digits(1)).remove(0);
    let notification = app
        .cloud
        .status_notification(&[(&taken, "sent"), (&taken, "read")]);
    assert_eq!(
        app.post_status_notification(&notification).await.status(),
        200
    );
    let rows = app.deliveries_of(1).await;
    assert_eq!(status_of(&rows[0]), DeliveryStatus::Read);
    assert_eq!(rows[0].message_id, taken.message_id);
}

#[tokio::test]
async fn a_report_naming_another_recipient_or_a_settled_delivery_changes_nothing() {
    let app = world(&[]).await;
    add_carriers(&app, 2);
    app.cloud.script(&digits(1), vec![Reply::AcceptGarbled]);
    let app = app.start().await;
    app.post_order(order(1)).await;
    app.wait_for_broadcast(1).await;
    let taken = app.cloud.accepted_to(&digits(1)).remove(0);

    // The tag of the uncertain delivery, but for a message to someone else (another relay on
    // the same WhatsApp account).
    let mut elsewhere = taken.clone();
    elsewhere.to = "212699999999".into();
    elsewhere.message_id = Some("wamid.ELSEWHERE".into());
    let notification = app.cloud.status_notification(&[(&elsewhere, "delivered")]);
    assert_eq!(
        app.post_status_notification(&notification).await.status(),
        200
    );
    let rows = app.deliveries_of(1).await;
    assert_eq!(status_of(row_of(&rows, 1)), DeliveryStatus::Uncertain);

    // The tag of the delivery that was sent normally: it has its id already.
    let sent = app.cloud.accepted_to(&digits(2)).remove(0);
    let mut stray = sent.clone();
    stray.message_id = Some("wamid.STRAY".into());
    let notification = app.cloud.status_notification(&[(&stray, "read")]);
    assert_eq!(
        app.post_status_notification(&notification).await.status(),
        200
    );
    let rows = app.deliveries_of(1).await;
    let second = row_of(&rows, 2);
    assert_eq!(status_of(second), DeliveryStatus::Sent);
    assert_eq!(second.message_id, sent.message_id);
}

#[tokio::test]
async fn a_refused_connection_is_retried_and_the_message_sent_once() {
    // A port with nothing listening: the connection is refused, nothing was written.
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind("127.0.0.1:0".parse().expect("addr"))
        .expect("bind");
    let addr = socket.local_addr().expect("addr");
    let url = format!("http://{addr}");
    let app = world(&[("WHATSAPP_API_URL", url.as_str())]).await;
    add_carriers(&app, 1);
    let app = app.start().await;
    app.post_order(order(1)).await;
    let row = eventually(Duration::from_secs(10), || async {
        let rows = app.deliveries_of(1).await;
        rows.first()
            .filter(|r| status_of(r) == DeliveryStatus::Queued && r.attempts == 1)
            .cloned()
    })
    .await;
    assert!(
        row.error.as_deref().unwrap_or("").contains("injoignable"),
        "{row:?}"
    );

    // Meta is back on that port: the retry (5 to 10 s later) goes through.
    let listener = socket.listen(64).expect("listen").into_std().expect("std");
    let meta = FakeCloudApi::start_on(listener).await;
    let rows = eventually(Duration::from_secs(20), || async {
        let rows = app.deliveries_of(1).await;
        rows.first()
            .filter(|r| status_of(r) == DeliveryStatus::Sent)
            .map(|_| rows.clone())
    })
    .await;
    assert_eq!(rows[0].attempts, 2);
    assert_eq!(meta.accepted_to(&digits(1)).len(), 1, "one copy");
    assert_eq!(rows[0].error, None);
}

/// A channel that knows the id of each message and never hears back: what WhatsApp Web does
/// when the server's acknowledgement never comes.
struct NeverAcknowledged;

#[async_trait]
impl Channel for NeverAcknowledged {
    fn name(&self) -> &'static str {
        "test"
    }

    async fn send(&self, message: OutgoingMessage<'_>) -> Result<Accepted, SendError> {
        Err(SendError::Uncertain {
            reason: "pas d'accusé du serveur".into(),
            message_id: Some(format!("wamid.KNOWN{}", message.delivery_id)),
        })
    }
}

#[tokio::test]
async fn a_status_report_by_message_id_settles_an_uncertain_delivery() {
    let app = world(&[]).await;
    add_carriers(&app, 1);
    let settings = settings_for(&app.dir, &app.camionback, &app.cloud, &app.overrides);
    let engine = Engine::start_with_channel(settings, Arc::new(NeverAcknowledged))
        .await
        .expect("engine");
    let mut app = TestApp {
        engine: Some(engine),
        ..app
    };
    app.post_order(order(1)).await;
    let rows = app.wait_for_broadcast(1).await;
    assert_eq!(status_of(&rows[0]), DeliveryStatus::Uncertain);
    let id = rows[0].message_id.clone().expect("the id is kept");

    let notification = serde_json::json!({
        "object": "whatsapp_business_account",
        "entry": [{ "id": "WABA", "changes": [{ "field": "messages", "value": {
            "messaging_product": "whatsapp",
            "statuses": [{ "id": id, "status": "delivered", "timestamp": "1700000000",
                           "recipient_id": digits(1) }] } }] }]
    });
    assert_eq!(
        app.post_status_notification(&notification).await.status(),
        200
    );
    let rows = app.deliveries_of(1).await;
    assert_eq!(status_of(&rows[0]), DeliveryStatus::Delivered);
    assert_eq!(rows[0].error, None);
    app.stop().await;
}

/// Never ready: nothing is ever claimed by the dispatcher, so the test sets the history up
/// through the store, as the outcomes of an earlier run.
struct NeverReady;

#[async_trait]
impl Channel for NeverReady {
    fn name(&self) -> &'static str {
        "test"
    }

    async fn send(&self, _: OutgoingMessage<'_>) -> Result<Accepted, SendError> {
        unreachable!("never claimed")
    }

    async fn ready(&self) {
        std::future::pending::<()>().await
    }
}

#[tokio::test]
async fn relaunch_by_default_leaves_out_carriers_in_doubt_and_queues_them_when_asked() {
    let app = world(&[]).await;
    add_carriers(&app, 4);
    let settings: Settings = settings_for(&app.dir, &app.camionback, &app.cloud, &app.overrides);
    let first = Engine::start_with_channel(settings, Arc::new(NeverReady))
        .await
        .expect("engine");
    let app = TestApp {
        engine: Some(first),
        ..app
    };
    app.post_order(order(1)).await;
    let store = app.store().clone();
    eventually(Duration::from_secs(10), || async {
        (app.deliveries_of(1).await.len() == 4).then_some(())
    })
    .await;
    // An earlier run: carrier 1 got it, carrier 2's send is uncertain, carrier 3's was in
    // flight when the relay died, carrier 4 failed.
    let now = now_ms();
    let mut claims = Vec::new();
    while let Some(claim) = store.claim_next(None, now, None).await.expect("claim") {
        claims.push(claim);
    }
    claims.sort_by_key(|c| c.carrier_id);
    store
        .mark_sent(claims[0].id, Some("wamid.ONE"), now)
        .await
        .expect("sent");
    store
        .mark_uncertain(claims[1].id, "pas de réponse", None, now)
        .await
        .expect("uncertain");
    store
        .mark_final(
            claims[3].id,
            DeliveryStatus::Failed,
            "131026 : Message undeliverable",
            None,
            now,
        )
        .await
        .expect("failed");
    let mut app = app;
    app.stop().await;
    // The next start finds carrier 3's delivery still `sending`: interrupted.
    let app = app.start().await;
    let rows = app.deliveries_of(1).await;
    assert_eq!(status_of(row_of(&rows, 3)), DeliveryStatus::Interrupted);

    let store = app.store();
    let counts = store.relaunch_counts(OrderId(1)).await.expect("counts");
    assert_eq!(
        (counts.missing, counts.doubtful, counts.all),
        (1, 2, 4),
        "only the failed carrier is owed it; two may have it"
    );
    let outcome = store
        .relaunch(OrderId(1), RelaunchMode::Missing, now_ms())
        .await
        .expect("relaunch");
    assert_eq!(outcome.queued as i64, counts.missing, "the preview said so");
    app.engine().wake_dispatcher();
    app.wait_for_broadcast(1).await;
    assert_eq!(app.cloud.accepted_to(&digits(4)).len(), 1);
    assert!(
        app.cloud.accepted_to(&digits(2)).is_empty()
            && app.cloud.accepted_to(&digits(3)).is_empty(),
        "a default relaunch never sends to a carrier in doubt"
    );

    let counts = store.relaunch_counts(OrderId(1)).await.expect("counts");
    assert_eq!((counts.missing, counts.doubtful), (0, 2));
    let outcome = store
        .relaunch(OrderId(1), RelaunchMode::MissingAndDoubtful, now_ms())
        .await
        .expect("relaunch with the doubtful");
    assert_eq!(outcome.queued as i64, counts.missing + counts.doubtful);
    app.engine().wake_dispatcher();
    app.wait_for_broadcast(1).await;
    assert_eq!(app.cloud.accepted_to(&digits(2)).len(), 1);
    assert_eq!(app.cloud.accepted_to(&digits(3)).len(), 1);
    assert!(
        app.cloud.accepted_to(&digits(1)).is_empty(),
        "carrier 1 had it: not even this relaunch sends it again"
    );
}

#[tokio::test]
async fn a_stop_while_the_disk_is_full_still_ends_and_the_report_settles_the_row_at_next_start() {
    let app = world(&[]).await;
    add_carriers(&app, 1);
    app.cloud.script(
        &digits(1),
        vec![Reply::AcceptLate(Duration::from_millis(800))],
    );
    let disk = FullDisk::under(app.dir.path());
    let vfs = disk.vfs_name().to_string();
    let mut app = app.start_with(|s| s.store.vfs = Some(vfs.clone())).await;
    app.post_order(order(1)).await;
    eventually(Duration::from_secs(10), || async {
        (app.cloud.received().len() == 1).then_some(())
    })
    .await;
    // Full before Meta's answer comes back: the send cannot be recorded.
    disk.fill();
    eventually(Duration::from_secs(10), || async {
        app.engine()
            .outbox_health()
            .write_failure()
            .is_some()
            .then_some(())
    })
    .await;

    // SIGTERM, "Quitter": the stop gives up on the write after its grace period and ends.
    tokio::time::timeout(Duration::from_secs(60), app.stop())
        .await
        .expect("the relay stops although its database refuses the outcome");
    disk.free();
    let app = app.start_with(|s| s.store.vfs = Some(vfs)).await;
    let rows = app.deliveries_of(1).await;
    assert_eq!(status_of(&rows[0]), DeliveryStatus::Interrupted);
    assert!(
        rows[0]
            .error
            .as_deref()
            .unwrap_or("")
            .contains("base de données indisponible"),
        "{:?}",
        rows[0].error
    );
    assert_eq!(app.cloud.received().len(), 1, "never sent again");

    let taken = app.cloud.accepted_to(&digits(1)).remove(0);
    let notification = app.cloud.status_notification(&[(&taken, "delivered")]);
    assert_eq!(
        app.post_status_notification(&notification).await.status(),
        200
    );
    let rows = app.deliveries_of(1).await;
    assert_eq!(status_of(&rows[0]), DeliveryStatus::Delivered);
    assert_eq!(rows[0].message_id, taken.message_id);
}
