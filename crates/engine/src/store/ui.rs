//! Read-only questions the desktop app asks and the CLI does not: what is being sent right now,
//! today's counts and the last order received.

use relay_domain::OrderId;
use sqlx::AssertSqlSafe;

use super::{StatusCount, Store, StoreError, parse_status};

/// Statuses that count as "the carrier has it" in progress figures.
const SUCCEEDED_SQL: &str = "('sent', 'delivered', 'read')";
/// Statuses that count as a failure in progress figures (skipped is neither).
const FAILED_SQL: &str = "('failed', 'invalid_number', 'not_on_whatsapp', 'interrupted')";

/// Where one batch of one order stands: the automatic broadcast (batch 0) or a relaunch.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct BatchProgress {
    pub order_id: i64,
    pub order_reference: String,
    pub batch: i64,
    pub total: i64,
    /// Queued or being sent.
    pub pending: i64,
    pub succeeded: i64,
    pub failed: i64,
    pub skipped: i64,
}

impl BatchProgress {
    /// Deliveries settled one way or another: the `12` of `12 / 48`.
    pub fn done(&self) -> i64 {
        self.total - self.pending
    }
}

/// One order's deliveries counted by status, every batch together: the campaign counters of
/// seed 002, the same for every channel since every channel's reports land in the same
/// statuses (`orders --json`).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct OrderCounters {
    pub order_id: i64,
    pub order_reference: String,
    pub total: i64,
    /// Queued or being sent.
    pub pending: i64,
    pub sent: i64,
    pub delivered: i64,
    pub read: i64,
    pub failed: i64,
    pub invalid_number: i64,
    pub not_on_whatsapp: i64,
    pub skipped: i64,
    /// Interrupted or uncertain: the carrier may have it.
    pub doubtful: i64,
    /// CamionBack said the order is no longer open (filled, cancelled…).
    pub closed: bool,
    /// Its `statut` then (`attribuee`…), when closed.
    pub closed_statut: Option<String>,
    /// Deliveries not sent because it closed (part of `skipped`): "N envois évités".
    pub avoided: i64,
}

/// The newest order the relay heard of, and how.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct OrderSummary {
    pub id: i64,
    pub reference: String,
    pub ville_depart: String,
    pub ville_arrivee: String,
    pub source: String,
    pub received_at: i64,
    pub fanned_out_at: Option<i64>,
    /// CamionBack said it is no longer open.
    pub closed: bool,
    /// Deliveries not sent because it closed.
    pub avoided: i64,
}

fn progress_select() -> String {
    format!(
        "SELECT d.order_id, o.reference AS order_reference, d.batch, COUNT(*) AS total,
                SUM(d.status IN ('queued', 'sending')) AS pending,
                SUM(d.status IN {SUCCEEDED_SQL}) AS succeeded,
                SUM(d.status IN {FAILED_SQL}) AS failed,
                SUM(d.status = 'skipped') AS skipped
         FROM deliveries d JOIN orders o ON o.id = d.order_id"
    )
}

fn counters_select() -> &'static str {
    "SELECT o.id AS order_id, o.reference AS order_reference,
            COUNT(d.id) AS total,
            COALESCE(SUM(d.status IN ('queued', 'sending')), 0) AS pending,
            COALESCE(SUM(d.status = 'sent'), 0) AS sent,
            COALESCE(SUM(d.status = 'delivered'), 0) AS delivered,
            COALESCE(SUM(d.status = 'read'), 0) AS read,
            COALESCE(SUM(d.status = 'failed'), 0) AS failed,
            COALESCE(SUM(d.status = 'invalid_number'), 0) AS invalid_number,
            COALESCE(SUM(d.status = 'not_on_whatsapp'), 0) AS not_on_whatsapp,
            COALESCE(SUM(d.status = 'skipped'), 0) AS skipped,
            COALESCE(SUM(d.status IN ('interrupted', 'uncertain')), 0) AS doubtful,
            oc.order_id IS NOT NULL AS closed, oc.statut AS closed_statut,
            COALESCE(SUM(d.status = 'skipped' AND d.error = 'order_closed'), 0) AS avoided
     FROM orders o LEFT JOIN deliveries d ON d.order_id = o.id
          LEFT JOIN order_closures oc ON oc.order_id = o.id"
}

impl Store {
    /// The counters of the `limit` newest orders, newest first (an order not yet fanned out
    /// counts nothing).
    pub async fn order_counters(&self, limit: u32) -> Result<Vec<OrderCounters>, StoreError> {
        let sql = format!(
            "{} GROUP BY o.id ORDER BY o.id DESC LIMIT ?",
            counters_select()
        );
        Ok(sqlx::query_as(AssertSqlSafe(sql))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?)
    }

