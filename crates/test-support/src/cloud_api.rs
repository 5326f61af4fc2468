//! A fake WhatsApp Cloud API: `POST /{version}/{phone-number-id}/messages` with a bearer token.
//! It records every message with the instant it arrived (to measure the throttle) and answers
//! per recipient from a script (Meta's documented error bodies), accepting by default. It also
//! writes the status notifications Meta would post for the messages it took
//! ([`FakeCloudApi::status_notification`]), echoing each send's `biz_opaque_callback_data` as
//! Meta does.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

pub const TOKEN: &str = "meta-test-token";
pub const PHONE_NUMBER_ID: &str = "106540352242922";

/// One scripted answer.
#[derive(Debug, Clone)]
pub enum Reply {
    Accept,
    /// Meta's error body `{"error":{"code":..,"message":..}}` with this HTTP status.
    MetaError {
        http: u16,
        code: i64,
        message: String,
    },
    /// A bare HTTP status with a non-JSON body.
    Http(u16),
    /// Takes the message (it will be delivered, its statuses will come) but answers only after
    /// this long: past the relay's timeout, the answer is lost on the way.
    AcceptLate(Duration),
    /// Takes the message, then answers 200 with a body that is not Meta's JSON (a proxy's
    /// page, a cut connection): the relay cannot know the id.
    AcceptGarbled,
}

impl Reply {
    pub fn meta(http: u16, code: i64, message: &str) -> Self {
        Self::MetaError {
            http,
            code,
            message: message.into(),
        }
    }
}

/// A message as the fake received it.
#[derive(Debug, Clone)]
pub struct Received {
    /// Digits, as sent in `to`.
    pub to: String,
    pub body: Value,
    pub at: Instant,
    /// The id the fake answered with, when it accepted.
    pub message_id: Option<String>,
}

impl Received {
    /// The text of a `text` message.
    pub fn text(&self) -> Option<&str> {
        self.body["text"]["body"].as_str()
    }
}

#[derive(Default)]
struct State {
    received: Vec<Received>,
    script: HashMap<String, VecDeque<Reply>>,
    rejected_auth: usize,
}

pub struct FakeCloudApi {
    pub server: MockServer,
    state: Arc<Mutex<State>>,
}

struct Messages {
    state: Arc<Mutex<State>>,
    ids: AtomicU64,
    delay: Duration,
}

impl Respond for Messages {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let at = Instant::now();
        let mut state = self.state.lock().expect("fake state");
        let authorized = request
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            == Some(&format!("Bearer {TOKEN}"));
        if !authorized
            || !request
                .url
                .path()
                .ends_with(&format!("/{PHONE_NUMBER_ID}/messages"))
        {
            state.rejected_auth += 1;
            return ResponseTemplate::new(401).set_body_json(json!({
                "error": { "message": "Invalid OAuth access token", "type": "OAuthException", "code": 190 }
            }));
        }
        let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
        let to = body["to"].as_str().unwrap_or_default().to_string();
        let reply = state
            .script
            .get_mut(&to)
            .and_then(VecDeque::pop_front)
            .unwrap_or(Reply::Accept);
        let mut delay = self.delay;
        let (template, message_id, status) = match reply {
            Reply::Accept | Reply::AcceptLate(_) => {
                if let Reply::AcceptLate(late) = reply {
                    delay = late;
                }
                let id = format!("wamid.TEST{}", self.ids.fetch_add(1, Ordering::SeqCst));
                (
                    ResponseTemplate::new(200).set_body_json(json!({
                        "messaging_product": "whatsapp",
                        "contacts": [{ "input": to, "wa_id": to }],
                        "messages": [{ "id": id }],
                    })),
                    Some(id),
                    200,
                )
            }
            Reply::AcceptGarbled => {
                let id = format!("wamid.TEST{}", self.ids.fetch_add(1, Ordering::SeqCst));
                (
                    ResponseTemplate::new(200)
                        .insert_header("content-type", "text/html")
                        .set_body_string("<html><body>Bad gateway</b"),
                    Some(id),
                    200,
                )
            }
            Reply::MetaError { http, code, message } => (
                ResponseTemplate::new(http).set_body_json(json!({
                    "error": { "message": message, "type": "OAuthException", "code": code,
                               "error_data": { "messaging_product": "whatsapp", "details": message },
                               "fbtrace_id": "Atest" }
                })),
                None,
                http,
            ),
            Reply::Http(status) => (
                ResponseTemplate::new(status).set_body_string("upstream error"),
                None,
                status,
            ),
        };
        // Like many HTTP front ends, the fake says when to come back after a 429 or a 5xx.
        let template = if status == 429 || status >= 500 {
            template.insert_header("Retry-After", "1")
        } else {
            template
        };
        state.received.push(Received {
            to,
            body,
            at,
            message_id,
        });
        // Even a zero delay goes through a timer tick: only ask for one when wanted.
        if delay.is_zero() {
            template
        } else {
            template.set_delay(delay)
        }
    }
}

