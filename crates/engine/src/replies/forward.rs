//! The forwarder: posts each reply attributed to an order to CamionBack
//! (`POST /api/orders/{id}/reponses`) from the `reply_forwards` queue, oldest first, one at a
//! time. 2xx: done. No answer, 408, 429, 5xx: tried again with a doubling delay (up to an hour)
//! for at least 24 h and at least `MIN_ATTEMPTS` tries, across restarts (the queue is in the
//! database). Any other 4xx: given up, logged, and shown with the reply. Every try of one reply
//! carries the same `Idempotency-Key` (its provider message id), so a post whose answer was lost
//! and is sent again is taken once.

use std::sync::Arc;
use std::time::Duration;

use chrono::{SecondsFormat, TimeZone, Utc};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::camionback::{CamionBackApi, ForwardError};
use crate::clock::{Clock, SystemClock};
use crate::store::{ForwardJob, Store, StoreError};

/// A forward that keeps failing is tried for at least this long after it was queued…
pub const RETRY_FOR: Duration = Duration::from_secs(24 * 3600);
/// …and at least this many times (a relay stopped over a weekend does not give up at its first
/// try on Monday).
pub const MIN_ATTEMPTS: i64 = 10;
/// The longest wait between two tries.
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(3600);
/// The first wait after a failure in the product.
pub const FIRST_RETRY_DELAY: Duration = Duration::from_secs(10);
/// An idle forwarder looks at the queue at least this often (a reply stored by another
/// process, a clock set forward).
const IDLE_LOOK: Duration = Duration::from_secs(60);
/// After a database error, before the next look.
const STORE_ERROR_WAIT: Duration = Duration::from_secs(5);

/// What one step did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Forwarded {
        reply_id: i64,
    },
    /// Failed; tried again at `next_at` (unix ms).
    Retrying {
        reply_id: i64,
        next_at: i64,
    },
    GivenUp {
        reply_id: i64,
        reason: String,
    },
    /// Nothing due; the next forward is due at this time, if any is queued.
    Idle {
        next_due: Option<i64>,
    },
}

pub struct Forwarder {
    store: Store,
    api: CamionBackApi,
    clock: Arc<dyn Clock>,
    first_retry: Duration,
}

impl Forwarder {
    pub fn new(store: Store, api: CamionBackApi, first_retry: Duration) -> Self {
        Self {
            store,
            api,
            clock: Arc::new(SystemClock::default()),
            first_retry,
        }
    }

    /// The same forwarder reading the time from `clock`.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Posts the oldest forward due, and records what came of it.
    pub async fn try_once(&self) -> Result<Step, StoreError> {
        let now = self.clock.now_ms();
        let Some(job) = self.store.due_forward(now).await? else {
            return Ok(Step::Idle {
                next_due: self.store.next_forward_at().await?,
            });
        };
        let posted = self
            .api
            .post_reply(job.order_id, &job.idempotency_key(), &body(&job))
            .await;
        let now = self.clock.now_ms();
        let attempts = job.attempts + 1;
        match posted {
            Ok(()) => {
                self.store.forward_done(job.reply_id, now).await?;
                tracing::info!(
                    "réponse {} transmise à CamionBack (commande {})",
                    job.reply_id,
                    job.order_id
                );
                Ok(Step::Forwarded {
                    reply_id: job.reply_id,
                })
            }
            Err(ForwardError::Refused(reason)) => self.give_up(&job, &reason, now).await,
            Err(ForwardError::Transient(reason)) => {
                let retry_for = i64::try_from(RETRY_FOR.as_millis()).unwrap_or(i64::MAX);
                if attempts >= MIN_ATTEMPTS && now - job.queued_at >= retry_for {
                    let reason =
                        format!("{reason} (échecs depuis plus de 24 h, {attempts} essais)");
                    return self.give_up(&job, &reason, now).await;
                }
                let failures = u32::try_from(attempts).unwrap_or(u32::MAX);
                let delay = super::retry_delay(self.first_retry, failures);
                let next_at =
                    now.saturating_add(i64::try_from(delay.as_millis()).unwrap_or(i64::MAX));
                self.store
                    .forward_failed(job.reply_id, &reason, next_at)
                    .await?;
                tracing::warn!(
                    "réponse {} non transmise à CamionBack ({reason}) : nouvel essai dans {} s",
                    job.reply_id,
                    delay.as_secs()
                );
                Ok(Step::Retrying {
                    reply_id: job.reply_id,
                    next_at,
                })
            }
        }
    }

    async fn give_up(&self, job: &ForwardJob, reason: &str, now: i64) -> Result<Step, StoreError> {
        self.store
            .forward_given_up(job.reply_id, reason, now)
            .await?;
        tracing::error!(
            "réponse {} abandonnée : CamionBack l'a refusée ({reason}) ; elle reste visible dans les réponses",
            job.reply_id
        );
        Ok(Step::GivenUp {
            reply_id: job.reply_id,
            reason: reason.to_string(),
        })
    }

    /// Works through the queue until `cancel`. A post in flight is dropped by a stop (the
    /// forward stays pending and is posted again, with the same key, at the next start): a stop
    /// never waits for CamionBack.
    pub async fn run_until_stopped(self, cancel: CancellationToken) {
        loop {
            let wait = match cancel.run_until_cancelled(self.try_once()).await {
                None => return,
                Some(Ok(Step::Idle { next_due })) => {
                    let now = self.clock.now_ms();
                    next_due
                        .map(|due| {
                            Duration::from_millis(u64::try_from(due - now).unwrap_or_default())
                        })
                        .unwrap_or(IDLE_LOOK)
                        .min(IDLE_LOOK)
                }
                Some(Ok(_)) => Duration::ZERO,
                Some(Err(err)) => {
                    tracing::error!("file des réponses à transmettre illisible : {err}");
                    STORE_ERROR_WAIT
                }
            };
            if wait.is_zero() {
                continue;
            }
            tokio::select! {
                () = cancel.cancelled() => return,
                () = self.store.forward_wake().notified() => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
    }
}

/// The JSON CamionBack takes for one reply.
fn body(job: &ForwardJob) -> serde_json::Value {
    let received = Utc
        .timestamp_millis_opt(job.received_at)
        .single()
        .unwrap_or_else(Utc::now)
        .to_rfc3339_opts(SecondsFormat::Secs, true);
    json!({
        "transporteur_id": job.carrier_id,
        "telephone": job.phone,
        "texte": job.text,
        "interesse": job.interested,
        "canal": job.channel.as_deref().unwrap_or("whatsapp-web"),
        "message_id": job.idempotency_key(),
        "recu_le": received,
    })
}