    /// The counters of these orders (the ones a history page shows), in id order; an unknown
    /// id is left out.
    pub async fn counters_of_orders(
        &self,
        orders: &[i64],
    ) -> Result<Vec<OrderCounters>, StoreError> {
        if orders.is_empty() {
            return Ok(Vec::new());
        }
        // Only `?` placeholders are formatted in; the ids are bound.
        let placeholders = vec!["?"; orders.len()].join(", ");
        let sql = format!(
            "{} WHERE o.id IN ({placeholders}) GROUP BY o.id ORDER BY o.id",
            counters_select()
        );
        let mut query = sqlx::query_as(AssertSqlSafe(sql));
        for id in orders {
            query = query.bind(*id);
        }
        Ok(query.fetch_all(&self.pool).await?)
    }

    /// Every batch that still has deliveries queued or being sent, oldest order first.
    pub async fn active_batches(&self) -> Result<Vec<BatchProgress>, StoreError> {
        // The active set comes from the status index; only those batches are then counted.
        let sql = format!(
            "WITH active AS (SELECT DISTINCT order_id, batch FROM deliveries
                             WHERE status IN ('queued', 'sending'))
             {} JOIN active a ON a.order_id = d.order_id AND a.batch = d.batch
             GROUP BY d.order_id, d.batch ORDER BY d.order_id, d.batch",
            progress_select()
        );
        Ok(sqlx::query_as(AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await?)
    }

    /// Where one batch stands (also once it is finished: the figures of the notification).
    pub async fn batch_progress(
        &self,
        order: OrderId,
        batch: i64,
    ) -> Result<Option<BatchProgress>, StoreError> {
        let sql = format!(
            "{} WHERE d.order_id = ? AND d.batch = ? GROUP BY d.order_id, d.batch",
            progress_select()
        );
        Ok(sqlx::query_as(AssertSqlSafe(sql))
            .bind(order.0)
            .bind(batch)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// Where the batch of delivery `id` stands (the figures told when it finishes).
    pub async fn batch_progress_of(&self, id: i64) -> Result<Option<BatchProgress>, StoreError> {
        let sql = format!(
            "{} WHERE (d.order_id, d.batch) = (SELECT order_id, batch FROM deliveries WHERE id = ?)
             GROUP BY d.order_id, d.batch",
            progress_select()
        );
        Ok(sqlx::query_as(AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    // `queue_depth` is in `outbox.rs`, next to the queue it measures.

    /// Deliveries queued since `since` (unix ms, e.g. midnight), by their current status.
    pub async fn status_counts_since(&self, since: i64) -> Result<Vec<StatusCount>, StoreError> {
        // A range on the queue-date index (migration 3), so the cost is today's rows. Named:
        // for `GROUP BY status` SQLite would rather scan the whole covering
        // `deliveries_status_queued` index, a million entries on a big history.
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT status, COUNT(*) FROM deliveries INDEXED BY deliveries_queued
             WHERE queued_at >= ?1 GROUP BY status",
        )
        .bind(since)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(status, count)| {
                Ok(StatusCount {
                    status: parse_status(&status)?,
                    count,
                })
            })
            .collect()
    }

    /// The order received last, whichever way it came.
    pub async fn last_order(&self) -> Result<Option<OrderSummary>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT o.id, o.reference, o.ville_depart, o.ville_arrivee, o.source, o.received_at,
                    o.fanned_out_at,
                    EXISTS (SELECT 1 FROM order_closures oc WHERE oc.order_id = o.id) AS closed,
                    (SELECT COUNT(*) FROM deliveries d
                     WHERE d.order_id = o.id AND d.status = 'skipped' AND d.error = 'order_closed')
                        AS avoided
             FROM orders o ORDER BY o.received_at DESC, o.id DESC LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await?)
    }
}

#[cfg(test)]
mod tests {
    use relay_domain::{CarrierId, Order, OrderFields};

    use super::*;
    use crate::store::{CarrierRecord, HistoryCursor, HistoryFilter, OrderSource, SortColumn};

    fn order(id: i64, reference: &str) -> Order {
        Order::parse(
            OrderFields {
                id,
                reference: reference.into(),
                ..OrderFields::example()
            },
            OrderFields::EXAMPLE_TODAY,
        )
        .expect("valid order")
    }

