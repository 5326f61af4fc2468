//! The outbox side of the deliveries table: claiming the next delivery to send, recording
//! what happened, and queueing relaunches. SQLite has no `SKIP LOCKED`; there is one
//! dispatcher per database (the instance lock), and a claim is one guarded `UPDATE`.

use relay_domain::{CarrierId, DeliveryStatus, OrderId};
use sqlx::AssertSqlSafe;

use super::orders::{FAN_OUT_SQL, count_batch};
use super::{FanOut, Store, StoreError};

/// A delivery the dispatcher has claimed: it is `sending` in the database before the channel
/// is asked anything.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Claim {
    pub id: i64,
    pub order_id: i64,
    pub carrier_id: i64,
    pub carrier_name: String,
    pub phone: String,
    pub attempts: i64,
    /// The message id planned by an earlier attempt: a retry reuses it, so a message that did
    /// reach WhatsApp is not delivered twice.
    pub message_id: Option<String>,
}

impl Claim {
    pub fn order(&self) -> OrderId {
        OrderId(self.order_id)
    }

    pub fn carrier(&self) -> CarrierId {
        CarrierId(self.carrier_id)
    }
}

/// Who a manual relaunch is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelaunchMode {
    /// Eligible carriers that do not have the order yet (never sent, failed, interrupted,
    /// or validated since the broadcast).
    Missing,
    /// Every eligible carrier.
    All,
}

const CLAIM_SQL: &str = "
UPDATE deliveries
SET status = 'sending', attempts = attempts + 1, updated_at = ?2
WHERE id = (SELECT id FROM deliveries
            WHERE status = 'queued' AND next_attempt_at <= ?2 AND order_id > ?1
            ORDER BY order_id, id LIMIT 1)
  -- A pause that lands between the dispatcher's check and this claim still holds.
  AND NOT EXISTS (SELECT 1 FROM relay_state WHERE key = 'paused_by_staff')
RETURNING id, order_id, carrier_id, carrier_name, phone, attempts, message_id";

