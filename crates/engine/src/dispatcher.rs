//! The dispatcher: the one sender per WhatsApp account. It takes queued deliveries in turn
//! across orders, keeps at least the throttle between two sends, records every outcome, and
//! retries what is worth retrying. A delivery is `sending` in the database before the channel
//! hears of it, which is what makes a crash safe (see `Store::interrupt_in_flight`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use rand::Rng;
use relay_domain::{
    DeliveryStatus, MessageTemplate, OrderId, PhoneNumber, TemplateFields, mask_phone,
};
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::channel::{Channel, OutgoingMessage, SendError};
use crate::clock::now_ms;
use crate::store::{Claim, StateKey, Store, StoreError};

/// Attempts per delivery for transient errors, the first one included.
pub const MAX_ATTEMPTS: i64 = 3;
/// While idle, the queue is looked at this often, so a relaunch queued by another process
/// (the CLI) starts within a second.
const IDLE_POLL: Duration = Duration::from_millis(500);
/// Bounds on a `Retry-After` we honour.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(15 * 60);

#[derive(Clone)]
pub struct DispatchSettings {
    pub throttle: Duration,
    pub jitter: Duration,
    pub send_timeout: Duration,
    pub template: MessageTemplate,
    pub link_base: String,
}

/// What one `try_once` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// The channel was asked to send (whatever it answered): the throttle applies.
    Attempted,
    /// A delivery was settled without sending (carrier no longer eligible, bad number).
    Settled,
    /// Nothing due; the next queued delivery (if any) falls due at this unix ms.
    Idle { next_due: Option<i64> },
    /// The account cannot send; sending resumes after this long.
    Paused(Duration),
    /// Staff paused sending: nothing is claimed until they resume.
    Held,
}

struct Rendered {
    reference: String,
    fields: TemplateFields,
    text: String,
}

pub struct Dispatcher {
    store: Store,
    channel: Arc<dyn Channel>,
    settings: DispatchSettings,
    /// Rung when deliveries are queued.
    wake: Arc<Notify>,
    /// The order served last: the next claim starts after it (round robin).
    last_order: Option<OrderId>,
    rendered: HashMap<OrderId, Arc<Rendered>>,
    /// Whether the last send found the account unable to send.
    paused: bool,
}

impl Dispatcher {
    pub fn new(
        store: Store,
        channel: Arc<dyn Channel>,
        settings: DispatchSettings,
        wake: Arc<Notify>,
    ) -> Self {
        Self {
            store,
            channel,
            settings,
            wake,
            last_order: None,
            rendered: HashMap::new(),
            paused: false,
        }
    }

    async fn render(&mut self, order: OrderId) -> Result<Option<Arc<Rendered>>, StoreError> {
        if let Some(rendered) = self.rendered.get(&order) {
            return Ok(Some(rendered.clone()));
        }
        let Some(stored) = self.store.get_order(order).await? else {
            return Ok(None);
        };
        let fields = TemplateFields::of(&stored.order, &self.settings.link_base);
        let rendered = Arc::new(Rendered {
            reference: stored.order.reference.clone(),
            text: self.settings.template.render(&fields),
            fields,
        });
        // A handful of orders are live at once; the cache never needs to grow past that.
        if self.rendered.len() > 256 {
            self.rendered.clear();
        }
        self.rendered.insert(order, rendered.clone());
        Ok(Some(rendered))
    }

