//! The outbox side of the deliveries table: claiming the next delivery to send, recording
//! what happened, and queueing relaunches. SQLite has no `SKIP LOCKED`; there is one
//! dispatcher per database (the instance lock), and a claim is one guarded `UPDATE`.
//!
//! Every write here is checked: the claim's `UPDATE … RETURNING` is read to its end, so the
//! error of its commit (a full disk, a lock held past the busy timeout) reaches the caller
//! instead of being dropped with the statement; an outcome must land on exactly the claimed
//! row, else it is an error the dispatcher retries (see [`Outcome`]).

use relay_domain::{CarrierId, ChannelKind, DeliveryStatus, OrderId, SkipReason};
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

/// What became of one claimed delivery, as the dispatcher records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The channel accepted the message.
    Sent { message_id: Option<String> },
    /// The provider may have taken it: recorded `uncertain`, never resent automatically.
    Uncertain {
        reason: String,
        message_id: Option<String>,
    },
    /// Settled without success: `failed`, `invalid_number`, `not_on_whatsapp` or `skipped`.
    Final {
        status: DeliveryStatus,
        reason: String,
        code: Option<String>,
    },
    /// Back in the queue, due at `next_attempt_at` (unix ms). `count_attempt` is false when
    /// the account, not the delivery, could not send: the delivery's attempts are not used up.
    Retry {
        reason: String,
        code: Option<String>,
        next_attempt_at: i64,
        count_attempt: bool,
    },
}

impl Outcome {
    /// The status the row ends with when this outcome is written.
    fn status(&self) -> DeliveryStatus {
        match self {
            Self::Sent { .. } => DeliveryStatus::Sent,
            Self::Uncertain { .. } => DeliveryStatus::Uncertain,
            Self::Final { status, .. } => *status,
            Self::Retry { .. } => DeliveryStatus::Queued,
        }
    }

    fn message_id(&self) -> Option<&str> {
        match self {
            Self::Sent { message_id } | Self::Uncertain { message_id, .. } => message_id.as_deref(),
            Self::Final { .. } | Self::Retry { .. } => None,
        }
    }
}

/// How many carriers each kind of relaunch of an order would queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelaunchCounts {
    /// [`RelaunchMode::Missing`]: those who do not have it.
    pub missing: i64,
    /// Those a default relaunch leaves out because they may have it (`interrupted`,
    /// `uncertain`): [`RelaunchMode::MissingAndDoubtful`] queues `missing + doubtful`.
    pub doubtful: i64,
    /// [`RelaunchMode::All`].
    pub all: i64,
}

/// Who a manual relaunch is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelaunchMode {
    /// Eligible carriers that do not have the order yet: never sent, failed, or validated
    /// since the broadcast. Carriers whose delivery is in doubt (`interrupted`, `uncertain`:
    /// they may have it) are left out.
    Missing,
    /// [`RelaunchMode::Missing`] and, on top, the carriers in doubt: staff chose to risk a
    /// second copy rather than a missing one.
    MissingAndDoubtful,
    /// Every eligible carrier.
    All,
}

const CLAIM_SQL: &str = "
UPDATE deliveries
SET status = 'sending', attempts = attempts + 1, updated_at = ?2, channel = ?3
WHERE id = (SELECT d.id FROM deliveries d
            WHERE d.status = 'queued' AND d.next_attempt_at <= ?2 AND d.order_id > ?1
              -- An order CamionBack closed sends nothing more, whatever is still queued (a
              -- retry written back after the close): only a relaunch staff forced.
              AND (d.forced = 1 OR NOT EXISTS (SELECT 1 FROM order_closures oc
                                               WHERE oc.order_id = d.order_id))
            ORDER BY d.order_id, d.id LIMIT 1)
  -- A pause that lands between the dispatcher's check and this claim still holds.
  AND NOT EXISTS (SELECT 1 FROM relay_state WHERE key = 'paused_by_staff')
RETURNING id, order_id, carrier_id, carrier_name, phone, attempts, message_id";

