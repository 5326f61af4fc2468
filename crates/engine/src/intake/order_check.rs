//! Asking CamionBack whether the orders being broadcast are still open: while an order has
//! deliveries queued, `GET /api/orders/{id}` every `CAMIONBACK_ORDER_CHECK_SECS`. A `statut`
//! other than absent or `ouverte` closes the order, as the `order.updated` / `order.closed`
//! webhooks do (`Store::close_order`): its queued deliveries are skipped and nothing more is
//! sent for it. The safety net under those webhooks, for a CamionBack that does not send them
//! or whose notice was lost. A 404, an error or an unreadable answer is logged and changes
//! nothing: only CamionBack saying the order is closed stops a broadcast.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use relay_domain::{OrderId, statut_is_open};
use tokio_util::sync::CancellationToken;

use crate::camionback::{ApiError, CamionBackApi};
use crate::clock::{Clock, SystemClock};
use crate::store::{OrderSource, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The relay is stopping: the API's answer was not waited for.
    #[error("vérification des commandes interrompue par l'arrêt du relais")]
    Stopped,
}

/// What one round of checks found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckRound {
    /// Orders asked about.
    pub asked: usize,
    /// Orders found closed, with the deliveries each closing skipped.
    pub closed: Vec<(OrderId, u64)>,
}

pub struct OrderCheck {
    api: CamionBackApi,
    store: Store,
    clock: Arc<dyn Clock>,
    /// The last failure logged per order being checked: the same one is logged once, not
    /// every round of a three-hour broadcast.
    failures: HashMap<i64, String>,
}

impl OrderCheck {
    pub fn new(api: CamionBackApi, store: Store) -> Self {
        Self {
            api,
            store,
            clock: Arc::new(SystemClock::default()),
            failures: HashMap::new(),
        }
    }

    /// Dates the closings it writes by `clock` instead of the machine's.
    #[cfg(test)]
    pub(crate) fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Asks about every order with deliveries still queued, one after the other (a handful at
    /// a time: the orders of the last minutes), and closes those CamionBack says are closed.
    /// `stop` cuts a request short, never a write.
    pub async fn check_once(&mut self, stop: &CancellationToken) -> Result<CheckRound, CheckError> {
        let mut round = CheckRound::default();
        let orders = self.store.orders_with_queued_deliveries().await?;
        // Orders no longer checked (sent, closed) are forgotten: the memory stays as small as
        // the list of broadcasts in progress.
        self.failures
            .retain(|id, _| orders.iter().any(|order| order.0 == *id));
        for order in orders {
            round.asked += 1;
            let answer = stop
                .run_until_cancelled(self.api.order_statut(order))
                .await
                .ok_or(CheckError::Stopped)?;
            let statut = match answer {
                Ok(statut) => {
                    if self.failures.remove(&order.0).is_some() {
                        tracing::info!(
                            "vérification de la commande {} : l'API CamionBack répond de nouveau",
                            order.0
                        );
                    }
                    statut
                }
                Err(err) => {
                    let said = match err {
                        ApiError::Status { status: 404, .. } => {
                            "inconnue de l'API CamionBack (404)".to_string()
                        }
                        err => err.to_string(),
                    };
                    if self.failures.get(&order.0) != Some(&said) {
                        tracing::warn!(
                            "vérification de la commande {} : {said} — sa diffusion continue (signalé une fois)",
                            order.0
                        );
                        self.failures.insert(order.0, said);
                    }
                    continue;
                }
            };
            let Some(statut) = statut.filter(|s| !statut_is_open(Some(s))) else {
                continue;
            };
            let closed = self
                .store
                .close_order(order, &statut, OrderSource::Polling, self.clock.now_ms())
                .await?;
            tracing::info!(
                "commande {} fermée chez CamionBack (statut « {statut} ») : {} envoi(s) évité(s)",
                order.0,
                closed.cancelled
            );
            round.closed.push((order, closed.cancelled));
        }
        Ok(round)
    }

    pub async fn run_until_stopped(mut self, every: Duration, cancel: CancellationToken) {
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
            match self.check_once(&cancel).await {
                Ok(_) => {}
                Err(CheckError::Stopped) => return,
                // The next round tries again; a database that refuses is also the
                // dispatcher's alert.
                Err(err) => tracing::warn!("vérification des commandes en cours : {err}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use relay_domain::{CarrierId, Order, OrderFields};
    use relay_test_support::camionback::Outage;

    use super::*;
    use crate::clock::ManualClock;
    use crate::store::CarrierRecord;

    const START_MS: i64 = 1_764_000_000_000;

    /// Two orders broadcasting to three carriers, nothing sent yet.
    async fn broadcasting(store: &Store) {
        let carriers: Vec<CarrierRecord> = (1..=3)
            .map(|id| CarrierRecord {
                id: CarrierId(id),
                name: format!("Transporteur {id}"),
                phone_raw: format!("06123456{id:02}"),
                statut: "valide".into(),
            })
            .collect();
        store
            .replace_carriers(&carriers, START_MS)
            .await
            .expect("carriers");
        for id in [7, 8] {
            let order = Order::parse(
                OrderFields {
                    id,
                    reference: format!("CMD-2025-{id}"),
                    ..OrderFields::example()
                },
                OrderFields::EXAMPLE_TODAY,
            )
            .expect("order");
            store
                .insert_order(&order, OrderSource::Webhook, START_MS)
                .await
                .expect("insert");
            store.fan_out(&order, START_MS).await.expect("fan out");
        }
    }

    #[tokio::test]
    async fn each_round_asks_about_orders_being_broadcast_and_closes_those_no_longer_open() {
        let fake = relay_test_support::FakeCamionBack::start().await;
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("relay.db"))
            .await
            .expect("store");
        broadcasting(&store).await;
        let url = url::Url::parse(&fake.url()).expect("fake url");
        let token = secrecy::SecretString::from(relay_test_support::camionback::TOKEN);
        let api = CamionBackApi::new(url, Some(token)).expect("api");
        let clock = ManualClock::at(START_MS);
        let mut check = OrderCheck::new(api, store.clone()).with_clock(Arc::new(clock.clone()));
        let stop = CancellationToken::new();

        // Order 7 is unknown to the API, order 8 still open: nothing changes.
        fake.set_order_statut(8, Some("ouverte"));
        let round = check.check_once(&stop).await.expect("round");
        assert_eq!((round.asked, round.closed.len()), (2, 0));
        fake.set_order_lookup_outage(Outage::Garbage);
        assert!(
            check
                .check_once(&stop)
                .await
                .expect("round")
                .closed
                .is_empty()
        );
        fake.set_order_lookup_outage(Outage::None);

        clock.advance(Duration::from_secs(30));
        fake.set_order_statut(8, Some("Attribuée"));
        let round = check.check_once(&stop).await.expect("round");
        assert_eq!(round.closed, [(OrderId(8), 3)]);
        let closure = store
            .order_closure(OrderId(8))
            .await
            .expect("closure")
            .expect("closed");
        assert_eq!(
            (
                closure.statut.as_str(),
                closure.closed_at,
                closure.source.as_str()
            ),
            ("Attribuée", START_MS + 30_000, "polling")
        );
        assert_eq!(
            store.order_closure(OrderId(7)).await.expect("closure"),
            None
        );

        // A closed order is not asked about again.
        let round = check.check_once(&stop).await.expect("round");
        assert_eq!(round.asked, 1);
        assert_eq!(fake.order_lookups(), [7, 8, 7, 8, 7, 8, 7]);
    }
}