    /// Claims the next due delivery and settles it: sends it, or records why not.
    pub async fn try_once(&mut self) -> Result<Step, StoreError> {
        // The claim itself claims nothing while staff paused sending (the pause may come from
        // another process on this database, the CLI next to `serve`); only when it found
        // nothing is the pause asked about, so a send costs no extra query.
        let Some(claim) = self.store.claim_next(self.last_order, now_ms()).await? else {
            if self.store.paused_by_staff_since().await?.is_some() {
                return Ok(Step::Held);
            }
            return Ok(Step::Idle {
                next_due: self.store.next_due_at().await?,
            });
        };
        self.last_order = Some(claim.order());

        if let Some(reason) = self.store.carrier_refusal(claim.carrier()).await? {
            tracing::info!(
                "envoi à {} ({}) annulé : {reason}",
                claim.carrier_name,
                mask_phone(&claim.phone)
            );
            self.store
                .mark_final(claim.id, DeliveryStatus::Skipped, &reason, None, now_ms())
                .await?;
            return Ok(Step::Settled);
        }
        let Some(rendered) = self.render(claim.order()).await? else {
            self.store
                .mark_final(
                    claim.id,
                    DeliveryStatus::Failed,
                    "commande introuvable",
                    None,
                    now_ms(),
                )
                .await?;
            return Ok(Step::Settled);
        };
        let phone = match PhoneNumber::parse(&claim.phone) {
            Ok(phone) => phone,
            Err(err) => {
                self.store
                    .mark_final(
                        claim.id,
                        DeliveryStatus::InvalidNumber,
                        &err.to_string(),
                        None,
                        now_ms(),
                    )
                    .await?;
                log_failure(&claim, &rendered.reference, &err.to_string());
                return Ok(Step::Settled);
            }
        };

        // A retry keeps the id of the earlier attempt: WhatsApp takes a message id once.
        let planned = match claim.message_id.clone() {
            Some(id) => Some(id),
            None => {
                let planned = self.channel.plan_message_id();
                if let Some(message_id) = planned.as_deref() {
                    self.store.plan_message_id(claim.id, message_id).await?;
                }
                planned
            }
        };
        let message = OutgoingMessage {
            delivery_id: claim.id,
            message_id: planned.as_deref(),
            to: &phone,
            text: &rendered.text,
            fields: &rendered.fields,
        };
        let outcome = match tokio::time::timeout(
            self.settings.send_timeout,
            self.channel.send(message),
        )
        .await
        {
            Ok(outcome) => outcome,
            Err(_) => Err(SendError::Transient {
                reason: format!(
                    "pas de réponse après {} s",
                    self.settings.send_timeout.as_secs()
                ),
                code: None,
                retry_after: None,
            }),
        };
        let now = now_ms();
        match outcome {
            Ok(accepted) => {
                self.store
                    .mark_sent(claim.id, accepted.message_id.as_deref(), now)
                    .await?;
                if self.paused {
                    self.paused = false;
                    self.store.clear_state(StateKey::SendingPaused).await?;
                    tracing::info!("envois repris");
                }
                tracing::info!(
                    "✅ Message envoyé à {} ({}) pour commande {}",
                    claim.carrier_name,
                    phone.masked(),
                    rendered.reference
                );
            }
            Err(SendError::Uncertain { reason, message_id }) => {
                self.store
                    .mark_uncertain(
                        claim.id,
                        &reason,
                        message_id.as_deref().or(planned.as_deref()),
                        now,
                    )
                    .await?;
                tracing::warn!(
                    "envoi à {} ({}) pour commande {} incertain, non renvoyé : {reason}",
                    claim.carrier_name,
                    phone.masked(),
                    rendered.reference
                );
            }
            Err(SendError::Permanent {
                status,
                reason,
                code,
            }) => {
                self.store
                    .mark_final(claim.id, status, &reason, code.as_deref(), now)
                    .await?;
                log_failure(&claim, &rendered.reference, &reason);
            }
            Err(SendError::Transient {
                reason,
                code,
                retry_after,
            }) => {
                if claim.attempts >= MAX_ATTEMPTS {
                    let reason = format!("{reason} (après {} tentatives)", claim.attempts);
                    self.store
                        .mark_final(
                            claim.id,
                            DeliveryStatus::Failed,
                            &reason,
                            code.as_deref(),
                            now,
                        )
                        .await?;
                    log_failure(&claim, &rendered.reference, &reason);
                } else {
                    let delay = retry_delay(claim.attempts, retry_after);
                    self.store
                        .reschedule(
                            claim.id,
                            &reason,
                            code.as_deref(),
                            now + millis(delay),
                            true,
                            now,
                        )
                        .await?;
                    tracing::warn!(
                        "envoi à {} ({}) pour commande {} à réessayer dans {} s : {reason}",
                        claim.carrier_name,
                        phone.masked(),
                        rendered.reference,
                        delay.as_secs()
                    );
                }
            }
            Err(SendError::Unavailable {
                reason,
                retry_after,
            }) => {
                self.store
                    .reschedule(
                        claim.id,
                        &reason,
                        None,
                        now + millis(retry_after),
                        false,
                        now,
                    )
                    .await?;
                tracing::error!("envois suspendus {} s : {reason}", retry_after.as_secs());
                self.paused = true;
                self.store
                    .set_state(
                        StateKey::SendingPaused,
                        &format!("{} {reason}", now + millis(retry_after)),
                    )
                    .await?;
                return Ok(Step::Paused(retry_after));
            }
        }
        Ok(Step::Attempted)
    }

