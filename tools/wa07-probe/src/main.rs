//! How far the real whatsapp-rust 0.7 client gets against the simulator, by hand (issue 9):
//!
//! * `cargo run -- fresh`: links a new session by QR, then checks each thing today's server does
//!   (acks, privacy tokens and 463, tctokens, warm contacts, the reach-out time lock, LID
//!   addressing and 400) and reconnects (IK, then XX-fallback).
//! * `cargo run -- fixture`: logs in with the wa-rs 0.2.0 session fixture, no QR; a first message
//!   to a cold contact without the salt is nacked 463.
//! * `cargo run -- refused`: the client must refuse the simulator's certificate chain: with the
//!   default `skip-cert-verify` feature a structurally broken chain
//!   (`CertChain::LeafKeyMismatch`); with `--no-default-features` (the shipped verification) the
//!   test-root-signed chain every other mode uses.
//!
//! Prints each event and step, exits non-zero when a step fails. `RUST_LOG=warn` shows the
//! client's complaints about what the simulator does not do.

use relay_wa_sim::{CertChain, PrivacyToken, ReachoutTimelock, WaSim};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use whatsapp_rust::http::{HttpClient, HttpRequest, HttpResponse};
use whatsapp_rust::prelude::*;
use whatsapp_rust::transport::TokioWebSocketTransportFactory;

struct NoHttp;
#[async_trait::async_trait]
impl HttpClient for NoHttp {
    async fn execute(&self, r: HttpRequest) -> anyhow::Result<HttpResponse> {
        anyhow::bail!("offline: {}", r.url)
    }
}
struct Fwd(mpsc::UnboundedSender<Arc<Event>>);
impl EventHandler for Fwd {
    fn handle_event(&self, e: Arc<Event>) {
        let _ = self.0.send(e);
    }
}
fn name(e: &Event) -> String {
    format!("{e:?}").chars().take(160).collect()
}

type Events = mpsc::UnboundedReceiver<Arc<Event>>;

async fn start(sim: &WaSim, db: &str) -> (Arc<Client>, BotHandle, Events) {
    let (tx, rx) = mpsc::unbounded_channel();
    let bot = Bot::builder()
        .with_backend(SqliteStore::new(db).await.expect("store"))
        .with_transport_factory(TokioWebSocketTransportFactory::new().with_url(sim.url()))
        .with_http_client(NoHttp)
        .with_version((2, 3000, 1_023_868_176))
        .with_event_handler(Fwd(tx))
        .with_push_name(std::env::var("PROBE_PUSH_NAME").unwrap_or_default())
        .skip_history_sync()
        .build()
        .await
        .expect("build");
    let client = bot.client();
    let h = bot.spawn();
    (client, h, rx)
}

async fn until(rx: &mut Events, secs: u64, pred: impl Fn(&Event) -> bool) -> bool {
    let start = tokio::time::Instant::now();
    let deadline = start + Duration::from_secs(secs);
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(e)) => {
                println!("  event after {:?}: {}", start.elapsed(), name(&e));
                if pred(&e) {
                    return true;
                }
            }
            _ => {
                println!("  (timeout/closed)");
                return false;
            }
        }
    }
}

/// The `ServerAck` for message `id` (other events are skipped): its error, `Err` on timeout.
async fn server_ack(rx: &mut Events, id: &str) -> Result<Option<String>, ()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while let Ok(Some(e)) = tokio::time::timeout_at(deadline, rx.recv()).await {
        if let Event::ServerAck(ack) = &*e
            && ack.id == id
        {
            return Ok(ack.error.clone());
        }
    }
    Err(())
}

fn text(t: &str) -> wa::Message {
    wa::Message {
        conversation: Some(t.into()),
        ..Default::default()
    }
}

/// Sends `body` to `phone`; prints the send, the server's ack and the simulator's token check;
/// returns the ack's error (`Err` when there was no ack or the send failed).
async fn send(
    client: &Client,
    sim: &WaSim,
    rx: &mut Events,
    label: &str,
    phone: &str,
    body: &str,
) -> Result<Option<String>, ()> {
    let sent = tokio::time::timeout(
        Duration::from_secs(10),
        client.send_message(Jid::pn(phone), text(body)),
    )
    .await;
    let id = match sent {
        Ok(Ok(r)) => r.message_id,
        other => {
            println!("{label}: send failed {other:?}");
            return Err(());
        }
    };
    let ack = server_ack(rx, &id).await;
    let to = sim
        .client_stanzas()
        .into_iter()
        .rev()
        .find(|n| {
            n.tag == "message" && n.attrs.get("id").map(|v| v.to_string_value()) == Some(id.clone())
        })
        .and_then(|n| n.attrs.get("to").map(|v| v.to_string_value()));
    let check = sim.token_checks().into_iter().find(|c| c.message_id == id);
    println!(
        "{label}: id={id} to={to:?} ack_error={ack:?} token_check={:?}",
        check.map(|c| (c.cold, short(&c.token), c.accepted))
    );
    ack
}

