//! How the CLI shows history, carriers and errors: aligned text for people, JSON for scripts.

use std::time::Duration;

use chrono::{Local, TimeZone, Utc};
use relay_domain::{CarrierStatus, DeliveryStatus, mask_phone};
use relay_engine::store::{CarrierRow, ForwardState, HistoryRow, OrderCounters, ReplyRow};
use serde_json::{Value, json};

fn rfc3339(ms: i64) -> Value {
    Utc.timestamp_millis_opt(ms)
        .single()
        .map_or(Value::Null, |t| Value::String(t.to_rfc3339()))
}

fn local(ms: Option<i64>) -> String {
    ms.and_then(|ms| Local.timestamp_millis_opt(ms).single())
        .map_or_else(
            || "—".to_string(),
            |t| t.format("%d/%m/%Y %H:%M:%S").to_string(),
        )
}

/// An error and its causes on one line, each said once. Libraries often put their cause in
/// their own message *and* return it as the source (sqlx: "base de données : error returned
/// from database: (code: 11) …" then the same SQLite error again), so anyhow's `{:#}` printed
/// the same words up to three times; a cause already in the text is left out.
pub fn error_text(err: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in err.chain() {
        let said = cause.to_string();
        if said.is_empty() || text.contains(&said) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(" : ");
        }
        text.push_str(&said);
    }
    text
}

/// A `sent` message WhatsApp never confirmed as delivered after `after`: shown, not failed,
/// not resent (the phone may be off; the number may not be on WhatsApp).
pub fn unconfirmed(row: &HistoryRow, after: Duration) -> bool {
    let limit =
        Utc::now().timestamp_millis() - i64::try_from(after.as_millis()).unwrap_or(i64::MAX);
    row.status == DeliveryStatus::Sent && row.sent_at.is_some_and(|at| at < limit)
}

pub fn history_json(rows: &[HistoryRow], unconfirmed_after: Duration) -> Value {
    Value::Array(
        rows.iter()
            .map(|r| {
                json!({
                    "order_id": r.order_id,
                    "order_reference": r.order_reference,
                    "carrier_id": r.carrier_id,
                    "carrier_name": r.carrier_name,
                    "phone": r.phone,
                    "status": r.status.as_str(),
                    "attempts": r.attempts,
                    "error": r.error,
                    "error_code": r.error_code,
                    // What a known code means and what to do, in French; null for an unknown
                    // code (`error` then says it in the provider's words).
                    "error_help": r.error_help().map(|help| json!({
                        "explanation": help.explanation,
                        "action": help.action,
                    })),
                    "channel": r.channel.map(|c| c.as_str()),
                    "message_id": r.message_id,
                    "batch": r.batch,
                    "queued_at": rfc3339(r.queued_at),
                    "sent_at": r.sent_at.map_or(Value::Null, rfc3339),
                    "updated_at": rfc3339(r.updated_at),
                    "unconfirmed": unconfirmed(r, unconfirmed_after),
                })
            })
            .collect(),
    )
}

pub fn print_history(rows: &[HistoryRow], unconfirmed_after: Duration) {
    if rows.is_empty() {
        println!("Aucun envoi.");
        return;
    }
    println!(
        "{:<19}  {:<24}  {:<14}  {:<14}  {:<15}  {:>3}  ERREUR",
        "DATE D'ENVOI", "TRANSPORTEUR", "NUMÉRO", "COMMANDE", "STATUT", "ESS"
    );
    for r in rows {
        println!(
            "{:<19}  {:<24}  {:<14}  {:<14}  {:<15}  {:>3}  {}",
            local(r.sent_at.or(Some(r.queued_at))),
            truncate(&r.carrier_name, 24),
            r.phone,
            truncate(&r.order_reference, 14),
            if unconfirmed(r, unconfirmed_after) {
                "sent ?"
            } else {
                r.status.as_str()
            },
            r.attempts,
            r.error_text()
        );
    }
}

pub fn carriers_json(rows: &[CarrierRow]) -> Value {
    Value::Array(
        rows.iter()
            .map(|c| {
                json!({
                    "id": c.id,
                    "name": c.name,
                    "phone": c.phone,
                    "phone_raw": c.phone_raw,
                    "phone_error": c.phone_error,
                    "statut": c.statut,
                    "eligible": c.eligible,
                    "opted_out": c.opted_out_at.is_some(),
                    "synced_at": rfc3339(c.synced_at),
                    "last_sent_at": c.last_sent_at.map_or(Value::Null, rfc3339),
                })
            })
            .collect(),
    )
}

pub fn print_carriers(rows: &[CarrierRow]) {
    if rows.is_empty() {
        println!("Aucun transporteur synchronisé (lancez « camionback-relay carriers sync »).");
        return;
    }
    println!(
        "{:>6}  {:<24}  {:<14}  {:<12}  {:<19}",
        "ID", "NOM", "NUMÉRO", "STATUT", "DERNIER ENVOI"
    );
    for c in rows {
        let status = if c.eligible {
            CarrierStatus::Validated.label().to_string()
        } else {
            c.statut.clone()
        };
        println!(
            "{:>6}  {:<24}  {:<14}  {:<12}  {:<19}{}",
            c.id,
            truncate(&c.name, 24),
            c.phone
                .clone()
                .unwrap_or_else(|| format!("invalide ({})", mask_phone(&c.phone_raw))),
            status,
            local(c.last_sent_at),
            if c.opted_out_at.is_some() {
                "  désinscrit"
            } else {
                ""
            }
        );
    }
}

fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let mut cut: String = text.chars().take(max - 1).collect();
        cut.push('…');
        cut
    }
}

pub fn orders_json(rows: &[OrderCounters]) -> Value {
    Value::Array(
        rows.iter()
            .map(|r| {
                json!({
                    "order_id": r.order_id,
                    "order_reference": r.order_reference,
                    "total": r.total,
                    "pending": r.pending,
                    "sent": r.sent,
                    "delivered": r.delivered,
                    "read": r.read,
                    "failed": r.failed,
                    "invalid_number": r.invalid_number,
                    "not_on_whatsapp": r.not_on_whatsapp,
                    "skipped": r.skipped,
                    "doubtful": r.doubtful,
                    "closed": r.closed,
                    "closed_statut": r.closed_statut,
                    "avoided": r.avoided,
                })
            })
            .collect(),
    )
}

pub fn print_orders(rows: &[OrderCounters]) {
    if rows.is_empty() {
        println!("Aucune commande.");
        return;
    }
    for r in rows {
        println!(
            "{}  {} envois : {} en attente, {} envoyés, {} remis, {} lus, {} échoués, {} numéros invalides, {} pas sur WhatsApp, {} ignorés, {} en doute",
            r.order_reference,
            r.total,
            r.pending,
            r.sent,
            r.delivered,
            r.read,
            r.failed,
            r.invalid_number,
            r.not_on_whatsapp,
            r.skipped,
            r.doubtful
        );
        if r.closed {
            println!(
                "    Commande pourvue (statut « {} ») — {} envoi(s) évité(s)",
                r.closed_statut.as_deref().unwrap_or_default(),
                r.avoided
            );
        }
    }
}

pub fn replies_json(rows: &[ReplyRow]) -> Value {
    Value::Array(
        rows.iter()
            .map(|r| {
                json!({
                    "carrier_id": r.carrier_id,
                    "carrier_name": r.carrier_name,
                    "phone": r.phone,
                    "user_id": r.user_id,
                    "text": r.text,
                    "interested": r.interested,
                    "opt_out": r.opt_out,
                    "order_id": r.order_id,
                    "order_reference": r.order_reference,
                    "attributed_by": r.attributed_by.map(|a| a.as_str()),
                    "channel": r.channel,
                    "message_id": r.message_id,
                    "received_at": rfc3339(r.received_at),
                    "forwarded": r.forwarded.as_str(),
                    "forward_error": r.forward_error,
                })
            })
            .collect(),
    )
}

pub fn print_replies(rows: &[ReplyRow]) {
    if rows.is_empty() {
        println!("Aucun message reçu.");
        return;
    }
    for r in rows {
        let about = r
            .order_reference
            .as_deref()
            .map(|reference| format!("  [réponse à {reference}, {}]", r.forwarded.label()))
            .unwrap_or_default();
        let refused = match (&r.forwarded, &r.forward_error) {
            (ForwardState::GivenUp, Some(error)) => format!("\n    ! {error}"),
            _ => String::new(),
        };
        println!(
            "{}  {} ({}){}{}{}\n    {}{}",
            local(Some(r.received_at)),
            r.carrier_name.as_deref().unwrap_or("inconnu"),
            r.phone,
            about,
            if r.interested { "  [intéressé]" } else { "" },
            if r.opt_out { "  [désinscription]" } else { "" },
            r.text.replace('\n', "\n    "),
            refused
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(status: &str, sent_hours_ago: Option<i64>) -> HistoryRow {
        let now = Utc::now().timestamp_millis();
        HistoryRow {
            id: 1,
            order_id: 1,
            order_reference: "CMD-1".into(),
            ville_depart: "Casablanca".into(),
            ville_arrivee: "Marrakech".into(),
            carrier_id: 1,
            carrier_name: "T".into(),
            phone: "+212612345601".into(),
            status: status.parse().expect("known status"),
            attempts: 1,
            error: None,
            error_code: None,
            channel: None,
            message_id: Some("id".into()),
            batch: 0,
            queued_at: now,
            sent_at: sent_hours_ago.map(|h| now - h * 3_600_000),
            updated_at: now,
        }
    }

    #[test]
    fn a_sent_message_without_receipt_after_the_limit_is_unconfirmed_and_nothing_else_is() {
        let day = Duration::from_secs(24 * 3600);
        assert!(unconfirmed(&row("sent", Some(25)), day));
        assert!(
            !unconfirmed(&row("sent", Some(23)), day),
            "still within the limit"
        );
        assert!(
            !unconfirmed(&row("delivered", Some(48)), day),
            "a receipt came"
        );
        assert!(!unconfirmed(&row("failed", Some(48)), day));
        let json = history_json(&[row("sent", Some(30))], day);
        assert_eq!(json[0]["unconfirmed"], true);
    }

    /// Like `StoreError::Database`: its cause both in its message and as its source.
    #[derive(Debug)]
    struct Outer(Inner);

    #[derive(Debug)]
    struct Inner;

    impl std::fmt::Display for Outer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "base de données : {}", self.0)
        }
    }

    impl std::fmt::Display for Inner {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("(code: 11) database disk image is malformed")
        }
    }

    impl std::error::Error for Outer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    impl std::error::Error for Inner {}

    #[test]
    fn each_cause_is_said_once() {
        let err = anyhow::Error::new(Outer(Inner)).context("ouverture impossible");
        assert_eq!(
            error_text(&err),
            "ouverture impossible : base de données : (code: 11) database disk image is malformed"
        );
        let plain = anyhow::anyhow!("commande inconnue");
        assert_eq!(error_text(&plain), "commande inconnue");
    }
}
