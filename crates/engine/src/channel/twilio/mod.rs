//! Twilio's WhatsApp API: `POST {TWILIO_API_URL}/2010-04-01/Accounts/{AccountSid}/Messages.json`,
//! form-encoded with HTTP Basic auth, and Twilio's error codes mapped to delivery outcomes.
//!
//! The rules of doubt are the Cloud API's: a send is retried only when the answer proves
//! Twilio did not take the message (the connection never opened, or Twilio's own JSON error
//! says so). A timeout once the request may have been written, a cut or unreadable 2xx, a
//! gateway's bare 500/502/504 are `SendError::Uncertain`: a retry could give the carrier a
//! second copy. Each send asks for its status callbacks at
//! `{RELAY_PUBLIC_URL}/webhooks/twilio/status?delivery={id}`: the query names the delivery, as
//! Meta's `biz_opaque_callback_data` does, so a callback can settle a delivery whose answer was
//! lost (`webhook`).

pub mod webhook;

use std::time::Duration;

use async_trait::async_trait;
use relay_domain::DeliveryStatus;
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

use super::{
    Accepted, Channel, OutgoingMessage, ProviderNames, SendError, describe_transport_error,
    request_error,
};
use crate::config::TwilioSettings;

// reqwest's messages never carry the Basic auth header; the URL holds no secret.
const TWILIO: ProviderNames = ProviderNames {
    api: "API Twilio",
    from: "de Twilio",
    to: "vers Twilio",
};

/// The path Twilio posts status callbacks to.
pub const STATUS_PATH: &str = "/webhooks/twilio/status";
/// The path Twilio posts carriers' messages to (set on the number in Twilio's console).
pub const INCOMING_PATH: &str = "/webhooks/twilio/incoming";
/// The query parameter of the status callback URL that names the delivery.
pub const DELIVERY_PARAM: &str = "delivery";