fn short(t: &PrivacyToken) -> String {
    match t {
        PrivacyToken::None => "none".into(),
        PrivacyToken::TcToken(b) => format!("tctoken({} bytes)", b.len()),
        PrivacyToken::CsToken(b) => format!("cstoken({} bytes)", b.len()),
    }
}

async fn share_key_after_upload(sim: &WaSim) {
    // A fresh simulator has none of this companion's pre-keys until it uploads them.
    let uploaded = sim
        .wait_for_stanza(Duration::from_secs(5), |n| {
            n.tag == "iq" && n.get_optional_child("registration").is_some()
        })
        .await;
    println!("pre-keys uploaded: {}", uploaded.is_some());
    sim.share_app_state_key().await;
}

async fn fresh(sim: &WaSim, client: &Client, rx: &mut Events) -> bool {
    let mut ok = true;
    let mut code = None;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while let Ok(Some(e)) = tokio::time::timeout_at(deadline, rx.recv()).await {
        if let Event::PairingQrCode(q) = &*e {
            code = Some(q.code.clone());
            break;
        }
    }
    println!("FRESH: qr={}", code.is_some());
    let Some(code) = code else { return false };
    println!("scan ok: {}", sim.scan_qr_code("212600000001", &code).await);
    // The phone shares its app-state key by itself after the linking (`set_auto_key_share`).
    let c = until(rx, 15, |e| matches!(e, Event::Connected(_))).await;
    println!(
        "FRESH: connected={c} logged_in={} connections={}",
        sim.is_logged_in(),
        sim.connections()
    );
    ok &= c;
    // The salt came with the first app-state sync, before `Connected`: no wait here, the
    // first send shows whether the salt made it in time.

    let (a, b, c3, d) = (
        "212611111111",
        "212622222222",
        "212633333333",
        "212644444444",
    );
    // Tokens are required by default: every registered number is cold.
    sim.set_registered(&[a, b, c3, d]);

    // 1. Cold contact, client holds the salt: cstoken, accepted, decrypted, acked.
    let r = send(client, sim, rx, "COLD (cstoken expected)", a, "bonjour").await;
    ok &= r == Ok(None);
    let got = sim.wait_for_received(1, Duration::from_secs(5)).await;
    println!(
        "SIM RECEIVED: {:?}",
        got.map(|g| g.into_iter().map(|r| (r.to, r.text)).collect::<Vec<_>>())
    );
    let check = sim.token_checks().last().cloned();
    ok &= check.as_ref().is_some_and(|c| {
        c.cold && c.accepted && c.token == PrivacyToken::CsToken(sim.expected_cs_token(a))
    });

    // 2. A refused recipient: Ok from send_message, the ack carries 463.
    sim.nack_messages_to(b, Some(463));
    let r = send(client, sim, rx, "NACK 463 (nack_messages_to)", b, "refusé").await;
    ok &= r == Ok(Some("463".into()));
    sim.nack_messages_to(b, None);

    // 3. A tctoken issued for a contact: the client attaches it.
    let token = sim.issue_tc_token(c3).await;
    let acked = sim
        .wait_for_stanza(Duration::from_secs(5), |n| {
            n.tag == "ack"
                && n.attrs.get("class").map(|v| v.to_string_value()).as_deref()
                    == Some("notification")
        })
        .await;
    println!(
        "tctoken issued ({} bytes), notification acked: {}",
        token.len(),
        acked.is_some()
    );
    let r = send(client, sim, rx, "TCTOKEN", c3, "avec tctoken").await;
    ok &= r == Ok(None);
    ok &= sim
        .token_checks()
        .last()
        .is_some_and(|c| c.token == PrivacyToken::TcToken(token.clone()));

    // 4. A contact who wrote first is warm.
    sim.send_text_from(d, "salut").await;
    let _ = until(rx, 5, |e| matches!(e, Event::Messages(_))).await;
    let r = send(client, sim, rx, "WARM", d, "réponse").await;
    ok &= r == Ok(None);
    ok &= sim
        .token_checks()
        .last()
        .is_some_and(|c| !c.cold && c.accepted);

    // 5. Reach-out time lock: inactive, then active until a date.
    let lock = client.mex().fetch_reachout_timelock().await;
    println!("TIMELOCK (default): {lock:?}");
    ok &= lock.as_ref().is_ok_and(|l| l.is_active != Some(true));
    sim.set_reachout_timelock(ReachoutTimelock {
        is_active: true,
        ends_at: Some(1_900_000_000),
        enforcement_type: Some("REACHOUT_TIMELOCK".into()),
    });
    let lock = client.mex().fetch_reachout_timelock().await;
    println!("TIMELOCK (active): {lock:?}");
    ok &= lock.as_ref().is_ok_and(|l| {
        l.is_active == Some(true) && l.time_enforcement_ends.as_deref() == Some("1900000000")
    });
    sim.set_reachout_timelock(ReachoutTimelock::default());

    // 6. The account becomes LID-migrated: the client still addresses by phone until it reads
    //    the AB props again (next connection): 400; after a reconnection, by LID: accepted.
    sim.set_lid_migrated(true);
    let r = send(
        client,
        sim,
        rx,
        "LID-MIGRATED, client not told yet",
        a,
        "par numéro",
    )
    .await;
    ok &= r == Ok(Some("400".into()));
    sim.drop_connection().await;
    let c2 = until(rx, 20, |e| matches!(e, Event::Connected(_))).await;
    println!(
        "RECONNECT (IK, XX-fallback): connected={c2} connections={}",
        sim.connections()
    );
    ok &= c2;
    let r = send(
        client,
        sim,
        rx,
        "LID-MIGRATED, after reconnection",
        a,
        "par LID",
    )
    .await;
    ok &= r == Ok(None);
    let got = sim.wait_for_received(2, Duration::from_secs(5)).await;
    ok &= got.is_some();
    ok
}

