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

#[cfg(test)]
mod tests {
    //! The forwarder on a manual clock against the fake CamionBack: how long a failing forward
    //! is tried, and what ends it.

    use relay_domain::{Order, OrderFields};
    use relay_test_support::FakeCamionBack;
    use relay_test_support::camionback::TOKEN;
    use secrecy::SecretString;

    use super::*;
    use crate::clock::ManualClock;
    use crate::config::ChannelKind;
    use crate::store::{ForwardState, InboundReply, OrderSource};

    /// 24/11/2025 16:00:00 UTC.
    const START_MS: i64 = 1_764_000_000_000;
    const HOUR_MS: i64 = 3_600_000;

    struct Bench {
        _dir: tempfile::TempDir,
        store: Store,
        clock: ManualClock,
        api: FakeCamionBack,
        forwarder: Forwarder,
    }

    /// A store with order 123 and one interested reply about it, received at `START_MS`.
    async fn bench() -> Bench {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("relay.db"))
            .await
            .expect("store");
        let order = Order::restore(OrderFields::example()).expect("order");
        store
            .insert_order(&order, OrderSource::Webhook, START_MS)
            .await
            .expect("order");
        let outcome = store
            .record_reply(&InboundReply {
                channel: ChannelKind::CloudApi,
                message_id: "wamid.F1",
                phone: "+212612345601",
                user_id: None,
                text: "Intéressé",
                button_payload: Some("INTERESSE:123"),
                quoted_message_id: None,
                received_at: START_MS,
            })
            .await
            .expect("reply");
        assert_eq!(outcome.forward, ForwardState::Pending);
        let api = FakeCamionBack::start().await;
        let client = CamionBackApi::new(
            api.url().parse().expect("url"),
            Some(SecretString::from(TOKEN.to_string())),
        )
        .expect("client");
        let clock = ManualClock::at(START_MS);
        let forwarder = Forwarder::new(store.clone(), client, FIRST_RETRY_DELAY)
            .with_clock(Arc::new(clock.clone()));
        Bench {
            _dir: dir,
            store,
            clock,
            api,
            forwarder,
        }
    }

    impl Bench {
        /// Tries, moving the clock to each retry, until the forward ends; the clock (ms after
        /// the start) at each try, and how it ended.
        async fn run_until_settled(&self) -> (Vec<i64>, Step) {
            let mut tries = Vec::new();
            loop {
                tries.push(self.clock.now_ms() - START_MS);
                match self.forwarder.try_once().await.expect("try") {
                    Step::Retrying { next_at, .. } => {
                        let wait = next_at - self.clock.now_ms();
                        self.clock
                            .advance(Duration::from_millis(u64::try_from(wait).expect("ahead")));
                    }
                    Step::Idle { next_due } => panic!("idle with a forward pending: {next_due:?}"),
                    settled => return (tries, settled),
                }
            }
        }

        async fn forward_state(&self) -> (ForwardState, Option<String>) {
            let row = self.store.replies(1).await.expect("replies").remove(0);
            (row.forwarded, row.forward_error)
        }
    }

    #[tokio::test]
    async fn a_forward_that_keeps_failing_is_retried_for_24_hours_with_doubling_waits_then_given_up()
     {
        let b = bench().await;
        b.api.set_replies_status(Some(503));
        let (tries, end) = b.run_until_settled().await;
        assert!(matches!(end, Step::GivenUp { .. }), "{end:?}");
        let gaps: Vec<i64> = tries.windows(2).map(|w| (w[1] - w[0]) / 1000).collect();
        assert_eq!(
            &gaps[..10],
            &[10, 20, 40, 80, 160, 320, 640, 1280, 2560, 3600],
            "doubling from 10 s up to an hour"
        );
        assert!(gaps[10..].iter().all(|g| *g == 3600), "{gaps:?}");
        let last = *tries.last().expect("tries");
        assert!(last >= 24 * HOUR_MS, "given up only after 24 h: {last}");
        assert!(
            last < 25 * HOUR_MS,
            "and at the first failure after: {last}"
        );
        assert!(
            tries[..tries.len() - 1].iter().all(|t| *t < 24 * HOUR_MS),
            "never given up before"
        );
        assert_eq!(b.api.reply_posts().len(), tries.len(), "one post per try");
        let (state, error) = b.forward_state().await;
        assert_eq!(state, ForwardState::GivenUp);
        assert!(error.is_some_and(|e| e.contains("503") && e.contains("24 h")));
        assert_eq!(b.store.pending_forwards().await.expect("queue").0, 0);
    }

    #[tokio::test]
    async fn a_relay_back_after_days_still_tries_ten_times_before_giving_up() {
        let b = bench().await;
        b.api.set_replies_status(Some(500));
        b.clock.advance(Duration::from_secs(3 * 24 * 3600));
        let (tries, end) = b.run_until_settled().await;
        assert!(matches!(end, Step::GivenUp { .. }), "{end:?}");
        assert_eq!(tries.len(), 10, "ten tries, however old the reply");
    }

    #[tokio::test]
    async fn timeouts_and_rate_limits_are_retried_and_other_refusals_end_at_once() {
        for (status, retried) in [
            (408, true),
            (429, true),
            (502, true),
            (404, false),
            (422, false),
            (401, false),
        ] {
            let b = bench().await;
            b.api.set_replies_status(Some(status));
            let step = b.forwarder.try_once().await.expect("try");
            assert_eq!(
                matches!(step, Step::Retrying { .. }),
                retried,
                "HTTP {status}: {step:?}"
            );
            if !retried {
                assert_eq!(
                    b.forward_state().await.0,
                    ForwardState::GivenUp,
                    "HTTP {status}"
                );
            }
            // Back up: a retried forward lands at its next try, with the same key.
            b.api.set_replies_status(None);
            if let Step::Retrying { next_at, .. } = step {
                assert_eq!(next_at, START_MS + 10_000, "HTTP {status}");
                b.clock.advance(Duration::from_secs(10));
                let (_, end) = b.run_until_settled().await;
                assert!(matches!(end, Step::Forwarded { .. }), "{end:?}");
                assert_eq!(b.forward_state().await.0, ForwardState::Done);
                let keys: Vec<_> = b
                    .api
                    .reply_posts()
                    .into_iter()
                    .map(|p| p.idempotency_key)
                    .collect();
                assert_eq!(keys, vec![Some("wamid.F1".to_string()); 2]);
            }
        }
    }

    #[tokio::test]
    async fn an_api_that_cannot_be_reached_is_retried() {
        let b = bench().await;
        // A port nothing listens on: the connection is refused.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", closed.local_addr().expect("addr"));
        drop(closed);
        let forwarder = Forwarder::new(
            b.store.clone(),
            CamionBackApi::new(url.parse().expect("url"), None).expect("client"),
            FIRST_RETRY_DELAY,
        )
        .with_clock(Arc::new(b.clock.clone()));
        let step = forwarder.try_once().await.expect("try");
        assert!(
            matches!(step, Step::Retrying { next_at, .. } if next_at == START_MS + 10_000),
            "{step:?}"
        );
        assert_eq!(b.forward_state().await.0, ForwardState::Pending);
    }
}
