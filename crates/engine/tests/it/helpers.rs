//! The world an engine test runs in: a data directory, fakes of the CamionBack API and of the
//! Cloud API, a relay started over them, and waits on events.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use relay_domain::DeliveryStatus;
use relay_engine::store::{HistoryFilter, HistoryRow};
use relay_engine::{Engine, Settings, Store};
use relay_test_support::signing::{camionback_headers, unix_now};
use relay_test_support::{FakeCamionBack, FakeCloudApi, camionback, cloud_api};
use serde_json::{Value, json};
use tempfile::TempDir;

pub const WEBHOOK_SECRET: &str = "whsec-test";
pub const APP_SECRET: &str = "meta-app-secret";
pub const VERIFY_TOKEN: &str = "verify-me";

pub struct TestApp {
    pub engine: Option<Engine>,
    pub dir: TempDir,
    pub camionback: FakeCamionBack,
    pub cloud: FakeCloudApi,
    pub http: reqwest::Client,
    pub overrides: Vec<(String, String)>,
}

/// The settings a test relay runs with: fakes everywhere, a fast throttle, no polling unless a
/// test turns it on.
pub fn settings_for(
    dir: &TempDir,
    camionback: &FakeCamionBack,
    cloud: &FakeCloudApi,
    overrides: &[(String, String)],
) -> Settings {
    let env = env_for(dir, camionback, cloud, overrides);
    Settings::load(|key| env.get(key).cloned()).expect("test settings are valid")
}

