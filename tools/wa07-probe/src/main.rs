//! How far the real whatsapp-rust 0.7 client gets against the simulator, by hand (issue 9):
//! `cargo run -- fresh` links a new session by QR, sends a text, reconnects (IK, then
//! XX-fallback); `cargo run -- fixture` logs in with the wa-rs 0.2.0 session fixture, no QR.
//! Prints each event and exits non-zero when a step fails. `RUST_LOG=warn` shows the client's
//! complaints about what the simulator does not do yet.

use relay_wa_sim::WaSim;
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

async fn start(
    sim: &WaSim,
    db: &str,
) -> (Arc<Client>, BotHandle, mpsc::UnboundedReceiver<Arc<Event>>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let bot = Bot::builder()
        .with_backend(SqliteStore::new(db).await.expect("store"))
        .with_transport_factory(TokioWebSocketTransportFactory::new().with_url(sim.url()))
        .with_http_client(NoHttp)
        .with_version((2, 3000, 1_023_868_176))
        .with_event_handler(Fwd(tx))
        .with_push_name(std::env::var("PROBE_PUSH_NAME").unwrap_or_default())
        .build()
        .await
        .expect("build");
    let client = bot.client();
    let h = bot.spawn();
    (client, h, rx)
}
async fn until(
    rx: &mut mpsc::UnboundedReceiver<Arc<Event>>,
    secs: u64,
    pred: impl Fn(&Event) -> bool,
) -> bool {
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
#[tokio::main]
async fn main() {
    let _ = env_logger::try_init();
    let mode = std::env::args().nth(1).unwrap_or_default();
    let sim = WaSim::start().await;
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
    let mut failed = false;
    if mode == "fixture" {
        println!("pn before connect: {:?}", client.pn());
        if std::env::var_os("PROBE_KEY_SHARE").is_some() {
            // A fresh simulator has none of this companion's pre-keys until it uploads them.
            let uploaded = sim
                .wait_for_stanza(Duration::from_secs(5), |n| {
                    n.tag == "iq" && n.get_optional_child("registration").is_some()
                })
                .await;
            println!("pre-keys uploaded: {}", uploaded.is_some());
            sim.share_app_state_key().await;
        }
        let ok = until(&mut rx, 15, |e| {
            matches!(e, Event::Connected(_) | Event::PairingQrCode(_))
        })
        .await;
        println!(
            "FIXTURE: first decisive event reached={ok}; sim logged_in={} connections={}",
            sim.is_logged_in(),
            sim.connections()
        );
        failed |= !ok || sim.connections() != 1;
    } else {
        let mut code = None;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        while let Ok(Some(e)) = tokio::time::timeout_at(deadline, rx.recv()).await {
            if let Event::PairingQrCode(q) = &*e {
                code = Some(q.code.clone());
                break;
            }
        }
        let qr = code.is_some();
        println!("FRESH: qr={qr}");
        failed |= !qr;
        if let Some(code) = code {
            println!("scan ok: {}", sim.scan_qr_code("212600000001", &code).await);
            let c = until(&mut rx, 15, |e| matches!(e, Event::Connected(_))).await;
            println!(
                "FRESH: connected={c} logged_in={} connections={}",
                sim.is_logged_in(),
                sim.connections()
            );
            failed |= !c;
            sim.set_registered(&["212611111111"]);
            let r = tokio::time::timeout(
                Duration::from_secs(10),
                client.send_message(
                    Jid::pn("212611111111"),
                    wa::Message {
                        conversation: Some("bonjour".into()),
                        ..Default::default()
                    },
                ),
            )
            .await;
            println!("SEND: {r:?}");
            let got = sim.wait_for_received(1, Duration::from_secs(5)).await;
            println!("SIM RECEIVED: {got:?}");
            failed |= got.is_none();
            let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
            while let Ok(Some(e)) = tokio::time::timeout_at(deadline, rx.recv()).await {
                if let Event::ServerAck(ack) = &*e {
                    println!(
                        "ACK: id={} class={:?} error={:?}",
                        ack.id, ack.class, ack.error
                    );
                    break;
                }
            }
            // A refused first message: the send still returns Ok, the ack carries the code.
            sim.set_registered(&["212611111111", "212622222222"]);
            sim.nack_messages_to("212622222222", Some(463));
            let r = client
                .send_message(
                    Jid::pn("212622222222"),
                    wa::Message {
                        conversation: Some("refusé".into()),
                        ..Default::default()
                    },
                )
                .await;
            println!("SEND (nacked): {r:?}");
            let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
            let mut nack = None;
            while let Ok(Some(e)) = tokio::time::timeout_at(deadline, rx.recv()).await {
                if let Event::ServerAck(ack) = &*e {
                    nack = ack.error.clone();
                    println!("NACK: id={} error={:?}", ack.id, ack.error);
                    break;
                }
            }
            failed |= nack.as_deref() != Some("463");
            sim.set_reachout_timelock(relay_wa_sim::ReachoutTimelock {
                is_active: true,
                ends_at: Some(1_900_000_000),
                enforcement_type: Some("REACHOUT_TIMELOCK".into()),
            });
            let lock = client.mex().fetch_reachout_timelock().await;
            println!("TIMELOCK: {lock:?}");
            failed |= !lock.as_ref().is_ok_and(|l| l.is_active == Some(true));
            sim.drop_connection().await;
            let c2 = until(&mut rx, 20, |e| matches!(e, Event::Connected(_))).await;
            println!(
                "RECONNECT (IK expected): connected={c2} connections={}",
                sim.connections()
            );
            failed |= !c2;
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(3), h.shutdown()).await;
    std::process::exit(i32::from(failed));
}