async fn fixture(sim: &WaSim, client: &Client, rx: &mut Events) -> bool {
    println!("pn before connect: {:?}", client.pn());
    if std::env::var_os("PROBE_KEY_SHARE").is_some() {
        share_key_after_upload(sim).await;
    }
    let ok = until(rx, 15, |e| {
        matches!(e, Event::Connected(_) | Event::PairingQrCode(_))
    })
    .await;
    println!(
        "FIXTURE: first decisive event reached={ok}; sim logged_in={} connections={}",
        sim.is_logged_in(),
        sim.connections()
    );
    let mut ok = ok && sim.connections() == 1;
    sim.set_registered(&["212611111111"]);
    if std::env::var_os("PROBE_KEY_SHARE").is_none() {
        // No key shared, so no salt: a first message to a cold contact goes without a token.
        let r = send(
            client,
            sim,
            rx,
            "COLD without salt",
            "212611111111",
            "bonjour",
        )
        .await;
        ok &= r == Ok(Some("463".into()));
        // The phone shares its key now: `server_sync`, the client syncs again.
        sim.share_app_state_key().await;
        let served = sim.wait_for_nct_salt_served(Duration::from_secs(5)).await;
        println!("salt served after the late key share: {served}");
        ok &= served;
        let r = send(
            client,
            sim,
            rx,
            "COLD after the late key share",
            "212611111111",
            "encore",
        )
        .await;
        ok &= r == Ok(None);
    } else {
        // Shared before the client's first sync, which then gets the salt.
        let served = sim.wait_for_nct_salt_served(Duration::from_secs(5)).await;
        println!("salt served: {served}");
        ok &= served;
        let r = send(client, sim, rx, "COLD with salt", "212611111111", "bonjour").await;
        ok &= r == Ok(None);
    }
    ok
}

async fn refused(sim: &WaSim, rx: &mut Events) -> bool {
    let linked = until(rx, 8, |e| {
        matches!(e, Event::PairingQrCode(_) | Event::Connected(_))
    })
    .await;
    println!(
        "REFUSED: QR or Connected seen={linked}; handshakes the simulator completed={}",
        sim.connections()
    );
    !linked && sim.connections() == 0
}

#[tokio::main]
async fn main() {
    let _ = env_logger::try_init();
    let mode = std::env::args().nth(1).unwrap_or_default();
    let chain = if mode == "refused" && cfg!(feature = "skip-cert-verify") {
        CertChain::LeafKeyMismatch
    } else {
        CertChain::TestRootSigned
    };
    println!(
        "mode={mode} chain={chain:?} signature checks={} test root key={:02x?}",
        if cfg!(feature = "skip-cert-verify") {
            "skipped"
        } else {
            "on"
        },
        &WaSim::test_root_public_key()[..4]
    );
    let sim = WaSim::start_with_cert_chain(chain).await;
    let dir = std::env::temp_dir().join(format!("wr07-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("s.db");
    if mode == "fixture" {
        std::fs::copy(
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../crates/engine/tests/fixtures/wa-rs-0.2-session.db"
            ),
            &db,
        )
        .unwrap();
    }
    let db = db.to_str().unwrap().to_string();
    let (client, h, mut rx) = start(&sim, &db).await;
    let ok = match mode.as_str() {
        "fixture" => fixture(&sim, &client, &mut rx).await,
        "refused" => refused(&sim, &mut rx).await,
        _ => fresh(&sim, &client, &mut rx).await,
    };
    if std::env::var_os("PROBE_DUMP").is_some() {
        for n in sim.client_stanzas() {
            if matches!(n.tag.as_str(), "receipt" | "ack") {
                println!("client sent: {} {:?}", n.tag, n.attrs);
            }
        }
    }
    println!("RESULT: {}", if ok { "ok" } else { "FAILED" });
    let _ = tokio::time::timeout(Duration::from_secs(3), h.shutdown()).await;
    std::process::exit(i32::from(!ok));
}
