//! A fake CamionBack API: `GET /api/orders`, `GET /api/orders/{id}` and `GET /api/transporteurs`,
//! with a bearer token, orders and carriers the test adds, and switches to make it fail; and
//! `POST /api/orders/{id}/reponses`, the carriers' replies the relay forwards, each post
//! recorded with its headers and body, answered 201 or as the test tells it to.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use wiremock::matchers::{method, path, path_regex};
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
    /// HTTP 200 with the documented JSON (an empty list) padded to this many bytes.
    Huge(usize),
}

#[derive(Default)]
struct State {
    orders: Vec<Value>,
    carriers: Vec<Value>,
    carriers_page_size: usize,
    orders_outage: Option<Outage>,
    carriers_outage: Option<Outage>,
    /// Answers `since_id` as if it were not there (an API that ignores it).
    ignores_since_id: bool,
    orders_delay: Option<Duration>,
    carriers_delay: Option<Duration>,
    order_queries: Vec<String>,
    carrier_requests: usize,
    reply_posts: Vec<ReplyPost>,
    /// What `POST …/reponses` answers instead of 201, while set.
    replies_status: Option<u16>,
}

/// One `POST /api/orders/{id}/reponses` as the fake received it.
#[derive(Debug, Clone)]
pub struct ReplyPost {
    pub order_id: i64,
    pub idempotency_key: Option<String>,
    /// The bearer token was ours.
    pub authorized: bool,
    pub body: Value,
    /// What the fake answered.
    pub answered: u16,
}

impl ReplyPost {
    pub fn accepted(&self) -> bool {
        (200..300).contains(&self.answered)
    }
}

struct Replies(Arc<Mutex<State>>);

impl Respond for Replies {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let mut state = self.0.lock().expect("fake state");
        let order_id = request
            .url
            .path()
            .trim_start_matches("/api/orders/")
            .trim_end_matches("/reponses")
            .parse()
            .unwrap_or(0);
        let authorized = authorized(request);
        let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
        let answered = match (authorized, state.replies_status) {
            (false, _) => 401,
            (true, Some(status)) => status,
            (true, None) => 201,
        };
        state.reply_posts.push(ReplyPost {
            order_id,
            idempotency_key: request
                .headers
                .get("idempotency-key")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            authorized,
            body,
            answered,
        });
        match answered {
            201 => ResponseTemplate::new(201).set_body_json(json!({ "status": "recorded" })),
            400 => ResponseTemplate::new(400)
                .set_body_json(json!({ "error": "transporteur inconnu pour cette commande" })),
            status => ResponseTemplate::new(status).set_body_string("indisponible"),
        }
    }
}

