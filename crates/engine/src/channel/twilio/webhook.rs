//! Twilio's callbacks: status callbacks (`POST /webhooks/twilio/status`) that move deliveries
//! forward, and carriers' messages (`POST /webhooks/twilio/incoming`) stored with the other
//! channels' replies, STOP included. Both are forms signed with `X-Twilio-Signature` over the
//! URL Twilio requested (`RELAY_PUBLIC_URL` + the path and query as received) and every
//! parameter: a request that fails the check is answered 403 and changes nothing.

use axum::body::{Body, to_bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use relay_domain::DeliveryStatus;
use secrecy::ExposeSecret;

use super::{DELIVERY_PARAM, INCOMING_PATH, STATUS_PATH, callback_url};
use crate::clock::now_ms;
use crate::config::ChannelKind;
use crate::http::state::{HttpState, Problem};
use crate::signature::{self, SignatureError};
use crate::store::{InboundReply, ReportOutcome, ReportedError};

pub const SIGNATURE_HEADER: &str = "X-Twilio-Signature";
/// A callback is a few dozen short fields; far above any real one, far below harm.
const MAX_BODY_BYTES: usize = 64 * 1024;
/// What Twilio expects from a messaging webhook that answers nothing: empty TwiML.
const EMPTY_TWIML: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response/>";
/// A reply in TwiML: Twilio sends it to the carrier who just wrote (the 24-hour window is open),
/// so the opt-out confirmation needs no send of our own. The text has no XML special character.
const OPT_OUT_TWIML: &str = concat!(
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Message>",
    "C'est noté : vous ne recevrez plus les nouvelles commandes CamionBack par WhatsApp.",
    "</Message></Response>"
);

/// The form's parameters once the signature holds, or the answer to give.
async fn checked_form(
    state: &HttpState,
    path: &str,
    uri: &Uri,
    headers: &HeaderMap,
    body: Body,
) -> Result<Vec<(String, String)>, Response> {
    let Ok(body) = to_bytes(body, MAX_BODY_BYTES).await else {
        return Err(Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "corps de requête trop grand (64 Kio au plus)".to_string(),
        )
        .into_response());
    };
    let params: Vec<(String, String)> = url::form_urlencoded::parse(&body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let checked = state
        .twilio
        .as_ref()
        .ok_or(SignatureError::NoSecret(
            "TWILIO_AUTH_TOKEN ou RELAY_PUBLIC_URL",
        ))
        .and_then(|hooks| {
            let header = headers
                .get(SIGNATURE_HEADER)
                .and_then(|v| v.to_str().ok())
                .ok_or(SignatureError::Missing(SIGNATURE_HEADER))?;
            let mut url = callback_url(&hooks.public_url, path).to_string();
            if let Some(query) = uri.query() {
                url.push('?');
                url.push_str(query);
            }
            signature::verify_twilio(
                hooks.auth_token.expose_secret().as_bytes(),
                &url,
                &params,
                header,
                SIGNATURE_HEADER,
            )
        });
    match checked {
        Ok(()) => Ok(params),
        Err(err) => {
            tracing::warn!("rappel Twilio {path} refusé : {err}");
            Err(
                Problem::new(StatusCode::FORBIDDEN, "bad_signature", err.to_string())
                    .into_response(),
            )
        }
    }
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.trim().is_empty())
}

fn storage_unavailable() -> Response {
    Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "storage_unavailable",
        "non enregistré, réessayez".to_string(),
    )
    .into_response()
}

