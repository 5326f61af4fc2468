//! Status reports from WhatsApp (sent, delivered, read, failed), matched to deliveries by
//! message id. Reports come late, twice, out of order, or before we stored the id: a status
//! only ever moves forward, and an early report waits for its delivery, for a while
//! ([`EARLY_REPORT_MAX_AGE_MS`], [`EARLY_REPORTS_MAX`]).

use relay_domain::DeliveryStatus;

use super::{Store, StoreError, parse_status};

/// How long a report for an unknown message id is kept. The send answer it waits for comes
/// within the send timeout; only an outcome write held up by the database (a full disk, a
/// lock) comes later, and a day covers any such outage staff would not have seen. Reports
/// about messages this relay never sent (another app on the same WhatsApp account) would
/// otherwise pile up for ever.
pub const EARLY_REPORT_MAX_AGE_MS: i64 = 24 * 3600 * 1000;
/// At most this many are kept (the newest): more than one 10,000-carrier broadcast's worth of
/// overtaking reports, about 1 MB.
pub const EARLY_REPORTS_MAX: i64 = 10_000;

/// Why a report says a message failed: the provider's text, and its error code when it gives
/// one (kept in `deliveries.error_code`, which the history explains).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportedError<'a> {
    pub text: &'a str,
    pub code: Option<&'a str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportOutcome {
    Applied,
    /// Known message, but the report would move the status backwards or repeat it.
    Ignored,
    /// No delivery has this message id yet: kept until one does.
    Deferred,
}

impl Store {
    pub async fn apply_report(
        &self,
        message_id: &str,
        report: DeliveryStatus,
        error: Option<ReportedError<'_>>,
        now: i64,
    ) -> Result<ReportOutcome, StoreError> {
        let text = error.map(|e| e.text);
        let code = error.and_then(|e| e.code);
        let current: Option<(i64, String)> =
            sqlx::query_as("SELECT id, status FROM deliveries WHERE message_id = ?")
                .bind(message_id)
                .fetch_optional(&self.pool)
                .await?;
        let Some((id, current)) = current else {
            sqlx::query(
                "INSERT INTO early_reports (message_id, status, error, error_code, received_at)
                 VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            )
            .bind(message_id)
            .bind(report.as_str())
            .bind(text)
            .bind(code)
            .bind(now)
            .execute(&self.pool)
            .await?;
            self.prune_early_reports(now).await?;
            return Ok(ReportOutcome::Deferred);
        };
        let current = parse_status(&current)?;
        if !current.accepts_report(report) {
            return Ok(ReportOutcome::Ignored);
        }
        // The guard on the old status makes a concurrent report lose cleanly instead of
        // moving the status backwards. A success clears the error of an earlier failure, an
        // interruption or a doubt: the message did arrive. A failure's code goes with its text.
        let failed = report == DeliveryStatus::Failed;
        let done = sqlx::query(
            "UPDATE deliveries SET status = ?, updated_at = ?,
                    error = CASE WHEN ? THEN ? ELSE NULL END,
                    error_code = CASE WHEN ? THEN ? ELSE NULL END
             WHERE id = ? AND status = ?",
        )
        .bind(report.as_str())
        .bind(now)
        .bind(failed)
        .bind(text)
        .bind(failed)
        .bind(code)
        .bind(id)
        .bind(current.as_str())
        .execute(&self.pool)
        .await?;
        Ok(if done.rows_affected() == 1 {
            ReportOutcome::Applied
        } else {
            ReportOutcome::Ignored
        })
    }

