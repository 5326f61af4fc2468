//! Outgoing texts decrypted on the simulated phones, and the receipts that come back.

use std::time::Duration;

use relay_wa_sim::{ReceiptKind, WaSim};
use whatsapp_rust::prelude::{Event, Jid, wa};
use whatsapp_rust::types::presence::ReceiptType;

use crate::common::{TestBot, init_log, linked_bot};

const A: &str = "212611111111";
const B: &str = "212622222222";
const NOT_ON_WA: &str = "212633333333";

fn text(s: &str) -> wa::Message {
    wa::Message {
        conversation: Some(s.to_string()),
        ..Default::default()
    }
}

/// The client's messages are end-to-end encrypted to the recipients' simulated phones
/// (device list, pre-key bundle, `pkmsg`, then the same session — still `pkmsg` framed until
/// the recipient answers), decrypted there and recorded with the id `send_message` returned;
/// a number not on WhatsApp gets nothing and `send_message` fails (whatsapp-rust 0.7; wa-rs
/// 0.2.0 said Ok); receipts come back as `Event::Receipt`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn texts_reach_the_recipients_phones_and_receipts_come_back() {
    init_log();
    let sim = WaSim::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut bot = linked_bot(&sim, &dir.path().join("s.db"), "212600000004").await;
    sim.set_registered(&[A, B]);

    let send = |to: &str, body: &str| {
        let client = bot.client.clone();
        let (to, body) = (to.to_string(), body.to_string());
        async move {
            tokio::time::timeout(
                Duration::from_secs(5),
                client.send_message(Jid::pn(to), text(&body)),
            )
            .await
            .expect("send did not hang")
            .expect("send ok")
            .message_id
        }
    };
    let before = sim.client_stanzas().len();
    let id1 = send(
        A,
        "Nouvelle commande 42 : Casablanca → Rabat, 12 t. https://camionback.ma/o/42",
    )
    .await;
    let first_send: Vec<String> = sim.client_stanzas()[before..]
        .iter()
        .map(|n| {
            let xmlns = n
                .attrs
                .get("xmlns")
                .map(|x| x.to_string_value())
                .unwrap_or_default();
            let child = n.children().and_then(|c| c.first()).map(|c| c.tag.clone());
            format!(
                "{}[{xmlns}]{}",
                n.tag,
                child.map(|c| format!("<{c}>")).unwrap_or_default()
            )
        })
        .collect();
    println!("what the first send_message sent: {first_send:?}");
    let id2 = send(A, "Deuxième message").await;
    let id3 = send(B, "Pour B").await;
    assert!(id1 != id2 && id2 != id3);

    let got = sim
        .wait_for_received(3, Duration::from_secs(5))
        .await
        .unwrap_or_else(|| panic!("received {:?}", sim.received()));
    assert_eq!(got.len(), 3);
    assert_eq!(
        (got[0].to.as_str(), got[0].message_id.as_str()),
        (A, id1.as_str())
    );
    assert_eq!(
        got[0].text,
        "Nouvelle commande 42 : Casablanca → Rabat, 12 t. https://camionback.ma/o/42"
    );
    assert_eq!(
        (got[1].to.as_str(), got[1].text.as_str()),
        (A, "Deuxième message")
    );
    assert_eq!((got[2].to.as_str(), got[2].text.as_str()), (B, "Pour B"));
    assert_eq!(got[2].message_id, id3);

    let encs: Vec<String> = sim
        .client_stanzas()
        .iter()
        .filter(|n| n.tag == "message")
        .filter_map(|n| {
            let to = n
                .get_optional_child("participants")?
                .children()?
                .first()?
                .clone();
            Some(
                to.get_optional_child("enc")?
                    .attrs
                    .get("type")?
                    .to_string_value(),
            )
        })
        .collect();
    println!("enc types of the three messages: {encs:?}");
    assert_eq!(encs[0], "pkmsg");

    // Not on WhatsApp: nothing can be encrypted to it. wa-rs 0.2.0's send_message said Ok
    // all the same; whatsapp-rust 0.7's says it failed, and no message stanza goes out.
    let lost = tokio::time::timeout(
        Duration::from_secs(5),
        bot.client.send_message(Jid::pn(NOT_ON_WA), text("perdu")),
    )
    .await
    .expect("send did not hang");
    let error = lost.expect_err("a number not on WhatsApp is refused");
    println!("send to a number not on WhatsApp: {error}");
    // A later text on the same socket is read after whatever went out before it: once the
    // simulator has it, the lost one had its chance to arrive (a wait on an event, not on time).
    let id5 = send(A, "après").await;
    sim.wait_for_received(4, Duration::from_secs(5))
        .await
        .expect("the text after it arrived");
    let ids: Vec<String> = sim
        .received()
        .iter()
        .map(|r| r.message_id.clone())
        .collect();
    assert_eq!(ids.len(), 4, "{ids:?}");
    assert_eq!(ids.last(), Some(&id5));
    assert!(
        !sim.client_stanzas().iter().any(|n| n.tag == "message"
            && n.attrs
                .get("to")
                .is_some_and(|t| t.to_string_value().starts_with(NOT_ON_WA))),
        "nothing was sent to {NOT_ON_WA}"
    );

    sim.send_receipt(&id1, ReceiptKind::Delivery).await;
    let e = bot
        .wait_event(Duration::from_secs(5), |e| matches!(e, Event::Receipt(_)))
        .await;
    let Event::Receipt(r) = &*e else {
        unreachable!()
    };
    assert_eq!(r.message_ids, vec![id1.clone()]);
    assert_eq!(r.r#type, ReceiptType::Delivered);
    assert_eq!(r.source.sender.user, A);

    sim.send_receipt(&id1, ReceiptKind::Read).await;
    let e = bot
        .wait_event(Duration::from_secs(5), |e| matches!(e, Event::Receipt(_)))
        .await;
    let Event::Receipt(r) = &*e else {
        unreachable!()
    };
    assert_eq!(r.message_ids, vec![id1]);
    assert_eq!(r.r#type, ReceiptType::Read);
    bot.stop().await;
}

/// A receipt sent while the client is offline is delivered after its next login.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipts_wait_for_the_client_to_come_back() {
    init_log();
    let sim = WaSim::start().await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let bot = linked_bot(&sim, &db, "212600000005").await;
    sim.set_registered(&[A]);
    let id = bot
        .client
        .send_message(Jid::pn(A), text("hors ligne"))
        .await
        .expect("sent")
        .message_id;
    sim.wait_for_received(1, Duration::from_secs(5))
        .await
        .expect("received");
    bot.stop().await;

    sim.send_receipt(&id, ReceiptKind::Read).await;
    let mut again = crate::common::start_bot(&sim, &db).await;
    let e = again
        .wait_event(Duration::from_secs(10), |e| matches!(e, Event::Receipt(_)))
        .await;
    let Event::Receipt(r) = &*e else {
        unreachable!()
    };
    assert_eq!(r.message_ids, vec![id]);
    assert_eq!(r.r#type, ReceiptType::Read);
    again.stop().await;
}

/// The next `ServerAck` for the message `id`: its nack code, `None` when accepted.
async fn server_ack_of(bot: &mut TestBot, id: &str) -> Option<String> {
    let e = bot
        .wait_event(
            Duration::from_secs(5),
            |e| matches!(e, Event::ServerAck(ack) if ack.id == id),
        )
        .await;
    let Event::ServerAck(ack) = &*e else {
        unreachable!()
    };
    assert_eq!(ack.class.as_deref(), Some("message"));
    ack.error.clone()
}

/// A recipient the server refuses (`nack_messages_to`): the message is answered with
/// `<ack error="463">` and never reaches that phone. whatsapp-rust 0.7's `send_message` still
/// says Ok (as wa-rs 0.2.0's did, the silent success issue 9 is about), but the refusal now
/// reaches the application as `Event::ServerAck { error: Some("463") }` for that message id.
/// Accepted again, the next one is delivered and its ack carries no error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_message_is_nacked_and_not_delivered() {
    init_log();
    let sim = WaSim::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut bot = linked_bot(&sim, &dir.path().join("s.db"), "212600000006").await;
    sim.set_registered(&[A, B]);
    sim.nack_messages_to(A, Some(463));

    let refused = bot
        .client
        .send_message(Jid::pn(A), text("premier message"))
        .await
        .expect("the send itself says Ok")
        .message_id;
    let nacked = sim
        .wait_for_nacked(1, Duration::from_secs(5))
        .await
        .expect("the server refused it");
    assert_eq!(nacked, vec![(refused.clone(), 463)]);
    assert_eq!(
        server_ack_of(&mut bot, &refused).await.as_deref(),
        Some("463")
    );

    sim.nack_messages_to(A, None);
    let accepted = bot
        .client
        .send_message(Jid::pn(A), text("second essai"))
        .await
        .expect("sent")
        .message_id;
    let got = sim
        .wait_for_received(1, Duration::from_secs(5))
        .await
        .expect("delivered once accepted");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].message_id, accepted);
    assert_eq!(got[0].text, "second essai");
    assert_eq!(server_ack_of(&mut bot, &accepted).await, None);
    bot.stop().await;
}
