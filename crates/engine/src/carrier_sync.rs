//! Keeps the local carrier list in step with the CamionBack API: at start-up, on a timer and
//! before each broadcast. A failed sync keeps the last good list.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use crate::camionback::{ApiError, CamionBackApi};
use crate::clock::now_ms;
use crate::store::{StateKey, Store, StoreError, TimedProblem};

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("synchronisation des transporteurs impossible : CAMIONBACK_API_URL n'est pas défini")]
    NotConfigured,
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The relay is stopping: the answer was not waited for and nothing was changed.
    #[error("synchronisation des transporteurs interrompue par l'arrêt du relais")]
    Stopped,
}

/// A summary of one successful sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncReport {
    pub listed: usize,
    pub eligible: i64,
}

#[derive(Clone)]
pub struct CarrierSync {
    api: Option<CamionBackApi>,
    store: Store,
    /// One sync at a time: the timer and a broadcast must not interleave their lists.
    running: Arc<Mutex<()>>,
    /// The engine's stop: `sync_now` gives up its request when it comes.
    stop: CancellationToken,
}

impl CarrierSync {
    pub fn new(api: Option<CamionBackApi>, store: Store) -> Self {
        Self {
            api,
            store,
            running: Arc::new(Mutex::new(())),
            stop: CancellationToken::new(),
        }
    }

    /// The same sync, whose requests are given up when `stop` is cancelled (the engine's
    /// shutdown): a broadcast or a screen waiting on a slow API does not hold a stop.
    pub fn stopped_by(self, stop: CancellationToken) -> Self {
        Self { stop, ..self }
    }

    pub async fn sync_now(&self) -> Result<SyncReport, SyncError> {
        self.sync_unless_stopped(&self.stop).await
    }

    /// Syncs, unless `stop` comes first: then the API's answer is not waited for (a slow or
    /// hanging API must not hold a stop) and the list is left as it was. Only the request is
    /// cut short; once the answer is in, the list is replaced whole, in one transaction.
    pub async fn sync_unless_stopped(
        &self,
        stop: &CancellationToken,
    ) -> Result<SyncReport, SyncError> {
        let api = self.api.as_ref().ok_or(SyncError::NotConfigured)?;
        let Some(_one_at_a_time) = stop.run_until_cancelled(self.running.lock()).await else {
            return Err(SyncError::Stopped);
        };
        let outcome = async {
            let carriers = stop
                .run_until_cancelled(api.list_carriers())
                .await
                .ok_or(SyncError::Stopped)??;
            self.store.replace_carriers(&carriers, now_ms()).await?;
            Ok::<_, SyncError>(SyncReport {
                listed: carriers.len(),
                eligible: self.store.eligible_carrier_count().await?,
            })
        }
        .await;
        match &outcome {
            Err(SyncError::Stopped) => {
                tracing::info!("synchronisation des transporteurs abandonnée : arrêt demandé");
            }
            Ok(report) => {
                self.store
                    .set_state(StateKey::LastCarrierSyncAt, &now_ms().to_string())
                    .await?;
                self.store
                    .clear_state(StateKey::LastCarrierSyncError)
                    .await?;
                tracing::info!(
                    "transporteurs synchronisés : {} listés, {} validés",
                    report.listed,
                    report.eligible
                );
            }
            Err(err) => {
                self.store
                    .set_problem(
                        StateKey::LastCarrierSyncError,
                        &TimedProblem::new(now_ms(), err.to_string()),
                    )
                    .await?;
                tracing::warn!("{err} — la dernière liste connue est conservée");
            }
        }
        outcome
    }

    /// Syncs before a broadcast, waiting at most `limit`: a slow API must not hold an order
    /// back, the last list is good enough then.
    pub async fn sync_before_broadcast(&self, limit: Duration) {
        if self.api.is_none() {
            return;
        }
        if tokio::time::timeout(limit, self.sync_now()).await.is_err() {
            tracing::warn!(
                "synchronisation des transporteurs trop lente avant diffusion : dernière liste utilisée"
            );
        }
    }

    pub async fn run_until_stopped(self, every: Duration, cancel: CancellationToken) {
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
            // Errors are logged and recorded by the sync; the next tick tries again.
            let _ = self.sync_unless_stopped(&cancel).await;
        }
    }
}
