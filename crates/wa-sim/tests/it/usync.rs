//! Number checks: the usync contact query answered from the registered set.

use std::collections::HashMap;
use std::time::Duration;

use relay_wa_sim::WaSim;
use whatsapp_rust::prelude::{Client, Jid};

use crate::common::{init_log, linked_bot};

/// Each number asked → whether the client's own number check says it is on WhatsApp.
async fn check(client: &Client, phones: &[&str]) -> HashMap<String, bool> {
    let jids: Vec<Jid> = phones.iter().map(|p| Jid::pn(*p)).collect();
    let results = tokio::time::timeout(
        Duration::from_secs(5),
        client.contacts().is_on_whatsapp(&jids),
    )
    .await
    .expect("answered")
    .expect("usync ok");
    results
        .into_iter()
        .map(|r| {
            assert!(r.jid.is_pn(), "answered by phone number: {}", r.jid);
            (r.jid.user.to_string(), r.is_registered)
        })
        .collect()
}

/// The usync contact query is answered from `set_registered`: one `<user jid=…>` per number,
/// `<contact type="in"/>` for registered ones, `type="out"` for the others. The `jid` attribute
/// is a JID value on the wire, as from the real server. wa-rs 0.2.0's `is_on_whatsapp` read it
/// as a string and returned an empty list for every query (this test then decoded the answer
/// itself); whatsapp-rust 0.7's own `contacts().is_on_whatsapp()` reads it, so the test now
/// checks what the client itself reports.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn number_checks_follow_the_registered_set() {
    init_log();
    let sim = WaSim::start().await;
    let dir = tempfile::tempdir().unwrap();
    let bot = linked_bot(&sim, &dir.path().join("s.db"), "212600000003").await;
    sim.set_registered(&["212611111111", "+212 622-222-222"]);

    let by_number = check(
        &bot.client,
        &["212611111111", "212622222222", "212633333333"],
    )
    .await;
    assert_eq!(by_number.len(), 3, "{by_number:?}");
    assert!(by_number["212611111111"]);
    assert!(by_number["212622222222"]);
    assert!(!by_number["212633333333"]);

    // The set can change at any time.
    sim.set_registered(&[]);
    let by_number = check(&bot.client, &["212611111111"]).await;
    assert_eq!(by_number.len(), 1, "{by_number:?}");
    assert!(!by_number["212611111111"]);
    bot.stop().await;
}
