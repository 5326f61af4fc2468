//! The send history: what staff read to know who got which order.

use relay_domain::{DeliveryStatus, OrderId};
use sqlx::QueryBuilder;

use super::{Store, StoreError};

/// The history's filters. Rows come newest first; `before_id` pages back (keyset, so a page
/// costs the same at row 1,000,000 as at row 1 when the filters are selective).
#[derive(Debug, Clone, Default)]
pub struct HistoryFilter {
    pub order: Option<OrderId>,
    pub status: Option<DeliveryStatus>,
    /// Queued at or after this unix ms.
    pub from_ms: Option<i64>,
    /// Queued before this unix ms.
    pub to_ms: Option<i64>,
    /// Part of a carrier name, a phone number or an order reference (case-insensitive).
    pub text: Option<String>,
    /// Only rows older than this delivery id.
    pub before_id: Option<i64>,
    pub limit: u32,
}

/// One delivery with its order's reference and route.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct HistoryRow {
    pub id: i64,
    pub order_id: i64,
    pub order_reference: String,
    pub ville_depart: String,
    pub ville_arrivee: String,
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
    /// Newest first, with the filters of [`HistoryFilter`].
    pub async fn history(&self, filter: &HistoryFilter) -> Result<Vec<HistoryRow>, StoreError> {
        let mut query = QueryBuilder::new(
            "SELECT d.id, d.order_id, o.reference AS order_reference, o.ville_depart,
                    o.ville_arrivee, d.carrier_id, d.carrier_name, d.phone, d.status, d.attempts,
                    d.error, d.error_code, d.message_id, d.batch, d.queued_at, d.sent_at,
                    d.updated_at
             FROM deliveries d JOIN orders o ON o.id = d.order_id WHERE 1 = 1",
        );
        if let Some(order) = filter.order {
            query.push(" AND d.order_id = ").push_bind(order.0);
        }
        if let Some(status) = filter.status {
            query.push(" AND d.status = ").push_bind(status.as_str());
        }
        if let Some(from) = filter.from_ms {
            query.push(" AND d.queued_at >= ").push_bind(from);
        }
        if let Some(to) = filter.to_ms {
            query.push(" AND d.queued_at < ").push_bind(to);
        }
        if let Some(text) = filter
            .text
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
        {
            let pattern = format!("%{}%", escape_like(text));
            query
                .push(" AND (d.carrier_name LIKE ")
                .push_bind(pattern.clone())
                .push(" ESCAPE '\\' OR d.phone LIKE ")
                .push_bind(pattern.clone())
                .push(" ESCAPE '\\' OR o.reference LIKE ")
                .push_bind(pattern)
                .push(" ESCAPE '\\')");
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

/// Makes `%`, `_` and `\` in what staff typed match themselves in a `LIKE … ESCAPE '\'`.
fn escape_like(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::escape_like;

    #[test]
    fn typed_wildcards_match_themselves() {
        assert_eq!(escape_like("50%_a\\b"), "50\\%\\_a\\\\b");
        assert_eq!(escape_like("Atlas"), "Atlas");
    }
}
