//! Status reports from WhatsApp (sent, delivered, read, failed), matched to deliveries by
//! message id. Reports come late, twice, out of order, or before we stored the id: a status
//! only ever moves forward, and an early report waits for its delivery.

use relay_domain::DeliveryStatus;

use super::{Store, StoreError, parse_status};

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
        error: Option<&str>,
        now: i64,
    ) -> Result<ReportOutcome, StoreError> {
        let current: Option<(i64, String)> =
            sqlx::query_as("SELECT id, status FROM deliveries WHERE message_id = ?")
                .bind(message_id)
                .fetch_optional(&self.pool)
                .await?;
        let Some((id, current)) = current else {
            sqlx::query(
                "INSERT INTO early_reports (message_id, status, error, received_at)
                 VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
            )
            .bind(message_id)
            .bind(report.as_str())
            .bind(error)
            .bind(now)
            .execute(&self.pool)
            .await?;
            return Ok(ReportOutcome::Deferred);
        };
        let current = parse_status(&current)?;
        if !current.accepts_report(report) {
            return Ok(ReportOutcome::Ignored);
        }
        // The guard on the old status makes a concurrent report lose cleanly instead of
        // moving the status backwards.
        let done = sqlx::query(
            "UPDATE deliveries SET status = ?, updated_at = ?,
                    error = CASE WHEN ? = 'failed' THEN ? ELSE error END
             WHERE id = ? AND status = ?",
        )
        .bind(report.as_str())
        .bind(now)
        .bind(report.as_str())
        .bind(error)
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

    pub(super) async fn apply_early_reports(
        &self,
        message_id: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let early: Vec<(String, Option<String>)> = sqlx::query_as(
            "DELETE FROM early_reports WHERE message_id = ? RETURNING status, error",
        )
        .bind(message_id)
        .fetch_all(&self.pool)
        .await?;
        let mut early: Vec<(DeliveryStatus, Option<String>)> = early
            .into_iter()
            .filter_map(|(status, error)| status.parse().ok().map(|s| (s, error)))
            .collect();
        // Apply in the order of the life of a message so `read` wins over `delivered`.
        early.sort_by_key(|(status, _)| match status {
            DeliveryStatus::Sent => 0,
            DeliveryStatus::Delivered => 1,
            DeliveryStatus::Read => 2,
            _ => 3,
        });
        for (status, error) in early {
            self.apply_report(message_id, status, error.as_deref(), now)
                .await?;
        }
        Ok(())
    }
}
