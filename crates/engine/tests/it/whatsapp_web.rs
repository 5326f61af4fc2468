//! The WhatsApp Web channel, proven with the real wa-rs client inside the real engine against
//! a loopback WhatsApp Web simulator: linking once, reconnection, logout, replacement, bans,
//! number checks, the exact message at the throttle, receipts, replies and opt-out.

use std::time::Duration;

use relay_domain::DeliveryStatus;
use relay_engine::EngineEvent;
use relay_engine::channel::whatsapp_web::{Command, ConnectionState};
use relay_engine::store::HistoryRow;
use relay_wa_sim::{CompanionDevice, PairCodeRefused, ReceiptKind, WaSim};

use crate::helpers::*;

/// CamionBack's own number, as the phone that scans the QR code.
pub(crate) const ACCOUNT: &str = "212664373534";
pub(crate) const LIMIT: Duration = Duration::from_secs(20);

pub(crate) fn web_settings(sim: &WaSim) -> Vec<(&'static str, String)> {
    vec![
        ("RELAY_CHANNEL", "whatsapp-web".into()),
        ("WHATSAPP_WEB_URL", sim.url()),
        // Pinned, so no connect tries to discover the version online.
        ("WHATSAPP_WEB_VERSION", "2.3000.1023868176".into()),
        ("WHATSAPP_WEB_WATCHDOG_SECS", "1".into()),
        ("RELAY_THROTTLE_MS", "200".into()),
    ]
}

pub(crate) async fn world_with(sim: &WaSim) -> TestApp {
    let settings = web_settings(sim);
    let overrides: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    world(&overrides).await
}

/// Waits until the connection state matches, and returns it.
pub(crate) async fn wait_state(
    app: &TestApp,
    what: &str,
    check: impl Fn(&ConnectionState) -> bool,
) -> ConnectionState {
    let whatsapp = app.engine().whatsapp().expect("whatsapp-web channel");
    let mut states = whatsapp.state();
    let waited = tokio::time::timeout(LIMIT, async {
        states.wait_for(|s| check(s)).await.map(|s| s.clone())
    })
    .await;
    match waited {
        Ok(state) => state.expect("state stream open"),
        Err(_) => panic!(
            "state never became {what}; last: {:?}",
            whatsapp.state().borrow().clone()
        ),
    }
}

/// The phone scans the QR code the relay shows now (whatsapp-rust checks the phone's HMAC
/// made with the code's secret).
pub(crate) async fn scan(app: &TestApp, sim: &WaSim) {
    let shown = wait_state(app, "qr", |s| matches!(s, ConnectionState::Qr { .. })).await;
    let ConnectionState::Qr { code, .. } = shown else {
        unreachable!()
    };
    assert!(
        sim.scan_qr_code(ACCOUNT, &code).await,
        "the phone scanned {code}"
    );
}

/// A relay linked to the simulated phone, with the three usual validated carriers.
pub(crate) async fn linked_app(sim: &WaSim) -> TestApp {
    let app = world_with(sim).await;
    add_usual_carriers(&app.camionback);
    let app = app.start().await;
    wait_state(&app, "qr", |s| matches!(s, ConnectionState::Qr { .. })).await;
    scan(&app, sim).await;
    wait_state(&app, "connected", ConnectionState::is_connected).await;
    app
}

