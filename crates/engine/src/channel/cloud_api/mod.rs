//! The official WhatsApp Cloud API (Meta): `POST /{version}/{phone-number-id}/messages` with a
//! bearer token, and Meta's error codes mapped to delivery outcomes.
//!
//! A send is retried only when the answer proves Meta did not take the message: the
//! connection never opened, or Meta answered with an error that says so (its error codes,
//! 429, 503). Anything else once the request may have been written (a timeout, a cut or
//! unreadable answer, a gateway's 502/504) is `SendError::Uncertain`: a retry could give the
//! carrier a second copy. Every send carries its delivery id in `biz_opaque_callback_data`,
//! which Meta echoes in its status notifications, so a report can settle a delivery whose
//! answer was lost (`webhook`).

pub mod versions;
pub mod webhook;

use std::time::Duration;

use async_trait::async_trait;
use relay_domain::DeliveryStatus;
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::json;
use url::Url;

use super::{
    Accepted, Channel, OutgoingMessage, ProviderNames, SendError, describe_transport_error,
    request_error,
};

// reqwest's messages never carry our bearer token; the URL holds no secret.
const CLOUD_API: ProviderNames = ProviderNames {
    api: "API WhatsApp Cloud",
    from: "de l'API WhatsApp Cloud",
    to: "vers l'API WhatsApp Cloud",
};
use crate::config::CloudApiSettings;

