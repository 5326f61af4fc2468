//! The send history: what staff read to know who got which order.

use relay_domain::{DeliveryStatus, OrderId};
use sqlx::QueryBuilder;

use super::{Store, StoreError};

#[derive(Debug, Clone, Default)]
pub struct HistoryFilter {
    pub order: Option<OrderId>,
    pub status: Option<DeliveryStatus>,
    /// Only rows older than this delivery id (keyset pagination: as fast on page 10,000 as on
    /// page 1).
    pub before_id: Option<i64>,
    pub limit: u32,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct HistoryRow {
    pub id: i64,
    pub order_id: i64,
    pub order_reference: String,
    pub carrier_id: i64,
    pub carrier_name: String,
    pub phone: String,
    pub status: String,
    pub attempts: i64,
    pub error: Option<String>,
    pub error_code: Option<String>,
    pub message_id: Option<String>,
    pub batch: i64,
    pub queued_at: i64,
    pub sent_at: Option<i64>,
    pub updated_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusCount {
    pub status: DeliveryStatus,
    pub count: i64,
}

impl Store {
    /// Newest first.
    pub async fn history(&self, filter: &HistoryFilter) -> Result<Vec<HistoryRow>, StoreError> {
        let mut query = QueryBuilder::new(
            "SELECT d.id, d.order_id, o.reference AS order_reference, d.carrier_id, d.carrier_name,
                    d.phone, d.status, d.attempts, d.error, d.error_code, d.message_id, d.batch,
                    d.queued_at, d.sent_at, d.updated_at
             FROM deliveries d JOIN orders o ON o.id = d.order_id WHERE 1 = 1",
        );
        if let Some(order) = filter.order {
            query.push(" AND d.order_id = ").push_bind(order.0);
        }
        if let Some(status) = filter.status {
            query.push(" AND d.status = ").push_bind(status.as_str());
        }
        if let Some(before) = filter.before_id {
            query.push(" AND d.id < ").push_bind(before);
        }
        query
            .push(" ORDER BY d.id DESC LIMIT ")
            .push_bind(i64::from(filter.limit));
        Ok(query.build_query_as().fetch_all(&self.pool).await?)
    }

    /// Deliveries by status, all orders together (for metrics and the dashboard).
    pub async fn status_counts(&self) -> Result<Vec<StatusCount>, StoreError> {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT status, COUNT(*) FROM deliveries GROUP BY status")
                .fetch_all(&self.pool)
                .await?;
        rows.into_iter()
            .map(|(status, count)| {
                Ok(StatusCount {
                    status: super::parse_status(&status)?,
                    count,
                })
            })
            .collect()
    }
}
