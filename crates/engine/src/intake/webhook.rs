//! `POST /webhooks/orders`: CamionBack pushes each new order here (`order.created`), and each
//! change of one (`order.updated`, `order.closed`: a closed order stops its broadcast), signed.
//! Checks run from cheapest to dearest (size, signature, JSON, order rules of `Order::parse`),
//! and a refused request stores nothing.

use axum::body::{Body, to_bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::json;

use relay_domain::{OrderId, clean_statut, statut_is_open};

use crate::camionback::{OrderJson, OrderStateJson};
use crate::clock::now_ms;
use crate::http::state::{HttpState, Problem};
use crate::signature::{self, SignatureError};
use crate::store::OrderSource;

pub const MAX_BODY_BYTES: usize = 64 * 1024;
pub const TIMESTAMP_HEADER: &str = "X-CamionBack-Timestamp";
pub const SIGNATURE_HEADER: &str = "X-CamionBack-Signature";
const TOLERANCE_SECS: u64 = 300;

#[derive(Deserialize)]
struct Envelope {
    event: String,
    order: serde_json::Value,
}

pub async fn receive(State(state): State<HttpState>, headers: HeaderMap, body: Body) -> Response {
    let Ok(body) = to_bytes(body, MAX_BODY_BYTES).await else {
        return Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "corps de requête trop grand (64 Kio au plus)".to_string(),
        )
        .into_response();
    };
    if let Err(err) = authenticate(&state, &headers, &body) {
        tracing::warn!("webhook commande refusé : {err}");
        return Problem::new(StatusCode::UNAUTHORIZED, "bad_signature", err.to_string())
            .into_response();
    }
    let envelope: Envelope = match serde_json::from_slice(&body) {
        Ok(envelope) => envelope,
        Err(err) => return malformed(format!("JSON invalide : {err}")),
    };
    match envelope.event.as_str() {
        "order.created" => {}
        "order.updated" | "order.closed" => {
            return order_changed(&state, &envelope.event, envelope.order).await;
        }
        _ => {
            // Another kind of event is not an error of the sender: acknowledged, ignored.
            return (
                StatusCode::ACCEPTED,
                axum::Json(json!({ "status": "ignored", "reason": format!("événement « {} » non traité", envelope.event) })),
            )
                .into_response();
        }
    }
    let order = match serde_json::from_value::<OrderJson>(envelope.order) {
        Ok(json) => match json.into_order() {
            Ok(order) => order,
            Err(err) => {
                // Readable JSON whose content breaks the order contract (a link, a field too
                // long, a date out of range...): CamionBack must fix the order, not resend it.
                // The error quotes only cleaned, shortened text: safe in a log line.
                tracing::warn!("webhook commande refusé : {err}");
                return Problem::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_order",
                    format!("commande refusée : {err}"),
                )
                .into_response();
            }
        },
        Err(err) => return malformed(format!("commande invalide : {err}")),
    };
    match state
        .store
        .insert_order(&order, OrderSource::Webhook, now_ms())
        .await
    {
        Ok(new) => {
            if new {
                tracing::info!("commande {} reçue par webhook", order.reference);
                state.new_order.notify_one();
            } else {
                tracing::info!("commande {} déjà connue : webhook ignoré", order.reference);
            }
            (
                StatusCode::ACCEPTED,
                axum::Json(json!({
                    "status": if new { "accepted" } else { "duplicate" },
                    "order_id": order.id.0,
                })),
            )
                .into_response()
        }
        Err(err) => {
            tracing::error!("webhook commande {} : {err}", order.reference);
            // 5xx: CamionBack retries, and polling will find the order anyway.
            Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "storage_unavailable",
                "commande non enregistrée, réessayez".to_string(),
            )
            .into_response()
        }
    }
}

/// `order.updated` / `order.closed`: any `statut` other than absent or `ouverte` closes the
/// order (an `order.closed` without one too): its queued deliveries are skipped in the same
/// transaction that remembers it closed, so no send for it starts after this answer. An order
/// the relay never heard of is remembered closed all the same (`202`, `cancelled: 0`,
/// `known: false`): its `order.created` arriving later, or found by polling, is stored and never
/// broadcast. A closed order stays closed: an update saying `ouverte` again changes nothing
/// (staff can still relaunch it with `--force`).
async fn order_changed(state: &HttpState, event: &str, order: serde_json::Value) -> Response {
    let changed = match serde_json::from_value::<OrderStateJson>(order) {
        Ok(changed) if changed.id > 0 => changed,
        Ok(changed) => {
            return malformed(format!(
                "commande invalide : id {} (entier > 0 attendu)",
                changed.id
            ));
        }
        Err(err) => return malformed(format!("commande invalide : {err}")),
    };
    let id = OrderId(changed.id);
    let statut = match changed.statut.as_deref().map(clean_statut) {
        Some(statut) => Some(statut),
        None if event == "order.closed" => Some(CLOSED_WITHOUT_STATUT.to_string()),
        None => None,
    };
    let Some(statut) = statut.filter(|s| !statut_is_open(Some(s))) else {
        return (
            StatusCode::ACCEPTED,
            axum::Json(json!({ "status": "open", "order_id": id.0 })),
        )
            .into_response();
    };
    match state
        .store
        .close_order(id, &statut, OrderSource::Webhook, now_ms())
        .await
    {
        Ok(closed) => {
            if closed.newly || closed.cancelled > 0 {
                tracing::info!(
                    "commande {} fermée par webhook (statut « {statut} ») : {} envoi(s) évité(s){}",
                    id.0,
                    closed.cancelled,
                    if closed.known {
                        ""
                    } else {
                        " — commande encore inconnue du relais, elle ne sera pas diffusée"
                    }
                );
            }
            (
                StatusCode::ACCEPTED,
                axum::Json(json!({
                    "status": "closed",
                    "order_id": id.0,
                    "cancelled": closed.cancelled,
                    "known": closed.known,
                })),
            )
                .into_response()
        }
        Err(err) => {
            tracing::error!("webhook fermeture de la commande {} : {err}", id.0);
            // 5xx: CamionBack retries; meanwhile the check of the API may close it too.
            Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "storage_unavailable",
                "fermeture non enregistrée, réessayez".to_string(),
            )
            .into_response()
        }
    }
}

/// The word kept for an `order.closed` that gives no `statut`.
const CLOSED_WITHOUT_STATUT: &str = "fermée";

fn authenticate(state: &HttpState, headers: &HeaderMap, body: &[u8]) -> Result<(), SignatureError> {
    let secret = state
        .webhook_secret
        .as_ref()
        .ok_or(SignatureError::NoSecret("RELAY_WEBHOOK_SECRET"))?;
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let timestamp_text = header(TIMESTAMP_HEADER).map(str::trim);
    signature::check_timestamp(
        timestamp_text,
        now_ms() / 1000,
        TOLERANCE_SECS,
        TIMESTAMP_HEADER,
    )?;
    let signature = header(SIGNATURE_HEADER).ok_or(SignatureError::Missing(SIGNATURE_HEADER))?;
    let timestamp = timestamp_text.unwrap_or_default();
    signature::verify(
        secret.expose_secret().as_bytes(),
        &[timestamp.as_bytes(), b".", body],
        signature,
        SIGNATURE_HEADER,
    )
}

fn malformed(message: String) -> Response {
    Problem::new(StatusCode::BAD_REQUEST, "malformed", message).into_response()
}
