//! Orders CamionBack says are no longer open. Closing one writes its closure and skips its
//! queued deliveries in one transaction; the dispatcher's claim takes nothing of an order that
//! has a closure (unless staff forced a relaunch), so once the relay has learnt it, no send for
//! that order starts. The send already in flight finishes and is recorded as usual.

use relay_domain::{DeliveryStatus, OrderId, SkipReason};

use super::{OrderSource, Store, StoreError};

/// What the relay knows of an order's closing.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct OrderClosure {
    pub order_id: i64,
    /// CamionBack's word, cleaned (`attribuee`, `annulee`…).
    pub statut: String,
    pub closed_at: i64,
    /// `webhook` or `polling`.
    pub source: String,
}

/// What one close notice did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Closed {
    /// Queued deliveries now `skipped` with [`SkipReason::OrderClosed`].
    pub cancelled: u64,
    /// False when the order was closed already (a repeated notice): nothing else changed.
    pub newly: bool,
    /// Whether the relay had stored the order. An unknown one is remembered closed all the
    /// same, so its `order.created` arriving later is stored and never broadcast.
    pub known: bool,
}

impl Store {
    /// Closes `order`: remembers it closed (the first notice's word and time are kept) and, in
    /// the same transaction, skips every delivery of it still queued, except those of a
    /// relaunch staff forced. A delivery being sent is left to finish.
    pub async fn close_order(
        &self,
        order: OrderId,
        statut: &str,
        source: OrderSource,
        now: i64,
    ) -> Result<Closed, StoreError> {
        let mut tx = self.write_transaction().await?;
        let newly = sqlx::query(
            "INSERT INTO order_closures (order_id, statut, closed_at, source) VALUES (?, ?, ?, ?)
             ON CONFLICT (order_id) DO NOTHING",
        )
        .bind(order.0)
        .bind(statut)
        .bind(now)
        .bind(source.as_str())
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        let cancelled = sqlx::query(
            "UPDATE deliveries SET status = ?, error = ?, error_code = NULL, updated_at = ?
             WHERE order_id = ? AND status = 'queued' AND forced = 0",
        )
        .bind(DeliveryStatus::Skipped.as_str())
        .bind(SkipReason::OrderClosed.as_str())
        .bind(now)
        .bind(order.0)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let known: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM orders WHERE id = ?)")
            .bind(order.0)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Closed {
            cancelled,
            newly,
            known,
        })
    }

    /// The closure of `order`, when CamionBack said it is no longer open.
    pub async fn order_closure(&self, order: OrderId) -> Result<Option<OrderClosure>, StoreError> {
        Ok(
            sqlx::query_as("SELECT * FROM order_closures WHERE order_id = ?")
                .bind(order.0)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Open orders (as far as the relay knows) with deliveries still queued: the ones whose
    /// status is worth asking CamionBack about. Read from the queued rows' partial index.
    pub async fn orders_with_queued_deliveries(&self) -> Result<Vec<OrderId>, StoreError> {
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT DISTINCT d.order_id FROM deliveries d
             WHERE d.status = 'queued' AND d.forced = 0
               AND NOT EXISTS (SELECT 1 FROM order_closures oc WHERE oc.order_id = d.order_id)
             ORDER BY d.order_id",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(ids.into_iter().map(OrderId).collect())
    }

    /// How many deliveries of `order` were not sent because it closed: the "N envois évités".
    pub async fn avoided_by_closure(&self, order: OrderId) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM deliveries WHERE order_id = ? AND status = 'skipped' AND error = ?",
        )
        .bind(order.0)
        .bind(SkipReason::OrderClosed.as_str())
        .fetch_one(&self.pool)
        .await?)
    }
}

#[cfg(test)]
mod tests {
    use relay_domain::{CarrierId, Order, OrderFields};

    use super::*;
    use crate::store::{CarrierRecord, Outcome, RelaunchMode};

    const NOW: i64 = 1_764_000_000_000;

    /// Four validated carriers and order 7 fanned out: four deliveries queued.
    async fn broadcasting(dir: &std::path::Path) -> (Store, Order) {
        let store = Store::open(&dir.join("relay.db")).await.expect("store");
        let carriers: Vec<CarrierRecord> = (1..=4)
            .map(|id| CarrierRecord {
                id: CarrierId(id),
                name: format!("Transporteur {id}"),
                phone_raw: format!("06123456{id:02}"),
                statut: "valide".into(),
            })
            .collect();
        store
            .replace_carriers(&carriers, NOW)
            .await
            .expect("carriers");
        let order = Order::parse(
            OrderFields {
                id: 7,
                reference: "CMD-2025-7".into(),
                ..OrderFields::example()
            },
            OrderFields::EXAMPLE_TODAY,
        )
        .expect("order");
        store
            .insert_order(&order, OrderSource::Webhook, NOW)
            .await
            .expect("insert");
        assert_eq!(store.fan_out(&order, NOW).await.expect("fan out").queued, 4);
        (store, order)
    }

