//! What the WhatsApp Web channel keeps in the relay's database: the number check cache, the
//! carriers' replies, and opt-outs.

use super::{Store, StoreError};

/// How long an "is on WhatsApp" answer is trusted.
pub const NUMBER_CHECK_TTL_MS: i64 = 30 * 24 * 3600 * 1000;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ReplyRow {
    pub id: i64,
    pub phone: String,
    pub carrier_id: Option<i64>,
    pub carrier_name: Option<String>,
    pub text: String,
    pub received_at: i64,
    pub opt_out: bool,
}

/// What storing a reply did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyOutcome {
    /// False when the same message was already stored (redelivery).
    pub stored: bool,
    /// True when this reply opted a carrier out who was not already.
    pub newly_opted_out: bool,
}

impl Store {
    /// Cached answers younger than the TTL, by E.164 number.
    pub async fn cached_number_checks(
        &self,
        phones: &[String],
        now: i64,
    ) -> Result<Vec<(String, bool)>, StoreError> {
        let mut known = Vec::with_capacity(phones.len());
        for phone in phones {
            let row: Option<(bool,)> = sqlx::query_as(
                "SELECT registered FROM wa_numbers WHERE phone = ? AND checked_at > ?",
            )
            .bind(phone)
            .bind(now - NUMBER_CHECK_TTL_MS)
            .fetch_optional(&self.pool)
            .await?;
            if let Some((registered,)) = row {
                known.push((phone.clone(), registered));
            }
        }
        Ok(known)
    }

    pub async fn remember_number_checks(
        &self,
        checks: &[(String, bool)],
        now: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.write_transaction().await?;
        for (phone, registered) in checks {
            sqlx::query(
                "INSERT INTO wa_numbers (phone, registered, checked_at) VALUES (?, ?, ?)
                 ON CONFLICT (phone) DO UPDATE SET registered = excluded.registered,
                                                   checked_at = excluded.checked_at",
            )
            .bind(phone)
            .bind(registered)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Numbers of queued deliveries with no fresh check, in queue order: checked together with
    /// the number about to be sent to, so WhatsApp gets one query per batch, not per message.
    pub async fn queued_phones_unchecked(
        &self,
        limit: u32,
        now: i64,
    ) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT DISTINCT d.phone FROM deliveries d
             LEFT JOIN wa_numbers w ON w.phone = d.phone AND w.checked_at > ?
             WHERE d.status = 'queued' AND w.phone IS NULL
             LIMIT ?",
        )
        .bind(now - NUMBER_CHECK_TTL_MS)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?)
    }

    /// Stores a carrier's message; with `opt_out`, the carrier (found by number) receives no
    /// more broadcasts.
    pub async fn store_reply(
        &self,
        message_id: &str,
        phone: &str,
        text: &str,
        opt_out: bool,
        now: i64,
    ) -> Result<ReplyOutcome, StoreError> {
        let mut tx = self.write_transaction().await?;
        let carrier: Option<(i64,)> =
            sqlx::query_as("SELECT id FROM carriers WHERE phone = ? ORDER BY id LIMIT 1")
                .bind(phone)
                .fetch_optional(&mut *tx)
                .await?;
        let stored = sqlx::query(
            "INSERT INTO replies (message_id, phone, carrier_id, text, received_at, opt_out)
             VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (message_id) DO NOTHING",
        )
        .bind(message_id)
        .bind(phone)
        .bind(carrier.map(|c| c.0))
        .bind(text)
        .bind(now)
        .bind(opt_out)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        let newly_opted_out = if stored && opt_out {
            sqlx::query(
                "UPDATE carriers SET opted_out_at = ? WHERE phone = ? AND opted_out_at IS NULL",
            )
            .bind(now)
            .bind(phone)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                > 0
        } else {
            false
        };
        tx.commit().await?;
        Ok(ReplyOutcome {
            stored,
            newly_opted_out,
        })
    }

    /// The carrier at `phone` receives no more broadcasts (the provider says they opted out);
    /// true when they had not already.
    pub async fn opt_out_phone(&self, phone: &str, now: i64) -> Result<bool, StoreError> {
        Ok(sqlx::query(
            "UPDATE carriers SET opted_out_at = ? WHERE phone = ? AND opted_out_at IS NULL",
        )
        .bind(now)
        .bind(phone)
        .execute(&self.pool)
        .await?
        .rows_affected()
            > 0)
    }

    /// Newest first.
    pub async fn replies(&self, limit: u32) -> Result<Vec<ReplyRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT r.id, r.phone, r.carrier_id, c.name AS carrier_name, r.text, r.received_at,
                    r.opt_out
             FROM replies r LEFT JOIN carriers c ON c.id = r.carrier_id
             ORDER BY r.id DESC LIMIT ?",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?)
    }
}
