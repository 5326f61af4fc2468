//! Orders as received, and their fan-out into one delivery per eligible carrier.

use relay_domain::{Order, OrderFields, OrderId};
use sqlx::AssertSqlSafe;

use super::{Store, StoreError};

/// How the relay learnt about an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderSource {
    Webhook,
    Polling,
}

impl OrderSource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Webhook => "webhook",
            Self::Polling => "polling",
        }
    }
}

#[derive(Debug, Clone)]
pub struct StoredOrder {
    pub order: Order,
    pub source: String,
    pub received_at: i64,
    pub fanned_out_at: Option<i64>,
}

/// What a fan-out queued.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FanOut {
    pub queued: u64,
    pub invalid_numbers: u64,
    pub skipped: u64,
}

#[derive(sqlx::FromRow)]
struct OrderRow {
    id: i64,
    reference: String,
    ville_depart: String,
    ville_arrivee: String,
    date_souhaitee: String,
    prix: f64,
    type_marchandise: String,
    statut: Option<String>,
    created_at: Option<String>,
    source: String,
    received_at: i64,
    fanned_out_at: Option<i64>,
}

impl TryFrom<OrderRow> for StoredOrder {
    type Error = StoreError;

    fn try_from(row: OrderRow) -> Result<Self, StoreError> {
        let order = Order::restore(OrderFields {
            id: row.id,
            reference: row.reference,
            ville_depart: row.ville_depart,
            ville_arrivee: row.ville_arrivee,
            date_souhaitee: row.date_souhaitee,
            prix: row.prix,
            type_marchandise: row.type_marchandise,
            statut: row.statut,
            created_at: row.created_at,
        })
        .map_err(|err| StoreError::Corrupt(format!("commande {}: {err}", row.id)))?;
        Ok(Self {
            order,
            source: row.source,
            received_at: row.received_at,
            fanned_out_at: row.fanned_out_at,
        })
    }
}

/// The fan-out of one order, as one statement: every eligible carrier's delivery row is
/// written from the carrier table, so 10,000 carriers cost one round trip. A carrier with an
/// unusable number or who opted out gets a row too, already final, so the history says why.
pub(super) const FAN_OUT_SQL: &str = "
INSERT INTO deliveries (order_id, carrier_id, batch, carrier_name, phone, status, error,
                        queued_at, next_attempt_at, updated_at)
SELECT ?1, c.id, ?2, c.name, COALESCE(c.phone, c.phone_raw),
       CASE WHEN c.phone IS NULL THEN 'invalid_number'
            WHEN c.opted_out_at IS NOT NULL THEN 'skipped'
            ELSE 'queued' END,
       CASE WHEN c.phone IS NULL THEN c.phone_error
            WHEN c.opted_out_at IS NOT NULL THEN 'opted_out'
            ELSE NULL END,
       ?3, ?3, ?3
FROM carriers c
WHERE c.eligible = 1";

