//! The commands staff type: history, relaunch, carriers, and the errors they get.

use std::time::{Duration, Instant};

use relay_test_support::Reply;
use serde_json::Value;

use crate::helpers::*;

#[tokio::test]
async fn history_json_lists_every_delivery_with_its_fields() {
    let world = World::new(Duration::ZERO).await;
    add_carriers(&world.camionback, 3);
    world
        .camionback
        .add_carrier(9, "Bloqué", "0612345609", "bloqué");
    world.cloud.script(
        "212612345602",
        vec![Reply::meta(400, 131026, "Message undeliverable")],
    );
    let relay = world.serve(&[]).await;
    assert_eq!(world.post_order(order(1)).await, 202);
    let rows = eventually(Duration::from_secs(10), || {
        let rows = world.history("1");
        (rows.len() == 3
            && statuses(&rows)
                .iter()
                .all(|s| s != "queued" && s != "sending"))
        .then_some(rows)
    })
    .await;
    relay.terminate();

    let failed = rows
        .iter()
        .find(|r| r["carrier_id"] == 2)
        .expect("carrier 2");
    for field in [
        "order_id",
        "order_reference",
        "carrier_id",
        "carrier_name",
        "phone",
        "status",
        "attempts",
        "error",
        "message_id",
        "queued_at",
        "sent_at",
        "updated_at",
    ] {
        assert!(failed.get(field).is_some(), "missing {field} in {failed}");
    }
    assert_eq!(failed["order_reference"], "CMD-2025-1");
    assert_eq!(failed["phone"], "+212612345602");
    assert_eq!(failed["status"], "failed");
    assert!(failed["error"].as_str().unwrap_or("").contains("131026"));
    // What Meta's 131026 means and what to do, in French; Meta's words stay in `error`.
    let help = relay_domain::error_help(relay_domain::ChannelKind::CloudApi, "131026")
        .expect("131026 explained");
    assert_eq!(failed["error_code"], "131026");
    assert_eq!(failed["channel"], "cloud-api");
    assert_eq!(
        failed["error_help"],
        serde_json::json!({ "explanation": help.explanation, "action": help.action })
    );
    assert!(
        failed["error"]
            .as_str()
            .unwrap_or("")
            .contains("undeliverable")
    );

    let sent = world.run(&["history", "--status", "sent", "--json"]);
    let sent: Vec<Value> = serde_json::from_slice(&sent.stdout).expect("json");
    assert_eq!(sent.len(), 2);
    assert!(sent.iter().all(|r| {
        r["message_id"]
            .as_str()
            .is_some_and(|id| id.starts_with("wamid."))
    }));

    // The order's counters, from the same statuses.
    let orders = world.run(&["orders", "--json"]);
    assert!(orders.status.success());
    let orders: Vec<Value> = serde_json::from_slice(&orders.stdout).expect("json");
    assert_eq!(orders.len(), 1);
    assert_eq!(orders[0]["order_reference"], "CMD-2025-1");
    assert_eq!(
        (
            &orders[0]["total"],
            &orders[0]["sent"],
            &orders[0]["failed"]
        ),
        (&Value::from(3), &Value::from(2), &Value::from(1))
    );

    let table = world.run(&["history", "--order", "CMD-2025-1"]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(table.status.success());
    assert!(
        text.contains("Transporteur 1") && text.contains("CMD-2025-1"),
        "{text}"
    );
    assert!(
        text.contains(help.explanation) && !text.contains("undeliverable"),
        "{text}"
    );

    // The same export as the window's "Exporter CSV", on stdout: every failed row, in French.
    let csv = world.run(&["history", "--status", "failed", "--csv", "--limit", "1"]);
    assert!(csv.status.success());
    let text = String::from_utf8(csv.stdout).expect("UTF-8");
    let lines: Vec<&str> = text.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(
        lines,
        [
            "\u{feff}Date d'envoi;Transporteur;Numéro;Référence commande;Statut;Tentatives;Erreur;Code erreur",
            lines.get(1).copied().unwrap_or("no data line"),
        ],
        "a BOM, the header, one row: {text}"
    );
    let fields: Vec<&str> = lines[1].split(';').collect();
    assert_eq!(
        fields[1..5],
        ["Transporteur 2", "+212612345602", "CMD-2025-1", "Échec"],
        "{text}"
    );
    assert_eq!(fields[6..], [help.text().as_str(), "131026"], "{text}");
}

#[tokio::test]
async fn relaunch_leaves_out_carriers_in_doubt_says_how_many_and_includes_them_when_asked() {
    let world = World::new(Duration::ZERO).await;
    add_carriers(&world.camionback, 3);
    // Meta takes carrier 1's message but answers after the relay's 1 s timeout: uncertain.
    world.cloud.script(
        "212612345601",
        vec![Reply::AcceptLate(Duration::from_secs(3))],
    );
    world.cloud.script(
        "212612345602",
        vec![Reply::meta(400, 131026, "Message undeliverable")],
    );
    let relay = world.serve(&[("RELAY_SEND_TIMEOUT_SECS", "1")]).await;
    assert_eq!(world.post_order(order(9)).await, 202);
    eventually(Duration::from_secs(15), || {
        let mut s = statuses(&world.history("9"));
        s.sort();
        (s == ["failed", "sent", "uncertain"]).then_some(())
    })
    .await;

    let output = world.run(&["relaunch", "CMD-2025-9"]);
    assert!(output.status.success());
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(said.contains("1 transporteur(s) en file"), "{said}");
    assert!(
        said.contains("1 transporteur(s) en doute") && said.contains("--include-doubtful"),
        "the carrier in doubt is named as left out: {said}"
    );
    eventually(Duration::from_secs(5), || {
        (world.cloud.accepted_to("212612345602").len() == 1).then_some(())
    })
    .await;
    assert_eq!(
        world.cloud.accepted_to("212612345601").len(),
        1,
        "not resent by a default relaunch"
    );

    let refused = world.run(&["relaunch", "CMD-2025-9", "--all", "--include-doubtful"]);
    assert!(
        !refused.status.success(),
        "the two choices exclude each other"
    );

    let output = world.run(&["relaunch", "CMD-2025-9", "--include-doubtful"]);
    assert!(output.status.success());
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(said.contains("1 transporteur(s) en file"), "{said}");
    assert!(said.contains("dont 1 transporteur(s) en doute"), "{said}");
    eventually(Duration::from_secs(5), || {
        (world.cloud.accepted_to("212612345601").len() == 2).then_some(())
    })
    .await;
    relay.terminate();
    assert_eq!(world.cloud.accepted_to("212612345603").len(), 1);
}

#[tokio::test]
async fn relaunch_from_the_cli_is_picked_up_by_the_running_relay() {
    let world = World::new(Duration::ZERO).await;
    add_carriers(&world.camionback, 3);
    world.cloud.script(
        "212612345603",
        vec![Reply::meta(400, 131026, "Message undeliverable")],
    );
    let relay = world.serve(&[]).await;
    assert_eq!(world.post_order(order(8)).await, 202);
    eventually(Duration::from_secs(10), || {
        let s = statuses(&world.history("8"));
        (s.len() == 3 && s.iter().all(|s| s == "sent" || s == "failed")).then_some(())
    })
    .await;
    // A carrier validated since the broadcast.
    world
        .camionback
        .add_carrier(4, "Nouveau", "0612345604", "valide");

    let output = world.run(&["relaunch", "CMD-2025-8"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(
        said.contains("2 transporteur(s)"),
        "the missing and the new carrier: {said}"
    );
    // Nothing rings the running relay: its dispatcher finds the new batch when it next looks
    // at the queue, at most 500 ms later (`idle_wait`, checked in `dispatcher/tests.rs`).
    eventually(Duration::from_secs(5), || {
        (world.cloud.accepted_to("212612345604").len() == 1).then_some(())
    })
    .await;
    eventually(Duration::from_secs(5), || {
        (world.cloud.accepted_to("212612345603").len() == 1).then_some(())
    })
    .await;
    assert_eq!(
        world.cloud.accepted_to("212612345601").len(),
        1,
        "no duplicate by default"
    );

    let output = world.run(&["relaunch", "8", "--all"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("4 transporteur(s)"));
    eventually(Duration::from_secs(5), || {
        (world.cloud.accepted_to("212612345601").len() == 2).then_some(())
    })
    .await;

    assert!(relay.terminate().status.success());
}

#[tokio::test]
async fn a_second_relay_on_the_same_data_directory_refuses_to_start() {
    let world = World::new(Duration::ZERO).await;
    let relay = world.serve(&[]).await;
    let second = world
        .command(&["serve"], &[("RELAY_WEBHOOK_ADDR", "127.0.0.1:0")])
        .output()
        .expect("runs");
    assert!(!second.status.success());
    let said = String::from_utf8_lossy(&second.stderr);
    assert!(said.contains("déjà"), "{said}");
    assert!(relay.terminate().status.success());
}

#[tokio::test]
async fn carriers_sync_and_list() {
    let world = World::new(Duration::ZERO).await;
    add_carriers(&world.camionback, 2);
    world
        .camionback
        .add_carrier(3, "En attente", "0612345603", "en_attente");
    world
        .camionback
        .add_carrier(4, "Mauvais numéro", "12", "valide");

    let sync = world.run(&["carriers", "sync"]);
    assert!(
        sync.status.success(),
        "{}",
        String::from_utf8_lossy(&sync.stderr)
    );
    assert!(
        String::from_utf8_lossy(&sync.stdout)
            .contains("4 transporteur(s) listé(s) par l'API, 3 validé(s)")
    );

    let list = world.run(&["carriers", "list", "--json"]);
    let carriers: Vec<Value> = serde_json::from_slice(&list.stdout).expect("json");
    assert_eq!(carriers.len(), 4);
    let pending = carriers
        .iter()
        .find(|c| c["id"] == 3)
        .expect("pending carrier");
    assert_eq!(pending["eligible"], false);
    let bad = carriers.iter().find(|c| c["id"] == 4).expect("bad number");
    assert_eq!(bad["phone"], Value::Null);
    assert!(bad["phone_error"].as_str().is_some());
}

#[tokio::test]
async fn every_error_is_said_clearly_with_a_non_zero_exit() {
    let world = World::new(Duration::ZERO).await;
    // (arguments, environment, what the error must say)
    type Case<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>, &'a str);
    let cases: Vec<Case> = vec![
        (
            vec!["history", "--status", "envoyé"],
            vec![],
            "statut inconnu",
        ),
        (vec!["history", "--order", "CMD-404"], vec![], "CMD-404"),
        (vec!["relaunch", "999"], vec![], "inconnue"),
        (
            vec!["history"],
            vec![("RELAY_THROTTLE_MS", "vite")],
            "RELAY_THROTTLE_MS",
        ),
        (
            vec!["serve"],
            vec![("RELAY_CHANNEL", "pigeon")],
            "RELAY_CHANNEL",
        ),
        (
            vec!["serve"],
            vec![("WHATSAPP_TOKEN", "")],
            "WHATSAPP_TOKEN",
        ),
        (
            vec!["carriers", "sync"],
            vec![("CAMIONBACK_API_TOKEN", "wrong")],
            "401",
        ),
        (
            vec!["carriers", "sync"],
            vec![("CAMIONBACK_API_URL", "http://127.0.0.1:9")],
            "injoignable",
        ),
    ];
    for (args, env, expected) in cases {
        let output = world.command(&args, &env).output().expect("runs");
        let said = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?} should fail");
        assert!(
            said.contains(expected),
            "{args:?}: expected « {expected} » in: {said}"
        );
        assert!(!said.contains("panicked"), "{said}");
    }
    // A template file with an unknown placeholder stops start-up and names it.
    std::fs::write(world.data_dir().join("template.txt"), "Départ {{ville}}").expect("write");
    let output = world.command(&["serve"], &[]).output().expect("runs");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("{{ville}}"));
}

#[tokio::test]
async fn secrets_never_reach_the_logs_and_numbers_are_masked() {
    let world = World::new(Duration::ZERO).await;
    add_carriers(&world.camionback, 2);
    let relay = world.serve(&[]).await;
    assert_eq!(world.post_order(order(3)).await, 202);
    // Recorded as sent: the log line of each send is written by then.
    eventually(Duration::from_secs(10), || {
        let s = statuses(&world.history("3"));
        (s.len() == 2 && s.iter().all(|s| s == "sent")).then_some(())
    })
    .await;
    let output = relay.terminate();
    let console = String::from_utf8_lossy(&output.stderr).to_string();

    let log_dir = world.data_dir().join("logs");
    let mut files = String::new();
    for entry in std::fs::read_dir(&log_dir).expect("log dir exists") {
        files.push_str(&std::fs::read_to_string(entry.expect("entry").path()).expect("log file"));
    }
    for logs in [&console, &files] {
        assert!(
            logs.contains("✅ Message envoyé à Transporteur 1 (+2126…01) pour commande CMD-2025-3"),
            "{logs}"
        );
        for secret in [
            WEBHOOK_SECRET,
            relay_test_support::camionback::TOKEN,
            relay_test_support::cloud_api::TOKEN,
            "212612345601",
        ] {
            assert!(!logs.contains(secret), "« {secret} » leaked into the logs");
        }
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // The data directory itself is the user's: the relay checks it, never chmods it.
        let mut private = vec![world.data_dir().join("relay.db"), log_dir.clone()];
        for entry in std::fs::read_dir(&log_dir).expect("log dir") {
            private.push(entry.expect("entry").path());
        }
        for path in private {
            let mode = std::fs::metadata(&path)
                .expect("exists")
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "{} is readable by others", path.display());
        }
    }
}

#[tokio::test]
async fn staff_pause_holds_every_send_across_a_restart_until_resume() {
    let world = World::new(Duration::ZERO).await;
    add_carriers(&world.camionback, 3);
    let relay = world.serve(&[]).await;

    let paused = world.run(&["pause"]);
    assert!(paused.status.success());
    assert!(String::from_utf8_lossy(&paused.stdout).contains("Envois en pause"));
    assert!(String::from_utf8_lossy(&world.run(&["pause"]).stdout).contains("déjà en pause"));

    assert_eq!(world.post_order(order(5)).await, 202);
    eventually(Duration::from_secs(10), || {
        (world.history("5").len() == 3).then_some(())
    })
    .await;
    // Queued, and held: the running relay claims nothing while paused (every message is
    // checked below to have reached WhatsApp after `resume`; the dispatcher's hold on a
    // manual clock in `dispatcher/tests.rs`).
    assert!(
        world.cloud.received().is_empty(),
        "nothing sent while paused"
    );
    assert!(statuses(&world.history("5")).iter().all(|s| s == "queued"));

    // The pause is a decision, not a state of the process: a restart keeps it.
    assert!(relay.terminate().status.success());
    let relay = world.serve(&[]).await;
    assert!(
        world.cloud.received().is_empty(),
        "still paused after a restart"
    );

    let resumed_at = Instant::now();
    let resumed = world.run(&["resume"]);
    assert!(resumed.status.success());
    assert!(String::from_utf8_lossy(&resumed.stdout).contains("Envois repris"));
    eventually(Duration::from_secs(10), || {
        statuses(&world.history("5"))
            .iter()
            .all(|s| s == "sent")
            .then_some(())
    })
    .await;
    assert_eq!(world.cloud.received().len(), 3, "each carrier once");
    assert!(
        world.cloud.received().iter().all(|r| r.at >= resumed_at),
        "nothing reached WhatsApp before resume, through the pause and the restart"
    );
    assert!(String::from_utf8_lossy(&world.run(&["resume"]).stdout).contains("pas en pause"));
    assert!(relay.terminate().status.success());
}
