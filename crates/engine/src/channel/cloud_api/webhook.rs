//! Meta's webhooks for the Cloud API: the subscription check (`GET`), and the notifications
//! (`POST`, signed with the app secret): status reports that move deliveries to delivered, read
//! or failed, and carriers' messages (`text`, a template button tap `button`, an interactive
//! `button_reply`) stored with every channel's replies through `Store::record_reply`, STOP
//! included (confirmed once, by a free-text message: the carrier just wrote, the 24-hour window
//! is open). A report for a message id the relay never stored (its send answer was lost) still
//! settles the delivery its `biz_opaque_callback_data` names, if that one is in doubt.

use std::collections::HashMap;

use axum::body::{Body, to_bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use relay_domain::DeliveryStatus;
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::json;

use crate::clock::now_ms;
use crate::config::ChannelKind;
use crate::http::state::{HttpState, Problem};
use crate::signature::{self, SignatureError};
use crate::store::{InboundReply, ReportOutcome, ReportedError};

pub const SIGNATURE_HEADER: &str = "X-Hub-Signature-256";
/// Meta batches many statuses in one call; far above any real batch, far below harm.
const MAX_BODY_BYTES: usize = 1024 * 1024;

/// `GET /webhooks/whatsapp`: Meta checks that we own the endpoint before subscribing it.
pub async fn verify(
    State(state): State<HttpState>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let expected = state.whatsapp_verify_token.as_ref();
    let mode = query.get("hub.mode").map(String::as_str);
    let token = query.get("hub.verify_token").map(String::as_bytes);
    let challenge = query.get("hub.challenge");
    match (expected, mode, token, challenge) {
        (Some(expected), Some("subscribe"), Some(token), Some(challenge))
            if constant_time_eq(expected.expose_secret().as_bytes(), token) =>
        {
            (StatusCode::OK, challenge.clone()).into_response()
        }
        _ => {
            tracing::warn!("vérification du webhook WhatsApp refusée");
            (StatusCode::FORBIDDEN, "forbidden").into_response()
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[derive(Deserialize)]
struct Notification {
    #[serde(default)]
    entry: Vec<Entry>,
}

#[derive(Deserialize)]
struct Entry {
    #[serde(default)]
    changes: Vec<Change>,
}

#[derive(Deserialize)]
struct Change {
    #[serde(default)]
    value: ChangeValue,
}

#[derive(Deserialize, Default)]
struct ChangeValue {
    #[serde(default)]
    statuses: Vec<StatusJson>,
    #[serde(default)]
    contacts: Vec<ContactJson>,
    #[serde(default)]
    messages: Vec<MessageJson>,
}

#[derive(Deserialize)]
struct ContactJson {
    #[serde(default)]
    wa_id: Option<String>,
    /// The business-scoped user id.
    #[serde(default)]
    user_id: Option<String>,
}

#[derive(Deserialize)]
struct MessageJson {
    id: String,
    /// The sender's phone number (digits); absent when they share only a username.
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    from_user_id: Option<String>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    text: Option<TextJson>,
    #[serde(default)]
    button: Option<ButtonJson>,
    #[serde(default)]
    interactive: Option<InteractiveJson>,
    /// The message this one answers (a quoted reply, or the template a button belongs to).
    #[serde(default)]
    context: Option<ContextJson>,
}

#[derive(Deserialize)]
struct TextJson {
    #[serde(default)]
    body: String,
}

#[derive(Deserialize)]
struct ButtonJson {
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    payload: Option<String>,
}

#[derive(Deserialize)]
struct InteractiveJson {
    #[serde(default)]
    button_reply: Option<ReplyJson>,
    #[serde(default)]
    list_reply: Option<ReplyJson>,
}

#[derive(Deserialize)]
struct ReplyJson {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    title: Option<String>,
}

#[derive(Deserialize)]
struct ContextJson {
    #[serde(default)]
    id: Option<String>,
}

impl MessageJson {
    /// What the carrier wrote or tapped, and the tap's payload.
    fn content(&self) -> (String, Option<String>) {
        if let Some(text) = &self.text {
            return (text.body.clone(), None);
        }
        if let Some(button) = &self.button {
            return (
                button.text.clone().unwrap_or_default(),
                button.payload.clone(),
            );
        }
        if let Some(reply) = self
            .interactive
            .as_ref()
            .and_then(|i| i.button_reply.as_ref().or(i.list_reply.as_ref()))
        {
            return (reply.title.clone().unwrap_or_default(), reply.id.clone());
        }
        // An image, a voice note, a location…: kept so staff see the carrier wrote.
        let kind = self.kind.as_deref().unwrap_or("inconnu");
        (format!("[message {kind}]"), None)
    }
}

#[derive(Deserialize)]
struct StatusJson {
    id: String,
    status: String,
    #[serde(default)]
    errors: Vec<ErrorJson>,
    /// The wa_id (digits) the message went to.
    #[serde(default)]
    recipient_id: Option<String>,
    /// Echoed by Meta from the send: ours is `super::callback_tag(delivery id)`.
    #[serde(default)]
    biz_opaque_callback_data: Option<String>,
}

#[derive(Deserialize)]
struct ErrorJson {
    #[serde(default)]
    code: Option<i64>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

/// `POST /webhooks/whatsapp`: status reports, by message id.
pub async fn receive(State(state): State<HttpState>, headers: HeaderMap, body: Body) -> Response {
    let Ok(body) = to_bytes(body, MAX_BODY_BYTES).await else {
        return Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "corps de requête trop grand (1 Mio au plus)".to_string(),
        )
        .into_response();
    };
    let checked = state
        .whatsapp_app_secret
        .as_ref()
        .ok_or(SignatureError::NoSecret("WHATSAPP_APP_SECRET"))
        .and_then(|secret| {
            let header = headers
                .get(SIGNATURE_HEADER)
                .and_then(|v| v.to_str().ok())
                .ok_or(SignatureError::Missing(SIGNATURE_HEADER))?;
            signature::verify(
                secret.expose_secret().as_bytes(),
                &[&body],
                header,
                SIGNATURE_HEADER,
            )
        });
    if let Err(err) = checked {
        tracing::warn!("webhook WhatsApp refusé : {err}");
        return Problem::new(StatusCode::UNAUTHORIZED, "bad_signature", err.to_string())
            .into_response();
    }
    let notification: Notification = match serde_json::from_slice(&body) {
        Ok(n) => n,
        Err(err) => {
            return Problem::new(
                StatusCode::BAD_REQUEST,
                "malformed",
                format!("JSON invalide : {err}"),
            )
            .into_response();
        }
    };
    let mut applied = 0;
    let mut stored = 0;
    let values: Vec<ChangeValue> = notification
        .entry
        .into_iter()
        .flat_map(|e| e.changes)
        .map(|c| c.value)
        .collect();
    for value in &values {
        for message in &value.messages {
            match store_message(&state, message, &value.contacts).await {
                Ok(true) => stored += 1,
                Ok(false) => {}
                Err(answer) => return answer,
            }
        }
    }
    for status in values.into_iter().flat_map(|v| v.statuses) {
        let report = match status.status.as_str() {
            "sent" => DeliveryStatus::Sent,
            "delivered" => DeliveryStatus::Delivered,
            "read" => DeliveryStatus::Read,
            "failed" => DeliveryStatus::Failed,
            // `deleted`, `warning` and future kinds say nothing about delivery.
            _ => continue,
        };
        let first = status.errors.first();
        let code = first.and_then(|e| e.code).map(|c| c.to_string());
        let error = first.map(|e| {
            let text = e
                .message
                .clone()
                .or_else(|| e.title.clone())
                .unwrap_or_default();
            match e.code {
                Some(code) => format!("{code} : {text}"),
                None => text,
            }
        });
        let error = error.as_deref().map(|text| ReportedError {
            text,
            code: code.as_deref(),
        });
        let tagged = status
            .biz_opaque_callback_data
            .as_deref()
            .and_then(super::delivery_of_tag);
        let applied_report = match tagged {
            Some(delivery) => {
                state
                    .store
                    .apply_tagged_report(
                        &status.id,
                        delivery,
                        status.recipient_id.as_deref(),
                        report,
                        error,
                        now_ms(),
                    )
                    .await
            }
            None => {
                state
                    .store
                    .apply_report(&status.id, report, error, now_ms())
                    .await
            }
        };
        match applied_report {
            Ok(ReportOutcome::Applied) => applied += 1,
            Ok(_) => {}
            Err(err) => {
                tracing::error!("statut WhatsApp non enregistré : {err}");
                // Meta retries a failed webhook delivery: let it.
                return Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "storage_unavailable",
                    "statut non enregistré, réessayez".to_string(),
                )
                .into_response();
            }
        }
    }
    (
        StatusCode::OK,
        axum::Json(json!({ "applied": applied, "replies": stored })),
    )
        .into_response()
}

/// Stores one carrier's message; true when it was new. A storage failure is the answer to
/// give (503: Meta delivers the notification again, and what was stored is not stored twice).
async fn store_message(
    state: &HttpState,
    message: &MessageJson,
    contacts: &[ContactJson],
) -> Result<bool, Response> {
    let from = message.from.as_deref().and_then(digits_of);
    // The contact of this message: the one with its number, or the only one when it has none.
    let contact = match from {
        Some(from) => contacts
            .iter()
            .find(|c| c.wa_id.as_deref().and_then(digits_of) == Some(from)),
        None => contacts.first().filter(|_| contacts.len() == 1),
    };
    let user_id = message
        .from_user_id
        .as_deref()
        .or_else(|| contact.and_then(|c| c.user_id.as_deref()));
    let from = from.or_else(|| contact.and_then(|c| c.wa_id.as_deref()).and_then(digits_of));
    // A carrier who shares only a username comes without a number: the one an earlier message
    // of theirs came with, under the same business-scoped id, is theirs.
    let known_phone = match (from, user_id) {
        (None, Some(user_id)) => match state.store.phone_of_user_id(user_id).await {
            Ok(phone) => phone,
            Err(err) => {
                tracing::error!("réponse d'un transporteur (API Cloud) non enregistrée : {err}");
                return Err(storage_unavailable());
            }
        },
        _ => None,
    };
    let digits = match (from, &known_phone) {
        (Some(digits), _) => digits,
        (None, Some(phone)) => phone.trim_start_matches('+'),
        (None, None) => {
            tracing::warn!("message WhatsApp reçu sans numéro d'expéditeur connu : ignoré");
            return Ok(false);
        }
    };
    let phone = format!("+{digits}");
    let (text, payload) = message.content();
    let recorded = state
        .store
        .record_reply(&InboundReply {
            channel: ChannelKind::CloudApi,
            message_id: &message.id,
            phone: &phone,
            user_id,
            text: &text,
            button_payload: payload.as_deref(),
            quoted_message_id: message.context.as_ref().and_then(|c| c.id.as_deref()),
            received_at: now_ms(),
        })
        .await;
    match recorded {
        Ok(outcome) => {
            if outcome.newly_opted_out {
                tracing::info!(
                    "{} ne recevra plus de diffusions (désinscription par message)",
                    relay_domain::mask_phone(&phone)
                );
                confirm_opt_out(state, digits.to_string());
            }
            Ok(outcome.stored)
        }
        Err(err) => {
            tracing::error!("réponse d'un transporteur (API Cloud) non enregistrée : {err}");
            Err(storage_unavailable())
        }
    }
}

/// A WhatsApp number as Meta writes it (digits, sometimes after a `+`); anything else is no
/// number.
fn digits_of(raw: &str) -> Option<&str> {
    let digits = raw.trim().trim_start_matches('+');
    (!digits.is_empty() && digits.len() <= 20 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then_some(digits)
}

fn storage_unavailable() -> Response {
    Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "storage_unavailable",
        "message non enregistré, réessayez".to_string(),
    )
    .into_response()
}

/// Tells the carrier their STOP was heard, without holding Meta's notification: Meta wants
/// its answer quickly, and the opt-out is already stored.
fn confirm_opt_out(state: &HttpState, digits: String) {
    let Some(api) = state.cloud_api.clone() else {
        tracing::warn!(
            "désinscription reçue par l'API Cloud alors que le canal n'est pas l'API Cloud : pas de confirmation envoyée"
        );
        return;
    };
    tokio::spawn(async move {
        if let Err(err) = api
            .send_text(&digits, crate::channel::OPT_OUT_CONFIRMATION)
            .await
        {
            tracing::warn!("confirmation de désinscription non envoyée : {err}");
        }
    });
}
