//! The relay's HTTP server: the two webhooks, `/healthz` and `/metrics`. Handlers live with
//! what they serve (`intake::webhook`, `channel::cloud_api::webhook`); this module wires them.
//! What the handlers share (their state, the error answer) is the leaf module [`state`], so
//! none of them imports the router.

pub(crate) mod state;

use std::fmt::Write as _;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use relay_domain::DeliveryStatus;
use serde_json::json;

use crate::channel::whatsapp_web::ConnectionState;
use crate::dispatcher::WriteFailure;

use crate::channel::cloud_api::webhook as cloud_webhook;
use crate::channel::twilio::{self, webhook as twilio_webhook};
use crate::intake::webhook as order_webhook;
use crate::server::ServerStats;
use crate::store::{StateKey, Store, StoreError};

pub(crate) use state::HttpState;
use state::Problem;

pub fn router(state: HttpState) -> Router {
    Router::new()
        .route("/webhooks/orders", post(order_webhook::receive))
        .route(
            "/webhooks/whatsapp",
            get(cloud_webhook::verify).post(cloud_webhook::receive),
        )
        .route(twilio::STATUS_PATH, post(twilio_webhook::status))
        .route(twilio::INCOMING_PATH, post(twilio_webhook::incoming))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

async fn healthz(State(state): State<HttpState>) -> Response {
    let checked = async {
        let depth = state.store.queue_depth().await?;
        let paused = state.store.problem(StateKey::SendingPaused).await?;
        let held = state.store.paused_by_staff_since().await?;
        Ok::<_, StoreError>((depth, paused, held))
    };
    let write_failure = state.outbox.write_failure();
    match checked.await {
        Ok((depth, paused, held)) => {
            // The reason says what to fix, and holds no secret.
            let paused = paused.map(|p| p.text);
            // A relay that cannot record its sends is not healthy, whatever else holds:
            // monitors see a 503 and the reason.
            let code = if write_failure.is_some() {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                StatusCode::OK
            };
            (
                code,
                Json(json!({
                    "status": if write_failure.is_some() { "outbox_write_failing" } else { "ok" },
                    "channel": state.channel,
                    "queue_depth": depth,
                    "sending_paused": paused,
                    "paused_by_staff_since_ms": held,
                    "whatsapp": state.whatsapp.as_ref().map(|w| w.borrow().describe()),
                    "whatsapp_restricted": state.whatsapp.as_ref().map(|w| restriction_json(&w.borrow())),
                    "outbox_write_failing": write_failure.as_ref().map(write_failure_json),
                })),
            )
                .into_response()
        }
        Err(err) => Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "storage_unavailable",
            err.to_string(),
        )
        .into_response(),
    }
}

/// `null` unless WhatsApp forbids new conversations from the number; then until when (ms,
/// `null` when WhatsApp did not say).
fn restriction_json(state: &ConnectionState) -> serde_json::Value {
    match state {
        ConnectionState::Restricted { until, .. } => {
            json!({ "until_ms": until.map(|u| u.timestamp_millis()) })
        }
        _ => serde_json::Value::Null,
    }
}

fn write_failure_json(failure: &WriteFailure) -> serde_json::Value {
    json!({
        "since_ms": failure.since_ms,
        "attempts": failure.attempts,
        "error": failure.error,
        "waiting_for": failure.waiting_for,
    })
}

async fn metrics(State(state): State<HttpState>) -> Response {
    let whatsapp = state.whatsapp.as_ref().map(|w| w.borrow().clone());
    let write_failure = state.outbox.write_failure();
    match render_metrics(&state.store, whatsapp.as_ref(), write_failure.as_ref()).await {
        Ok(mut text) => {
            render_server_metrics(&mut text, &state.server);
            (
                [(
                    header::CONTENT_TYPE,
                    "text/plain; version=0.0.4; charset=utf-8",
                )],
                text,
            )
                .into_response()
        }
        Err(err) => Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "storage_unavailable",
            err.to_string(),
        )
        .into_response(),
    }
}

/// The server's counters, kept in memory since the engine started (unlike the figures read
/// from the database, they restart from 0 with the relay).
fn render_server_metrics(out: &mut String, server: &ServerStats) {
    let _ = writeln!(
        out,
        "# HELP relay_http_connections_open Connections open to the relay's HTTP server."
    );
    let _ = writeln!(out, "# TYPE relay_http_connections_open gauge");
    let _ = writeln!(out, "relay_http_connections_open {}", server.open());
    let _ = writeln!(
        out,
        "# HELP relay_http_connections_refused_total Connections refused since start-up: the connection cap was reached."
    );
    let _ = writeln!(out, "# TYPE relay_http_connections_refused_total counter");
    let _ = writeln!(
        out,
        "relay_http_connections_refused_total {}",
        server.refused()
    );
    let _ = writeln!(
        out,
        "# HELP relay_http_header_timeouts_total Connections closed since start-up because no complete request headers came in time."
    );
    let _ = writeln!(out, "# TYPE relay_http_header_timeouts_total counter");
    let _ = writeln!(
        out,
        "relay_http_header_timeouts_total {}",
        server.header_timeouts()
    );
    let _ = writeln!(
        out,
        "# HELP relay_http_request_timeouts_total Requests answered 408 since start-up: body or handling too slow."
    );
    let _ = writeln!(out, "# TYPE relay_http_request_timeouts_total counter");
    let _ = writeln!(
        out,
        "relay_http_request_timeouts_total {}",
        server.request_timeouts()
    );
}