#[derive(Debug, thiserror::Error)]
pub enum TwilioConfigError {
    #[error("RELAY_CHANNEL=twilio demande {0}")]
    Missing(&'static str),
    #[error("RELAY_CHANNEL=twilio demande TWILIO_FROM ou TWILIO_MESSAGING_SERVICE_SID")]
    NoSender,
    #[error("TWILIO_API_KEY_SID et TWILIO_API_KEY_SECRET vont ensemble : définissez les deux")]
    HalfApiKey,
    #[error("TWILIO_FROM : « {0} » n'est pas un numéro WhatsApp (attendu : whatsapp:+212…)")]
    BadFrom(String),
    #[error("client HTTP : {0}")]
    Http(#[from] reqwest::Error),
    #[error("TWILIO_API_URL : {0}")]
    Url(#[from] url::ParseError),
}

/// Who sends: a number or a Messaging Service.
#[derive(Debug, Clone)]
enum Sender {
    From(String),
    Service(String),
}

pub struct Twilio {
    http: reqwest::Client,
    endpoint: Url,
    /// Basic auth: the account (or API key) SID and its secret.
    user: String,
    password: SecretString,
    sender: Sender,
    content_sid: Option<String>,
    /// Where status callbacks are asked for; none without `RELAY_PUBLIC_URL`.
    status_callback: Option<Url>,
}

impl Twilio {
    pub fn new(
        settings: &TwilioSettings,
        public_url: Option<&Url>,
        timeout: Duration,
    ) -> Result<Self, TwilioConfigError> {
        let account_sid = settings
            .account_sid
            .as_deref()
            .ok_or(TwilioConfigError::Missing("TWILIO_ACCOUNT_SID"))?;
        // Needed even with an API key: it is what signs Twilio's callbacks.
        let auth_token = settings
            .auth_token
            .clone()
            .ok_or(TwilioConfigError::Missing("TWILIO_AUTH_TOKEN"))?;
        let (user, password) = match (&settings.api_key_sid, &settings.api_key_secret) {
            (Some(sid), Some(secret)) => (sid.clone(), secret.clone()),
            (None, None) => (account_sid.to_string(), auth_token),
            _ => return Err(TwilioConfigError::HalfApiKey),
        };
        let sender = match (&settings.from, &settings.messaging_service_sid) {
            (_, Some(service)) => Sender::Service(service.clone()),
            (Some(from), None) => Sender::From(whatsapp_address(from)?),
            (None, None) => return Err(TwilioConfigError::NoSender),
        };
        let mut base = settings.api_url.clone();
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        let endpoint = base.join(&format!("2010-04-01/Accounts/{account_sid}/Messages.json"))?;
        let status_callback = public_url.map(|url| callback_url(url, STATUS_PATH));
        Ok(Self {
            http: reqwest::Client::builder()
                .timeout(timeout)
                // Shorter than the whole timeout, so a connection that never opens fails as a
                // connect error (nothing was written: retried), not as an uncertain timeout.
                .connect_timeout(CONNECT_TIMEOUT.min(timeout / 2))
                .build()?,
            endpoint,
            user,
            password,
            sender,
            content_sid: settings.content_sid.clone(),
            status_callback,
        })
    }

    /// Whether status callbacks are asked for (`RELAY_PUBLIC_URL` set).
    pub fn has_callbacks(&self) -> bool {
        self.status_callback.is_some()
    }

    /// The form of one send, in the order Twilio documents it.
    fn form(&self, message: &OutgoingMessage<'_>) -> Vec<(&'static str, String)> {
        let mut form = vec![("To", format!("whatsapp:{}", message.to.e164()))];
        match &self.sender {
            Sender::From(from) => form.push(("From", from.clone())),
            Sender::Service(sid) => form.push(("MessagingServiceSid", sid.clone())),
        }
        match &self.content_sid {
            None => form.push(("Body", message.text.to_string())),
            Some(sid) => {
                form.push(("ContentSid", sid.clone()));
                form.push(("ContentVariables", content_variables(message)));
            }
        }
        if let Some(callback) = &self.status_callback {
            let mut callback = callback.clone();
            callback
                .query_pairs_mut()
                .append_pair(DELIVERY_PARAM, &message.delivery_id.to_string());
            form.push(("StatusCallback", callback.to_string()));
        }
        form
    }
}

/// `{"1": ville_depart, …, "6": lien_commande}`: the Content template's variables.
fn content_variables(message: &OutgoingMessage<'_>) -> String {
    let map: serde_json::Map<String, serde_json::Value> = message
        .fields
        .template_parameters()
        .iter()
        .enumerate()
        .map(|(i, value)| ((i + 1).to_string(), serde_json::Value::from(*value)))
        .collect();
    serde_json::Value::Object(map).to_string()
}

/// `whatsapp:+<digits>` from `TWILIO_FROM` as staff wrote it.
fn whatsapp_address(from: &str) -> Result<String, TwilioConfigError> {
    let number = from.trim();
    let number = number.strip_prefix("whatsapp:").unwrap_or(number).trim();
    let digits = number.strip_prefix('+').unwrap_or(number);
    if digits.len() < 6 || !digits.chars().all(|c| c.is_ascii_digit()) {
        return Err(TwilioConfigError::BadFrom(from.to_string()));
    }
    Ok(format!("whatsapp:+{digits}"))
}

/// `public` (a base URL, perhaps with a path prefix behind a proxy) followed by `path`.
pub fn callback_url(public: &Url, path: &str) -> Url {
    let mut url = public.clone();
    let base = url.path().trim_end_matches('/').to_string();
    url.set_path(&format!("{base}{path}"));
    url.set_query(None);
    url.set_fragment(None);
    url
}

#[derive(Deserialize)]
struct SendAnswer {
    sid: String,
}

#[derive(Deserialize)]
struct TwilioError {
    #[serde(default)]
    code: Option<i64>,
    #[serde(default)]
    message: Option<String>,
}

/// The longest a connection may take to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long to wait before retrying after a rate limit when Twilio does not say.
const RATE_LIMIT_PAUSE: Duration = Duration::from_secs(60);
/// How long the account pauses when Twilio refuses our credentials.
const AUTH_PAUSE: Duration = Duration::from_secs(300);

/// Maps one of Twilio's error answers to what the dispatcher does with the delivery.
pub fn classify(
    http: StatusCode,
    code: Option<i64>,
    text: String,
    retry_after: Option<Duration>,
) -> SendError {
    let code_text = code.map(|c| c.to_string());
    let reason = match code {
        Some(c) => format!("{c} : {text}"),
        None => format!("HTTP {} : {text}", http.as_u16()),
    };
    let permanent = |status, reason| SendError::Permanent {
        status,
        reason,
        code: code_text.clone(),
    };
    match code {
        // Bad credentials: no delivery can go out until someone fixes the settings.
        Some(20003) => SendError::Unavailable {
            reason: format!("accès refusé par Twilio ({reason})"),
            retry_after: AUTH_PAUSE,
        },
        Some(21211) | Some(63024) => permanent(DeliveryStatus::InvalidNumber, reason),
        // The carrier answered STOP to this number on Twilio's side.
        Some(21610) => permanent(
            DeliveryStatus::Skipped,
            format!("le transporteur s'est désinscrit (STOP) : {reason}"),
        ),
        Some(63016) => permanent(
            DeliveryStatus::Failed,
            format!(
                "hors de la fenêtre de 24 h : WhatsApp n'accepte qu'un modèle approuvé, définissez TWILIO_CONTENT_SID ({reason})"
            ),
        ),
        // Rate limits: Twilio's own, and WhatsApp's as Twilio relays them.
        Some(20429) | Some(63018) => SendError::Transient {
            reason,
            code: code_text,
            retry_after: Some(retry_after.unwrap_or(RATE_LIMIT_PAUSE)),
        },
        // WhatsApp or Twilio temporarily unable to take the message.
        Some(63017) | Some(63038) | Some(63032) => SendError::Transient {
            reason,
            code: code_text,
            retry_after,
        },
        // A JSON error from Twilio itself on a 5xx: it answered, and says it failed.
        Some(_) if http.is_server_error() => SendError::Transient {
            reason,
            code: code_text,
            retry_after,
        },
        // 63014 (blocked by the carrier), 21408 (region not enabled), 21614 (not a mobile)
        // and every other refusal.
        Some(_) => permanent(DeliveryStatus::Failed, reason),
        None if http == StatusCode::UNAUTHORIZED => SendError::Unavailable {
            reason: format!("accès refusé par Twilio ({reason})"),
            retry_after: AUTH_PAUSE,
        },
        None if http == StatusCode::TOO_MANY_REQUESTS => SendError::Transient {
            reason,
            code: None,
            retry_after: Some(retry_after.unwrap_or(RATE_LIMIT_PAUSE)),
        },
        None if http == StatusCode::SERVICE_UNAVAILABLE => SendError::Transient {
            reason,
            code: None,
            retry_after,
        },
        // A bare 500, or a gateway's 502/504: whatever sits in front of Twilio may have passed
        // the request on before it failed.
        None if http.is_server_error() => SendError::Uncertain {
            reason: format!("{reason} — le message est peut-être parti, il n'est pas renvoyé"),
            message_id: None,
        },
        None => SendError::Permanent {
            status: DeliveryStatus::Failed,
            reason,
            code: Some(http.as_u16().to_string()),
        },
    }
}

fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

#[async_trait]
impl Channel for Twilio {
    fn name(&self) -> &'static str {
        "twilio"
    }

    fn kind(&self) -> Option<relay_domain::ChannelKind> {
        Some(relay_domain::ChannelKind::Twilio)
    }

    async fn send(&self, message: OutgoingMessage<'_>) -> Result<Accepted, SendError> {
        let response = self
            .http
            .post(self.endpoint.clone())
            .basic_auth(&self.user, Some(self.password.expose_secret()))
            .form(&self.form(&message))
            .send()
            .await
            .map_err(|err| request_error(&err, &TWILIO))?;
        let status = response.status();
        let wait = retry_after(response.headers());
        let bytes = match response.bytes().await {
            Ok(bytes) => bytes,
            // The status line came: a refusal stays a refusal even if its body is cut.
            Err(err) if status.is_success() => {
                return Err(SendError::Uncertain {
                    reason: format!(
                        "réponse de Twilio coupée après un succès (HTTP {}) : {} — le message est sans doute parti, il n'est pas renvoyé",
                        status.as_u16(),
                        describe_transport_error(&err, &TWILIO)
                    ),
                    message_id: None,
                });
            }
            Err(_) => Default::default(),
        };
        if status.is_success() {
            return match serde_json::from_slice::<SendAnswer>(&bytes) {
                Ok(answer) => Ok(Accepted {
                    message_id: Some(answer.sid),
                }),
                Err(_) => Err(SendError::Uncertain {
                    reason: format!(
                        "réponse illisible de Twilio après un succès (HTTP {}) : le message est peut-être parti, il n'est pas renvoyé",
                        status.as_u16()
                    ),
                    message_id: None,
                }),
            };
        }
        let (code, text) = match serde_json::from_slice::<TwilioError>(&bytes) {
            Ok(error) if error.code.is_some() => (error.code, error.message.unwrap_or_default()),
            _ => (
                None,
                String::from_utf8_lossy(&bytes).chars().take(200).collect(),
            ),
        };
        Err(classify(status, code, text, wait))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(err: SendError) -> String {
        match err {
            SendError::Transient { .. } => "transient".into(),
            SendError::Permanent { status, .. } => status.to_string(),
            SendError::Unavailable { .. } => "unavailable".into(),
            SendError::Uncertain { .. } => "uncertain".into(),
        }
    }

    #[test]
    fn twilio_error_codes_map_to_delivery_outcomes() {
        let bad = StatusCode::BAD_REQUEST;
        let cases = [
            (bad, Some(21211), "invalid_number"),
            (bad, Some(63024), "invalid_number"),
            (bad, Some(21610), "skipped"),
            (bad, Some(63016), "failed"),
            (bad, Some(63014), "failed"),
            (bad, Some(21408), "failed"),
            (bad, Some(21614), "failed"),
            (StatusCode::TOO_MANY_REQUESTS, Some(20429), "transient"),
            (bad, Some(63018), "transient"),
            (bad, Some(63017), "transient"),
            (bad, Some(63038), "transient"),
            (bad, Some(63032), "transient"),
            (StatusCode::INTERNAL_SERVER_ERROR, Some(20500), "transient"),
            (StatusCode::TOO_MANY_REQUESTS, None, "transient"),
            (StatusCode::SERVICE_UNAVAILABLE, None, "transient"),
            (StatusCode::BAD_GATEWAY, None, "uncertain"),
            (StatusCode::GATEWAY_TIMEOUT, None, "uncertain"),
            (StatusCode::UNAUTHORIZED, Some(20003), "unavailable"),
            (StatusCode::UNAUTHORIZED, None, "unavailable"),
            (bad, None, "failed"),
        ];
        for (http, code, expected) in cases {
            assert_eq!(
                outcome(classify(http, code, "x".into(), None)),
                expected,
                "{http} {code:?}"
            );
        }
    }

    #[test]
    fn outside_the_window_says_to_set_a_content_template() {
        let err = classify(StatusCode::BAD_REQUEST, Some(63016), "x".into(), None);
        assert!(err.to_string().contains("TWILIO_CONTENT_SID"), "{err}");
    }

    #[test]
    fn a_rate_limit_honours_retry_after_or_waits_a_minute() {
        let wait = |err| match err {
            SendError::Transient { retry_after, .. } => retry_after,
            _ => None,
        };
        let r = classify(
            StatusCode::TOO_MANY_REQUESTS,
            None,
            "x".into(),
            Some(Duration::from_secs(7)),
        );
        assert_eq!(wait(r), Some(Duration::from_secs(7)));
        let r = classify(StatusCode::TOO_MANY_REQUESTS, Some(20429), "x".into(), None);
        assert_eq!(wait(r), Some(RATE_LIMIT_PAUSE));
    }

    #[test]
    fn the_sending_number_is_written_as_twilio_expects() {
        assert_eq!(
            whatsapp_address("+212664373534").unwrap(),
            "whatsapp:+212664373534"
        );
        assert_eq!(
            whatsapp_address("whatsapp:+212664373534").unwrap(),
            "whatsapp:+212664373534"
        );
        assert!(whatsapp_address("whatsapp:hello").is_err());
    }

    #[test]
    fn callback_urls_keep_a_path_prefix_of_the_public_url() {
        let base = Url::parse("https://relay.camionback.com").unwrap();
        assert_eq!(
            callback_url(&base, STATUS_PATH).as_str(),
            "https://relay.camionback.com/webhooks/twilio/status"
        );
        let prefixed = Url::parse("https://camionback.com/relay/").unwrap();
        assert_eq!(
            callback_url(&prefixed, INCOMING_PATH).as_str(),
            "https://camionback.com/relay/webhooks/twilio/incoming"
        );
    }
}