#[tokio::test]
async fn the_qr_code_is_scanned_once_and_every_restart_connects_without_it() {
    let sim = WaSim::start().await;
    let mut app = world_with(&sim).await.start().await;

    let qr = wait_state(&app, "qr", |s| matches!(s, ConnectionState::Qr { .. })).await;
    let ConnectionState::Qr { code, expires_at } = qr else {
        unreachable!()
    };
    assert!(!code.is_empty());
    assert!(expires_at > chrono::Utc::now(), "the QR code has time left");

    scan(&app, &sim).await;
    let connected = wait_state(&app, "connected", ConnectionState::is_connected).await;
    assert_eq!(
        connected,
        ConnectionState::Connected {
            phone: ACCOUNT.into()
        }
    );
    assert_eq!(sim.linked_phone().as_deref(), Some(ACCOUNT));
    assert_eq!(
        sim.registered_device(),
        Some(camionback_relay_desktop()),
        "the phone lists the relay by name, as a desktop"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let session = app.dir.path().join("whatsapp-session.db");
        let mode = std::fs::metadata(&session)
            .expect("session file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "the session is readable by its owner only");
    }

    app.stop().await;
    let app = app.start().await;
    let seen = states_until_connected(&app).await;
    assert!(
        !seen
            .iter()
            .any(|s| matches!(s, ConnectionState::Qr { .. } | ConnectionState::Unlinked)),
        "no QR code after a restart: {seen:?}"
    );
}

/// Every connection state the app goes through until it is connected.
pub(crate) async fn states_until_connected(app: &TestApp) -> Vec<ConnectionState> {
    let mut states = app.engine().whatsapp().expect("channel").state();
    let mut seen = vec![states.borrow().clone()];
    tokio::time::timeout(LIMIT, async {
        while !seen.last().is_some_and(ConnectionState::is_connected) {
            states.changed().await.expect("stream");
            seen.push(states.borrow().clone());
        }
    })
    .await
    .expect("connects again");
    seen
}

/// What the phone shows under "Appareils connectés" for the relay.
fn camionback_relay_desktop() -> CompanionDevice {
    CompanionDevice {
        os: Some("CamionBack Relay".into()),
        platform: Some("DESKTOP".into()),
    }
}

async fn ask_pair_code(app: &TestApp) -> String {
    let whatsapp = app.engine().whatsapp().expect("channel");
    // Not the code shown before, if any: a new request gives a new code.
    let before = match whatsapp.state().borrow().clone() {
        ConnectionState::PairCode { code } => Some(code),
        _ => None,
    };
    whatsapp.command(Command::PairWithPhone(ACCOUNT.into()));
    let state = wait_state(
        app,
        "a pairing code",
        |s| matches!(s, ConnectionState::PairCode { code } if Some(code) != before.as_ref()),
    )
    .await;
    let ConnectionState::PairCode { code } = state else {
        unreachable!()
    };
    code
}

#[tokio::test]
async fn a_pairing_code_typed_on_the_phone_links_once_and_every_restart_connects_without_it() {
    let sim = WaSim::start().await;
    let mut app = world_with(&sim).await.start().await;
    wait_state(&app, "unlinked", |s| {
        matches!(s, ConnectionState::Unlinked | ConnectionState::Qr { .. })
    })
    .await;

    let code = ask_pair_code(&app).await;
    assert_eq!(code.len(), 8, "{code}");
    let requests = sim.pair_code_requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].phone, ACCOUNT);
    assert!(requests[0].accepted, "WhatsApp accepts the request");
    assert!(
        app.engine()
            .whatsapp()
            .expect("channel")
            .state()
            .borrow()
            .describe()
            .contains(&code),
        "staff are told the code to type"
    );

    assert_eq!(sim.enter_pair_code(ACCOUNT, &code).await, Ok(()));
    let connected = wait_state(&app, "connected", ConnectionState::is_connected).await;
    assert_eq!(
        connected,
        ConnectionState::Connected {
            phone: ACCOUNT.into()
        }
    );
    assert_eq!(sim.linked_phone().as_deref(), Some(ACCOUNT));
    assert_eq!(sim.registered_device(), Some(camionback_relay_desktop()));

    app.stop().await;
    let connections = sim.connections();
    let app = app.start().await;
    let seen = states_until_connected(&app).await;
    assert!(
        !seen.iter().any(|s| matches!(
            s,
            ConnectionState::Qr { .. }
                | ConnectionState::PairCode { .. }
                | ConnectionState::Unlinked
        )),
        "neither a code nor a QR after a restart: {seen:?}"
    );
    assert_eq!(sim.connections(), connections + 1, "one login, no linking");
    assert_eq!(sim.pair_code_requests().len(), 1);
}

#[tokio::test]
async fn a_wrong_pairing_code_links_nothing_and_a_new_code_can_be_asked_for() {
    let sim = WaSim::start().await;
    let app = world_with(&sim).await.start().await;
    wait_state(&app, "unlinked", |s| {
        matches!(s, ConnectionState::Unlinked | ConnectionState::Qr { .. })
    })
    .await;
    let code = ask_pair_code(&app).await;
    let wrong = if code == "ZZZZZZZZ" {
        "YYYYYYYY"
    } else {
        "ZZZZZZZZ"
    };

    assert_eq!(
        sim.enter_pair_code(ACCOUNT, wrong).await,
        Err(PairCodeRefused::WrongCode)
    );
    // The phone refused the code itself: nothing went to the client that could link it.
    assert_eq!(sim.linked_phone(), None, "nothing linked");
    let state = app
        .engine()
        .whatsapp()
        .expect("channel")
        .state()
        .borrow()
        .clone();
    assert!(
        matches!(state, ConnectionState::PairCode { .. }),
        "still waiting for a code: {state:?}"
    );

    let again = ask_pair_code(&app).await;
    assert_ne!(again, code);
    assert_eq!(sim.enter_pair_code(ACCOUNT, &again).await, Ok(()));
    wait_state(&app, "connected", ConnectionState::is_connected).await;
    assert_eq!(sim.linked_phone().as_deref(), Some(ACCOUNT));
}