/// `POST /webhooks/twilio/status`.
pub async fn status(
    State(state): State<HttpState>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let params = match checked_form(&state, STATUS_PATH, &uri, &headers, body).await {
        Ok(params) => params,
        Err(answer) => return answer,
    };
    let (Some(sid), Some(message_status)) = (
        param(&params, "MessageSid").or_else(|| param(&params, "SmsSid")),
        param(&params, "MessageStatus").or_else(|| param(&params, "SmsStatus")),
    ) else {
        return Problem::new(
            StatusCode::BAD_REQUEST,
            "malformed",
            "MessageSid et MessageStatus attendus".to_string(),
        )
        .into_response();
    };
    let report = match message_status {
        "queued" | "accepted" | "sending" | "sent" | "scheduled" => DeliveryStatus::Sent,
        "delivered" => DeliveryStatus::Delivered,
        "read" => DeliveryStatus::Read,
        "failed" | "undelivered" => DeliveryStatus::Failed,
        // `receiving`, `received`, `canceled` and future kinds say nothing about delivery.
        _ => return StatusCode::OK.into_response(),
    };
    let code = param(&params, "ErrorCode").filter(|_| report == DeliveryStatus::Failed);
    let error = (report == DeliveryStatus::Failed).then(|| {
        match (param(&params, "ErrorCode"), param(&params, "ErrorMessage")) {
            (Some(code), Some(text)) => format!("{code} : {text}"),
            (Some(code), None) => format!("{code} : message non remis (Twilio)"),
            (None, Some(text)) => text.to_string(),
            (None, None) => "message non remis (Twilio)".to_string(),
        }
    });
    let error = error.as_deref().map(|text| ReportedError { text, code });
    // The delivery our callback URL names; Twilio echoes the query as we gave it.
    let tagged = url::form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
        .find(|(k, _)| k == DELIVERY_PARAM)
        .and_then(|(_, v)| v.parse::<i64>().ok())
        .filter(|id| *id > 0);
    let recipient = param(&params, "To").map(|to| {
        to.trim_start_matches("whatsapp:")
            .trim_start_matches('+')
            .to_string()
    });
    let applied = match tagged {
        Some(delivery) => {
            state
                .store
                .apply_tagged_report(sid, delivery, recipient.as_deref(), report, error, now_ms())
                .await
        }
        None => state.store.apply_report(sid, report, error, now_ms()).await,
    };
    match applied {
        Ok(ReportOutcome::Applied | ReportOutcome::Ignored | ReportOutcome::Deferred) => {
            StatusCode::OK.into_response()
        }
        Err(err) => {
            tracing::error!("statut Twilio non enregistré : {err}");
            storage_unavailable()
        }
    }
}

/// `POST /webhooks/twilio/incoming`: a carrier's message, stored once per `MessageSid`.
pub async fn incoming(
    State(state): State<HttpState>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let params = match checked_form(&state, INCOMING_PATH, &uri, &headers, body).await {
        Ok(params) => params,
        Err(answer) => return answer,
    };
    let (Some(sid), Some(from)) = (param(&params, "MessageSid"), param(&params, "From")) else {
        return Problem::new(
            StatusCode::BAD_REQUEST,
            "malformed",
            "MessageSid et From attendus".to_string(),
        )
        .into_response();
    };
    let digits = from
        .trim()
        .trim_start_matches("whatsapp:")
        .trim_start_matches('+');
    let phone = format!("+{digits}");
    // A button's text comes in `Body` too; its payload is what the template defined.
    let text = param(&params, "Body")
        .or_else(|| param(&params, "ButtonText"))
        .unwrap_or_default();
    // A quoted reply names the broadcast it answers; a button tap names what its template
    // defined: the store finds the order from either, STOP included.
    let recorded = state
        .store
        .record_reply(&InboundReply {
            channel: ChannelKind::Twilio,
            message_id: sid,
            phone: &phone,
            user_id: None,
            text,
            button_payload: param(&params, "ButtonPayload"),
            quoted_message_id: param(&params, "OriginalRepliedMessageSid"),
            received_at: now_ms(),
        })
        .await;
    match recorded {
        Ok(outcome) => {
            let answer = if outcome.newly_opted_out {
                tracing::info!(
                    "{} ne recevra plus de diffusions (désinscription par message)",
                    relay_domain::mask_phone(&phone)
                );
                OPT_OUT_TWIML
            } else {
                EMPTY_TWIML
            };
            ([(header::CONTENT_TYPE, "text/xml")], answer).into_response()
        }
        Err(err) => {
            tracing::error!("réponse d'un transporteur (Twilio) non enregistrée : {err}");
            storage_unavailable()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_carrier_who_opts_out_on_twilio_is_told_as_on_whatsapp_web() {
        assert!(OPT_OUT_TWIML.contains(crate::channel::OPT_OUT_CONFIRMATION));
    }
}