    /// A store with three validated carriers (one with an unusable number) and order 123
    /// fanned out at `now`.
    async fn store_with_broadcast(dir: &std::path::Path, now: i64) -> Store {
        let store = Store::open(&dir.join("relay.db")).await.expect("store");
        let carrier = |id: i64, name: &str, phone: &str| CarrierRecord {
            id: CarrierId(id),
            name: name.into(),
            phone_raw: phone.into(),
            statut: "valide".into(),
        };
        store
            .replace_carriers(
                &[
                    carrier(1, "Transports Atlas", "0612345601"),
                    carrier(2, "Rif Express", "0612345602"),
                    carrier(3, "Souss 100%_Fret", "12"),
                ],
                now,
            )
            .await
            .expect("carriers");
        let order = order(123, "CMD-2025-123");
        store
            .insert_order(&order, OrderSource::Webhook, now)
            .await
            .expect("order");
        store.fan_out(&order, now).await.expect("fan out");
        store
    }

    #[tokio::test]
    async fn progress_counts_a_running_broadcast_and_its_end() {
        let dir = tempfile::tempdir().expect("tempdir");
        let now = 1_700_000_000_000;
        let store = store_with_broadcast(dir.path(), now).await;

        let active = store.active_batches().await.expect("active");
        assert_eq!(active.len(), 1, "{active:?}");
        let running = &active[0];
        assert_eq!(
            (
                running.total,
                running.pending,
                running.failed,
                running.done()
            ),
            (3, 2, 1, 1),
            "the unusable number is settled at fan-out and counts as done: {running:?}"
        );
        assert_eq!(running.order_reference, "CMD-2025-123");
        assert_eq!(store.queue_depth().await.expect("depth"), 2);

        let mut last_settled = None;
        while let Some(claim) = store.claim_next(None, now + 1, None).await.expect("claim") {
            store
                .mark_sent(claim.id, Some(&format!("wamid.{}", claim.id)), now + 2)
                .await
                .expect("sent");
            last_settled = Some(claim.id);
        }
        assert!(store.active_batches().await.expect("active").is_empty());
        let finished = store
            .batch_progress(OrderId(123), 0)
            .await
            .expect("progress")
            .expect("the batch exists");
        assert_eq!(
            (finished.succeeded, finished.failed, finished.pending),
            (2, 1, 0)
        );
        // What the engine tells when the last delivery of the batch is settled.
        let told = store
            .batch_progress_of(last_settled.expect("two were sent"))
            .await
            .expect("progress")
            .expect("the batch of that delivery");
        assert_eq!(told, finished);
    }

    #[tokio::test]
    async fn today_counts_only_rows_queued_since_midnight() {
        let dir = tempfile::tempdir().expect("tempdir");
        let yesterday = 1_700_000_000_000;
        let store = store_with_broadcast(dir.path(), yesterday).await;
        let today = yesterday + 24 * 3600 * 1000;
        let second = order(124, "CMD-2025-124");
        store
            .insert_order(&second, OrderSource::Polling, today)
            .await
            .expect("order");
        store.fan_out(&second, today).await.expect("fan out");

        let counts = store
            .status_counts_since(today - 1000)
            .await
            .expect("counts");
        let total: i64 = counts.iter().map(|c| c.count).sum();
        assert_eq!(total, 3, "only order 124's deliveries: {counts:?}");
        assert_eq!(
            store.last_order().await.expect("last").map(|o| o.reference),
            Some("CMD-2025-124".to_string())
        );
    }

    #[tokio::test]
    async fn history_search_filters_and_pages_by_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let now = 1_700_000_000_000;
        let store = store_with_broadcast(dir.path(), now).await;
        let search = |text: Option<&str>, after: Option<HistoryCursor>, limit: u32| HistoryFilter {
            text: text.map(str::to_string),
            after,
            limit,
            ..HistoryFilter::default()
        };

        let page = store.history(&search(None, None, 2)).await.expect("page");
        assert_eq!(page.len(), 2);
        assert!(page[0].id > page[1].id, "newest first");
        assert_eq!(page[0].ville_arrivee, "Marrakech");
        let rest = store
            .history(&search(None, Some(page[1].cursor(SortColumn::Date)), 2))
            .await
            .expect("page");
        assert_eq!(rest.len(), 1, "the third row is on the next page");

        let atlas = store
            .history(&search(Some("atlas"), None, 10))
            .await
            .expect("search");
        assert_eq!(atlas.len(), 1, "case-insensitive name search");
        let literal = store
            .history(&search(Some("100%_"), None, 10))
            .await
            .expect("search");
        assert_eq!(literal.len(), 1, "% and _ are matched literally");
        assert_eq!(literal[0].carrier_name, "Souss 100%_Fret");
        let by_reference = store
            .history(&search(Some("CMD-2025-1"), None, 10))
            .await
            .expect("search");
        assert_eq!(by_reference.len(), 3);

        let later = store
            .history(&HistoryFilter {
                from_ms: Some(now + 1),
                limit: 10,
                ..HistoryFilter::default()
            })
            .await
            .expect("range");
        assert!(later.is_empty(), "queued before the range");
    }
}
