//! What every HTTP handler shares, apart from the router that wires them: their state
//! ([`HttpState`]) and the error answer ([`Problem`]).

use std::sync::Arc;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use secrecy::SecretString;
use serde_json::json;
use tokio::sync::{Notify, watch};

use crate::channel::whatsapp_web::ConnectionState;
use crate::dispatcher::OutboxHealth;
use crate::server::ServerStats;
use crate::store::Store;

#[derive(Clone)]
pub struct HttpState {
    pub store: Store,
    pub webhook_secret: Option<SecretString>,
    pub whatsapp_verify_token: Option<SecretString>,
    pub whatsapp_app_secret: Option<SecretString>,
    pub new_order: Arc<Notify>,
    pub channel: &'static str,
    /// What checks Twilio's callbacks: both the auth token and `RELAY_PUBLIC_URL`, else
    /// every Twilio callback is refused.
    pub twilio: Option<TwilioHooks>,
    /// The Cloud API, when that is the channel: it confirms an opt-out received there.
    pub cloud_api: Option<Arc<crate::channel::cloud_api::CloudApi>>,
    /// The WhatsApp Web connection, when that is the channel.
    pub whatsapp: Option<watch::Receiver<ConnectionState>>,
    /// Whether the outbox can record its outcomes (in memory: the database may be failing).
    pub outbox: OutboxHealth,
    /// The server's own counters (connections open, refused, timed out).
    pub server: Arc<ServerStats>,
}

/// Twilio's callbacks are signed with the auth token over the URL Twilio requested.
#[derive(Clone)]
pub struct TwilioHooks {
    pub auth_token: SecretString,
    pub public_url: url::Url,
}

/// An error answer: `{"error": {"code": "...", "message": "..."}}`, so callers branch on a
/// code and show the message.
pub struct Problem {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl Problem {
    pub fn new(status: StatusCode, code: &'static str, message: String) -> Self {
        Self {
            status,
            code,
            message,
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(json!({ "error": { "code": self.code, "message": self.message } })),
        )
            .into_response()
    }
}