#[tokio::test]
async fn a_companion_reg_refresh_rotates_the_secret_in_the_qr_code_and_linking_still_works() {
    let sim = WaSim::start().await;
    let app = world_with(&sim).await.start().await;
    let ConnectionState::Qr { code: before, .. } =
        wait_state(&app, "qr", |s| matches!(s, ConnectionState::Qr { .. })).await
    else {
        unreachable!()
    };
    assert!(sim.companion_reg_refresh().await, "notification delivered");
    let after = wait_state(
        &app,
        "a re-rendered qr",
        |s| matches!(s, ConnectionState::Qr { code, .. } if *code != before),
    )
    .await;
    let ConnectionState::Qr { code: after, .. } = after else {
        unreachable!()
    };
    // `ref,noise key,identity key,adv secret,platform`
    let before: Vec<&str> = before.split(',').collect();
    let after: Vec<&str> = after.split(',').collect();
    assert_eq!(
        (&before[..3], &before[4..]),
        (&after[..3], &after[4..]),
        "same ref and keys, only the secret changes"
    );
    assert_ne!(before[3], after[3]);

    scan(&app, &sim).await;
    wait_state(&app, "connected", ConnectionState::is_connected).await;
}

#[tokio::test]
async fn when_the_qr_codes_run_out_new_ones_are_offered_on_request() {
    let sim = WaSim::start().await;
    sim.set_qr_refs(0);
    let app = world_with(&sim).await.start().await;
    wait_state(&app, "qr expired", |s| *s == ConnectionState::QrExpired).await;

    sim.set_qr_refs(2);
    app.engine()
        .whatsapp()
        .expect("channel")
        .command(Command::NewQr);
    wait_state(&app, "a new qr", |s| {
        matches!(s, ConnectionState::Qr { .. })
    })
    .await;
    scan(&app, &sim).await;
    wait_state(&app, "connected", ConnectionState::is_connected).await;
}

#[tokio::test]
async fn a_broadcast_reaches_each_registered_carrier_once_with_the_exact_text_at_the_throttle() {
    let sim = WaSim::start().await;
    // Carrier 3 (212612345603) has no WhatsApp account.
    sim.set_registered(&["212612345601", "212612345602"]);
    let app = linked_app(&sim).await;

    let posted = order(123);
    app.post_order(posted.clone()).await;
    let rows = app.wait_for_broadcast(123).await;
    let status =
        |carrier: i64| status_of(rows.iter().find(|r| r.carrier_id == carrier).expect("row"));
    assert_eq!(status(1), DeliveryStatus::Sent);
    assert_eq!(status(2), DeliveryStatus::Sent);
    assert_eq!(
        status(3),
        DeliveryStatus::NotOnWhatsapp,
        "checked before sending, not sent"
    );

    let received = sim.wait_for_received(2, LIMIT).await.expect("two messages");
    assert_eq!(
        received.len(),
        2,
        "exactly one message per registered carrier"
    );
    let expected =
        relay_domain::MessageTemplate::default().render(&relay_domain::TemplateFields::of(
            &relay_domain::Order::parse(
                relay_domain::OrderFields {
                    id: 123,
                    reference: "CMD-2025-123".into(),
                    ville_depart: "Casablanca".into(),
                    ville_arrivee: "Marrakech".into(),
                    date_souhaitee: posted["date_souhaitee"].as_str().expect("date").into(),
                    prix: 4500.0,
                    type_marchandise: "Palettes".into(),
                    statut: Some("ouverte".into()),
                    created_at: None,
                },
                relay_engine::clock::today(),
            )
            .expect("order"),
            "https://camionback.com/commande/",
        ));
    let mut recipients: Vec<&str> = received.iter().map(|r| r.to.as_str()).collect();
    recipients.sort();
    assert_eq!(recipients, ["212612345601", "212612345602"]);
    for message in &received {
        assert_eq!(message.text, expected);
        let row = rows
            .iter()
            .find(|r| r.message_id.as_deref() == Some(message.message_id.as_str()));
        assert!(
            row.is_some(),
            "the message id WhatsApp knows is the one in the history"
        );
    }
    let gap = received[1].at.duration_since(received[0].at);
    assert!(
        gap >= Duration::from_millis(180),
        "sends {gap:?} apart, throttle is 200 ms"
    );
    assert!(
        !sim.client_stanzas().iter().any(|n| n.tag == "chatstate"),
        "no typing indicator unless RELAY_TYPING=1"
    );
}

