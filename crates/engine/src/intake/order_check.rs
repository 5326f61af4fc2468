//! Asking CamionBack whether the orders being broadcast are still open: while an order has
//! deliveries queued, `GET /api/orders/{id}` every `CAMIONBACK_ORDER_CHECK_SECS`. A `statut`
//! other than absent or `ouverte` closes the order, as the `order.updated` / `order.closed`
//! webhooks do (`Store::close_order`): its queued deliveries are skipped and nothing more is
//! sent for it. The safety net under those webhooks, for a CamionBack that does not send them
//! or whose notice was lost. A 404, an error or an unreadable answer is logged and changes
//! nothing: only CamionBack saying the order is closed stops a broadcast.

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
}

impl OrderCheck {
    pub fn new(api: CamionBackApi, store: Store) -> Self {
        Self {
            api,
            store,
            clock: Arc::new(SystemClock::default()),
        }
    }

    /// Asks about every order with deliveries still queued, one after the other (a handful at
    /// a time: the orders of the last minutes), and closes those CamionBack says are closed.
    /// `stop` cuts a request short, never a write.
    pub async fn check_once(&self, stop: &CancellationToken) -> Result<CheckRound, CheckError> {
        let mut round = CheckRound::default();
        for order in self.store.orders_with_queued_deliveries().await? {
            round.asked += 1;
            let answer = stop
                .run_until_cancelled(self.api.order_statut(order))
                .await
                .ok_or(CheckError::Stopped)?;
            let statut = match answer {
                Ok(statut) => statut,
                Err(ApiError::Status { status: 404, .. }) => {
                    tracing::warn!(
                        "vérification de la commande {} : inconnue de l'API CamionBack (404), sa diffusion continue",
                        order.0
                    );
                    continue;
                }
                Err(err) => {
                    tracing::warn!(
                        "vérification de la commande {} : {err} — sa diffusion continue",
                        order.0
                    );
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

    pub async fn run_until_stopped(self, every: Duration, cancel: CancellationToken) {
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
