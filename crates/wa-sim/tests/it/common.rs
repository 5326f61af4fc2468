//! A real wa-rs 0.2.0 `Bot` wired to the simulator, and event helpers.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use relay_wa_sim::WaSim;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use wa_rs::Client;
use wa_rs::bot::Bot;
use wa_rs::http::{HttpClient, HttpRequest, HttpResponse};
use wa_rs::types::events::{Event, EventHandler};
use wa_rs_sqlite_storage::SqliteStore;
use wa_rs_tokio_transport::TokioWebSocketTransportFactory;

/// Logs with `RUST_LOG=…` (e.g. `RUST_LOG=WaSim=debug,wa_rs=debug`).
pub fn init_log() {
    let _ = env_logger::builder().is_test(true).try_init();
}

/// An HTTP client that is never online: with `with_version` wa-rs never calls it.
pub struct NoHttp;

#[async_trait::async_trait]
impl HttpClient for NoHttp {
    async fn execute(&self, request: HttpRequest) -> anyhow::Result<HttpResponse> {
        anyhow::bail!("offline test: no HTTP ({})", request.url)
    }
}

/// Forwards events in order into a channel (synchronous handler: no reordering).
struct Forward(mpsc::UnboundedSender<Event>);

impl EventHandler for Forward {
    fn handle_event(&self, event: &Event) {
        let _ = self.0.send(event.clone());
    }
}

pub struct TestBot {
    pub client: Arc<Client>,
    pub handle: JoinHandle<()>,
    pub events: mpsc::UnboundedReceiver<Event>,
    _bot: Bot,
}

pub async fn start_bot(sim: &WaSim, db: &Path) -> TestBot {
    let store = SqliteStore::new(db.to_str().expect("utf-8 path"))
        .await
        .expect("sqlite store");
    let mut bot = Bot::builder()
        .with_backend(Arc::new(store))
        .with_transport_factory(TokioWebSocketTransportFactory::new().with_url(sim.url()))
        .with_http_client(NoHttp)
        .with_version((2, 3000, 1_023_868_176))
        .skip_history_sync()
        .build()
        .await
        .expect("build bot");
    let client = bot.client();
    let (tx, events) = mpsc::unbounded_channel();
    client.register_handler(Arc::new(Forward(tx)));
    let handle = bot.run().await.expect("run bot");
    TestBot {
        client,
        handle,
        events,
        _bot: bot,
    }
}

pub fn name(e: &Event) -> String {
    let s = format!("{e:?}");
    s.split(['(', ' ', '{'])
        .next()
        .unwrap_or_default()
        .to_string()
}

impl TestBot {
    /// The next event matching `pred`, skipping others; panics on timeout with what was seen.
    pub async fn wait_event(&mut self, timeout: Duration, pred: impl Fn(&Event) -> bool) -> Event {
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

    /// Names of the events received in the next `window`.
    pub async fn drain_events(&mut self, window: Duration) -> Vec<Event> {
        let mut out = Vec::new();
        let deadline = tokio::time::Instant::now() + window;
        while let Ok(Some(e)) = tokio::time::timeout_at(deadline, self.events.recv()).await {
            out.push(e);
        }
        out
    }

    /// Disconnects and waits for the run loop to end.
    pub async fn stop(self) {
        // wa-rs 0.2.0's `disconnect()` awaits the websocket close handshake with no timeout,
        // and that can hang for good: its read pump and `close()` poll the same split stream,
        // and when the pump reads the server's close reply, `close()` is never woken.
        if tokio::time::timeout(Duration::from_secs(2), self.client.disconnect())
            .await
            .is_err()
        {
            eprintln!("wa-rs Client::disconnect() hung (2 s)");
        }
        let mut handle = self.handle;
        if tokio::time::timeout(Duration::from_secs(5), &mut handle)
            .await
            .is_err()
        {
            handle.abort();
        }
    }
}

/// A fresh bot linked to `phone` through the simulator, after its `Connected`.
pub async fn linked_bot(sim: &WaSim, db: &Path, phone: &str) -> TestBot {
    let mut bot = start_bot(sim, db).await;
    bot.wait_event(Duration::from_secs(10), |e| {
        matches!(e, Event::PairingQrCode { .. })
    })
    .await;
    sim.scan_qr(phone).await;
    bot.wait_event(Duration::from_secs(10), |e| {
        matches!(e, Event::PairSuccess(_))
    })
    .await;
    bot.wait_event(Duration::from_secs(10), |e| {
        matches!(e, Event::Connected(_))
    })
    .await;
    bot
}
