//! The Noise handshake and the encrypted transport between the real client and the simulator.

use std::time::Duration;

use relay_wa_sim::WaSim;
use whatsapp_rust::prelude::Event;

use crate::common::{init_log, start_bot};

/// The client completes the Noise handshake and both directions of the encrypted transport
/// work: the server's `pair-device` IQ reaches the client (which shows a QR code) and the
/// client's acknowledgement reaches the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_client_completes_handshake() {
    init_log();
    let sim = WaSim::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut bot = start_bot(&sim, &dir.path().join("session.db")).await;

    // Generous bounds: they only end a failing test, and a busy CI machine can stall a client.
    assert!(sim.wait_for_connections(1, Duration::from_secs(20)).await);
    bot.client
        .wait_for_socket(Duration::from_secs(20))
        .await
        .expect("socket ready after handshake");
    let qr = bot
        .wait_event(Duration::from_secs(20), |e| {
            matches!(e, Event::PairingQrCode(_))
        })
        .await;
    let Event::PairingQrCode(qr) = &*qr else {
        unreachable!()
    };
    println!("QR code: {}", qr.code);
    assert!(qr.code.starts_with("2@"), "{}", qr.code);
    assert!(
        qr.code.split(',').count() >= 4,
        "ref,noise,identity,adv[,platform]: {}",
        qr.code
    );
    // 0.7 gives what is left of the first code's 60 s when the event is built.
    assert!(
        qr.timeout <= Duration::from_secs(60) && qr.timeout > Duration::from_secs(55),
        "{:?}",
        qr.timeout
    );

    let ack = sim
        .wait_for_stanza(Duration::from_secs(5), |n| {
            n.tag == "iq" && n.attrs.get("type").is_some_and(|t| t == "result")
        })
        .await;
    assert!(
        ack.is_some(),
        "client acked pair-device: {:?}",
        sim.client_stanzas()
    );
    assert!(sim.is_connected());
    assert!(!sim.is_logged_in());
    bot.stop().await;
}