/// With `RELAY_TYPING=1`, each carrier sees "en train d'écrire…" before each message, for
/// longer when the text is longer.
#[tokio::test]
async fn with_typing_on_each_message_follows_a_typing_indicator_as_long_as_the_text() {
    let sim = WaSim::start().await;
    sim.set_registered(&["212612345601"]);
    let mut settings = web_settings(&sim);
    settings.push(("RELAY_TYPING", "1".into()));
    let overrides: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let app = world(&overrides).await;
    // The message is the kind of goods only, so its length is the test's to choose.
    std::fs::write(app.dir.path().join("template.txt"), "{{type_colis}}").expect("template");
    add_usual_carriers(&app.camionback);
    let app = app.start().await;
    wait_state(&app, "qr", |s| matches!(s, ConnectionState::Qr { .. })).await;
    scan(&app, &sim).await;
    wait_state(&app, "connected", ConnectionState::is_connected).await;

    let short = "Sable";
    let long = "Palettes de carreaux en céramique, sacs de ciment, fers à béton et \
                menuiseries aluminium : chargement au quai nord, manutention par le client";
    for (id, goods) in [(21, short), (22, long)] {
        let mut order = order(id);
        order["type_marchandise"] = goods.into();
        app.post_order(order).await;
        app.wait_for_broadcast(id).await;
    }
    let received = sim.wait_for_received(2, LIMIT).await.expect("two messages");
    assert_eq!(
        received.iter().map(|r| r.text.as_str()).collect::<Vec<_>>(),
        [short, long]
    );

    // What the carrier's phone got, in order: composing, paused, message, twice.
    let carrier = "212612345601@s.whatsapp.net";
    let to_carrier: Vec<(std::time::Instant, String)> = sim
        .client_stanzas_timed()
        .into_iter()
        .filter(|(_, n)| n.attrs.get("to").is_some_and(|to| *to == carrier))
        .filter_map(|(at, n)| {
            let what = match n.tag.as_str() {
                "chatstate" => n.children()?.first()?.tag.clone(),
                "message" => "message".to_string(),
                _ => return None,
            };
            Some((at, what))
        })
        .collect();
    let kinds: Vec<&str> = to_carrier.iter().map(|(_, k)| k.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "composing",
            "paused",
            "message",
            "composing",
            "paused",
            "message"
        ]
    );
    let typing = |i: usize| to_carrier[i + 2].0.duration_since(to_carrier[i].0);
    let (for_short, for_long) = (typing(0), typing(3));
    println!(
        "typing before {} chars: {for_short:?}, before {} chars: {for_long:?}",
        short.chars().count(),
        long.chars().count()
    );
    // 5 then 141 characters (1 s then 3.5 s of typing): a ratio leaves room for the delays a
    // busy machine adds to both, and fails if the duration did not follow the text.
    assert!(
        for_long.as_secs_f64() > 1.5 * for_short.as_secs_f64(),
        "a longer text is typed for longer: {for_short:?} then {for_long:?}"
    );
}

#[tokio::test]
async fn delivery_and_read_receipts_move_the_history_forward() {
    let sim = WaSim::start().await;
    sim.set_registered(&["212612345601", "212612345602", "212612345603"]);
    let app = linked_app(&sim).await;
    app.post_order(order(5)).await;
    app.wait_for_broadcast(5).await;
    let received = sim
        .wait_for_received(3, LIMIT)
        .await
        .expect("three messages");

    sim.send_receipt(&received[0].message_id, ReceiptKind::Delivery)
        .await;
    sim.send_receipt(&received[1].message_id, ReceiptKind::Read)
        .await;
    // Late delivery receipt after the read one: no step back.
    sim.send_receipt(&received[1].message_id, ReceiptKind::Delivery)
        .await;

    let rows = eventually(LIMIT, || async {
        let rows = app.deliveries_of(5).await;
        let by_id = |id: &str| {
            rows.iter()
                .find(|r| r.message_id.as_deref() == Some(id))
                .map(status_of)
        };
        (by_id(&received[0].message_id) == Some(DeliveryStatus::Delivered)
            && by_id(&received[1].message_id) == Some(DeliveryStatus::Read))
        .then_some(rows)
    })
    .await;
    let third = rows
        .iter()
        .find(|r| r.message_id.as_deref() == Some(received[2].message_id.as_str()))
        .expect("row");
    assert_eq!(status_of(third), DeliveryStatus::Sent);
}

