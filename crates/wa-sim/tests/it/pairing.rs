//! Linking: QR codes, their exhaustion, pairing codes and a stored session logging in again.

use std::time::Duration;

use relay_wa_sim::{PairCodeRefused, WaSim};
use whatsapp_rust::pair_code::PairCodeOptions;
use whatsapp_rust::prelude::Event;
use whatsapp_rust::wacore::companion_reg::CompanionWebClientType;

use crate::common::{TestBot, init_log, name, next_qr, share_key_after_prekeys, start_bot};

const PHONE: &str = "212600000001";

/// What the relay asks for: a Chrome companion (shown as "Chrome (Linux)" on the phone).
fn pair_code_options(phone_number: &str) -> PairCodeOptions {
    PairCodeOptions {
        phone_number: phone_number.to_string(),
        platform_id: Some(CompanionWebClientType::Chrome),
        ..Default::default()
    }
}

/// Waits for `Connected` after a link, while the phone shares its app-state key (what 0.7
/// waits for after pairing).
async fn connected_after_link(sim: &WaSim, bot: &mut TestBot) {
    tokio::join!(
        bot.wait_event(Duration::from_secs(15), |e| {
            matches!(e, Event::Connected(_))
        }),
        share_key_after_prekeys(sim),
    );
}

/// QR linking: `PairingQrCode` → (phone scans) → `PairSuccess` → reconnect → `Connected`; the
/// session is stored, so a second `Bot` on the same SQLite file logs in with no QR code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scanning_the_qr_links_and_the_session_persists() {
    init_log();
    let sim = WaSim::start().await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("session.db");

    let mut bot = start_bot(&sim, &db).await;
    assert!(bot.client.pn().is_none(), "no session yet");
    let code = next_qr(&mut bot).await;
    assert!(sim.scan_qr_code(PHONE, &code).await);

    let events = async {
        let mut order = Vec::new();
        loop {
            let e = bot.wait_event(Duration::from_secs(15), |_| true).await;
            order.push(name(&e));
            match &*e {
                Event::PairSuccess(p) => {
                    assert_eq!(p.id.user, PHONE);
                    assert!(p.id.device > 0, "companion device id: {}", p.id);
                    assert!(p.lid.is_lid(), "{}", p.lid);
                }
                Event::PairError(p) => panic!("pair error: {}", p.error),
                Event::Connected(_) => break order,
                _ => {}
            }
        }
    };
    let (order, ()) = tokio::join!(events, share_key_after_prekeys(&sim));
    println!("events after scan: {order:?}");
    assert_eq!(order.first().map(String::as_str), Some("PairSuccess"));
    assert_eq!(sim.connections(), 2, "linking connection, then login");
    assert!(sim.is_logged_in());
    assert_eq!(sim.linked_phone().as_deref(), Some(PHONE));
    let pn = bot.client.pn().expect("phone stored");
    assert_eq!(pn.user, PHONE);
    assert!(pn.is_pn());
    bot.stop().await;

    // Same session file, new Bot: straight to Connected.
    let t = std::time::Instant::now();
    let mut again = start_bot(&sim, &db).await;
    let e = again
        .wait_event(Duration::from_secs(15), |e| {
            matches!(e, Event::Connected(_) | Event::PairingQrCode(_))
        })
        .await;
    assert!(
        matches!(&*e, Event::Connected(_)),
        "no QR for a stored session"
    );
    println!("stored session Connected after {:?}", t.elapsed());
    assert_eq!(sim.connections(), 3);
    assert_eq!(again.client.pn().expect("pn").user, PHONE);
    again.stop().await;
}

/// The phone reads the QR code the client shows (as a real one does): the device identity is
/// HMAC'd with the ADV secret from the code, which whatsapp-rust 0.7 checks. A phone that signs
/// with another key (`try_scan_qr`, enough for wa-rs 0.2.0, which did not check) is refused
/// with `PairError` and the code stays up; a string that is not a linking code is refused by
/// the phone; the code itself links.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scanning_the_qr_code_itself_links() {
    init_log();
    let sim = WaSim::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut bot = start_bot(&sim, &dir.path().join("session.db")).await;
    let code = next_qr(&mut bot).await;

    assert!(sim.try_scan_qr(PHONE).await, "a scan with the wrong key");
    let e = bot
        .wait_event(Duration::from_secs(10), |e| {
            matches!(e, Event::PairError(_) | Event::PairSuccess(_))
        })
        .await;
    let Event::PairError(refused) = &*e else {
        panic!(
            "the client took a pairing it could not verify: {}",
            name(&e)
        )
    };
    println!("wrong key refused: {}", refused.error);
    assert!(bot.client.pn().is_none());

    assert!(!sim.scan_qr_code(PHONE, "pas un code").await);
    assert!(sim.scan_qr_code(PHONE, &code).await);
    bot.wait_event(Duration::from_secs(10), |e| {
        matches!(e, Event::PairSuccess(_))
    })
    .await;
    connected_after_link(&sim, &mut bot).await;
    assert_eq!(sim.linked_phone().as_deref(), Some(PHONE));
    bot.stop().await;
}

