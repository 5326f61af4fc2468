//! Linking CamionBack's WhatsApp account once with `login`, then `serve` sending through it,
//! against the loopback WhatsApp Web simulator.

use std::io::{BufRead, BufReader};
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
    // The phone scans once the client has taken the pair-device refs (it answers the IQ).
    assert!(
        sim.wait_for_stanza(Duration::from_secs(20), |n| {
            n.tag == "iq" && n.attrs.get("type").is_some_and(|t| t == "result")
        })
        .await
        .is_some(),
        "login took the QR refs"
    );
    // The QR code is drawn in the terminal: the phone's secret is read from the session file.
    let secret = relay_test_support::whatsapp_session::qr_secret(
        &world.data_dir().join("whatsapp-session.db"),
    )
    .await
    .expect("the session file holds the QR code's secret");
    assert!(sim.scan_qr_with_secret(ACCOUNT, &secret).await, "scanned");
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
    sim.send_text_from("212612345601", "Disponible").await;
    // Both are about the order last sent to that carrier, and forwarded to CamionBack.
    let replies = eventually(Duration::from_secs(10), || {
        let output = world.run(&["replies", "--json"]);
        let replies: Vec<Value> = serde_json::from_slice(&output.stdout).ok()?;
        (replies.len() == 2 && replies.iter().all(|r| r["forwarded"] == "done")).then_some(replies)
    })
    .await;
    let by_text = |text: &str| {
        replies
            .iter()
            .find(|r| r["text"] == text)
            .unwrap_or_else(|| panic!("« {text} » listed: {replies:?}"))
    };
    let (interest, question) = (by_text("Disponible"), by_text("Disponible demain"));
    assert_eq!(question["text"], "Disponible demain");
    assert_eq!(question["carrier_name"], "Transporteur 1");
    assert_eq!(question["channel"], "whatsapp-web");
    assert_eq!(question["order_id"], 42);
    assert_eq!(question["interested"], false);
    assert_eq!(interest["text"], "Disponible");
    assert_eq!(interest["interested"], true, "an interest word");
    assert_eq!(interest["order_id"], 42);
    let posts = world.camionback.accepted_replies();
    assert_eq!(posts.len(), 2, "each reply posted once");
    assert!(
        posts
            .iter()
            .all(|p| p.order_id == 42 && p.body["canal"] == "whatsapp-web")
    );
    let only_interested = world.run(&[
        "replies",
        "--interested",
        "--order",
        "CMD-2025-42",
        "--json",
    ]);
    let only_interested: Vec<Value> =
        serde_json::from_slice(&only_interested.stdout).expect("replies --json");
    assert_eq!(only_interested.len(), 1);
    assert_eq!(only_interested[0]["text"], "Disponible");
    assert!(relay.terminate().status.success());

    let rows = world.history("42");
    assert!(statuses(&rows).iter().all(|s| s == "sent"), "{rows:?}");
}

#[tokio::test]
async fn login_with_a_phone_number_prints_a_pairing_code_then_serve_sends_through_that_session() {
    let sim = WaSim::start().await;
    sim.set_registered(&["212612345601", "212612345602"]);
    let world = World::new(Duration::ZERO).await;
    add_carriers(&world.camionback, 2);
    let env = web_env(&sim);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();

    let mut login = world
        .command(&["login", "--phone", "+212 664 37 35 34"], &env)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("login starts");
    // What login prints, line by line, as it prints it.
    let stdout = login.stdout.take().expect("stdout");
    let (lines_tx, mut lines) = tokio::sync::mpsc::unbounded_channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    let mut said = Vec::new();
    let code = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.recv().await {
            said.push(line.clone());
            let word = line.trim();
            if word.len() == 8 && word.chars().all(|c| c.is_ascii_alphanumeric()) {
                return word.to_string();
            }
        }
        panic!("login ended without a code: {said:?}")
    })
    .await
    .expect("a pairing code is printed");
    assert!(
        said.iter().any(|l| l.contains("Appareils connectés")),
        "where to type it: {said:?}"
    );
    assert!(
        !said.iter().any(|l| l.contains('█') || l.contains('▀')),
        "no QR code drawn: {said:?}"
    );
    let requests = sim.pair_code_requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(
        requests[0].phone, ACCOUNT,
        "the number as WhatsApp wants it"
    );

    assert_eq!(sim.enter_pair_code(ACCOUNT, &code).await, Ok(()));
    let status = tokio::task::spawn_blocking(move || login.wait())
        .await
        .expect("join")
        .expect("login exits");
    reader.join().expect("reader");
    while let Ok(line) = lines.try_recv() {
        said.push(line);
    }
    assert!(status.success(), "login failed: {said:?}");
    assert!(
        said.iter()
            .any(|l| l.contains(&format!("WhatsApp relié (+{ACCOUNT})"))),
        "{said:?}"
    );

    let relay = world.serve(&env).await;
    assert_eq!(world.post_order(order(7)).await, 202);
    let received = sim
        .wait_for_received(2, Duration::from_secs(20))
        .await
        .expect("both carriers got it");
    assert!(
        received
            .iter()
            .all(|r| r.text.contains("https://camionback.com/commande/7"))
    );
    assert!(relay.terminate().status.success());
    assert_eq!(
        sim.pair_code_requests().len(),
        1,
        "serve needed no new code"
    );
}

#[tokio::test]
async fn login_with_an_invalid_phone_number_says_so_and_changes_nothing() {
    let sim = WaSim::start().await;
    let world = World::new(Duration::ZERO).await;
    let env = web_env(&sim);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();

    for phone in ["0612", "06 64 37 35 34 99", "pas un numéro", ""] {
        let output = world
            .command(&["login", "--phone", phone], &env)
            .output()
            .expect("login runs");
        let error = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{phone:?} accepted");
        assert!(
            error.contains("--phone") && error.contains("indicatif du pays"),
            "{phone:?}: {error}"
        );
    }
    assert_eq!(sim.connections(), 0, "WhatsApp never contacted");
    let created: Vec<_> = std::fs::read_dir(world.data_dir())
        .expect("data dir")
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .collect();
    assert!(created.is_empty(), "nothing written: {created:?}");
}

#[tokio::test]
async fn login_with_a_phone_number_says_so_when_whatsapp_gives_no_code() {
    let sim = WaSim::start().await;
    sim.refuse_pair_codes(true);
    let world = World::new(Duration::ZERO).await;
    let env = web_env(&sim);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();

    let login = world
        .command(&["login", "--phone", ACCOUNT], &env)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("login starts");
    let output = tokio::task::spawn_blocking(move || login.wait_with_output())
        .await
        .expect("join")
        .expect("login exits");
    let error = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "login succeeded");
    assert!(
        error.contains("pas de code d'appairage") && error.contains("WhatsApp a refusé"),
        "{error}"
    );
    assert_eq!(sim.pair_code_requests().len(), 1, "asked once");
    assert_eq!(sim.linked_phone(), None);
}
