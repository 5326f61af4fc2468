//! The build the README produces checks the WhatsApp server's certificate chain against
//! WhatsApp's root key: the simulator's chain, really signed but by a test root, is refused
//! before anything is registered. Run alone (`cargo test -p relay-wa-certificate`): in a build
//! with the simulator's default feature the check is off, and this test would say so.

// Test code: a failed set-up ends the test with its reason.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::time::Duration;

use relay_engine::Engine;
use relay_engine::channel::whatsapp_web::ConnectionState;
use relay_engine::config::Settings;
use relay_wa_sim::WaSim;

#[tokio::test]
async fn a_server_whose_chain_whatsapp_did_not_sign_is_refused_before_anything_is_registered() {
    let sim = WaSim::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let env: HashMap<&str, String> = [
        ("RELAY_DATA_DIR", dir.path().display().to_string()),
        ("RELAY_WEBHOOK_ADDR", "127.0.0.1:0".into()),
        (
            "RELAY_WEBHOOK_SECRET",
            "un-secret-de-test-assez-long".into(),
        ),
        ("RELAY_CHANNEL", "whatsapp-web".into()),
        ("WHATSAPP_WEB_URL", sim.url()),
        ("WHATSAPP_WEB_VERSION", "2.3000.1023868176".into()),
    ]
    .into_iter()
    .collect();
    let settings = Settings::load(|key| env.get(key).cloned()).expect("settings");
    let engine = Engine::start(settings).await.expect("engine starts");

    let mut states = engine.whatsapp().expect("whatsapp-web").state();
    let refused = tokio::time::timeout(Duration::from_secs(30), async {
        states
            .wait_for(|s| matches!(s, ConnectionState::Unreachable { .. }))
            .await
            .map(|s| s.clone())
    })
    .await
    .expect("refused within 30 s")
    .expect("state stream");
    let ConnectionState::Unreachable { reason, .. } = &refused else {
        unreachable!()
    };
    assert!(
        reason.contains("certificat du serveur WhatsApp refusé"),
        "{reason}"
    );
    assert!(
        sim.client_stanzas().is_empty(),
        "nothing was registered with that server"
    );
    assert!(!sim.is_logged_in());
    engine.shutdown().await;
}