#[derive(Debug, thiserror::Error)]
pub enum CloudApiConfigError {
    #[error("RELAY_CHANNEL=cloud-api demande {0}")]
    Missing(&'static str),
    #[error("client HTTP : {0}")]
    Http(#[from] reqwest::Error),
    #[error("WHATSAPP_API_URL : {0}")]
    Url(#[from] url::ParseError),
}

pub struct CloudApi {
    http: reqwest::Client,
    endpoint: Url,
    token: SecretString,
    template: Option<(String, String)>,
    /// The template's quick-reply button that carries `INTERESSE:<order id>`.
    interest_button: Option<u32>,
}

impl CloudApi {
    pub fn new(
        settings: &CloudApiSettings,
        timeout: Duration,
    ) -> Result<Self, CloudApiConfigError> {
        let phone_number_id = settings
            .phone_number_id
            .as_deref()
            .ok_or(CloudApiConfigError::Missing("WHATSAPP_PHONE_NUMBER_ID"))?;
        let token = settings
            .token
            .clone()
            .ok_or(CloudApiConfigError::Missing("WHATSAPP_TOKEN"))?;
        let mut base = settings.api_url.clone();
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        let endpoint = base.join(&format!(
            "{}/{}/messages",
            settings.api_version.trim_matches('/'),
            phone_number_id
        ))?;
        Ok(Self {
            http: reqwest::Client::builder()
                .timeout(timeout)
                // Shorter than the whole timeout, so a connection that never opens fails as a
                // connect error (nothing was written: retried) and not as a timeout of the
                // request (which could have been written: uncertain).
                .connect_timeout(CONNECT_TIMEOUT.min(timeout / 2))
                .build()?,
            endpoint,
            token,
            template: settings
                .template
                .clone()
                .map(|name| (name, settings.template_lang.clone())),
            interest_button: settings.interest_button,
        })
    }

    /// Sends a free-text message to a carrier who just wrote (the 24-hour window is open): the
    /// opt-out confirmation. Best effort: its failure is the caller's to log.
    pub async fn send_text(&self, to_digits: &str, text: &str) -> Result<(), SendError> {
        let response = self
            .http
            .post(self.endpoint.clone())
            .bearer_auth(self.token.expose_secret())
            .json(&json!({
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "to": to_digits,
                "type": "text",
                "text": { "preview_url": false, "body": text },
            }))
            .send()
            .await
            .map_err(|err| request_error(&err, &CLOUD_API))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let body: String = response
            .text()
            .await
            .unwrap_or_default()
            .chars()
            .take(200)
            .collect();
        Err(classify(status, None, body, None))
    }

    /// The template's components: its body parameters, and the interest button's payload
    /// when one is set.
    fn template_components(&self, message: &OutgoingMessage<'_>) -> serde_json::Value {
        let mut components = vec![json!({
            "type": "body",
            "parameters": message.fields.template_parameters()
                .iter()
                .map(|text| json!({ "type": "text", "text": text }))
                .collect::<Vec<_>>(),
        })];
        if let Some(index) = self.interest_button {
            components.push(json!({
                "type": "button",
                "sub_type": "quick_reply",
                "index": index.to_string(),
                "parameters": [{
                    "type": "payload",
                    "payload": format!(
                        "{}:{}",
                        crate::replies::INTEREST_PAYLOAD,
                        message.fields.order_id.0
                    ),
                }],
            }));
        }
        serde_json::Value::Array(components)
    }

    fn body(&self, message: &OutgoingMessage<'_>) -> serde_json::Value {
        let to = message.to.digits();
        let tag = callback_tag(message.delivery_id);
        match &self.template {
            None => json!({
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "to": to,
                "biz_opaque_callback_data": tag,
                "type": "text",
                "text": { "preview_url": true, "body": message.text },
            }),
            Some((name, lang)) => json!({
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "to": to,
                "biz_opaque_callback_data": tag,
                "type": "template",
                "template": {
                    "name": name,
                    "language": { "code": lang },
                    "components": self.template_components(message),
                },
            }),
        }
    }
}

#[derive(Deserialize)]
struct SendAnswer {
    #[serde(default)]
    messages: Vec<SentMessage>,
}

#[derive(Deserialize)]
struct SentMessage {
    id: String,
}

#[derive(Deserialize)]
struct ErrorAnswer {
    error: MetaError,
}

#[derive(Deserialize)]
struct MetaError {
    #[serde(default)]
    code: Option<i64>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    error_data: Option<ErrorData>,
}

#[derive(Deserialize)]
struct ErrorData {
    #[serde(default)]
    details: Option<String>,
}

/// The prefix of the tag each send carries in `biz_opaque_callback_data` (Meta allows 512
/// characters, any text): it tells our tags from another app's on the same account.
const CALLBACK_TAG_PREFIX: &str = "camionback-relay:delivery:";
/// The longest a connection may take to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The `biz_opaque_callback_data` of the send for delivery `delivery_id`.
pub fn callback_tag(delivery_id: i64) -> String {
    format!("{CALLBACK_TAG_PREFIX}{delivery_id}")
}

/// The delivery a `biz_opaque_callback_data` names, when it is one of ours.
pub fn delivery_of_tag(tag: &str) -> Option<i64> {
    tag.strip_prefix(CALLBACK_TAG_PREFIX)?
        .parse()
        .ok()
        .filter(|id| *id > 0)
}

/// How long to wait before retrying after a rate limit when Meta does not say.
const RATE_LIMIT_PAUSE: Duration = Duration::from_secs(60);
/// How long the account pauses when Meta refuses our credentials.
const AUTH_PAUSE: Duration = Duration::from_secs(300);

/// Maps one of Meta's error answers to what the dispatcher does with the delivery.
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
    match code {
        // Bad or expired token, missing permission: no delivery can go out until someone
        // fixes the settings.
        Some(190) | Some(10) | Some(200..=299) => SendError::Unavailable {
            reason: format!("accès refusé par l'API WhatsApp Cloud ({reason})"),
            retry_after: AUTH_PAUSE,
        },
        // Rate limits (account, pair, throughput) and Meta's own temporary errors.
        Some(4) | Some(80007) | Some(130429) | Some(131056) | Some(131048) => {
            SendError::Transient {
                reason,
                code: code_text,
                retry_after: Some(retry_after.unwrap_or(RATE_LIMIT_PAUSE)),
            }
        }
        Some(1) | Some(2) | Some(131000) | Some(131016) | Some(133004) => SendError::Transient {
            reason,
            code: code_text,
            retry_after,
        },
        // The number itself is refused.
        Some(131009) | Some(100) if text.to_lowercase().contains("phone") => SendError::Permanent {
            status: DeliveryStatus::InvalidNumber,
            reason,
            code: code_text,
        },
        Some(_) => SendError::Permanent {
            status: DeliveryStatus::Failed,
            reason,
            code: code_text,
        },
        // "Too many requests" and "unavailable" are refusals before any processing.
        None if http == StatusCode::TOO_MANY_REQUESTS
            || http == StatusCode::SERVICE_UNAVAILABLE =>
        {
            SendError::Transient {
                reason,
                code: None,
                retry_after,
            }
        }
        // A bare 500, or a gateway's 502/504: whatever sits in front of Meta may have passed
        // the request on before it failed.
        None if http.is_server_error() => SendError::Uncertain {
            reason: format!("{reason} — le message est peut-être parti, il n'est pas renvoyé"),
            message_id: None,
        },
        None if http == StatusCode::UNAUTHORIZED || http == StatusCode::FORBIDDEN => {
            SendError::Unavailable {
                reason: format!("accès refusé par l'API WhatsApp Cloud ({reason})"),
                retry_after: AUTH_PAUSE,
            }
        }
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
impl Channel for CloudApi {
    fn name(&self) -> &'static str {
        "cloud-api"
    }

    fn kind(&self) -> Option<relay_domain::ChannelKind> {
        Some(relay_domain::ChannelKind::CloudApi)
    }

    async fn send(&self, message: OutgoingMessage<'_>) -> Result<Accepted, SendError> {
        let response = self
            .http
            .post(self.endpoint.clone())
            .bearer_auth(self.token.expose_secret())
            .json(&self.body(&message))
            .send()
            .await
            .map_err(|err| request_error(&err, &CLOUD_API))?;
        let status = response.status();
        let wait = retry_after(response.headers());
        let bytes = match response.bytes().await {
            Ok(bytes) => bytes,
            // The status line came: a refusal stays a refusal even if its body is cut.
            Err(err) if status.is_success() => {
                return Err(SendError::Uncertain {
                    reason: format!(
                        "réponse de l'API WhatsApp Cloud coupée après un succès (HTTP {}) : {} — le message est sans doute parti, il n'est pas renvoyé",
                        status.as_u16(),
                        describe_transport_error(&err, &CLOUD_API)
                    ),
                    message_id: None,
                });
            }
            Err(_) => Default::default(),
        };
        if status.is_success() {
            // A 2xx whose body is not Meta's answer (a proxy's page, a cut body) says the
            // request went somewhere, not that Meta took it under an id we know: uncertain,
            // and a status report naming the delivery settles it.
            return match serde_json::from_slice::<SendAnswer>(&bytes)
                .ok()
                .and_then(|answer| answer.messages.into_iter().next())
            {
                Some(sent) => Ok(Accepted {
                    message_id: Some(sent.id),
                }),
                None => Err(SendError::Uncertain {
                    reason: format!(
                        "réponse illisible de l'API WhatsApp Cloud après un succès (HTTP {}) : le message est peut-être parti, il n'est pas renvoyé",
                        status.as_u16()
                    ),
                    message_id: None,
                }),
            };
        }
        let (code, text) = match serde_json::from_slice::<ErrorAnswer>(&bytes) {
            Ok(ErrorAnswer { error }) => {
                let mut text = error.message.unwrap_or_default();
                if let Some(details) = error.error_data.and_then(|d| d.details) {
                    text = format!("{text} ({details})");
                }
                (error.code, text)
            }
            Err(_) => (
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

    fn status_of(err: SendError) -> String {
        match err {
            SendError::Transient { .. } => "transient".into(),
            SendError::Permanent { status, .. } => status.to_string(),
            SendError::Unavailable { .. } => "unavailable".into(),
            SendError::Uncertain { .. } => "uncertain".into(),
        }
    }

    #[test]
    fn meta_error_codes_map_to_delivery_outcomes() {
        let bad = StatusCode::BAD_REQUEST;
        let cases = [
            (bad, Some(131026), "Message undeliverable", "failed"),
            (bad, Some(131047), "Re-engagement message", "failed"),
            (bad, Some(131051), "Unsupported message type", "failed"),
            (bad, Some(130429), "Rate limit hit", "transient"),
            (bad, Some(131056), "Pair rate limit", "transient"),
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Some(131000),
                "Something went wrong",
                "transient",
            ),
            (StatusCode::SERVICE_UNAVAILABLE, None, "oops", "transient"),
            (StatusCode::BAD_GATEWAY, None, "<html>", "uncertain"),
            (StatusCode::GATEWAY_TIMEOUT, None, "<html>", "uncertain"),
            (StatusCode::INTERNAL_SERVER_ERROR, None, "oops", "uncertain"),
            (bad, None, "refused", "failed"),
            (
                StatusCode::TOO_MANY_REQUESTS,
                None,
                "slow down",
                "transient",
            ),
            (
                StatusCode::UNAUTHORIZED,
                Some(190),
                "Invalid OAuth access token",
                "unavailable",
            ),
            (
                bad,
                Some(100),
                "Invalid parameter: phone number",
                "invalid_number",
            ),
        ];
        for (http, code, text, expected) in cases {
            assert_eq!(
                status_of(classify(http, code, text.into(), None)),
                expected,
                "{code:?} {text}"
            );
        }
    }

    #[test]
    fn the_callback_tag_names_the_delivery_and_nothing_else() {
        assert_eq!(delivery_of_tag(&callback_tag(42)), Some(42));
        assert_eq!(delivery_of_tag("camionback-relay:delivery:x"), None);
        assert_eq!(delivery_of_tag("camionback-relay:delivery:-3"), None);
        assert_eq!(delivery_of_tag("42"), None, "another app's tag");
    }
}
