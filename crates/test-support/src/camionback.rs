//! A fake CamionBack API: `GET /api/orders` and `GET /api/transporteurs`, with a bearer token,
//! orders and carriers the test adds, and switches to make it fail.

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

pub const TOKEN: &str = "cb-test-token";

/// How the fake answers, when it is told to misbehave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outage {
    None,
    /// HTTP 503.
    Down,
    /// HTTP 200 with a body that is not the documented JSON.
    Garbage,
}

#[derive(Default)]
struct State {
    orders: Vec<Value>,
    carriers: Vec<Value>,
    carriers_page_size: usize,
    orders_outage: Option<Outage>,
    carriers_outage: Option<Outage>,
    order_queries: Vec<String>,
    carrier_requests: usize,
}

pub struct FakeCamionBack {
    pub server: MockServer,
    state: Arc<Mutex<State>>,
}

struct Orders(Arc<Mutex<State>>);
struct Carriers(Arc<Mutex<State>>);

fn authorized(request: &Request) -> bool {
    request
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        == Some(&format!("Bearer {TOKEN}"))
}

fn query(request: &Request, name: &str) -> Option<String> {
    request
        .url
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

fn outage(outage: Option<Outage>) -> Option<ResponseTemplate> {
    match outage.unwrap_or(Outage::None) {
        Outage::None => None,
        Outage::Down => Some(ResponseTemplate::new(503).set_body_string("maintenance")),
        Outage::Garbage => Some(ResponseTemplate::new(200).set_body_string("<html>oops</html>")),
    }
}

impl Respond for Orders {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let mut state = self.0.lock().expect("fake state");
        state
            .order_queries
            .push(request.url.query().unwrap_or_default().to_string());
        if !authorized(request) {
            return ResponseTemplate::new(401).set_body_json(json!({"error": "unauthorized"}));
        }
        if let Some(answer) = outage(state.orders_outage) {
            return answer;
        }
        let limit: usize = query(request, "limit")
            .and_then(|l| l.parse().ok())
            .unwrap_or(100);
        let since_id: Option<i64> = query(request, "since_id").and_then(|v| v.parse().ok());
        let created_after = query(request, "created_after");
        let mut orders: Vec<Value> = state
            .orders
            .iter()
            .filter(|o| match (since_id, &created_after) {
                (Some(since), _) => o["id"].as_i64().unwrap_or(0) > since,
                // RFC 3339 UTC strings with the same format compare as text.
                (None, Some(after)) => o["created_at"].as_str().unwrap_or("") > after.as_str(),
                (None, None) => true,
            })
            .cloned()
            .collect();
        orders.sort_by_key(|o| o["id"].as_i64());
        orders.truncate(limit);
        ResponseTemplate::new(200).set_body_json(json!({ "orders": orders }))
    }
}

impl Respond for Carriers {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let mut state = self.0.lock().expect("fake state");
        state.carrier_requests += 1;
        if !authorized(request) {
            return ResponseTemplate::new(401).set_body_json(json!({"error": "unauthorized"}));
        }
        if let Some(answer) = outage(state.carriers_outage) {
            return answer;
        }
        let page: usize = query(request, "page")
            .and_then(|p| p.parse().ok())
            .unwrap_or(1)
            .max(1);
        let size = state.carriers_page_size.max(1);
        let all = &state.carriers;
        let slice: Vec<Value> = all
            .iter()
            .skip((page - 1) * size)
            .take(size)
            .cloned()
            .collect();
        let next = if page * size < all.len() {
            json!(page + 1)
        } else {
            Value::Null
        };
        ResponseTemplate::new(200)
            .set_body_json(json!({ "transporteurs": slice, "next_page": next }))
    }
}

impl FakeCamionBack {
    pub async fn start() -> Self {
        let server = MockServer::start().await;
        let state = Arc::new(Mutex::new(State {
            carriers_page_size: 50,
            ..State::default()
        }));
        Mock::given(method("GET"))
            .and(path("/api/orders"))
            .respond_with(Orders(state.clone()))
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/api/transporteurs"))
            .respond_with(Carriers(state.clone()))
            .mount(&server)
            .await;
        Self { server, state }
    }

    pub fn url(&self) -> String {
        self.server.uri()
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().expect("fake state"))
    }

    /// Adds a carrier as the API lists it.
    pub fn add_carrier(&self, id: i64, nom: &str, telephone: &str, statut: &str) {
        self.with(|s| {
            s.carriers.retain(|c| c["id"] != json!(id));
            s.carriers
                .push(json!({ "id": id, "nom": nom, "telephone": telephone, "statut": statut }));
        });
    }

    pub fn set_carrier_status(&self, id: i64, statut: &str) {
        self.with(|s| {
            for c in s.carriers.iter_mut().filter(|c| c["id"] == json!(id)) {
                c["statut"] = json!(statut);
            }
        });
    }

    pub fn set_carriers_page_size(&self, size: usize) {
        self.with(|s| s.carriers_page_size = size);
    }

    /// Adds an order to `/api/orders`.
    pub fn add_order(&self, order: Value) {
        self.with(|s| s.orders.push(order));
    }

    pub fn set_orders_outage(&self, outage: Outage) {
        self.with(|s| s.orders_outage = Some(outage));
    }

    pub fn set_carriers_outage(&self, outage: Outage) {
        self.with(|s| s.carriers_outage = Some(outage));
    }

    /// The query strings of every `/api/orders` call, in order.
    pub fn order_queries(&self) -> Vec<String> {
        self.with(|s| s.order_queries.clone())
    }

    pub fn carrier_requests(&self) -> usize {
        self.with(|s| s.carrier_requests)
    }
}

/// The desired date of the orders the fakes publish, `YYYY-MM-DD`: three days from today
/// (UTC), inside the relay's date window whatever day the tests run.
pub fn order_date() -> String {
    (chrono::Utc::now().date_naive() + chrono::Days::new(3))
        .format("%Y-%m-%d")
        .to_string()
}

/// `date_souhaitee` of an order as the message writes it (`DD/MM/YYYY`). Read from the order
/// itself, so a test that crosses midnight expects the date it sent.
pub fn french_date(order: &Value) -> String {
    let iso = order["date_souhaitee"].as_str().unwrap_or_default();
    match chrono::NaiveDate::parse_from_str(iso, "%Y-%m-%d") {
        Ok(date) => date.format("%d/%m/%Y").to_string(),
        Err(_) => iso.to_string(),
    }
}

/// An order as CamionBack publishes it.
pub fn order_json(id: i64, reference: &str, created_at: &str) -> Value {
    json!({
        "id": id,
        "reference": reference,
        "ville_depart": "Casablanca",
        "ville_arrivee": "Marrakech",
        "date_souhaitee": order_date(),
        "prix": 4500,
        "type_marchandise": "Palettes",
        "statut": "ouverte",
        "created_at": created_at,
    })
}
