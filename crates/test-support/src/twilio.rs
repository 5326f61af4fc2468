//! A fake of Twilio's Messages API: `POST /2010-04-01/Accounts/{AccountSid}/Messages.json`,
//! form-encoded, HTTP Basic auth. It records every form it received and answers per
//! recipient from a script (Twilio's documented error bodies `{code, message, more_info,
//! status}`), accepting by default with `201` and a `SM…` sid.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use serde_json::json;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

pub const ACCOUNT_SID: &str = "ACtest0000000000000000000000000000";
pub const AUTH_TOKEN: &str = "twilio-auth-token";
pub const FROM: &str = "whatsapp:+212664373534";

/// One scripted answer.
#[derive(Debug, Clone)]
pub enum Reply {
    Accept,
    /// Twilio's error body with this HTTP status.
    Error {
        http: u16,
        code: i64,
        message: String,
    },
    /// Takes the message (it gets a sid, its callbacks can come) but answers `201` with a body
    /// that is not Twilio's JSON (a proxy's page, a cut connection): the relay cannot know the
    /// sid.
    AcceptGarbled,
    /// Takes the message but answers only after this long: past the relay's timeout, the
    /// answer is lost on the way.
    AcceptLate(std::time::Duration),
    /// A bare HTTP status with a non-JSON body (a gateway's page), with `Retry-After` when set.
    Http {
        status: u16,
        retry_after: Option<u64>,
    },
}

impl Reply {
    pub fn error(http: u16, code: i64, message: &str) -> Self {
        Self::Error {
            http,
            code,
            message: message.into(),
        }
    }
}

/// A send as the fake received it.
#[derive(Debug, Clone)]
pub struct Received {
    pub form: Vec<(String, String)>,
    /// The Basic auth user and password.
    pub auth: Option<(String, String)>,
    pub path: String,
    /// The sid the fake answered with, when it accepted.
    pub sid: Option<String>,
}

impl Received {
    pub fn field(&self, name: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct State {
    received: Vec<Received>,
    /// By `To` (`whatsapp:+…`).
    script: HashMap<String, VecDeque<Reply>>,
    /// What the fake accepts as Basic auth.
    credentials: Option<(String, String)>,
}

pub struct FakeTwilio {
    pub server: MockServer,
    state: Arc<Mutex<State>>,
}

struct Messages {
    state: Arc<Mutex<State>>,
    ids: AtomicU64,
}

fn basic_auth(request: &Request) -> Option<(String, String)> {
    let value = request.headers.get("authorization")?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

impl Respond for Messages {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let mut state = self.state.lock().expect("fake state");
        let form: Vec<(String, String)> = url_form(&request.body);
        let auth = basic_auth(request);
        let path = request.url.path().to_string();
        let expected = state
            .credentials
            .clone()
            .unwrap_or((ACCOUNT_SID.into(), AUTH_TOKEN.into()));
        let mut received = Received {
            form: form.clone(),
            auth: auth.clone(),
            path: path.clone(),
            sid: None,
        };
        let answer = if auth.as_ref() != Some(&expected)
            || path != format!("/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json")
        {
            error_body(401, 20003, "Authenticate")
        } else {
            let to = received.field("To").unwrap_or_default().to_string();
            let reply = state
                .script
                .get_mut(&to)
                .and_then(VecDeque::pop_front)
                .unwrap_or(Reply::Accept);
            match reply {
                Reply::Accept => {
                    let sid = format!("SM{:032}", self.ids.fetch_add(1, Ordering::SeqCst));
                    received.sid = Some(sid.clone());
                    ResponseTemplate::new(201).set_body_json(json!({
                        "sid": sid, "status": "queued", "to": to,
                        "account_sid": ACCOUNT_SID, "num_segments": "1",
                    }))
                }
                Reply::AcceptLate(late) => {
                    let sid = format!("SM{:032}", self.ids.fetch_add(1, Ordering::SeqCst));
                    received.sid = Some(sid.clone());
                    ResponseTemplate::new(201)
                        .set_body_json(json!({ "sid": sid, "status": "queued", "to": to }))
                        .set_delay(late)
                }
                Reply::AcceptGarbled => {
                    let sid = format!("SM{:032}", self.ids.fetch_add(1, Ordering::SeqCst));
                    received.sid = Some(sid);
                    ResponseTemplate::new(201)
                        .insert_header("content-type", "text/html")
                        .set_body_string("<html><body>Bad gateway</b")
                }
                Reply::Error {
                    http,
                    code,
                    message,
                } => error_body(http, code, &message),
                Reply::Http {
                    status,
                    retry_after,
                } => {
                    let template = ResponseTemplate::new(status).set_body_string("upstream error");
                    match retry_after {
                        Some(secs) => template.insert_header("Retry-After", secs.to_string()),
                        None => template,
                    }
                }
            }
        };
        state.received.push(received);
        answer
    }
}

fn error_body(http: u16, code: i64, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(http).set_body_json(json!({
        "code": code,
        "message": message,
        "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
        "status": http,
    }))
}

/// `application/x-www-form-urlencoded` pairs, decoded.
pub fn url_form(body: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(body);
    text.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(text: &str) -> String {
    let bytes = text.replace('+', " ").into_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(byte) = u8::from_str_radix(&String::from_utf8_lossy(&bytes[i + 1..i + 3]), 16)
        {
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl FakeTwilio {
    pub async fn start() -> Self {
        let server = MockServer::start().await;
        let state = Arc::new(Mutex::new(State::default()));
        Mock::given(method("POST"))
            .respond_with(Messages {
                state: state.clone(),
                ids: AtomicU64::new(1),
            })
            .mount(&server)
            .await;
        Self { server, state }
    }

    pub fn url(&self) -> String {
        self.server.uri()
    }

    /// From now on, only these Basic auth credentials are accepted (an API key, or a token
    /// that was changed at Twilio).
    pub fn accept_only(&self, user: &str, password: &str) {
        self.state.lock().expect("fake state").credentials =
            Some((user.to_string(), password.to_string()));
    }

    /// The next answers for messages to `to` (`whatsapp:+…`), in order; then it accepts.
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
}
