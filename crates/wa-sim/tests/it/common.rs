//! A real whatsapp-rust 0.7 `Bot` wired to the simulator, and event helpers.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use relay_wa_sim::WaSim;
use tokio::sync::mpsc;
use whatsapp_rust::http::{HttpClient, HttpRequest, HttpResponse};
use whatsapp_rust::prelude::*;
use whatsapp_rust::transport::TokioWebSocketTransportFactory;

/// Logs with `RUST_LOG=…` (e.g. `RUST_LOG=WaSim=debug,whatsapp_rust=debug`).
pub fn init_log() {
    let _ = env_logger::builder().is_test(true).try_init();
}

/// An HTTP client that is never online: with `with_version` the client never calls it.
pub struct NoHttp;

#[async_trait::async_trait]
impl HttpClient for NoHttp {
    async fn execute(&self, request: HttpRequest) -> anyhow::Result<HttpResponse> {
        anyhow::bail!("offline test: no HTTP ({})", request.url)
    }
}

/// Forwards events in order into a channel (a raw handler runs inline on the dispatch path:
/// no reordering).
struct Forward(mpsc::UnboundedSender<Arc<Event>>);

impl EventHandler for Forward {
    fn handle_event(&self, event: Arc<Event>) {
        let _ = self.0.send(event);
    }
}

pub struct TestBot {
    pub client: Arc<Client>,
    /// Resolves when the run loop has ended.
    pub handle: BotHandle,
    pub events: mpsc::UnboundedReceiver<Arc<Event>>,
}

pub async fn start_bot(sim: &WaSim, db: &Path) -> TestBot {
    let store = SqliteStore::new(db.to_str().expect("utf-8 path"))
        .await
        .expect("sqlite store");
    let (tx, events) = mpsc::unbounded_channel();
    let bot = Bot::builder()
        .with_backend(store)
        .with_transport_factory(TokioWebSocketTransportFactory::new().with_url(sim.url()))
        .with_http_client(NoHttp)
        .with_version((2, 3000, 1_023_868_176))
        .skip_history_sync()
        .with_event_handler(Forward(tx))
        .build()
        .await
        .expect("build bot");
    let client = bot.client();
    let handle = bot.spawn();
    TestBot {
        client,
        handle,
        events,
    }
}

/// The event's variant name (0.7's `Debug` of an event prints nothing else).
pub fn name(e: &Event) -> String {
    let s = format!("{e:?}");
    s.split(['(', ' ', '{'])
        .next()
        .unwrap_or_default()
        .to_string()
}

/// The text of a `Messages` event's first message, `None` for another event. The phone's
/// app-state key share is a `Messages` event too, with no text.
pub fn text_of(e: &Event) -> Option<String> {
    let Event::Messages(batch) = e else {
        return None;
    };
    batch
        .messages
        .first()
        .and_then(|m| m.message.text_content().map(str::to_string))
}

impl TestBot {
    /// The next event matching `pred`, skipping others; panics on timeout with what was seen.
    pub async fn wait_event(
        &mut self,
        timeout: Duration,
        pred: impl Fn(&Event) -> bool,
    ) -> Arc<Event> {
        let mut seen = Vec::new();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(e)) if pred(&e) => return e,
                Ok(Some(e)) => seen.push(name(&e)),
                Ok(None) => panic!("event channel closed; seen {seen:?}"),
                Err(_) => panic!("timed out waiting for event; seen {seen:?}"),
            }
        }
    }

    /// The events received in the next `window`.
    pub async fn drain_events(&mut self, window: Duration) -> Vec<Arc<Event>> {
        let mut out = Vec::new();
        let deadline = tokio::time::Instant::now() + window;
        while let Ok(Some(e)) = tokio::time::timeout_at(deadline, self.events.recv()).await {
            out.push(e);
        }
        out
    }

    /// Disconnects and waits for the run loop to end. whatsapp-rust 0.7 bounds its disconnect
    /// (flushes of at most 5 s each), unlike wa-rs 0.2.0's, which could hang for good on the
    /// websocket close handshake: a shutdown that does not finish fails the test.
    pub async fn stop(self) {
        tokio::time::timeout(Duration::from_secs(15), self.handle.shutdown())
            .await
            .expect("the bot shut down");
    }
}

/// After a fresh link, 0.7 waits (up to 10 s) for the phone to share an app-state key before
/// its first sync and `Connected`. The phone encrypts the share from the pre-keys the
/// companion uploads at its first login, so it is sent once they are there.
pub async fn share_key_after_prekeys(sim: &WaSim) {
    let uploaded = sim
        .wait_for_stanza(Duration::from_secs(10), |n| {
            n.tag == "iq" && n.get_optional_child("registration").is_some()
        })
        .await;
    assert!(uploaded.is_some(), "the companion uploaded its pre-keys");
    sim.share_app_state_key().await;
}

/// The QR code of the next `PairingQrCode` event.
pub async fn next_qr(bot: &mut TestBot) -> String {
    let e = bot
        .wait_event(Duration::from_secs(10), |e| {
            matches!(e, Event::PairingQrCode(_))
        })
        .await;
    let Event::PairingQrCode(qr) = &*e else {
        unreachable!()
    };
    qr.code.clone()
}

/// A fresh bot linked to `phone` through the simulator, after its `Connected`.
pub async fn linked_bot(sim: &WaSim, db: &Path, phone: &str) -> TestBot {
    let mut bot = start_bot(sim, db).await;
    let code = next_qr(&mut bot).await;
    assert!(sim.scan_qr_code(phone, &code).await, "the phone scanned");
    bot.wait_event(Duration::from_secs(10), |e| {
        matches!(e, Event::PairSuccess(_))
    })
    .await;
    share_key_after_prekeys(sim).await;
    bot.wait_event(Duration::from_secs(10), |e| {
        matches!(e, Event::Connected(_))
    })
    .await;
    bot
}