    /// A report for `message_id` whose sender tagged it with the delivery it was for (the
    /// Cloud API echoes `biz_opaque_callback_data`). When no delivery has that message id yet,
    /// the tagged delivery adopts it if its own send answer was lost: it is `uncertain`,
    /// `interrupted` or still `sending`, has no message id, and went to `recipient` (digits,
    /// when the report names one). The report, and any that came before it, then apply.
    pub async fn apply_tagged_report(
        &self,
        message_id: &str,
        delivery_id: i64,
        recipient: Option<&str>,
        report: DeliveryStatus,
        error: Option<ReportedError<'_>>,
        now: i64,
    ) -> Result<ReportOutcome, StoreError> {
        let outcome = self.apply_report(message_id, report, error, now).await?;
        if outcome != ReportOutcome::Deferred {
            return Ok(outcome);
        }
        let adopted = sqlx::query(
            "UPDATE deliveries SET message_id = ?, updated_at = ?
             WHERE id = ? AND message_id IS NULL
               AND status IN ('uncertain', 'interrupted', 'sending')
               AND (? IS NULL OR ltrim(phone, '+') = ?)",
        )
        .bind(message_id)
        .bind(now)
        .bind(delivery_id)
        .bind(recipient)
        .bind(recipient)
        .execute(&self.pool)
        .await?;
        if adopted.rows_affected() != 1 {
            return Ok(ReportOutcome::Deferred);
        }
        self.apply_early_reports(message_id, now).await?;
        Ok(ReportOutcome::Applied)
    }

    /// Drops the reports for unknown ids that are too old, then all but the newest
    /// [`EARLY_REPORTS_MAX`].
    pub async fn prune_early_reports(&self, now: i64) -> Result<u64, StoreError> {
        self.prune_early_reports_within(now, EARLY_REPORT_MAX_AGE_MS, EARLY_REPORTS_MAX)
            .await
    }

    async fn prune_early_reports_within(
        &self,
        now: i64,
        max_age_ms: i64,
        max: i64,
    ) -> Result<u64, StoreError> {
        let old = sqlx::query("DELETE FROM early_reports WHERE received_at < ?")
            .bind(now - max_age_ms)
            .execute(&self.pool)
            .await?;
        let over = sqlx::query(
            "DELETE FROM early_reports WHERE rowid IN
                (SELECT rowid FROM early_reports ORDER BY received_at DESC, rowid DESC
                 LIMIT -1 OFFSET ?)",
        )
        .bind(max)
        .execute(&self.pool)
        .await?;
        Ok(old.rows_affected() + over.rows_affected())
    }

    pub(super) async fn apply_early_reports(
        &self,
        message_id: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        type Early = (String, Option<String>, Option<String>);
        let early: Vec<Early> = sqlx::query_as(
            "DELETE FROM early_reports WHERE message_id = ? RETURNING status, error, error_code",
        )
        .bind(message_id)
        .fetch_all(&self.pool)
        .await?;
        let mut early: Vec<(DeliveryStatus, Option<String>, Option<String>)> = early
            .into_iter()
            .filter_map(|(status, error, code)| status.parse().ok().map(|s| (s, error, code)))
            .collect();
        // Apply in the order of the life of a message so `read` wins over `delivered`.
        early.sort_by_key(|(status, _, _)| match status {
            DeliveryStatus::Sent => 0,
            DeliveryStatus::Delivered => 1,
            DeliveryStatus::Read => 2,
            _ => 3,
        });
        for (status, text, code) in early {
            let error = text.as_deref().map(|text| ReportedError {
                text,
                code: code.as_deref(),
            });
            self.apply_report(message_id, status, error, now).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn kept(store: &Store) -> Vec<String> {
        sqlx::query_scalar("SELECT message_id FROM early_reports ORDER BY received_at")
            .fetch_all(&store.pool)
            .await
            .expect("early reports")
    }

    #[tokio::test]
    async fn reports_for_unknown_ids_are_kept_a_day_at_most_and_only_the_newest() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("relay.db"))
            .await
            .expect("store");
        let day = EARLY_REPORT_MAX_AGE_MS;
        for (i, at) in [0, 1000, 2000].into_iter().enumerate() {
            let outcome = store
                .apply_report(
                    &format!("wamid.OLD{i}"),
                    DeliveryStatus::Delivered,
                    None,
                    at,
                )
                .await
                .expect("report");
            assert_eq!(outcome, ReportOutcome::Deferred);
        }
        // A report a day and a half later: the first two are more than a day old.
        store
            .apply_report("wamid.NEW", DeliveryStatus::Read, None, 1000 + day + 500)
            .await
            .expect("report");
        assert_eq!(kept(&store).await, ["wamid.OLD2", "wamid.NEW"]);

        let removed = store
            .prune_early_reports_within(1000 + day + 500, day, 1)
            .await
            .expect("prune");
        assert_eq!(removed, 1);
        assert_eq!(kept(&store).await, ["wamid.NEW"], "the newest is kept");
    }
}