    async fn statuses(store: &Store) -> Vec<(String, Option<String>)> {
        sqlx::query_as("SELECT status, error FROM deliveries ORDER BY id")
            .fetch_all(&store.pool)
            .await
            .expect("rows")
    }

    #[tokio::test]
    async fn closing_skips_what_is_queued_lets_the_send_in_flight_finish_and_claims_nothing_more() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (store, order) = broadcasting(dir.path()).await;
        let in_flight = store
            .claim_next(None, NOW, None)
            .await
            .expect("claim")
            .expect("a delivery");

        let closed = store
            .close_order(order.id, "attribuee", OrderSource::Webhook, NOW + 1)
            .await
            .expect("close");
        assert_eq!(
            closed,
            Closed {
                cancelled: 3,
                newly: true,
                known: true
            }
        );
        assert!(
            store
                .claim_next(None, NOW + 2, None)
                .await
                .expect("claim")
                .is_none(),
            "nothing of a closed order is claimed"
        );
        // The send in flight came back with an error that would retry it: it is not queued
        // again, it ends like the others.
        store
            .record_outcome(
                in_flight.id,
                &Outcome::Retry {
                    reason: "HTTP 503".into(),
                    code: None,
                    next_attempt_at: NOW + 5_000,
                    count_attempt: true,
                },
                NOW + 3,
            )
            .await
            .expect("retry recorded");
        let skipped = (
            "skipped".to_string(),
            Some(SkipReason::OrderClosed.as_str().to_string()),
        );
        assert_eq!(statuses(&store).await, vec![skipped; 4]);
        assert_eq!(store.next_due_at().await.expect("due"), None);
        assert!(
            store
                .claim_next(None, NOW + 10_000, None)
                .await
                .expect("claim")
                .is_none()
        );
        assert_eq!(store.avoided_by_closure(order.id).await.expect("count"), 4);

        let again = store
            .close_order(order.id, "annulee", OrderSource::Polling, NOW + 4)
            .await
            .expect("close again");
        assert_eq!((again.cancelled, again.newly), (0, false));
        let closure = store.order_closure(order.id).await.expect("closure");
        assert_eq!(
            closure.map(|c| (c.statut, c.closed_at, c.source)),
            Some(("attribuee".to_string(), NOW + 1, "webhook".to_string())),
            "the first notice is kept"
        );
        assert!(
            store
                .orders_with_queued_deliveries()
                .await
                .expect("to check")
                .is_empty()
        );
    }

    #[tokio::test]
    async fn a_closed_order_is_relaunched_only_when_forced_and_a_later_notice_leaves_that_batch() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (store, order) = broadcasting(dir.path()).await;
        store
            .close_order(order.id, "attribuee", OrderSource::Polling, NOW)
            .await
            .expect("close");

        let plain = store
            .relaunch(order.id, RelaunchMode::All, NOW + 1)
            .await
            .expect("relaunch");
        assert_eq!(plain.queued, 0, "nothing queued that could never be sent");
        let forced = store
            .relaunch_forced(order.id, RelaunchMode::All, NOW + 2)
            .await
            .expect("forced relaunch");
        assert_eq!(forced.queued, 4);
        let again = store
            .close_order(order.id, "attribuee", OrderSource::Polling, NOW + 3)
            .await
            .expect("second notice");
        assert_eq!(again.cancelled, 0, "staff's forced batch is left alone");
        let claim = store.claim_next(None, NOW + 4, None).await.expect("claim");
        assert!(claim.is_some(), "the forced batch is sent");
    }

    #[tokio::test]
    async fn an_order_closed_before_it_arrived_is_stored_and_never_broadcast() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("relay.db"))
            .await
            .expect("store");
        let closed = store
            .close_order(OrderId(9), "annulee", OrderSource::Webhook, NOW)
            .await
            .expect("close");
        assert_eq!((closed.cancelled, closed.known), (0, false));
        let order = Order::parse(
            OrderFields {
                id: 9,
                ..OrderFields::example()
            },
            OrderFields::EXAMPLE_TODAY,
        )
        .expect("order");
        store
            .insert_order(&order, OrderSource::Webhook, NOW + 1)
            .await
            .expect("insert");
        let fan_out = store.fan_out(&order, NOW + 1).await.expect("fan out");
        assert_eq!(fan_out.queued, 0);
        assert!(statuses(&store).await.is_empty());
    }
}
