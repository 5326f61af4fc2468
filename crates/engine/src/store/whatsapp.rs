//! What the WhatsApp Web channel keeps in the relay's database: the number check cache, and
//! opt-outs the provider reports (carriers' replies are `replies`).

use super::{Store, StoreError};

/// How long an "is on WhatsApp" answer is trusted.
pub const NUMBER_CHECK_TTL_MS: i64 = 30 * 24 * 3600 * 1000;

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
}