    /// Runs until `cancel`; a send in flight is always finished and recorded first.
    pub async fn run_until_stopped(mut self, cancel: CancellationToken) {
        let mut next_send_at = Instant::now();
        loop {
            // A timer that is already due still costs a timer tick (about 1 ms): skip it.
            if next_send_at > Instant::now() {
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep_until(next_send_at) => {}
                }
            } else if cancel.is_cancelled() {
                return;
            }
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = self.channel.ready() => {}
            }
            // Not raced against `cancel`: once claimed, a delivery is sent and recorded.
            let started = Instant::now();
            let step = match self.try_once().await {
                Ok(step) => step,
                Err(err) => {
                    tracing::error!("file d'envoi : {err}");
                    Step::Paused(Duration::from_secs(1))
                }
            };
            match step {
                Step::Attempted => next_send_at = started + self.gap(),
                Step::Settled => {}
                Step::Paused(wait) => next_send_at = Instant::now() + wait,
                Step::Held => {
                    tokio::select! {
                        _ = cancel.cancelled() => return,
                        _ = self.wake.notified() => {}
                        _ = tokio::time::sleep(IDLE_POLL) => {}
                    }
                }
                Step::Idle { next_due } => {
                    let until_due = next_due
                        .map(|due| {
                            Duration::from_millis(u64::try_from(due - now_ms()).unwrap_or(0))
                        })
                        .unwrap_or(IDLE_POLL);
                    tokio::select! {
                        _ = cancel.cancelled() => return,
                        _ = self.wake.notified() => {}
                        _ = tokio::time::sleep(until_due.min(IDLE_POLL)) => {}
                    }
                }
            }
        }
    }

    /// The time between two send starts: the throttle plus a random share of the jitter, so
    /// the account does not send at a machine's perfectly regular beat.
    fn gap(&self) -> Duration {
        let jitter = u64::try_from(self.settings.jitter.as_millis()).unwrap_or(u64::MAX);
        let extra = if jitter == 0 {
            0
        } else {
            rand::rng().random_range(0..=jitter)
        };
        self.settings.throttle + Duration::from_millis(extra)
    }
}

/// When to try again after the `attempt`-th transient failure: `Retry-After` when the channel
/// gives one (bounded), else 5 s then 20 s, with jitter.
pub fn retry_delay(attempt: i64, retry_after: Option<Duration>) -> Duration {
    if let Some(wait) = retry_after {
        return wait.clamp(Duration::from_secs(1), MAX_RETRY_AFTER);
    }
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_secs(5))
        .with_factor(4.0)
        .with_max_delay(Duration::from_secs(300))
        .with_jitter()
        .without_max_times()
        .build()
        .nth(usize::try_from(attempt.max(1) - 1).unwrap_or(0))
        .unwrap_or(Duration::from_secs(300))
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

fn log_failure(claim: &Claim, reference: &str, reason: &str) {
    tracing::warn!(
        "❌ Échec de l'envoi à {} ({}) pour commande {} : {reason}",
        claim.carrier_name,
        mask_phone(&claim.phone),
        reference
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_wait_longer_each_time_and_honour_retry_after_within_bounds() {
        let first = retry_delay(1, None);
        let second = retry_delay(2, None);
        assert!(
            first >= Duration::from_secs(5) && first < Duration::from_secs(11),
            "{first:?}"
        );
        assert!(second >= Duration::from_secs(20), "{second:?}");
        assert_eq!(
            retry_delay(1, Some(Duration::from_secs(42))),
            Duration::from_secs(42)
        );
        assert_eq!(retry_delay(1, Some(Duration::ZERO)), Duration::from_secs(1));
        assert_eq!(
            retry_delay(1, Some(Duration::from_secs(86_400))),
            MAX_RETRY_AFTER
        );
    }
}
