//! Turns each newly stored order into its broadcast: one queued delivery per eligible carrier,
//! written in one transaction, after a fresh carrier sync.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::carrier_sync::CarrierSync;
use crate::clock::now_ms;
use crate::events::EngineEvents;
use crate::store::{Store, StoreError};

/// How long a broadcast waits for the carrier list before using the last one.
const SYNC_BEFORE_BROADCAST_LIMIT: Duration = Duration::from_secs(5);
/// Orders left behind by a crash are found by this periodic look even without a wake-up.
const SWEEP_INTERVAL: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub struct Broadcaster {
    store: Store,
    carriers: CarrierSync,
    /// Rung by the intake when it stores a new order.
    pub new_order: Arc<Notify>,
    /// Rung for the dispatcher when deliveries were queued.
    dispatcher: Arc<Notify>,
    /// Told of a broadcast that had nothing to send (every number unusable): it is finished.
    events: EngineEvents,
}

impl Broadcaster {
    pub fn new(
        store: Store,
        carriers: CarrierSync,
        dispatcher: Arc<Notify>,
        events: EngineEvents,
    ) -> Self {
        Self {
            store,
            carriers,
            new_order: Arc::new(Notify::new()),
            dispatcher,
            events,
        }
    }

    /// Fans out every order still owed a broadcast. Returns how many were fanned out.
    pub async fn try_once(&self) -> Result<usize, StoreError> {
        let owed = self.store.orders_awaiting_fan_out().await?;
        if owed.is_empty() {
            return Ok(0);
        }
        self.carriers
            .sync_before_broadcast(SYNC_BEFORE_BROADCAST_LIMIT)
            .await;
        for stored in &owed {
            let order = &stored.order;
            let outcome = self.store.fan_out(order, now_ms()).await?;
            if order.is_open() {
                tracing::info!(
                    "commande {} ({} → {}) : {} envois en file, {} numéros invalides, {} exclus",
                    order.reference,
                    order.ville_depart,
                    order.ville_arrivee,
                    outcome.queued,
                    outcome.invalid_numbers,
                    outcome.skipped
                );
            } else {
                tracing::info!(
                    "commande {} non diffusée : statut « {} »",
                    order.reference,
                    order.statut.as_deref().unwrap_or("")
                );
            }
            if outcome.queued == 0 {
                self.events.after_queued(&self.store, order.id, 0).await?;
            }
            self.dispatcher.notify_one();
        }
        Ok(owed.len())
    }

    pub async fn run_until_stopped(self, cancel: CancellationToken) {
        loop {
            if let Err(err) = self.try_once().await {
                tracing::error!("diffusion des nouvelles commandes : {err}");
            }
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = self.new_order.notified() => {}
                _ = tokio::time::sleep(SWEEP_INTERVAL) => {}
            }
        }
    }
}
