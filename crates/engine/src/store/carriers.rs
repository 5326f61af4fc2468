//! The carrier list as last synced, and who is eligible right now.

use relay_domain::{CarrierId, CarrierStatus, PhoneNumber};

use super::{Store, StoreError};

/// One carrier as the API listed it.
#[derive(Debug, Clone)]
pub struct CarrierRecord {
    pub id: CarrierId,
    pub name: String,
    pub phone_raw: String,
    pub statut: String,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CarrierRow {
    pub id: i64,
    pub name: String,
    pub phone_raw: String,
    pub phone: Option<String>,
    pub phone_error: Option<String>,
    pub statut: String,
    pub eligible: bool,
    pub opted_out_at: Option<i64>,
    pub synced_at: i64,
    pub last_sent_at: Option<i64>,
}

/// One carrier row as handed to SQLite's `json_each` (see `replace_carriers`).
#[derive(serde::Serialize)]
struct CarrierJson<'a> {
    id: i64,
    name: &'a str,
    phone_raw: &'a str,
    phone: Option<String>,
    phone_error: Option<String>,
    statut: &'a str,
    eligible: bool,
}

/// The word stored for carriers that a complete sync no longer lists.
const ABSENT_FROM_SYNC: &str = "absent de l'API";

impl Store {
    /// Replaces the carrier list with a complete sync. Carriers the API no longer lists (the
    /// `statut=valide` query hides blocked ones) stop being eligible at once.
    pub async fn replace_carriers(
        &self,
        carriers: &[CarrierRecord],
        now: i64,
    ) -> Result<(), StoreError> {
        // One statement for the whole list (JSON array unpacked by SQLite): a sync of 10,000
        // carriers runs before each broadcast and must not hold the order back.
        let rows: Vec<CarrierJson> = carriers
            .iter()
            .map(|carrier| {
                let (phone, phone_error) = match PhoneNumber::parse(&carrier.phone_raw) {
                    Ok(phone) => (Some(phone.e164().to_string()), None),
                    Err(err) => (None, Some(err.to_string())),
                };
                CarrierJson {
                    id: carrier.id.0,
                    name: carrier.name.trim(),
                    phone_raw: &carrier.phone_raw,
                    phone,
                    phone_error,
                    statut: carrier.statut.trim(),
                    eligible: CarrierStatus::parse(&carrier.statut).is_eligible(),
                }
            })
            .collect();
        let rows = serde_json::to_string(&rows)
            .map_err(|err| StoreError::Corrupt(format!("liste des transporteurs : {err}")))?;
        let mut tx = self.write_transaction().await?;
        sqlx::query(
            "INSERT INTO carriers (id, name, phone_raw, phone, phone_error, statut, eligible, synced_at)
             SELECT j.value ->> 'id', j.value ->> 'name', j.value ->> 'phone_raw',
                    j.value ->> 'phone', j.value ->> 'phone_error', j.value ->> 'statut',
                    j.value ->> 'eligible', ?2
             FROM json_each(?1) AS j WHERE true
             ON CONFLICT (id) DO UPDATE SET
                name = excluded.name, phone_raw = excluded.phone_raw, phone = excluded.phone,
                phone_error = excluded.phone_error, statut = excluded.statut,
                eligible = excluded.eligible, synced_at = excluded.synced_at",
        )
        .bind(rows)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE carriers SET eligible = 0, statut = ?, synced_at = ? WHERE synced_at < ?",
        )
        .bind(ABSENT_FROM_SYNC)
        .bind(now)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn list_carriers(&self) -> Result<Vec<CarrierRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT c.*, (SELECT MAX(d.sent_at) FROM deliveries d WHERE d.carrier_id = c.id) AS last_sent_at
             FROM carriers c ORDER BY c.name, c.id",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn eligible_carrier_count(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM carriers WHERE eligible = 1 AND opted_out_at IS NULL",
        )
        .fetch_one(&self.pool)
        .await?)
    }

    /// Why a carrier may not receive anything now, or `None` when it may. Asked at send
    /// time: a carrier blocked after an order was queued gets nothing.
    pub async fn carrier_refusal(&self, id: CarrierId) -> Result<Option<String>, StoreError> {
        let row: Option<(bool, String, Option<i64>)> =
            sqlx::query_as("SELECT eligible, statut, opted_out_at FROM carriers WHERE id = ?")
                .bind(id.0)
                .fetch_optional(&self.pool)
                .await?;
        Ok(match row {
            None => Some("transporteur inconnu".to_string()),
            Some((_, _, Some(_))) => Some(relay_domain::SkipReason::OptedOut.as_str().to_string()),
            Some((false, statut, None)) => Some(format!("transporteur non validé ({statut})")),
            Some((true, _, None)) => None,
        })
    }
}
