//! Keeps the local carrier list in step with the CamionBack API: at start-up, on a timer and
//! before each broadcast. A failed sync keeps the last good list.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use crate::camionback::{ApiError, CamionBackApi};
use crate::clock::now_ms;
use crate::store::{StateKey, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("synchronisation des transporteurs impossible : CAMIONBACK_API_URL n'est pas défini")]
    NotConfigured,
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error(transparent)]
    Store(#[from] StoreError),
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
}

impl CarrierSync {
    pub fn new(api: Option<CamionBackApi>, store: Store) -> Self {
        Self {
            api,
            store,
            running: Arc::new(Mutex::new(())),
        }
    }

    pub async fn sync_now(&self) -> Result<SyncReport, SyncError> {
        let api = self.api.as_ref().ok_or(SyncError::NotConfigured)?;
        let _one_at_a_time = self.running.lock().await;
        let outcome = async {
            let carriers = api.list_carriers().await?;
            self.store.replace_carriers(&carriers, now_ms()).await?;
            Ok::<_, SyncError>(SyncReport {
                listed: carriers.len(),
                eligible: self.store.eligible_carrier_count().await?,
            })
        }
        .await;
        match &outcome {
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
                    .set_state(
                        StateKey::LastCarrierSyncError,
                        &format!("{} {err}", now_ms()),
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
            // Errors are logged and recorded by `sync_now`; the next tick tries again.
            let _ = self.sync_now().await;
        }
    }
}