pub struct FakeCamionBack {
    pub server: MockServer,
    state: Arc<Mutex<State>>,
    lookups: Arc<Mutex<Lookups>>,
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

fn outage(outage: Option<Outage>, list: &str) -> Option<ResponseTemplate> {
    match outage.unwrap_or(Outage::None) {
        Outage::None => None,
        Outage::Down => Some(ResponseTemplate::new(503).set_body_string("maintenance")),
        Outage::Garbage => Some(ResponseTemplate::new(200).set_body_string("<html>oops</html>")),
        Outage::Huge(bytes) => {
            let head = format!(r#"{{"{list}":[],"padding":""#);
            let mut body = head.into_bytes();
            body.resize(bytes.saturating_sub(2).max(body.len()), b'x');
            body.extend_from_slice(br#""}"#);
            Some(ResponseTemplate::new(200).set_body_raw(body, "application/json"))
        }
    }
}

/// Holds the answer back when the test asked for a slow API.
fn delayed(answer: ResponseTemplate, delay: Option<Duration>) -> ResponseTemplate {
    match delay {
        Some(delay) => answer.set_delay(delay),
        None => answer,
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
        if let Some(answer) = outage(state.orders_outage, "orders") {
            return delayed(answer, state.orders_delay);
        }
        let limit: usize = query(request, "limit")
            .and_then(|l| l.parse().ok())
            .unwrap_or(100);
        let since_id: Option<i64> = query(request, "since_id")
            .and_then(|v| v.parse().ok())
            .filter(|_| !state.ignores_since_id);
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
        delayed(
            ResponseTemplate::new(200).set_body_json(json!({ "orders": orders })),
            state.orders_delay,
        )
    }
}

impl Respond for Carriers {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let mut state = self.0.lock().expect("fake state");
        state.carrier_requests += 1;
        if !authorized(request) {
            return ResponseTemplate::new(401).set_body_json(json!({"error": "unauthorized"}));
        }
        if let Some(answer) = outage(state.carriers_outage, "transporteurs") {
            return delayed(answer, state.carriers_delay);
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
        delayed(
            ResponseTemplate::new(200)
                .set_body_json(json!({ "transporteurs": slice, "next_page": next })),
            state.carriers_delay,
        )
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
        Mock::given(method("POST"))
            .and(path_regex(r"^/api/orders/[0-9]+/reponses$"))
            .respond_with(Replies(state.clone()))
            .mount(&server)
            .await;
        let lookups = mount_order_lookup(&server, state.clone()).await;
        Self {
            server,
            state,
            lookups,
        }
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

    /// Adds many carriers at once, each with an id not listed yet (a large list, quickly).
    pub fn add_new_carriers(&self, carriers: impl IntoIterator<Item = (i64, String, String)>) {
        self.with(|s| {
            s.carriers.extend(carriers.into_iter().map(|(id, nom, telephone)| {
                json!({ "id": id, "nom": nom, "telephone": telephone, "statut": "valide" })
            }));
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

    /// From now on `since_id` is ignored: every poll gets the first orders again.
    pub fn ignore_since_id(&self) {
        self.with(|s| s.ignores_since_id = true);
    }

    /// Every `/api/orders` answer from now on is held back this long (a slow or hung API).
    pub fn set_orders_delay(&self, delay: Duration) {
        self.with(|s| s.orders_delay = Some(delay));
    }

    /// Every `/api/transporteurs` answer from now on is held back this long.
    pub fn set_carriers_delay(&self, delay: Duration) {
        self.with(|s| s.carriers_delay = Some(delay));
    }

    /// The query strings of every `/api/orders` call, in order.
    pub fn order_queries(&self) -> Vec<String> {
        self.with(|s| s.order_queries.clone())
    }

    pub fn carrier_requests(&self) -> usize {
        self.with(|s| s.carrier_requests)
    }

    /// From now on `POST …/reponses` answers `status` (503: down; 400: refused); `None`:
    /// 201 again.
    pub fn set_replies_status(&self, status: Option<u16>) {
        self.with(|s| s.replies_status = status);
    }

    /// Every reply post, in order, whatever it was answered.
    pub fn reply_posts(&self) -> Vec<ReplyPost> {
        self.with(|s| s.reply_posts.clone())
    }

    /// The reply posts answered 2xx.
    pub fn accepted_replies(&self) -> Vec<ReplyPost> {
        self.with(|s| {
            s.reply_posts
                .iter()
                .filter(|p| p.accepted())
                .cloned()
                .collect()
        })
    }
}

/// What `GET /api/orders/{id}` answers for one order, when a test set it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Lookup {
    /// `{"order":{…}}` with this `statut` (`None`: the field left out).
    Statut(Option<String>),
    /// `404`: CamionBack does not know the order (any more).
    Missing,
}

/// `GET /api/orders/{id}`: each order's answer, a switch to make it fail, and the ids asked.
#[derive(Default)]
struct Lookups {
    answers: std::collections::HashMap<i64, Lookup>,
    outage: Option<Outage>,
    asked: Vec<i64>,
}

struct OrderLookup {
    orders: Arc<Mutex<State>>,
    lookups: Arc<Mutex<Lookups>>,
}

impl Respond for OrderLookup {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let mut lookups = self.lookups.lock().expect("fake lookups");
        let Some(id) = request
            .url
            .path()
            .rsplit('/')
            .next()
            .and_then(|id| id.parse::<i64>().ok())
        else {
            return ResponseTemplate::new(404);
        };
        lookups.asked.push(id);
        if !authorized(request) {
            return ResponseTemplate::new(401).set_body_json(json!({"error": "unauthorized"}));
        }
        if let Some(answer) = outage(lookups.outage, "order") {
            return answer;
        }
        // An order the test added is answered as listed, with the statut a test set on top.
        let listed = self
            .orders
            .lock()
            .expect("fake state")
            .orders
            .iter()
            .find(|o| o["id"] == json!(id))
            .cloned();
        let not_found =
            || ResponseTemplate::new(404).set_body_json(json!({"error": "commande introuvable"}));
        let mut order = match (lookups.answers.get(&id), listed) {
            (Some(Lookup::Missing), _) | (None, None) => return not_found(),
            (_, Some(order)) => order,
            (Some(Lookup::Statut(_)), None) => json!({ "id": id }),
        };
        match lookups.answers.get(&id) {
            Some(Lookup::Statut(Some(statut))) => order["statut"] = json!(statut),
            Some(Lookup::Statut(None)) => {
                if let Some(fields) = order.as_object_mut() {
                    fields.remove("statut");
                }
            }
            Some(Lookup::Missing) | None => {}
        }
        ResponseTemplate::new(200).set_body_json(json!({ "order": order }))
    }
}

async fn mount_order_lookup(server: &MockServer, orders: Arc<Mutex<State>>) -> Arc<Mutex<Lookups>> {
    let lookups = Arc::new(Mutex::new(Lookups::default()));
    Mock::given(method("GET"))
        .and(path_regex(r"^/api/orders/[^/]+$"))
        .respond_with(OrderLookup {
            orders,
            lookups: lookups.clone(),
        })
        .mount(server)
        .await;
    lookups
}

impl FakeCamionBack {
    /// From now on `GET /api/orders/{id}` answers this `statut` for the order (`None`: no
    /// `statut` field, an open order), whether or not it is listed in `/api/orders`.
    pub fn set_order_statut(&self, id: i64, statut: Option<&str>) {
        self.lookups
            .lock()
            .expect("fake lookups")
            .answers
            .insert(id, Lookup::Statut(statut.map(str::to_string)));
    }

    /// From now on `GET /api/orders/{id}` answers `404` for the order.
    pub fn forget_order(&self, id: i64) {
        self.lookups
            .lock()
            .expect("fake lookups")
            .answers
            .insert(id, Lookup::Missing);
    }

    /// Makes every `GET /api/orders/{id}` fail this way (`Outage::None` to heal it).
    pub fn set_order_lookup_outage(&self, outage: Outage) {
        self.lookups.lock().expect("fake lookups").outage = Some(outage);
    }

    /// The ids asked through `GET /api/orders/{id}`, in order.
    pub fn order_lookups(&self) -> Vec<i64> {
        self.lookups.lock().expect("fake lookups").asked.clone()
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

/// A CamionBack API whose every answer is `200` with a body that never ends (chunked, no
/// length): a runaway carrier list. The relay must stop reading it at its cap.
pub struct EndlessApi {
    addr: std::net::SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl EndlessApi {
    pub async fn start() -> Self {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the endless API");
        let addr = listener.local_addr().expect("local addr");
        let task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    // The request head, then an answer that goes on until the client hangs up.
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let start = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
                    if stream.write_all(start).await.is_err() {
                        return;
                    }
                    let carrier = r#"{"id":1,"nom":"Transporteur","telephone":"0612345678","statut":"valide"},"#;
                    let mut chunk = String::from(r#"{"transporteurs":["#);
                    while chunk.len() < 64 * 1024 {
                        chunk.push_str(carrier);
                    }
                    loop {
                        let frame = format!("{:x}\r\n{chunk}\r\n", chunk.len());
                        if stream.write_all(frame.as_bytes()).await.is_err() {
                            return;
                        }
                        chunk.clear();
                        while chunk.len() < 64 * 1024 {
                            chunk.push_str(carrier);
                        }
                    }
                });
            }
        });
        Self { addr, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for EndlessApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}
