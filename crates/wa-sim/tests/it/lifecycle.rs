//! Connection lifecycle: drops and reconnection, unlinking from the phone, a replaced session.

use std::time::{Duration, Instant};

use relay_wa_sim::WaSim;
use whatsapp_rust::prelude::Event;
use whatsapp_rust::types::events::{ConnectFailureReason, TempBanReason};

use crate::common::{init_log, linked_bot, name, start_bot};

const PHONE: &str = "212600000002";
const SHORT: Duration = Duration::from_secs(5);

async fn run_loop_ends(bot: &mut crate::common::TestBot) {
    tokio::time::timeout(SHORT, &mut bot.handle)
        .await
        .expect("run loop ended");
}

/// A dropped socket: `Disconnected`, then an immediate reconnect and `Connected` again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_connection_reconnects() {
    init_log();
    let sim = WaSim::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut bot = linked_bot(&sim, &dir.path().join("s.db"), PHONE).await;
    let before = sim.connections();

    let t = Instant::now();
    sim.drop_connection().await;
    bot.wait_event(SHORT, |e| matches!(e, Event::Disconnected(_)))
        .await;
    bot.wait_event(SHORT, |e| matches!(e, Event::Connected(_)))
        .await;
    println!("reconnected and Connected after {:?}", t.elapsed());
    assert_eq!(sim.connections(), before + 1);
    assert!(sim.is_logged_in());

    // A second drop right after: the error count was reset by <success>, so again at once.
    sim.drop_connection().await;
    bot.wait_event(SHORT, |e| matches!(e, Event::Connected(_)))
        .await;
    assert_eq!(sim.connections(), before + 2);
    bot.stop().await;
}

/// Unlinked from the phone: `LoggedOut { on_connect: false }`, the run loop ends; the stored
/// session is refused at the next start with `LoggedOut { on_connect: true }`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removed_device_is_logged_out() {
    init_log();
    let sim = WaSim::start().await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let mut bot = linked_bot(&sim, &db, PHONE).await;

    sim.remove_device().await;
    let e = bot
        .wait_event(SHORT, |e| matches!(e, Event::LoggedOut(_)))
        .await;
    let Event::LoggedOut(out) = &*e else {
        unreachable!()
    };
    assert!(!out.on_connect);
    assert_eq!(out.reason, ConnectFailureReason::LoggedOut);
    run_loop_ends(&mut bot).await;
    assert!(bot.client.pn().is_some(), "credentials are not wiped");
    drop(bot);

    let mut again = start_bot(&sim, &db).await;
    let e = again
        .wait_event(SHORT, |e| {
            matches!(e, Event::LoggedOut(_) | Event::Connected(_))
        })
        .await;
    let Event::LoggedOut(out) = &*e else {
        panic!("expected LoggedOut, got {}", name(&e))
    };
    assert!(out.on_connect);
    run_loop_ends(&mut again).await;
}

/// Another client took the session: `StreamReplaced`, and the run loop ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaced_session_ends_the_loop() {
    init_log();
    let sim = WaSim::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut bot = linked_bot(&sim, &dir.path().join("s.db"), PHONE).await;
    let before = sim.connections();

    sim.replace_session().await;
    bot.wait_event(SHORT, |e| matches!(e, Event::StreamReplaced(_)))
        .await;
    // The run loop has ended, and it is what reconnects: no connection can come after it.
    run_loop_ends(&mut bot).await;
    assert_eq!(sim.connections(), before, "no reconnect");
}

/// `<failure reason="402">`: `TemporaryBan { code, expire }`, the loop ends, and logins are
/// refused the same way until the ban expires.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn temporary_ban() {
    init_log();
    let sim = WaSim::start().await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let mut bot = linked_bot(&sim, &db, PHONE).await;

    sim.ban(101, 3600).await;
    let e = bot
        .wait_event(SHORT, |e| matches!(e, Event::TemporaryBan(_)))
        .await;
    let Event::TemporaryBan(ban) = &*e else {
        unreachable!()
    };
    assert_eq!(ban.code, TempBanReason::SentToTooManyPeople);
    assert_eq!(ban.expire.num_seconds(), 3600);
    run_loop_ends(&mut bot).await;
    drop(bot);

    let mut again = start_bot(&sim, &db).await;
    let e = again
        .wait_event(SHORT, |e| {
            matches!(e, Event::TemporaryBan(_) | Event::Connected(_))
        })
        .await;
    let Event::TemporaryBan(ban) = &*e else {
        panic!("expected TemporaryBan, got {}", name(&e))
    };
    assert!(ban.expire.num_seconds() > 3590, "{:?}", ban.expire);
    run_loop_ends(&mut again).await;
}

/// Half-open socket: at first the client still believes it is connected and IQs go
/// unanswered. wa-rs 0.2.0 stayed there for good (its keepalive counted a timed-out ping as a
/// success); whatsapp-rust 0.7's keepalive sees no data for 20 s after a send, declares the
/// socket dead and reconnects by itself (a keepalive tick comes every 15–30 s and its ping
/// waits 20 s, so this takes from 20 s to over a minute: 29–75 s measured), and normal service
/// is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_server_is_detected_and_the_client_reconnects() {
    init_log();
    let sim = WaSim::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut bot = linked_bot(&sim, &dir.path().join("s.db"), PHONE).await;
    let before = sim.connections();

    sim.go_silent().await;
    let t = Instant::now();
    let iq = tokio::time::timeout(Duration::from_secs(2), bot.client.fetch_props()).await;
    assert!(iq.is_err(), "the IQ hangs");
    assert!(bot.client.is_connected());
    assert!(sim.is_connected());
    assert_eq!(sim.connections(), before);

    // Bounded by the keepalive's schedule: a tick every 15–30 s, one skipped while data came in
    // less than 15 s before, a ping that waits 20 s, then the dead-socket check.
    bot.wait_event(Duration::from_secs(150), |e| {
        matches!(e, Event::Connected(_))
    })
    .await;
    println!(
        "dead socket detected and Connected again after {:?}",
        t.elapsed()
    );
    assert!(
        sim.connections() > before,
        "the client reconnected by itself"
    );
    tokio::time::timeout(SHORT, bot.client.fetch_props())
        .await
        .expect("answered again")
        .expect("props");
    bot.stop().await;
}