impl FakeCloudApi {
    pub async fn start() -> Self {
        Self::start_with_delay(Duration::ZERO).await
    }

    /// Every answer takes `delay`: a slow network, or a window for a crash in mid-send.
    pub async fn start_with_delay(delay: Duration) -> Self {
        Self::serve(MockServer::start().await, delay).await
    }

    /// Serves on `listener`: a port the relay was pointed at while nothing listened there
    /// (connection refused) starts answering.
    pub async fn start_on(listener: std::net::TcpListener) -> Self {
        Self::serve(
            MockServer::builder().listener(listener).start().await,
            Duration::ZERO,
        )
        .await
    }

    async fn serve(server: MockServer, delay: Duration) -> Self {
        let state = Arc::new(Mutex::new(State::default()));
        Mock::given(method("POST"))
            .respond_with(Messages {
                state: state.clone(),
                ids: AtomicU64::new(1),
                delay,
            })
            .mount(&server)
            .await;
        Self { server, state }
    }

    pub fn url(&self) -> String {
        self.server.uri()
    }

    /// The next answers for messages to `to` (digits), in order; then it accepts.
    pub fn script(&self, to: &str, replies: Vec<Reply>) {
        self.state
            .lock()
            .expect("fake state")
            .script
            .insert(to.to_string(), replies.into());
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.lock().expect("fake state").received.clone()
    }

    /// Messages accepted (answered with an id), by recipient.
    pub fn accepted_to(&self, to: &str) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.to == to && r.message_id.is_some())
            .collect()
    }

    pub fn rejected_auth(&self) -> usize {
        self.state.lock().expect("fake state").rejected_auth
    }

    /// The notification Meta posts to the subscribed webhook when the messages it took change
    /// status (`sent`, `delivered`, `read`, `failed`): each status names the message id and the
    /// recipient and, as Meta's documentation says, echoes the `biz_opaque_callback_data` the
    /// send carried (absent when the send had none). Sign it with the app secret to post it.
    pub fn status_notification(&self, statuses: &[(&Received, &str)]) -> Value {
        let statuses: Vec<Value> = statuses
            .iter()
            .map(|(received, status)| {
                let mut item = json!({
                    "id": received.message_id.as_deref().expect("a message the fake took"),
                    "status": status,
                    "timestamp": "1700000000",
                    "recipient_id": received.to,
                });
                if let Some(tag) = received.body.get("biz_opaque_callback_data") {
                    item["biz_opaque_callback_data"] = tag.clone();
                }
                if *status == "failed" {
                    item["errors"] = json!([{ "code": 131026, "title": "Message undeliverable",
                                              "message": "Message undeliverable" }]);
                }
                item
            })
            .collect();
        json!({
            "object": "whatsapp_business_account",
            "entry": [{ "id": "WABA", "changes": [{ "field": "messages", "value": {
                "messaging_product": "whatsapp",
                "metadata": { "display_phone_number": "212600000000",
                              "phone_number_id": PHONE_NUMBER_ID },
                "statuses": statuses } }] }]
        })
    }
}
