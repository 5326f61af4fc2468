//! WhatsApp Web as WhatsApp's servers behave in 2026 (issue 9), against the simulator playing
//! them: first messages to carriers who never wrote need a privacy token, a message counts as
//! sent only when the server took it, a refusal keeps WhatsApp's code, the account's reach-out
//! time lock pauses the broadcast instead of burning through it, a server whose certificate does
//! not verify is refused, and a session linked by the previous release still connects.

use relay_domain::DeliveryStatus;
use relay_engine::channel::whatsapp_web::ConnectionState;
use relay_wa_sim::{CertChain, PrivacyToken, ReachoutTimelock, WaSim};

use crate::helpers::*;
use crate::whatsapp_web::{LIMIT, linked_app, states_until_connected, wait_state, world_with};

const CARRIERS: [&str; 3] = ["212612345601", "212612345602", "212612345603"];

#[tokio::test]
async fn carriers_who_never_wrote_to_the_number_each_get_the_message_once_with_a_privacy_token() {
    let sim = WaSim::start().await;
    // Registered, and cold: none of them ever wrote to CamionBack's number.
    sim.set_registered(&CARRIERS);
    let app = linked_app(&sim).await;

    app.post_order(order(31)).await;
    let rows = app.wait_for_broadcast(31).await;

    assert_eq!(rows.len(), 3);
    assert!(
        rows.iter().all(|r| r.status == DeliveryStatus::Sent),
        "{rows:?}"
    );
    let received = sim.wait_for_received(3, LIMIT).await.expect("3 messages");
    assert_eq!(received.len(), 3, "one message per carrier, no more");
    let checks = sim.token_checks();
    for carrier in CARRIERS {
        let check = checks
            .iter()
            .find(|c| c.to == carrier)
            .unwrap_or_else(|| panic!("no message to {carrier}: {checks:?}"));
        assert!(check.cold, "{carrier} had never written");
        assert!(
            check.accepted && check.token != PrivacyToken::None,
            "{carrier}: the first message carried a token WhatsApp accepted: {check:?}"
        );
    }
    // `sent` is the server's word: each row's message id is the one WhatsApp acknowledged.
    for row in &rows {
        let id = row.message_id.as_deref().expect("message id");
        assert!(checks.iter().any(|c| c.message_id == id), "{id}");
    }
}

#[tokio::test]
async fn a_first_message_whatsapp_refuses_is_failed_with_its_code_and_the_others_still_go() {
    let sim = WaSim::start().await;
    sim.set_registered(&CARRIERS);
    sim.nack_messages_to(CARRIERS[1], Some(463));
    let app = linked_app(&sim).await;

    app.post_order(order(32)).await;
    let rows = app.wait_for_broadcast(32).await;

    let refused = rows
        .iter()
        .find(|r| r.phone.ends_with(CARRIERS[1]))
        .expect("row");
    assert_eq!(refused.status, DeliveryStatus::Failed, "{refused:?}");
    assert_eq!(refused.error_code.as_deref(), Some("463"));
    assert!(
        refused
            .error
            .as_deref()
            .is_some_and(|e| e.contains("premier message")),
        "explained in French: {refused:?}"
    );
    assert_eq!(refused.attempts, 1, "a refusal is not retried");
    let others: Vec<_> = rows.iter().filter(|r| r.id != refused.id).collect();
    assert!(
        others.iter().all(|r| r.status == DeliveryStatus::Sent),
        "{others:?}"
    );
    assert_eq!(sim.nacked().len(), 1);
}

#[tokio::test]
async fn while_whatsapp_forbids_new_conversations_nothing_is_claimed_and_sending_resumes_when_it_ends()
 {
    let sim = WaSim::start().await;
    sim.set_registered(&CARRIERS);
    let app = linked_app(&sim).await;
    // A first broadcast: WhatsApp lets the number reach everyone.
    app.post_order(order(32)).await;
    let first = app.wait_for_broadcast(32).await;
    assert!(
        first.iter().all(|r| r.status == DeliveryStatus::Sent),
        "{first:?}"
    );
    sim.wait_for_received(3, LIMIT).await.expect("3 messages");

    // Then the first carrier's message of the next order is refused with 463, and WhatsApp
    // says the whole number is time-locked, for a short while so the test sees it end.
    sim.nack_messages_to(CARRIERS[0], Some(463));
    let until = chrono::Utc::now() + chrono::Duration::seconds(5);
    sim.set_reachout_timelock(ReachoutTimelock {
        is_active: true,
        ends_at: Some(until.timestamp() as u64),
        enforcement_type: Some("REACHOUT_TIMELOCK".into()),
    });

    app.post_order(order(33)).await;
    let restricted = wait_state(&app, "restricted", ConnectionState::is_restricted).await;
    // WhatsApp lifts it at its announced end; the relay only learns it when it asks again, then.
    sim.set_reachout_timelock(ReachoutTimelock {
        is_active: false,
        ends_at: None,
        enforcement_type: None,
    });
    let ConnectionState::Restricted { until: said, .. } = &restricted else {
        unreachable!()
    };
    assert_eq!(said.map(|u| u.timestamp()), Some(until.timestamp()));
    assert!(
        restricted.describe().contains("Cloud API"),
        "says what to do"
    );
    assert!(
        app.metrics().await.contains("relay_whatsapp_restricted 1"),
        "/metrics"
    );
    let (_, health) = app.health().await;
    assert_eq!(
        health["whatsapp_restricted"]["until_ms"],
        serde_json::json!(until.timestamp() * 1000)
    );

    // The refused one is recorded once its send returns; the others wait, never tried.
    eventually(LIMIT, || async {
        let rows = app.deliveries_of(33).await;
        let failed = rows
            .iter()
            .filter(|r| r.status == DeliveryStatus::Failed)
            .count();
        let waiting = rows
            .iter()
            .filter(|r| r.status == DeliveryStatus::Queued && r.attempts == 0)
            .count();
        (failed == 1 && waiting == 2).then_some(())
    })
    .await;
    assert_eq!(
        sim.received().len(),
        3,
        "nothing more reached anyone meanwhile"
    );

    // The relay asks again at the end WhatsApp announced and sends the rest.
    wait_state(&app, "connected", ConnectionState::can_send).await;
    let rows = app.wait_for_broadcast(33).await;
    assert_eq!(
        rows.iter()
            .filter(|r| r.status == DeliveryStatus::Sent)
            .count(),
        2,
        "{rows:?}"
    );
    assert!(app.metrics().await.contains("relay_whatsapp_restricted 0"));
}

