//! Linking CamionBack's WhatsApp account once with `login`, then `serve` sending through it,
//! against the loopback WhatsApp Web simulator.

use std::process::Stdio;
use std::time::Duration;

use relay_wa_sim::WaSim;
use serde_json::Value;

use crate::helpers::*;

const ACCOUNT: &str = "212664373534";

fn web_env(sim: &WaSim) -> Vec<(&'static str, String)> {
    vec![
        ("RELAY_CHANNEL", "whatsapp-web".into()),
        ("WHATSAPP_WEB_URL", sim.url()),
        ("WHATSAPP_WEB_VERSION", "2.3000.1023868176".into()),
    ]
}

#[tokio::test]
async fn login_links_once_then_serve_sends_through_that_session() {
    let sim = WaSim::start().await;
    sim.set_registered(&["212612345601", "212612345602"]);
    let world = World::new(Duration::ZERO).await;
    add_carriers(&world.camionback, 2);
    let env = web_env(&sim);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();

    let login = world
        .command(&["login"], &env)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("login starts");
    assert!(
        sim.wait_for_connections(1, Duration::from_secs(20)).await,
        "login connects"
    );
    // Give the client the pair-device refs before the phone scans.
    tokio::time::sleep(Duration::from_millis(300)).await;
    sim.scan_qr(ACCOUNT).await;
    let output = tokio::task::spawn_blocking(move || login.wait_with_output())
        .await
        .expect("join")
        .expect("login exits");
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "login failed: {said} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        said.contains(&format!("WhatsApp relié (+{ACCOUNT})")),
        "{said}"
    );
    assert!(
        said.contains('█') || said.contains('▀') || said.contains('▄'),
        "a QR code was drawn: {said}"
    );

    let relay = world.serve(&env).await;
    assert_eq!(world.post_order(order(42)).await, 202);
    let received = sim
        .wait_for_received(2, Duration::from_secs(20))
        .await
        .expect("both carriers got it");
    assert!(
        received
            .iter()
            .all(|r| r.text.contains("https://camionback.com/commande/42"))
    );

    sim.send_text_from("212612345601", "Disponible demain")
        .await;
    let replies = eventually(Duration::from_secs(10), || {
        let output = world.run(&["replies", "--json"]);
        let replies: Vec<Value> = serde_json::from_slice(&output.stdout).ok()?;
        (replies.len() == 1).then_some(replies)
    })
    .await;
    assert_eq!(replies[0]["text"], "Disponible demain");
    assert_eq!(replies[0]["carrier_name"], "Transporteur 1");
    assert!(relay.terminate().status.success());

    let rows = world.history("42");
    assert!(statuses(&rows).iter().all(|s| s == "sent"), "{rows:?}");
}
