//! Linking: QR codes, their exhaustion, pairing codes and a stored session logging in again.

use std::time::Duration;

use relay_wa_sim::{PairCodeRefused, WaSim};
use wa_rs::pair_code::PairCodeOptions;
use wa_rs::types::events::Event;

use crate::common::{init_log, name, start_bot};

const PHONE: &str = "212600000001";

/// QR linking: `PairingQrCode` → (phone scans) → `PairSuccess` → reconnect → `Connected`; the
/// session is stored, so a second `Bot` on the same SQLite file logs in with no QR code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scanning_the_qr_links_and_the_session_persists() {
    init_log();
    let sim = WaSim::start().await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("session.db");

    let mut bot = start_bot(&sim, &db).await;
    assert!(bot.client.get_pn().await.is_none(), "no session yet");
    bot.wait_event(Duration::from_secs(10), |e| {
        matches!(e, Event::PairingQrCode { .. })
    })
    .await;
    sim.scan_qr(PHONE).await;

    let mut order = Vec::new();
    loop {
        let e = bot.wait_event(Duration::from_secs(10), |_| true).await;
        order.push(name(&e));
        match e {
            Event::PairSuccess(p) => {
                assert_eq!(p.id.user, PHONE);
                assert!(p.id.device > 0, "companion device id: {}", p.id);
                assert_eq!(p.lid.server, "lid");
            }
            Event::PairError(p) => panic!("pair error: {}", p.error),
            Event::Connected(_) => break,
            _ => {}
        }
    }
    println!("events after scan: {order:?}");
    assert_eq!(order.first().map(String::as_str), Some("PairSuccess"));
    assert_eq!(sim.connections(), 2, "linking connection, then login");
    assert!(sim.is_logged_in());
    assert_eq!(sim.linked_phone().as_deref(), Some(PHONE));
    let pn = bot.client.get_pn().await.expect("phone stored");
    assert_eq!(pn.user, PHONE);
    bot.stop().await;

    // Same session file, new Bot: straight to Connected.
    let mut again = start_bot(&sim, &db).await;
    let e = again
        .wait_event(Duration::from_secs(10), |e| {
            matches!(e, Event::Connected(_) | Event::PairingQrCode { .. })
        })
        .await;
    assert!(
        matches!(e, Event::Connected(_)),
        "no QR for a stored session"
    );
    assert_eq!(sim.connections(), 3);
    assert_eq!(again.client.get_pn().await.expect("pn").user, PHONE);
    again.stop().await;
}

/// The phone reads the QR code the client shows (as a real one does): the device identity is
/// HMAC'd with the ADV secret from the code, so a client that checks it (whatsapp-rust 0.7)
/// links too; a string that is not a linking code is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scanning_the_qr_code_itself_links() {
    init_log();
    let sim = WaSim::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut bot = start_bot(&sim, &dir.path().join("session.db")).await;
    let Event::PairingQrCode { code, .. } = bot
        .wait_event(Duration::from_secs(10), |e| {
            matches!(e, Event::PairingQrCode { .. })
        })
        .await
    else {
        unreachable!()
    };
    assert!(!sim.scan_qr_code(PHONE, "pas un code").await);
    assert!(sim.scan_qr_code(PHONE, &code).await);
    bot.wait_event(Duration::from_secs(10), |e| {
        matches!(e, Event::Connected(_))
    })
    .await;
    assert_eq!(sim.linked_phone().as_deref(), Some(PHONE));
    bot.stop().await;
}

/// When the refs of the `pair-device` IQ have all expired, wa-rs disconnects and its run loop
/// ends without any event. With 0 refs that is immediate (with N refs it takes 60 + 20·(N-1) s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_out_of_qr_codes_ends_the_run_loop_silently() {
    init_log();
    let sim = WaSim::start().await;
    sim.set_qr_refs(0);
    let dir = tempfile::tempdir().unwrap();
    let mut bot = start_bot(&sim, &dir.path().join("session.db")).await;

    tokio::time::timeout(Duration::from_secs(10), &mut bot.handle)
        .await
        .expect("run loop ended")
        .expect("no panic");
    let events: Vec<String> = bot
        .drain_events(Duration::from_millis(200))
        .await
        .iter()
        .map(name)
        .collect();
    assert!(events.is_empty(), "no event at all: {events:?}");
    assert_eq!(sim.connections(), 1);
    assert!(!bot.client.is_connected());
}