impl Store {
    /// Stores an order seen for the first time. Returns `false` when it was already known:
    /// that is the intake's deduplication, whichever way the order came in.
    pub async fn insert_order(
        &self,
        order: &Order,
        source: OrderSource,
        now: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO orders (id, reference, ville_depart, ville_arrivee, date_souhaitee, prix,
                                 type_marchandise, statut, created_at, source, received_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(order.id.0)
        .bind(&order.reference)
        .bind(&order.ville_depart)
        .bind(&order.ville_arrivee)
        .bind(order.date_souhaitee.format("%Y-%m-%d").to_string())
        .bind(order.prix.mad())
        .bind(&order.type_marchandise)
        .bind(&order.statut)
        .bind(&order.created_at)
        .bind(source.as_str())
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Orders stored but not yet fanned out (new ones, or ones the relay stopped in the
    /// middle of).
    pub async fn orders_awaiting_fan_out(&self) -> Result<Vec<StoredOrder>, StoreError> {
        let rows: Vec<OrderRow> =
            sqlx::query_as("SELECT * FROM orders WHERE fanned_out_at IS NULL ORDER BY id")
                .fetch_all(&self.pool)
                .await?;
        rows.into_iter().map(StoredOrder::try_from).collect()
    }

    /// Writes the deliveries of an order's automatic broadcast and marks it fanned out, in one
    /// transaction: either every delivery exists or none does and the fan-out is still owed.
    /// Doing it twice does nothing the second time.
    pub async fn fan_out(&self, order: &Order, now: i64) -> Result<FanOut, StoreError> {
        let mut tx = self.write_transaction().await?;
        let owed: Option<i64> =
            sqlx::query_scalar("SELECT id FROM orders WHERE id = ? AND fanned_out_at IS NULL")
                .bind(order.id.0)
                .fetch_optional(&mut *tx)
                .await?;
        if owed.is_none() {
            return Ok(FanOut::default());
        }
        // CamionBack may have said the order is closed before its `order.created` came (or
        // before its broadcast was written): then nothing is queued.
        let closed: Option<String> =
            sqlx::query_scalar("SELECT statut FROM order_closures WHERE order_id = ?")
                .bind(order.id.0)
                .fetch_optional(&mut *tx)
                .await?;
        let note = if let Some(statut) = closed {
            Some(format!(
                "commande fermée avant sa diffusion (statut : {statut})"
            ))
        } else if order.is_open() {
            // Composed of constant fragments only: nothing from outside reaches the text.
            sqlx::query(AssertSqlSafe(format!(
                "{FAN_OUT_SQL} ORDER BY c.id ON CONFLICT DO NOTHING"
            )))
            .bind(order.id.0)
            .bind(0_i64)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            None
        } else {
            Some(match order.statut.as_deref() {
                Some("") | None => "commande non ouverte (statut vide)".to_string(),
                Some(statut) => format!("commande non ouverte (statut : {statut})"),
            })
        };
        sqlx::query("UPDATE orders SET fanned_out_at = ?, fan_out_note = ? WHERE id = ?")
            .bind(now)
            .bind(note)
            .bind(order.id.0)
            .execute(&mut *tx)
            .await?;
        let outcome = count_batch(&mut tx, order.id, 0).await?;
        tx.commit().await?;
        Ok(outcome)
    }

    pub async fn get_order(&self, id: OrderId) -> Result<Option<StoredOrder>, StoreError> {
        let row: Option<OrderRow> = sqlx::query_as("SELECT * FROM orders WHERE id = ?")
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await?;
        row.map(StoredOrder::try_from).transpose()
    }

    /// Finds an order by its id (`123`) or its reference (`CMD-2025-123`), as staff type it.
    pub async fn find_order(&self, key: &str) -> Result<Option<StoredOrder>, StoreError> {
        let key = key.trim();
        if let Ok(id) = key.parse::<i64>()
            && let Some(order) = self.get_order(OrderId(id)).await?
        {
            return Ok(Some(order));
        }
        let row: Option<OrderRow> =
            sqlx::query_as("SELECT * FROM orders WHERE reference = ? ORDER BY id DESC LIMIT 1")
                .bind(key)
                .fetch_optional(&self.pool)
                .await?;
        row.map(StoredOrder::try_from).transpose()
    }
}

pub(super) async fn count_batch(
    tx: &mut sqlx::SqliteConnection,
    order: OrderId,
    batch: i64,
) -> Result<FanOut, StoreError> {
    let (queued, invalid_numbers, skipped): (i64, i64, i64) = sqlx::query_as(
        "SELECT COALESCE(SUM(status = 'queued'), 0), COALESCE(SUM(status = 'invalid_number'), 0),
                COALESCE(SUM(status = 'skipped'), 0)
         FROM deliveries WHERE order_id = ? AND batch = ?",
    )
    .bind(order.0)
    .bind(batch)
    .fetch_one(&mut *tx)
    .await?;
    Ok(FanOut {
        queued: queued as u64,
        invalid_numbers: invalid_numbers as u64,
        skipped: skipped as u64,
    })
}
