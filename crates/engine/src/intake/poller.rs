//! Polling `GET /api/orders`: the safety net under the webhook, and the catch-up after a stop.
//! The cursor (highest order id seen) is persisted, so a restart asks for exactly what it
//! missed; the very first start only looks back `CAMIONBACK_BACKFILL_MINUTES`.

use std::sync::Arc;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use chrono::{TimeZone, Utc};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::camionback::{ApiError, CamionBackApi, ORDERS_PAGE_SIZE, Since};
use crate::clock::now_ms;
use crate::store::{OrderSource, StateKey, Store, StoreError};

/// The longest wait between two polls while the API keeps failing.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

#[derive(Debug, thiserror::Error)]
pub enum PollError {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub struct Poller {
    api: CamionBackApi,
    store: Store,
    backfill: Duration,
    new_order: Arc<Notify>,
}

impl Poller {
    pub fn new(
        api: CamionBackApi,
        store: Store,
        backfill: Duration,
        new_order: Arc<Notify>,
    ) -> Self {
        Self {
            api,
            store,
            backfill,
            new_order,
        }
    }

    async fn since(&self) -> Result<Since, StoreError> {
        if let Some(id) = self.store.get_state_i64(StateKey::PollCursor).await? {
            return Ok(Since::Id(id));
        }
        // Fixed at the first poll and kept: until an order is seen, every poll looks back
        // from the same instant, so nothing created in between slips through.
        let from = match self.store.get_state_i64(StateKey::PollCreatedAfter).await? {
            Some(ms) => ms,
            None => {
                let ms = now_ms() - i64::try_from(self.backfill.as_millis()).unwrap_or(i64::MAX);
                self.store
                    .set_state(StateKey::PollCreatedAfter, &ms.to_string())
                    .await?;
                ms
            }
        };
        Ok(Since::CreatedAfter(
            Utc.timestamp_millis_opt(from)
                .single()
                .unwrap_or_else(Utc::now),
        ))
    }

    /// Fetches every page of new orders and stores them. Returns how many were new.
    pub async fn poll_once(&self) -> Result<usize, PollError> {
        let mut new_orders = 0;
        loop {
            let since = self.since().await?;
            let page = self.api.list_orders(since).await?;
            let full = page.len() >= ORDERS_PAGE_SIZE;
            let mut cursor = match since {
                Since::Id(id) => Some(id),
                Since::CreatedAfter(_) => None,
            };
            for polled in page {
                let id = match polled {
                    Ok(order) => {
                        if self
                            .store
                            .insert_order(&order, OrderSource::Polling, now_ms())
                            .await?
                        {
                            tracing::info!(
                                "commande {} reçue par interrogation de l'API",
                                order.reference
                            );
                            new_orders += 1;
                            self.new_order.notify_one();
                        }
                        order.id.0
                    }
                    Err((id, reason)) => {
                        // Skipped, not retried forever: an order that cannot be read would
                        // otherwise block every order after it.
                        tracing::error!("commande {id} ignorée : {reason}");
                        id
                    }
                };
                cursor = Some(cursor.map_or(id, |c| c.max(id)));
            }
            if let Some(cursor) = cursor {
                self.store
                    .set_state(StateKey::PollCursor, &cursor.to_string())
                    .await?;
            }
            if !full {
                break;
            }
        }
        self.store
            .set_state(StateKey::LastPollOkAt, &now_ms().to_string())
            .await?;
        self.store.clear_state(StateKey::LastPollError).await?;
        Ok(new_orders)
    }

    pub async fn run_until_stopped(self, every: Duration, cancel: CancellationToken) {
        let mut failures = failure_backoff(every);
        loop {
            let wait = match self.poll_once().await {
                Ok(_) => {
                    failures = failure_backoff(every);
                    every
                }
                Err(err) => {
                    let wait = failures.next().unwrap_or(MAX_BACKOFF);
                    tracing::warn!(
                        "interrogation des commandes : {err} — nouvel essai dans {} s",
                        wait.as_secs()
                    );
                    let _ = self
                        .store
                        .set_state(StateKey::LastPollError, &format!("{} {err}", now_ms()))
                        .await;
                    wait
                }
            };
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }
}

/// Waits between polls while the API fails: from the poll interval up to five minutes.
fn failure_backoff(every: Duration) -> impl Iterator<Item = Duration> {
    ExponentialBuilder::default()
        .with_min_delay(every.max(Duration::from_secs(1)))
        .with_max_delay(MAX_BACKOFF)
        .with_jitter()
        .without_max_times()
        .build()
}