impl Store {
    /// A delivery found `sending` at start-up was being sent when the relay stopped before
    /// recording the outcome (killed, or its database refused the write until the shutdown
    /// deadline): it may or may not have reached WhatsApp. It is marked `interrupted`, shown,
    /// and never resent automatically: a missing message can be relaunched by hand, a
    /// duplicate cannot be taken back. Its message id, when one was planned, is kept, so a
    /// later report settles it.
    pub async fn interrupt_in_flight(&self, now: i64) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE deliveries SET status = 'interrupted', updated_at = ?, error_code = NULL,
                    error = 'envoi interrompu : le relais s''est arrêté avant d''en enregistrer le résultat (arrêt brutal, ou base de données indisponible) ; le message est peut-être parti'
             WHERE status = 'sending'",
        )
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// Claims the next due delivery, taking orders in turn: the first order after `after`
    /// that has something due, wrapping around. So a new order is served within one round,
    /// and a 10,000-carrier order never starves the ones that follow it. The delivery
    /// remembers `channel`, the one about to send it, which its error codes are read with.
    pub async fn claim_next(
        &self,
        after: Option<OrderId>,
        now: i64,
        channel: Option<ChannelKind>,
    ) -> Result<Option<Claim>, StoreError> {
        let after = after.map_or(i64::MIN, |o| o.0);
        let claim = self.claim_after(after, now, channel).await?;
        if claim.is_some() || after == i64::MIN {
            return Ok(claim);
        }
        self.claim_after(i64::MIN, now, channel).await
    }

    /// One claim statement, read to its end: `fetch_optional` would stop at the first row and
    /// reset the statement, and the error of the commit that reset runs (a full disk) would be
    /// lost, leaving the row `queued` while the caller sends it.
    async fn claim_after(
        &self,
        after: i64,
        now: i64,
        channel: Option<ChannelKind>,
    ) -> Result<Option<Claim>, StoreError> {
        let claimed: Vec<Claim> = sqlx::query_as(CLAIM_SQL)
            .bind(after)
            .bind(now)
            .bind(channel.map(ChannelKind::as_str))
            .fetch_all(&self.pool)
            .await?;
        Ok(claimed.into_iter().next())
    }

    /// When the next queued delivery falls due (unix ms), if any is queued.
    pub async fn next_due_at(&self) -> Result<Option<i64>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT MIN(d.next_attempt_at) FROM deliveries d
             WHERE d.status = 'queued'
               AND (d.forced = 1 OR NOT EXISTS (SELECT 1 FROM order_closures oc
                                                WHERE oc.order_id = d.order_id))",
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

    /// Records what became of the claimed delivery `id`. The write must land on that row,
    /// still `sending`: when it does not, it is an error ([`StoreError::NotRecorded`]) for
    /// the dispatcher to retry, never a silent no-op. Writing the same outcome again after it
    /// landed is harmless, and a row a status report settled meanwhile (WhatsApp said `sent`,
    /// `delivered`, `read` or `failed` before the send returned) keeps the report's status,
    /// gaining only a message id it lacked. A `sent` or `uncertain` outcome with a message id
    /// then applies the reports that overtook it.
    pub async fn record_outcome(
        &self,
        id: i64,
        outcome: &Outcome,
        now: i64,
    ) -> Result<(), StoreError> {
        let done = match outcome {
            // `queued` too: a row still queued here is one whose claim did not commit; the
            // send happened all the same and must be recorded on it.
            Outcome::Sent { message_id } => sqlx::query(
                "UPDATE deliveries SET status = 'sent', message_id = COALESCE(?, message_id),
                        sent_at = ?, updated_at = ?, error = NULL, error_code = NULL
                 WHERE id = ? AND status IN ('sending', 'queued')",
            )
            .bind(message_id.as_deref())
            .bind(now)
            .bind(now)
            .bind(id),
            Outcome::Uncertain { reason, message_id } => sqlx::query(
                "UPDATE deliveries SET status = 'uncertain', error = ?, error_code = NULL,
                        message_id = COALESCE(?, message_id), updated_at = ?
                 WHERE id = ? AND status IN ('sending', 'queued')",
            )
            .bind(reason)
            .bind(message_id.as_deref())
            .bind(now)
            .bind(id),
            Outcome::Final {
                status,
                reason,
                code,
            } => sqlx::query(
                "UPDATE deliveries SET status = ?, error = ?, error_code = ?, updated_at = ?
                 WHERE id = ? AND status IN ('sending', 'queued')",
            )
            .bind(status.as_str())
            .bind(reason)
            .bind(code.as_deref())
            .bind(now)
            .bind(id),
            Outcome::Retry {
                reason,
                code,
                next_attempt_at,
                count_attempt,
            } => sqlx::query(
                // A retry of an order closed while its send was in flight is not queued again:
                // it ends `skipped` like the order's other deliveries.
                "UPDATE deliveries SET
                        status = CASE WHEN closed THEN 'skipped' ELSE 'queued' END,
                        error = CASE WHEN closed THEN ?1 ELSE ?2 END,
                        error_code = CASE WHEN closed THEN NULL ELSE ?3 END,
                        next_attempt_at = ?4, updated_at = ?5,
                        attempts = CASE WHEN ?6 THEN attempts ELSE attempts - 1 END
                 FROM (SELECT forced = 0 AND EXISTS (SELECT 1 FROM order_closures oc
                                                     WHERE oc.order_id = deliveries.order_id)
                              AS closed
                       FROM deliveries WHERE id = ?7)
                 WHERE id = ?7 AND status = 'sending'",
            )
            .bind(SkipReason::OrderClosed.as_str())
            .bind(reason)
            .bind(code.as_deref())
            .bind(next_attempt_at)
            .bind(now)
            .bind(*count_attempt)
            .bind(id),
        }
        .execute(&self.pool)
        .await?;
        if done.rows_affected() != 1 {
            self.check_settled(id, outcome).await?;
        }
        if let Some(message_id) = outcome.message_id() {
            self.apply_early_reports(message_id, now).await?;
        }
        Ok(())
    }

    /// Why an outcome changed no row: it may already be there (written by an earlier try whose
    /// answer was lost), or a report may have settled the row first; anything else means the
    /// outcome is not recorded.
    async fn check_settled(&self, id: i64, outcome: &Outcome) -> Result<(), StoreError> {
        let row: Option<(String, Option<String>)> =
            sqlx::query_as("SELECT status, message_id FROM deliveries WHERE id = ?")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        let Some((found, stored_id)) = row else {
            return Err(StoreError::NotRecorded {
                id,
                found: "absente".into(),
            });
        };
        let found_status = super::parse_status(&found)?;
        let by_report = matches!(
            found_status,
            DeliveryStatus::Sent
                | DeliveryStatus::Delivered
                | DeliveryStatus::Read
                | DeliveryStatus::Failed
        );
        // A retry written after the order closed ends `skipped` instead (see the retry's write).
        let closed_retry =
            matches!(outcome, Outcome::Retry { .. }) && found_status == DeliveryStatus::Skipped;
        if found_status != outcome.status() && !by_report && !closed_retry {
            return Err(StoreError::NotRecorded { id, found });
        }
        if let (None, Some(message_id)) = (stored_id, outcome.message_id()) {
            let done = sqlx::query(
                "UPDATE deliveries SET message_id = ? WHERE id = ? AND message_id IS NULL",
            )
            .bind(message_id)
            .bind(id)
            .execute(&self.pool)
            .await?;
            if done.rows_affected() != 1 {
                return Err(StoreError::NotRecorded { id, found });
            }
        }
        Ok(())
    }

    /// Records a send the channel accepted ([`Outcome::Sent`]).
    pub async fn mark_sent(
        &self,
        id: i64,
        message_id: Option<&str>,
        now: i64,
    ) -> Result<(), StoreError> {
        let outcome = Outcome::Sent {
            message_id: message_id.map(str::to_string),
        };
        self.record_outcome(id, &outcome, now).await
    }

    /// Stores the id the channel chose for the message about to be sent, before the send, so
    /// its receipts find the delivery whatever happens to the relay meanwhile. Checked like an
    /// outcome: a send must not start while its id is not stored.
    pub async fn plan_message_id(&self, id: i64, message_id: &str) -> Result<(), StoreError> {
        let done = sqlx::query(
            "UPDATE deliveries SET message_id = ? WHERE id = ? AND status IN ('sending', 'queued')",
        )
        .bind(message_id)
        .bind(id)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 1 {
            return Ok(());
        }
        let found: Option<String> =
            sqlx::query_scalar("SELECT status FROM deliveries WHERE id = ?")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        Err(StoreError::NotRecorded {
            id,
            found: found.unwrap_or_else(|| "absente".into()),
        })
    }

    /// Records a send whose fate is unknown ([`Outcome::Uncertain`]).
    pub async fn mark_uncertain(
        &self,
        id: i64,
        error: &str,
        message_id: Option<&str>,
        now: i64,
    ) -> Result<(), StoreError> {
        let outcome = Outcome::Uncertain {
            reason: error.to_string(),
            message_id: message_id.map(str::to_string),
        };
        self.record_outcome(id, &outcome, now).await
    }

    /// Records a final outcome other than success ([`Outcome::Final`]).
    pub async fn mark_final(
        &self,
        id: i64,
        status: DeliveryStatus,
        error: &str,
        error_code: Option<&str>,
        now: i64,
    ) -> Result<(), StoreError> {
        let outcome = Outcome::Final {
            status,
            reason: error.to_string(),
            code: error_code.map(str::to_string),
        };
        self.record_outcome(id, &outcome, now).await
    }

    /// Puts a delivery back in the queue ([`Outcome::Retry`]).
    pub async fn reschedule(
        &self,
        id: i64,
        error: &str,
        error_code: Option<&str>,
        next_attempt_at: i64,
        count_attempt: bool,
        now: i64,
    ) -> Result<(), StoreError> {
        let outcome = Outcome::Retry {
            reason: error.to_string(),
            code: error_code.map(str::to_string),
            next_attempt_at,
            count_attempt,
        };
        self.record_outcome(id, &outcome, now).await
    }

    /// Queues a manual relaunch of an order as a new batch. Carriers that already have the
    /// order in the queue are never queued twice. An order CamionBack closed queues nothing
    /// (its rows could never be sent): staff's override is [`Store::relaunch_forced`].
    pub async fn relaunch(
        &self,
        order: OrderId,
        mode: RelaunchMode,
        now: i64,
    ) -> Result<FanOut, StoreError> {
        self.relaunch_batch(order, mode, false, now).await
    }

    /// [`Store::relaunch`] of an order even when it is closed: staff decided to send it
    /// anyway. Its rows are sent despite the closure, and a later close notice leaves them.
    pub async fn relaunch_forced(
        &self,
        order: OrderId,
        mode: RelaunchMode,
        now: i64,
    ) -> Result<FanOut, StoreError> {
        self.relaunch_batch(order, mode, true, now).await
    }

    async fn relaunch_batch(
        &self,
        order: OrderId,
        mode: RelaunchMode,
        forced: bool,
        now: i64,
    ) -> Result<FanOut, StoreError> {
        let mut tx = self.write_transaction().await?;
        let closed: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM order_closures WHERE order_id = ?)")
                .bind(order.0)
                .fetch_one(&mut *tx)
                .await?;
        if closed && !forced {
            return Ok(FanOut::default());
        }
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
        if forced {
            sqlx::query("UPDATE deliveries SET forced = 1 WHERE order_id = ? AND batch = ?")
                .bind(order.0)
                .bind(batch)
                .execute(&mut *tx)
                .await?;
        }
        let outcome = count_batch(&mut tx, order, batch).await?;
        tx.commit().await?;
        Ok(outcome)
    }

    /// What each kind of relaunch would queue, for the confirmation staff are asked for.
    pub async fn relaunch_counts(&self, order: OrderId) -> Result<RelaunchCounts, StoreError> {
        let missing = self.relaunch_preview(order, RelaunchMode::Missing).await?;
        let with_doubtful = self
            .relaunch_preview(order, RelaunchMode::MissingAndDoubtful)
            .await?;
        Ok(RelaunchCounts {
            missing,
            doubtful: (with_doubtful - missing).max(0),
            all: self.relaunch_preview(order, RelaunchMode::All).await?,
        })
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
/// and, unless everyone is asked for, those who received it and (by default) those who may
/// have (`interrupted`, `uncertain`).
fn relaunch_filter(mode: RelaunchMode) -> &'static str {
    match mode {
        RelaunchMode::All => {
            "AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.order_id = ?1
                 AND d.carrier_id = c.id AND d.status IN ('queued', 'sending'))"
        }
        RelaunchMode::MissingAndDoubtful => {
            "AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.order_id = ?1
                 AND d.carrier_id = c.id
                 AND d.status IN ('queued', 'sending', 'sent', 'delivered', 'read'))"
        }
        RelaunchMode::Missing => {
            "AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.order_id = ?1
                 AND d.carrier_id = c.id
                 AND d.status IN ('queued', 'sending', 'sent', 'delivered', 'read',
                                  'interrupted', 'uncertain'))"
        }
    }
}