/// The environment a test relay runs in (see [`settings_for`]).
pub fn env_for(
    dir: &TempDir,
    camionback: &FakeCamionBack,
    cloud: &FakeCloudApi,
    overrides: &[(String, String)],
) -> HashMap<String, String> {
    let mut env: HashMap<String, String> = [
        ("RELAY_DATA_DIR", dir.path().display().to_string()),
        ("RELAY_WEBHOOK_ADDR", "127.0.0.1:0".into()),
        ("RELAY_WEBHOOK_SECRET", WEBHOOK_SECRET.into()),
        ("RELAY_THROTTLE_MS", "20".into()),
        ("CAMIONBACK_API_URL", camionback.url()),
        ("CAMIONBACK_API_TOKEN", camionback::TOKEN.into()),
        ("CAMIONBACK_POLL_SECS", "0".into()),
        ("RELAY_CHANNEL", "cloud-api".into()),
        ("WHATSAPP_API_URL", cloud.url()),
        (
            "WHATSAPP_PHONE_NUMBER_ID",
            cloud_api::PHONE_NUMBER_ID.into(),
        ),
        ("WHATSAPP_TOKEN", cloud_api::TOKEN.into()),
        ("WHATSAPP_APP_SECRET", APP_SECRET.into()),
        ("WHATSAPP_VERIFY_TOKEN", VERIFY_TOKEN.into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    for (k, v) in overrides {
        env.insert(k.clone(), v.clone());
    }
    env
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

/// Starts a relay after the carriers given by `setup` exist at the fake API.
pub async fn spawn_app_with(overrides: &[(&str, &str)]) -> TestApp {
    let app = world(overrides).await;
    app.start().await
}

/// The fakes and the data directory, with no relay running yet.
pub async fn world(overrides: &[(&str, &str)]) -> TestApp {
    TestApp {
        engine: None,
        dir: tempfile::tempdir().expect("tempdir"),
        camionback: FakeCamionBack::start().await,
        cloud: FakeCloudApi::start().await,
        http: reqwest::Client::new(),
        overrides: overrides
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

impl TestApp {
    pub async fn start(self) -> Self {
        self.start_with(|_| {}).await
    }

    /// Starts the relay with settings no environment variable gives: a shorter busy timeout,
    /// a disk that can fill up.
    pub async fn start_with(mut self, adjust: impl FnOnce(&mut Settings)) -> Self {
        let mut settings = settings_for(&self.dir, &self.camionback, &self.cloud, &self.overrides);
        adjust(&mut settings);
        self.engine = Some(Engine::start(settings).await.expect("engine starts"));
        self
    }

    /// `GET /healthz`: status code and body.
    pub async fn health(&self) -> (u16, Value) {
        let response = self
            .http
            .get(self.url("/healthz"))
            .send()
            .await
            .expect("healthz");
        let status = response.status().as_u16();
        (status, response.json().await.expect("healthz json"))
    }

    /// Signs `notification` with the app secret and posts it as Meta posts status reports.
    pub async fn post_status_notification(&self, notification: &Value) -> reqwest::Response {
        let body = serde_json::to_vec(notification).expect("json");
        self.http
            .post(self.url("/webhooks/whatsapp"))
            .header("content-type", "application/json")
            .header(
                "X-Hub-Signature-256",
                relay_test_support::signing::hmac_sha256_header(APP_SECRET, &body),
            )
            .body(body)
            .send()
            .await
            .expect("status webhook")
    }

    pub async fn stop(&mut self) {
        if let Some(engine) = self.engine.take() {
            engine.shutdown().await;
        }
    }

    pub fn engine(&self) -> &Engine {
        self.engine.as_ref().expect("relay running")
    }

    pub fn store(&self) -> &Store {
        self.engine().store()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.engine().addr())
    }

    /// Posts a raw body to the order webhook with the given headers.
    pub async fn post_order_raw(
        &self,
        body: Vec<u8>,
        headers: &[(String, String)],
    ) -> reqwest::Response {
        let mut request = self
            .http
            .post(self.url("/webhooks/orders"))
            .header("content-type", "application/json")
            .body(body);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        request.send().await.expect("webhook request")
    }

    /// Posts an `order.created` webhook, signed as CamionBack signs it.
    pub async fn post_order(&self, order: Value) -> reqwest::Response {
        let body =
            serde_json::to_vec(&json!({ "event": "order.created", "order": order })).expect("json");
        let headers = camionback_headers(WEBHOOK_SECRET, unix_now(), &body);
        self.post_order_raw(body, &headers).await
    }

    /// The Prometheus text of `/metrics`.
    pub async fn metrics(&self) -> String {
        self.http
            .get(self.url("/metrics"))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("metrics text")
    }

    pub async fn history(&self, filter: HistoryFilter) -> Vec<HistoryRow> {
        self.store().history(&filter).await.expect("history")
    }

    pub async fn deliveries_of(&self, order_id: i64) -> Vec<HistoryRow> {
        let mut rows = self
            .history(HistoryFilter {
                order: Some(relay_domain::OrderId(order_id)),
                limit: 100_000,
                ..HistoryFilter::default()
            })
            .await;
        rows.reverse();
        rows
    }

    /// Waits until no delivery of the order is queued or sending any more.
    pub async fn wait_for_broadcast(&self, order_id: i64) -> Vec<HistoryRow> {
        eventually(Duration::from_secs(20), || async {
            let rows = self.deliveries_of(order_id).await;
            let done = !rows.is_empty() && rows.iter().all(|r| !r.status.is_pending());
            done.then_some(rows)
        })
        .await
    }
}

/// Polls `check` until it returns `Some`, failing the test after `limit`.
pub async fn eventually<T, F, Fut>(limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not met within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// An order as CamionBack sends it, created now.
pub fn order(id: i64) -> Value {
    camionback::order_json(
        id,
        &format!("CMD-2025-{id}"),
        &chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    )
}

pub fn status_of(row: &HistoryRow) -> DeliveryStatus {
    row.status
}

/// Three validated carriers, one blocked, one pending.
pub fn add_usual_carriers(camionback: &FakeCamionBack) {
    camionback.add_carrier(1, "Transports Atlas", "0612345601", "valide");
    camionback.add_carrier(2, "Rif Logistique", "+212 6 12 34 56 02", "Validé");
    camionback.add_carrier(3, "Souss Fret", "212612345603", "actif");
    camionback.add_carrier(4, "Bloqué SARL", "0612345604", "bloqué");
    camionback.add_carrier(5, "En Attente SA", "0612345605", "en_attente");
}