#[tokio::test]
async fn while_whatsapp_is_down_nothing_fails_and_sending_resumes_after_reconnection() {
    let sim = WaSim::start().await;
    sim.set_registered(&["212612345601", "212612345602", "212612345603"]);
    let app = linked_app(&sim).await;
    let connections = sim.connections();
    let mut events = app.engine().events().subscribe();

    sim.go_silent().await;
    // The watchdog (1 s here) notices the half-open socket.
    wait_state(&app, "reconnecting", |s| !s.is_connected()).await;
    app.post_order(order(9)).await;
    queued_while_down(&app, 9).await;

    wait_state(&app, "connected again", ConnectionState::is_connected).await;
    assert!(
        sim.connections() > connections,
        "a new connection was opened"
    );
    let rows = app.wait_for_broadcast(9).await;
    assert!(rows.iter().all(|r| status_of(r) == DeliveryStatus::Sent));
    assert_eq!(
        sim.wait_for_received(3, LIMIT).await.map(|r| r.len()),
        Some(3)
    );
    assert_claimed_once_after_the_outage(&rows, &mut events);
}

/// The order's three deliveries are written, and wait.
async fn queued_while_down(app: &TestApp, order_id: i64) {
    let rows = eventually(LIMIT, || async {
        let rows = app.deliveries_of(order_id).await;
        (rows.len() == 3).then_some(rows)
    })
    .await;
    assert!(
        rows.iter().all(|r| status_of(r) == DeliveryStatus::Queued),
        "nothing is failed or in flight while WhatsApp cannot send: {:?}",
        rows.iter().map(|r| r.status).collect::<Vec<_>>()
    );
}

/// Each delivery was claimed once, and that claim sent it: had the dispatcher tried while
/// WhatsApp was away, the attempt would have paused the account (an event) or been spent on
/// a failure (a second attempt).
fn assert_claimed_once_after_the_outage(
    rows: &[HistoryRow],
    events: &mut tokio::sync::broadcast::Receiver<EngineEvent>,
) {
    assert!(
        rows.iter().all(|r| r.attempts == 1),
        "one attempt each: {:?}",
        rows.iter().map(|r| r.attempts).collect::<Vec<_>>()
    );
    while let Ok(event) = events.try_recv() {
        assert!(
            !matches!(event, EngineEvent::SendingPaused { .. }),
            "nothing was tried while WhatsApp could not send: {event:?}"
        );
    }
}

#[tokio::test]
async fn a_dropped_connection_reconnects_by_itself() {
    let sim = WaSim::start().await;
    let app = linked_app(&sim).await;
    let connections = sim.connections();
    sim.drop_connection().await;
    assert!(
        sim.wait_for_connections(connections + 1, LIMIT).await,
        "reconnected"
    );
    wait_state(&app, "connected", ConnectionState::is_connected).await;
}

#[tokio::test]
async fn a_logout_from_the_phone_sets_the_session_aside_and_asks_for_a_new_qr_code() {
    let sim = WaSim::start().await;
    let app = linked_app(&sim).await;
    sim.remove_device().await;
    wait_state(&app, "logged out or a new qr", |s| {
        matches!(
            s,
            ConnectionState::LoggedOut | ConnectionState::Unlinked | ConnectionState::Qr { .. }
        )
    })
    .await;
    wait_state(&app, "a new qr", |s| {
        matches!(s, ConnectionState::Qr { .. })
    })
    .await;
    let set_aside = std::fs::read_dir(app.dir.path())
        .expect("data dir")
        .filter_map(Result::ok)
        .any(|e| e.file_name().to_string_lossy().contains("deconnectee"));
    assert!(set_aside, "the dead session is kept aside, not reused");
}

