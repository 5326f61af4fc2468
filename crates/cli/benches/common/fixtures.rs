//! The fixtures of the benchmarks: a relay in-process or as `serve` over the fakes of
//! `relay-test-support`, carriers, orders and signed webhooks.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use relay_domain::{CarrierId, Order, OrderFields};
use relay_engine::store::CarrierRecord;
use relay_engine::{Engine, Settings};
use relay_test_support::cloud_api::{self, Received};
use relay_test_support::signing::{camionback_headers, unix_now};
use relay_test_support::{FakeCamionBack, FakeCloudApi, camionback};
use serde_json::json;

pub const SECRET: &str = "bench-webhook-secret";

/// A valid Moroccan mobile number, distinct for each `i` below 10,000,000.
pub fn phone(i: usize) -> String {
    format!("061{i:07}")
}

/// `count` validated carriers as the store keeps them, numbered from 1.
pub fn validated_carriers(count: usize) -> Vec<CarrierRecord> {
    (0..count)
        .map(|i| CarrierRecord {
            id: CarrierId(i as i64 + 1),
            name: format!("Transporteur {i}"),
            phone_raw: phone(i),
            statut: "valide".into(),
        })
        .collect()
}

pub fn relay_env(
    data_dir: &Path,
    api: &FakeCamionBack,
    cloud: &FakeCloudApi,
    throttle_ms: u64,
) -> HashMap<String, String> {
    [
        ("RELAY_DATA_DIR", data_dir.display().to_string()),
        ("RELAY_WEBHOOK_ADDR", "127.0.0.1:0".to_string()),
        ("RELAY_WEBHOOK_SECRET", SECRET.to_string()),
        ("RELAY_THROTTLE_MS", throttle_ms.to_string()),
        ("CAMIONBACK_API_URL", api.url()),
        ("CAMIONBACK_API_TOKEN", camionback::TOKEN.to_string()),
        ("CAMIONBACK_POLL_SECS", "0".to_string()),
        ("RELAY_CHANNEL", "cloud-api".to_string()),
        ("WHATSAPP_API_URL", cloud.url()),
        (
            "WHATSAPP_PHONE_NUMBER_ID",
            cloud_api::PHONE_NUMBER_ID.to_string(),
        ),
        ("WHATSAPP_TOKEN", cloud_api::TOKEN.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

pub async fn start_engine(env: &HashMap<String, String>) -> Engine {
    let settings = Settings::load(|key| env.get(key).cloned()).expect("valid settings");
    Engine::start(settings).await.expect("engine starts")
}

pub async fn fake_api_with_carriers(count: usize, page_size: usize) -> FakeCamionBack {
    let api = FakeCamionBack::start().await;
    for i in 0..count {
        api.add_carrier(
            i as i64 + 1,
            &format!("Transporteur {i}"),
            &phone(i),
            "valide",
        );
    }
    api.set_carriers_page_size(page_size);
    api
}

pub fn order(id: i64) -> Order {
    Order::parse(
        OrderFields {
            id,
            reference: format!("CMD-BENCH-{id}"),
            ville_depart: "Casablanca".into(),
            ville_arrivee: "Marrakech".into(),
            date_souhaitee: "2025-11-03".into(),
            prix: 4500.0,
            type_marchandise: "Palettes".into(),
            statut: Some("ouverte".into()),
            created_at: Some("2025-11-01T08:00:00Z".into()),
        },
        OrderFields::EXAMPLE_TODAY,
    )
    .expect("valid order")
}

pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("HTTP client")
}

/// Posts a signed `order.created` webhook; returns the instant taken just before the POST and
/// how long the relay took to answer.
pub async fn post_order(http: &reqwest::Client, addr: SocketAddr, id: i64) -> (Instant, Duration) {
    let body = serde_json::to_vec(&json!({
        "event": "order.created",
        "order": camionback::order_json(id, &format!("CMD-BENCH-{id}"), "2025-11-01T08:00:00Z"),
    }))
    .expect("JSON");
    let mut request = http
        .post(format!("http://{addr}/webhooks/orders"))
        .header("content-type", "application/json");
    for (name, value) in camionback_headers(SECRET, unix_now(), &body) {
        request = request.header(name, value);
    }
    let request = request.body(body);
    let started = Instant::now();
    let response = request.send().await.expect("webhook POST");
    let answered = started.elapsed();
    let status = response.status();
    if status.as_u16() != 202 {
        let text = response.text().await.unwrap_or_default();
        panic!("webhook for order {id} answered {status}: {text}");
    }
    (started, answered)
}

/// The order a message is about, read from the link `…/commande/<id>` in its text.
pub fn order_of(message: &Received) -> Option<i64> {
    const MARK: &str = "/commande/";
    let text = message.text()?;
    let rest = &text[text.find(MARK)? + MARK.len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// Waits until the fake Cloud API received `count` messages for `order`.
pub async fn wait_messages(
    cloud: &FakeCloudApi,
    order: i64,
    count: usize,
    limit: Duration,
    poll: Duration,
) -> Vec<Received> {
    let deadline = Instant::now() + limit;
    loop {
        let got: Vec<Received> = cloud
            .received()
            .into_iter()
            .filter(|r| order_of(r) == Some(order))
            .collect();
        if got.len() >= count {
            return got;
        }
        if Instant::now() > deadline {
            panic!(
                "order {order}: {} of {count} messages reached the fake Cloud API within {limit:?}",
                got.len()
            );
        }
        tokio::time::sleep(poll).await;
    }
}