/// When the refs of the `pair-device` IQ have all expired, whatsapp-rust 0.7 says so with
/// `PairingQrCodesExhausted { disconnected: true }` (wa-rs 0.2.0 ended its run loop without any
/// event), closes the connection and its run loop ends. With 0 refs that is immediate (with N
/// refs it takes 60 + 20·(N-1) s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_out_of_qr_codes_is_reported_and_ends_the_run_loop() {
    init_log();
    let sim = WaSim::start().await;
    sim.set_qr_refs(0);
    let dir = tempfile::tempdir().unwrap();
    let mut bot = start_bot(&sim, &dir.path().join("session.db")).await;

    let e = bot
        .wait_event(Duration::from_secs(10), |e| {
            matches!(
                e,
                Event::PairingQrCodesExhausted(_) | Event::PairingQrCode(_)
            )
        })
        .await;
    let Event::PairingQrCodesExhausted(exhausted) = &*e else {
        panic!("no code to show, yet: {}", name(&e))
    };
    assert!(exhausted.disconnected, "the client closed the connection");
    tokio::time::timeout(Duration::from_secs(10), &mut bot.handle)
        .await
        .expect("run loop ended");
    assert_eq!(sim.connections(), 1, "no reconnect");
    assert!(!bot.client.is_connected());
}

/// Pairing code: `pair_with_code` (companion_hello → ref) gives the code, also as
/// `PairingCode`; the phone types it (primary_hello notification → companion_finish →
/// pair-success), then the client links and logs in as after a QR scan. What it said of itself
/// at registration is recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typing_the_pairing_code_on_the_phone_links_the_companion() {
    init_log();
    let sim = WaSim::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut bot = start_bot(&sim, &dir.path().join("session.db")).await;
    next_qr(&mut bot).await;

    let code = bot
        .client
        .pair_with_code(pair_code_options(&format!("+{PHONE}")))
        .await
        .expect("pair code");
    assert_eq!(code.len(), 8, "{code}");
    let e = bot
        .wait_event(Duration::from_secs(5), |e| {
            matches!(e, Event::PairingCode(_))
        })
        .await;
    let Event::PairingCode(shown) = &*e else {
        unreachable!()
    };
    assert_eq!(shown.code.replace('-', ""), code);
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
    let Event::PairSuccess(success) = &*success else {
        panic!("pair error: {}", name(&success))
    };
    assert_eq!(success.id.user, PHONE);
    connected_after_link(&sim, &mut bot).await;
    assert_eq!(sim.linked_phone().as_deref(), Some(PHONE));
    assert_eq!(bot.client.pn().expect("pn").user, PHONE);
    let device = sim.registered_device().expect("registered");
    assert_eq!(
        device.os.as_deref(),
        Some("rust"),
        "whatsapp-rust's default"
    );
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
    next_qr(&mut bot).await;
    let code = bot
        .client
        .pair_with_code(pair_code_options(PHONE))
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
        .map(|e| name(e))
        .collect();
    assert!(
        !events
            .iter()
            .any(|e| e == "PairSuccess" || e == "Connected"),
        "{events:?}"
    );
    assert_eq!(sim.linked_phone(), None);
    assert!(bot.client.pn().is_none());
    bot.stop().await;
}

/// A display name that is not `Browser (OS)` is refused by the server (400), and
/// `pair_with_code` says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pairing_code_request_with_a_bad_display_name_is_refused() {
    init_log();
    let sim = WaSim::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut bot = start_bot(&sim, &dir.path().join("session.db")).await;
    next_qr(&mut bot).await;
    let refused = bot
        .client
        .pair_with_code(PairCodeOptions {
            display_os: Some("CamionBack Relay".into()),
            ..pair_code_options(PHONE)
        })
        .await;
    assert!(refused.is_err(), "{refused:?}");
    let request = sim.pair_code_requests().last().cloned().expect("request");
    assert_eq!(request.platform_display, "Chrome (CamionBack Relay)");
    assert!(!request.accepted);
    bot.stop().await;
}

/// `rotate_qr` hands the unlinked client fresh refs: the client shows a new code at once, valid
/// 60 s like a first one, and that code still links. Once linked there is nothing to rotate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotating_the_qr_shows_a_new_code_that_still_links() {
    init_log();
    let sim = WaSim::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut bot = start_bot(&sim, &dir.path().join("session.db")).await;
    let qr = |e: &Event| match e {
        Event::PairingQrCode(q) => Some((q.code.clone(), q.timeout)),
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
    assert!(
        timeout <= Duration::from_secs(60) && timeout > Duration::from_secs(55),
        "what is left of 60 s: {timeout:?}"
    );

    assert!(sim.scan_qr_code(PHONE, &next_code).await);
    connected_after_link(&sim, &mut bot).await;
    assert_eq!(sim.linked_phone().as_deref(), Some(PHONE));
    assert!(!sim.rotate_qr().await, "a linked client gets no QR code");
    assert!(!sim.scan_qr_code(PHONE, &next_code).await, "nor a scan");
    bot.stop().await;
}
