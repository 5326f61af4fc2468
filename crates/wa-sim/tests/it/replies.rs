//! Carriers answering the linked account, over an existing session or from uploaded pre-keys.

use std::time::Duration;

use relay_wa_sim::WaSim;
use whatsapp_rust::prelude::{Event, Jid, wa};

use crate::common::{init_log, linked_bot, text_of};

const A: &str = "212611111111";
const B: &str = "212622222222";

/// Sender, text and `is_from_me` of the next message with a text, as one `Messages` batch of
/// one (live traffic).
async fn next_message(bot: &mut crate::common::TestBot) -> (String, String, bool) {
    let e = bot
        .wait_event(Duration::from_secs(5), |e| text_of(e).is_some())
        .await;
    let Event::Messages(batch) = &*e else {
        unreachable!()
    };
    assert_eq!(batch.messages.len(), 1, "live messages come one by one");
    let info = &batch.messages[0].info;
    (
        info.source.sender.user.to_string(),
        text_of(&e).expect("a text"),
        info.source.is_from_me,
    )
}

/// A carrier answers: over the session the companion opened by writing to it (`msg`), or, for
/// a carrier it never wrote to, from the pre-keys the companion uploaded (`pkmsg`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn carriers_reply_to_the_linked_account() {
    init_log();
    let sim = WaSim::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut bot = linked_bot(&sim, &dir.path().join("s.db"), "212600000006").await;
    sim.set_registered(&[A, B]);

    bot.client
        .send_message(
            Jid::pn(A),
            wa::Message {
                conversation: Some("Commande 7".into()),
                ..Default::default()
            },
        )
        .await
        .expect("sent");
    sim.wait_for_received(1, Duration::from_secs(5))
        .await
        .expect("received");

    sim.send_text_from(A, "STOP").await;
    assert_eq!(
        next_message(&mut bot).await,
        (A.to_string(), "STOP".to_string(), false)
    );

    sim.send_text_from(B, "Je suis intéressé").await;
    assert_eq!(
        next_message(&mut bot).await,
        (B.to_string(), "Je suis intéressé".to_string(), false)
    );

    // And again on both sessions.
    sim.send_text_from(B, "encore").await;
    assert_eq!(next_message(&mut bot).await.1, "encore");
    sim.send_text_from(A, "oui").await;
    assert_eq!(next_message(&mut bot).await.1, "oui");

    // The client acknowledges and confirms delivery of what it received.
    let acked = sim
        .wait_for_stanza(Duration::from_secs(5), |n| {
            n.tag == "receipt"
                && n.attrs
                    .get("to")
                    .is_some_and(|t| t.to_string_value().starts_with(B))
        })
        .await;
    assert!(acked.is_some(), "delivery receipt sent to the carrier");
    bot.stop().await;
}

/// The account's own phone shares an app-state key (what whatsapp-rust 0.7 waits for before
/// `Connected` after a link; `linked_bot` sends one then, this is a second one, later): the
/// companion decrypts it and answers it like any message from the phone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_phone_shares_an_app_state_key_the_companion_takes() {
    init_log();
    let sim = WaSim::start().await;
    let dir = tempfile::tempdir().unwrap();
    let bot = linked_bot(&sim, &dir.path().join("s.db"), "212600000007").await;
    let id = sim.share_app_state_key().await;
    let answer = sim
        .wait_for_stanza(Duration::from_secs(5), |n| {
            matches!(n.tag.as_str(), "receipt" | "ack")
                && n.attrs.get("id").map(|v| v.to_string_value()).as_deref() == Some(id.as_str())
        })
        .await;
    assert!(answer.is_some(), "the companion answered the key share");
    bot.stop().await;
}