/// Prometheus text format, computed from the database at each scrape: the history table is
/// the source of truth, so the figures survive restarts and never drift from it.
async fn render_metrics(
    store: &Store,
    whatsapp: Option<&ConnectionState>,
    write_failure: Option<&WriteFailure>,
) -> Result<String, StoreError> {
    let counts = store.status_counts().await?;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# HELP relay_outbox_write_failing 1 while the outbox cannot record its sends (sending stopped)."
    );
    let _ = writeln!(out, "# TYPE relay_outbox_write_failing gauge");
    let _ = writeln!(
        out,
        "relay_outbox_write_failing {}",
        u8::from(write_failure.is_some())
    );
    let _ = writeln!(
        out,
        "# HELP relay_deliveries Deliveries by status (all orders)."
    );
    let _ = writeln!(out, "# TYPE relay_deliveries gauge");
    for status in DeliveryStatus::ALL {
        let count = counts
            .iter()
            .find(|c| c.status == status)
            .map_or(0, |c| c.count);
        let _ = writeln!(out, "relay_deliveries{{status=\"{status}\"}} {count}");
    }
    let _ = writeln!(
        out,
        "# HELP relay_queue_depth Deliveries still owed (queued or sending)."
    );
    let _ = writeln!(out, "# TYPE relay_queue_depth gauge");
    let _ = writeln!(out, "relay_queue_depth {}", store.queue_depth().await?);
    let _ = writeln!(
        out,
        "# HELP relay_eligible_carriers Validated carriers in the last synced list."
    );
    let _ = writeln!(out, "# TYPE relay_eligible_carriers gauge");
    let _ = writeln!(
        out,
        "relay_eligible_carriers {}",
        store.eligible_carrier_count().await?
    );
    let seconds = |ms: Option<i64>| ms.map_or(0.0, |ms| ms as f64 / 1000.0);
    let last_poll = store.get_state_i64(StateKey::LastPollOkAt).await?;
    let _ = writeln!(
        out,
        "# HELP relay_last_poll_timestamp_seconds Last successful poll of the CamionBack API (0: never)."
    );
    let _ = writeln!(out, "# TYPE relay_last_poll_timestamp_seconds gauge");
    let _ = writeln!(
        out,
        "relay_last_poll_timestamp_seconds {}",
        seconds(last_poll)
    );
    let poll_failing = store.problem(StateKey::LastPollError).await?.is_some();
    let _ = writeln!(
        out,
        "# HELP relay_poll_failing 1 while the last poll of the CamionBack API failed."
    );
    let _ = writeln!(out, "# TYPE relay_poll_failing gauge");
    let _ = writeln!(out, "relay_poll_failing {}", u8::from(poll_failing));
    let paused = store.problem(StateKey::SendingPaused).await?.is_some();
    let _ = writeln!(
        out,
        "# HELP relay_sending_paused 1 while the WhatsApp account cannot send (refused token...)."
    );
    let _ = writeln!(out, "# TYPE relay_sending_paused gauge");
    let _ = writeln!(out, "relay_sending_paused {}", u8::from(paused));
    let held = store.paused_by_staff_since().await?.is_some();
    let _ = writeln!(
        out,
        "# HELP relay_paused_by_staff 1 while staff paused sending (app or `camionback-relay pause`)."
    );
    let _ = writeln!(out, "# TYPE relay_paused_by_staff gauge");
    let _ = writeln!(out, "relay_paused_by_staff {}", u8::from(held));
    let last_sync = store.get_state_i64(StateKey::LastCarrierSyncAt).await?;
    let _ = writeln!(
        out,
        "# HELP relay_last_carrier_sync_timestamp_seconds Last successful carrier sync (0: never)."
    );
    let _ = writeln!(
        out,
        "# TYPE relay_last_carrier_sync_timestamp_seconds gauge"
    );
    let _ = writeln!(
        out,
        "relay_last_carrier_sync_timestamp_seconds {}",
        seconds(last_sync)
    );
    if let Some(whatsapp) = whatsapp {
        let _ = writeln!(
            out,
            "# HELP relay_whatsapp_connected 1 while WhatsApp Web is connected."
        );
        let _ = writeln!(out, "# TYPE relay_whatsapp_connected gauge");
        let _ = writeln!(
            out,
            "relay_whatsapp_connected {}",
            u8::from(whatsapp.is_connected())
        );
        let _ = writeln!(
            out,
            "# HELP relay_whatsapp_restricted 1 while WhatsApp forbids new conversations from the number (reach-out time lock)."
        );
        let _ = writeln!(out, "# TYPE relay_whatsapp_restricted gauge");
        let _ = writeln!(
            out,
            "relay_whatsapp_restricted {}",
            u8::from(whatsapp.is_restricted())
        );
        let banned = match whatsapp {
            ConnectionState::Banned { until, .. } => until.timestamp(),
            _ => 0,
        };
        let _ = writeln!(
            out,
            "# HELP relay_whatsapp_banned_until_timestamp_seconds End of a temporary ban (0: not banned)."
        );
        let _ = writeln!(
            out,
            "# TYPE relay_whatsapp_banned_until_timestamp_seconds gauge"
        );
        let _ = writeln!(
            out,
            "relay_whatsapp_banned_until_timestamp_seconds {banned}"
        );
    }
    Ok(out)
}