impl Store {
    /// After an abrupt stop, a delivery left `sending` may or may not have reached WhatsApp.
    /// It is marked `interrupted`, shown, and never resent automatically: a missing message
    /// can be relaunched by hand, a duplicate cannot be taken back.
    pub async fn interrupt_in_flight(&self, now: i64) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE deliveries SET status = 'interrupted', updated_at = ?,
                    error = 'envoi interrompu (arrêt brutal du relais pendant l''envoi)'
             WHERE status = 'sending'",
        )
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// Claims the next due delivery, taking orders in turn: the first order after `after`
    /// that has something due, wrapping around. So a new order is served within one round,
    /// and a 10,000-carrier order never starves the ones that follow it.
    pub async fn claim_next(
        &self,
        after: Option<OrderId>,
        now: i64,
    ) -> Result<Option<Claim>, StoreError> {
        let after = after.map_or(i64::MIN, |o| o.0);
        let claim: Option<Claim> = sqlx::query_as(CLAIM_SQL)
            .bind(after)
            .bind(now)
            .fetch_optional(&self.pool)
            .await?;
        if claim.is_some() || after == i64::MIN {
            return Ok(claim);
        }
        Ok(sqlx::query_as(CLAIM_SQL)
            .bind(i64::MIN)
            .bind(now)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// When the next queued delivery falls due (unix ms), if any is queued.
    pub async fn next_due_at(&self) -> Result<Option<i64>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT MIN(next_attempt_at) FROM deliveries WHERE status = 'queued'",
        )
        .fetch_one(&self.pool)
        .await?)
    }

    pub async fn queue_depth(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM deliveries WHERE status IN ('queued', 'sending')",
        )
        .fetch_one(&self.pool)
        .await?)
    }

    /// Records a send the channel accepted, then applies any status report that overtook it.
    pub async fn mark_sent(
        &self,
        id: i64,
        message_id: Option<&str>,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE deliveries SET status = 'sent', message_id = COALESCE(?, message_id), sent_at = ?, updated_at = ?,
                    error = NULL, error_code = NULL
             WHERE id = ? AND status = 'sending'",
        )
        .bind(message_id)
        .bind(now)
        .bind(now)
        .bind(id)
        .execute(&self.pool)
        .await?;
        if let Some(message_id) = message_id {
            self.apply_early_reports(message_id, now).await?;
        }
        Ok(())
    }

    /// Stores the id the channel chose for the message about to be sent, before the send, so
    /// its receipts find the delivery whatever happens to the relay meanwhile.
    pub async fn plan_message_id(&self, id: i64, message_id: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE deliveries SET message_id = ? WHERE id = ? AND status = 'sending'")
            .bind(message_id)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Records a send whose fate is unknown (the provider may have taken it): `uncertain`,
    /// never resent automatically; a report naming its message id settles it.
    pub async fn mark_uncertain(
        &self,
        id: i64,
        error: &str,
        message_id: Option<&str>,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE deliveries SET status = 'uncertain', error = ?,
                    message_id = COALESCE(?, message_id), updated_at = ?
             WHERE id = ? AND status = 'sending'",
        )
        .bind(error)
        .bind(message_id)
        .bind(now)
        .bind(id)
        .execute(&self.pool)
        .await?;
        if let Some(message_id) = message_id {
            self.apply_early_reports(message_id, now).await?;
        }
        Ok(())
    }

    /// Records a final outcome other than success (failed, invalid_number, not_on_whatsapp,
    /// skipped).
    pub async fn mark_final(
        &self,
        id: i64,
        status: DeliveryStatus,
        error: &str,
        error_code: Option<&str>,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE deliveries SET status = ?, error = ?, error_code = ?, updated_at = ?
             WHERE id = ? AND status = 'sending'",
        )
        .bind(status.as_str())
        .bind(error)
        .bind(error_code)
        .bind(now)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Puts a delivery back in the queue, due at `next_attempt_at`. A transient failure of the
    /// delivery counts as an attempt; an account that cannot send (`count_attempt = false`)
    /// does not use up the delivery's attempts.
    pub async fn reschedule(
        &self,
        id: i64,
        error: &str,
        error_code: Option<&str>,
        next_attempt_at: i64,
        count_attempt: bool,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE deliveries SET status = 'queued', error = ?, error_code = ?,
                    next_attempt_at = ?, updated_at = ?,
                    attempts = CASE WHEN ? THEN attempts ELSE attempts - 1 END
             WHERE id = ? AND status = 'sending'",
        )
        .bind(error)
        .bind(error_code)
        .bind(next_attempt_at)
        .bind(now)
        .bind(count_attempt)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Queues a manual relaunch of an order as a new batch. Carriers that already have the
    /// order in the queue are never queued twice.
    pub async fn relaunch(
        &self,
        order: OrderId,
        mode: RelaunchMode,
        now: i64,
    ) -> Result<FanOut, StoreError> {
        let mut tx = self.write_transaction().await?;
        let batch: i64 = sqlx::query_scalar(
            "SELECT COALESCE(MAX(batch), 0) + 1 FROM deliveries WHERE order_id = ?",
        )
        .bind(order.0)
        .fetch_one(&mut *tx)
        .await?;
        // An unusable number or an opt-out is recorded once per order, not at every relaunch
        // (each new row would count as one more failure of that relaunch).
        let sql = format!(
            "{FAN_OUT_SQL}
             AND ((c.phone IS NOT NULL AND c.opted_out_at IS NULL)
                  OR NOT EXISTS (SELECT 1 FROM deliveries d
                                 WHERE d.order_id = ?1 AND d.carrier_id = c.id)) {}
             ORDER BY c.id ON CONFLICT DO NOTHING",
            relaunch_filter(mode)
        );
        sqlx::query(AssertSqlSafe(sql))
            .bind(order.0)
            .bind(batch)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        let outcome = count_batch(&mut tx, order, batch).await?;
        tx.commit().await?;
        Ok(outcome)
    }

    /// How many carriers a relaunch would queue, for the confirmation the UI asks for.
    pub async fn relaunch_preview(
        &self,
        order: OrderId,
        mode: RelaunchMode,
    ) -> Result<i64, StoreError> {
        let sql = format!(
            "SELECT COUNT(*) FROM carriers c
             WHERE c.eligible = 1 AND c.phone IS NOT NULL AND c.opted_out_at IS NULL {}",
            relaunch_filter(mode)
        );
        Ok(sqlx::query_scalar(AssertSqlSafe(sql))
            .bind(order.0)
            .fetch_one(&self.pool)
            .await?)
    }
}

/// Which carriers (`c`) a relaunch of order `?1` leaves out: those who have it in the queue,
/// and, by default, those who already received it.
fn relaunch_filter(mode: RelaunchMode) -> &'static str {
    match mode {
        RelaunchMode::All => {
            "AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.order_id = ?1
                 AND d.carrier_id = c.id AND d.status IN ('queued', 'sending'))"
        }
        RelaunchMode::Missing => {
            "AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.order_id = ?1
                 AND d.carrier_id = c.id
                 AND d.status IN ('queued', 'sending', 'sent', 'delivered', 'read'))"
        }
    }
}