#[tokio::test]
async fn a_server_whose_certificate_does_not_verify_is_refused_before_anything_is_registered() {
    let sim = WaSim::start_with_cert_chain(CertChain::LeafKeyMismatch).await;
    let app = world_with(&sim).await.start().await;

    let refused = wait_state(&app, "unreachable", |s| {
        matches!(s, ConnectionState::Unreachable { .. })
    })
    .await;
    let ConnectionState::Unreachable { reason, .. } = &refused else {
        unreachable!()
    };
    assert!(
        reason.contains("certificat du serveur WhatsApp refusé"),
        "{reason}"
    );
    assert!(
        refused
            .describe()
            .starts_with("connexion impossible : certificat"),
        "{}",
        refused.describe()
    );
    assert!(
        refused.describe().contains("nouvel essai dans"),
        "says when it tries again"
    );
    assert!(
        sim.client_stanzas().is_empty(),
        "nothing was registered with that server"
    );
    assert!(!sim.is_logged_in());
}

#[tokio::test]
async fn a_whatsapp_server_that_cannot_be_reached_is_said_so_with_the_next_try_not_a_qr_code() {
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
    let url = format!("ws://{}/ws/chat", closed.local_addr().expect("addr"));
    drop(closed);
    let sim = WaSim::start().await;
    let mut settings = crate::whatsapp_web::web_settings(&sim);
    settings.retain(|(k, _)| *k != "WHATSAPP_WEB_URL");
    settings.push(("WHATSAPP_WEB_URL", url));
    let overrides: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let app = world(&overrides).await.start().await;

    let state = wait_state(&app, "unreachable", |s| {
        matches!(s, ConnectionState::Unreachable { .. })
    })
    .await;
    let said = state.describe();
    assert!(said.starts_with("connexion impossible : "), "{said}");
    assert!(said.contains("connexion refusée"), "{said}");
    assert!(!said.contains("QR"), "{said}");
}

#[tokio::test]
async fn a_session_linked_by_the_previous_release_connects_without_a_qr_code() {
    let sim = WaSim::start().await;
    let app = world_with(&sim).await;
    let session = app.dir.path().join("whatsapp-session.db");
    std::fs::copy(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/wa-rs-0.2-session.db"
        ),
        &session,
    )
    .expect("fixture copied");
    let app = app.start().await;

    let seen = states_until_connected(&app).await;
    assert!(
        !seen
            .iter()
            .any(|s| matches!(s, ConnectionState::Qr { .. } | ConnectionState::Unlinked)),
        "no QR code: {seen:?}"
    );
    assert_eq!(
        seen.last(),
        Some(&ConnectionState::Connected {
            phone: "212600000042".into()
        })
    );
    assert!(sim.is_logged_in(), "logged in with the stored keys");
}

#[tokio::test]
async fn a_time_lock_found_before_a_broadcast_holds_every_delivery_untried_until_it_ends() {
    let sim = WaSim::start().await;
    sim.set_registered(&CARRIERS);
    let app = linked_app(&sim).await;
    let until = chrono::Utc::now() + chrono::Duration::seconds(5);
    sim.set_reachout_timelock(ReachoutTimelock {
        is_active: true,
        ends_at: Some(until.timestamp() as u64),
        enforcement_type: Some("REACHOUT_TIMELOCK".into()),
    });

    app.post_order(order(34)).await;
    wait_state(&app, "restricted", ConnectionState::is_restricted).await;
    sim.set_reachout_timelock(ReachoutTimelock {
        is_active: false,
        ends_at: None,
        enforcement_type: None,
    });
    // Asked before the first send: the delivery claimed for it goes back untried, and none
    // fails.
    eventually(LIMIT, || async {
        let rows = app.deliveries_of(34).await;
        rows.iter()
            .all(|r| r.status == DeliveryStatus::Queued && r.attempts == 0)
            .then_some(())
    })
    .await;
    assert!(sim.received().is_empty(), "held until the announced end");

    let rows = app.wait_for_broadcast(34).await;
    assert!(
        rows.iter().all(|r| r.status == DeliveryStatus::Sent),
        "{rows:?}"
    );
}

#[tokio::test]
async fn on_an_account_whose_chats_moved_to_lids_each_carrier_is_reached_by_lid() {
    let sim = WaSim::start().await;
    sim.set_registered(&CARRIERS);
    // The account is LID-migrated: a message addressed by phone number would be refused (400).
    sim.set_lid_migrated(true);
    let app = linked_app(&sim).await;

    app.post_order(order(35)).await;
    let rows = app.wait_for_broadcast(35).await;

    assert!(
        rows.iter().all(|r| r.status == DeliveryStatus::Sent),
        "{rows:?}"
    );
    assert!(
        sim.nacked().is_empty(),
        "nothing refused: {:?}",
        sim.nacked()
    );
    assert_eq!(
        sim.wait_for_received(3, LIMIT).await.map(|r| r.len()),
        Some(3)
    );
}