#[tokio::test]
async fn deconnecter_removes_the_device_from_the_account_and_offers_a_new_qr_code() {
    let sim = WaSim::start().await;
    let app = linked_app(&sim).await;
    let whatsapp = app.engine().whatsapp().expect("whatsapp web").clone();

    whatsapp.unlink().await.expect("unlinked");
    assert_eq!(
        sim.companion_unlinks().len(),
        1,
        "WhatsApp was told to remove this device"
    );
    assert!(
        sim.companion_unlinks()[0].starts_with(ACCOUNT),
        "{:?}",
        sim.companion_unlinks()
    );
    wait_state(&app, "a new qr", |s| {
        matches!(s, ConnectionState::Qr { .. })
    })
    .await;
    let set_aside = std::fs::read_dir(app.dir.path())
        .expect("data dir")
        .filter_map(Result::ok)
        .any(|e| e.file_name().to_string_lossy().contains("deconnectee"));
    assert!(set_aside, "the old session is kept aside, not reused");

    // Not linked any more: a second "Déconnecter" says so and tells WhatsApp nothing.
    let again = whatsapp.unlink().await.expect_err("nothing to unlink");
    assert!(again.to_string().contains("aucun compte relié"), "{again}");
    assert_eq!(sim.companion_unlinks().len(), 1);
}

#[tokio::test]
async fn a_replaced_session_is_never_taken_back_by_itself() {
    let sim = WaSim::start().await;
    let app = linked_app(&sim).await;
    let connections = sim.connections();
    sim.replace_session().await;
    // The relay says "replaced" once the client's connection loop has ended for good and the
    // supervisor waits for staff: from then on nothing is left running that could reconnect.
    wait_state(&app, "replaced", |s| *s == ConnectionState::Replaced).await;
    assert_eq!(
        sim.connections(),
        connections,
        "no reconnection after being replaced"
    );
}

#[tokio::test]
async fn a_temporary_ban_stops_all_sending_until_it_expires() {
    let sim = WaSim::start().await;
    sim.set_registered(&["212612345601", "212612345602", "212612345603"]);
    let app = linked_app(&sim).await;
    let mut events = app.engine().events().subscribe();
    sim.ban(101, 4).await;
    let banned = wait_state(&app, "banned", |s| {
        matches!(s, ConnectionState::Banned { .. })
    })
    .await;
    assert!(
        banned.describe().contains("suspendu"),
        "{}",
        banned.describe()
    );
    let metrics = app.metrics().await;
    assert!(metrics.contains("relay_whatsapp_connected 0"), "{metrics}");
    assert!(
        !metrics.contains("relay_whatsapp_banned_until_timestamp_seconds 0\n"),
        "the ban shows: {metrics}"
    );

    app.post_order(order(11)).await;
    queued_while_down(&app, 11).await;

    wait_state(
        &app,
        "connected after the ban",
        ConnectionState::is_connected,
    )
    .await;
    let rows = app.wait_for_broadcast(11).await;
    assert!(rows.iter().all(|r| status_of(r) == DeliveryStatus::Sent));
    assert_claimed_once_after_the_outage(&rows, &mut events);
}

#[tokio::test]
async fn carrier_replies_are_kept_and_stop_opts_out_with_one_confirmation() {
    let sim = WaSim::start().await;
    sim.set_registered(&["212612345601", "212612345602", "212612345603"]);
    let app = linked_app(&sim).await;
    app.post_order(order(1)).await;
    app.wait_for_broadcast(1).await;
    sim.wait_for_received(3, LIMIT)
        .await
        .expect("broadcast received");

    sim.send_text_from("212612345601", "Intéressé, j'appelle")
        .await;
    sim.send_text_from("212612345602", "STOP").await;
    let replies = eventually(LIMIT, || async {
        let replies = app.store().replies(10).await.expect("replies");
        (replies.len() == 2).then_some(replies)
    })
    .await;
    let stop = replies
        .iter()
        .find(|r| r.phone == "+212612345602")
        .expect("stop reply");
    assert!(stop.opt_out);
    assert_eq!(stop.carrier_name.as_deref(), Some("Rif Logistique"));
    let confirmation = sim.wait_for_received(4, LIMIT).await.expect("confirmation");
    assert_eq!(
        confirmation
            .iter()
            .filter(|r| r.to == "212612345602")
            .count(),
        2,
        "one confirmation"
    );

    // The next broadcast skips the carrier who opted out.
    app.post_order(order(2)).await;
    let rows = app.wait_for_broadcast(2).await;
    let rif = rows.iter().find(|r| r.carrier_id == 2).expect("row kept");
    assert_eq!(status_of(rif), DeliveryStatus::Skipped);
    assert_eq!(rif.error.as_deref(), Some("opted_out"));
}