/// Pairing code: `pair_with_code` (companion_hello → ref) gives `PairingCode`; the phone types
/// it (primary_hello notification → companion_finish → pair-success), then the client links and
/// logs in as after a QR scan. What it said of itself at registration is recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typing_the_pairing_code_on_the_phone_links_the_companion() {
    init_log();
    let sim = WaSim::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut bot = start_bot(&sim, &dir.path().join("session.db")).await;
    bot.wait_event(Duration::from_secs(10), |e| {
        matches!(e, Event::PairingQrCode { .. })
    })
    .await;

    let code = bot
        .client
        .pair_with_code(PairCodeOptions {
            phone_number: format!("+{PHONE}"),
            ..Default::default()
        })
        .await
        .expect("pair code");
    assert_eq!(code.len(), 8);
    let requests = sim.pair_code_requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].phone, PHONE);
    assert_eq!(requests[0].platform_display, "Chrome (Linux)");
    assert!(requests[0].accepted);

    // Typed as a person would, lower case with a dash.
    let typed = format!("{}-{}", &code[..4], &code[4..]).to_lowercase();
    assert_eq!(sim.enter_pair_code(PHONE, &typed).await, Ok(()));
    let success = bot
        .wait_event(Duration::from_secs(10), |e| {
            matches!(e, Event::PairSuccess(_) | Event::PairError(_))
        })
        .await;
    let Event::PairSuccess(success) = success else {
        panic!("pair error: {success:?}")
    };
    assert_eq!(success.id.user, PHONE);
    bot.wait_event(Duration::from_secs(10), |e| {
        matches!(e, Event::Connected(_))
    })
    .await;
    assert_eq!(sim.linked_phone().as_deref(), Some(PHONE));
    assert_eq!(bot.client.get_pn().await.expect("pn").user, PHONE);
    let device = sim.registered_device().expect("registered");
    assert_eq!(device.os.as_deref(), Some("rust"), "wa-rs's default name");
    bot.stop().await;
}

/// A code typed wrong on the phone: the companion still answers (AES-CTR cannot tell a wrong
/// code), but its key bundle does not open, so nothing is linked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_pairing_code_links_nothing() {
    init_log();
    let sim = WaSim::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut bot = start_bot(&sim, &dir.path().join("session.db")).await;
    bot.wait_event(Duration::from_secs(10), |e| {
        matches!(e, Event::PairingQrCode { .. })
    })
    .await;
    let code = bot
        .client
        .pair_with_code(PairCodeOptions {
            phone_number: PHONE.into(),
            ..Default::default()
        })
        .await
        .expect("pair code");
    let wrong = if code == "ZZZZZZZZ" {
        "YYYYYYYY"
    } else {
        "ZZZZZZZZ"
    };

    assert_eq!(
        sim.enter_pair_code("212699999999", &code).await,
        Err(PairCodeRefused::NoRequest),
        "another phone than the one asked for"
    );
    assert_eq!(
        sim.enter_pair_code(PHONE, wrong).await,
        Err(PairCodeRefused::WrongCode)
    );
    let events: Vec<String> = bot
        .drain_events(Duration::from_millis(500))
        .await
        .iter()
        .map(name)
        .collect();
    assert!(
        !events
            .iter()
            .any(|e| e == "PairSuccess" || e == "Connected"),
        "{events:?}"
    );
    assert_eq!(sim.linked_phone(), None);
    assert!(bot.client.get_pn().await.is_none());

    // A display name that is not `Browser (OS)` is refused by the server.
    let refused = bot
        .client
        .pair_with_code(PairCodeOptions {
            phone_number: PHONE.into(),
            platform_display: "CamionBack Relay".into(),
            ..Default::default()
        })
        .await;
    assert!(refused.is_err(), "{refused:?}");
    assert!(!sim.pair_code_requests().last().expect("request").accepted);
    bot.stop().await;
}

/// `rotate_qr` hands the unlinked client fresh refs: wa-rs shows a new code at once, valid 60 s
/// like a first one, and that code still links. Once linked there is nothing to rotate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotating_the_qr_shows_a_new_code_that_still_links() {
    init_log();
    let sim = WaSim::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut bot = start_bot(&sim, &dir.path().join("session.db")).await;
    let qr = |e: &Event| match e {
        Event::PairingQrCode { code, timeout } => Some((code.clone(), *timeout)),
        _ => None,
    };
    let first = bot
        .wait_event(Duration::from_secs(10), |e| qr(e).is_some())
        .await;
    let (first_code, _) = qr(&first).expect("a QR code");

    assert!(sim.rotate_qr().await, "an unlinked client is connected");
    let next = bot
        .wait_event(Duration::from_secs(10), |e| qr(e).is_some())
        .await;
    let (next_code, timeout) = qr(&next).expect("a QR code");
    assert_ne!(next_code, first_code, "a new ref, so a new QR code");
    assert_eq!(timeout, Duration::from_secs(60));

    assert!(sim.try_scan_qr(PHONE).await);
    bot.wait_event(Duration::from_secs(10), |e| {
        matches!(e, Event::Connected(_))
    })
    .await;
    assert_eq!(sim.linked_phone().as_deref(), Some(PHONE));
    assert!(!sim.rotate_qr().await, "a linked client gets no QR code");
    assert!(!sim.try_scan_qr(PHONE).await, "nor a scan");
    bot.stop().await;
}
