//! Meta's webhooks for the Cloud API: the subscription check (`GET`) and the status reports
//! (`POST`, signed with the app secret) that move deliveries to delivered, read or failed. A
//! report for a message id the relay never stored (its send answer was lost) still settles
//! the delivery its `biz_opaque_callback_data` names, if that one is in doubt.

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
use crate::http::state::{HttpState, Problem};
use crate::signature::{self, SignatureError};
use crate::store::{ReportOutcome, ReportedError};

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
        tracing::warn!("webhook de statut WhatsApp refusé : {err}");
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
    for status in notification
        .entry
        .into_iter()
        .flat_map(|e| e.changes)
        .flat_map(|c| c.value.statuses)
    {
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
    (StatusCode::OK, axum::Json(json!({ "applied": applied }))).into_response()
}
