//! The dispatcher: the one sender per WhatsApp account. It takes queued deliveries in turn
//! across orders, keeps at least the throttle between two sends, records every outcome, and
//! retries what is worth retrying. A delivery is `sending` in the database before the channel
//! hears of it, which is what makes a crash safe (see `Store::interrupt_in_flight`). An
//! outcome the database refuses is written again until it lands, with nothing else sent
//! meanwhile and the alert up ([`OutboxHealth`]); a send that may have reached the provider
//! is recorded `uncertain` and never retried.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use relay_domain::{
    DeliveryStatus, MessageTemplate, OrderId, PhoneNumber, TemplateFields, mask_phone,
};
use tokio::sync::{Notify, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::channel::{Channel, OutgoingMessage, SendError};
use crate::clock::{Chance, Clock, SystemChance, SystemClock, with_jitter};
use crate::events::{EngineEvent, EngineEvents};
use crate::store::{Claim, Outcome, StateKey, Store, StoreError, TimedProblem};

/// Attempts per delivery for transient errors, the first one included.
pub const MAX_ATTEMPTS: i64 = 3;
/// While idle, the queue is looked at this often, so a relaunch queued by another process
/// (the CLI) starts within a second.
const IDLE_POLL: Duration = Duration::from_millis(500);
/// Bounds on a `Retry-After` we honour.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(15 * 60);
/// The dispatcher's own limit on a send is the channel's timeout plus this: the channel's
/// fires first, knowing whether the request was written.
pub const OUTER_TIMEOUT_MARGIN: Duration = Duration::from_secs(5);
/// An outcome write that failed is tried again after this, then twice as long each time...
const WRITE_RETRY_FIRST: Duration = Duration::from_millis(50);
/// ...up to this.
const WRITE_RETRY_MAX: Duration = Duration::from_secs(5);
/// After a stop is asked, how long an outcome write that keeps failing is still tried before
/// the relay gives up on it and exits (the row is then `interrupted` at the next start).
/// Short enough for SIGTERM, "Quitter" and a settings restart to end; long enough for a lock
/// held by a backup or a `sqlite3` shell to be released.
pub const OUTCOME_WRITE_GRACE_AFTER_STOP: Duration = Duration::from_secs(10);
/// While outcomes cannot be written, the error is logged again this often.
const WRITE_FAILURE_LOG_EVERY: Duration = Duration::from_secs(30);

/// Why sending stopped: a write of the outbox (an outcome, a planned message id, a claim)
/// fails. Held in memory, since the database may be what fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteFailure {
    /// Unix ms of the first failure.
    pub since_ms: i64,
    /// Failed writes so far.
    pub attempts: u32,
    /// The last error.
    pub error: String,
    /// Whose outcome waits to be written: carrier name and masked number (none for a claim).
    pub waiting_for: Option<String>,
}

/// The outbox's alert: whether its writes fail right now. Shared by the dispatcher (which
/// raises and clears it), the HTTP server (`/healthz`, `/metrics`) and the desktop shell.
#[derive(Clone)]
pub struct OutboxHealth {
    state: Arc<watch::Sender<Option<WriteFailure>>>,
    last_logged: Arc<std::sync::Mutex<Option<Instant>>>,
}

impl Default for OutboxHealth {
    fn default() -> Self {
        Self {
            state: Arc::new(watch::Sender::new(None)),
            last_logged: Arc::default(),
        }
    }
}

impl OutboxHealth {
    /// The failure under way, if any.
    pub fn write_failure(&self) -> Option<WriteFailure> {
        self.state.borrow().clone()
    }

    /// Follows the alert as it is raised and cleared.
    pub fn subscribe(&self) -> watch::Receiver<Option<WriteFailure>> {
        self.state.subscribe()
    }

    fn failed(&self, err: &StoreError, claim: Option<&Claim>, now_ms: i64) {
        let waiting_for = claim.map(|c| format!("{} ({})", c.carrier_name, mask_phone(&c.phone)));
        let mut first = false;
        self.state.send_modify(|state| match state {
            Some(failure) => {
                failure.attempts = failure.attempts.saturating_add(1);
                failure.error = err.to_string();
                failure.waiting_for = waiting_for.clone();
            }
            None => {
                first = true;
                *state = Some(WriteFailure {
                    since_ms: now_ms,
                    attempts: 1,
                    error: err.to_string(),
                    waiting_for: waiting_for.clone(),
                });
            }
        });
        let mut last = self
            .last_logged
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if first || last.is_none_or(|at| at.elapsed() >= WRITE_FAILURE_LOG_EVERY) {
            *last = Some(Instant::now());
            match &waiting_for {
                Some(who) => tracing::error!(
                    "⛔ envois arrêtés : le résultat de l'envoi à {who} ne peut pas être enregistré ({err}) ; nouvel essai en boucle, le message n'est pas renvoyé"
                ),
                None => tracing::error!(
                    "⛔ envois arrêtés : la base de données refuse les écritures ({err}) ; nouvel essai dans un instant"
                ),
            }
        }
    }

    fn recovered(&self, now_ms: i64) {
        let mut cleared = None;
        self.state.send_if_modified(|state| {
            cleared = state.take();
            cleared.is_some()
        });
        if let Some(failure) = cleared {
            *self
                .last_logged
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
            tracing::warn!(
                "écritures de la file d'envoi rétablies après {} échec(s) en {} s : envois repris",
                failure.attempts,
                (now_ms - failure.since_ms).max(0) / 1000
            );
        }
    }
}

/// How the dispatcher sends: its pace and the message it renders (taken from the settings'
/// `config::DispatchSettings` and template when the engine starts).
#[derive(Clone)]
pub struct SendPlan {
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
    settings: SendPlan,
    /// Rung when deliveries are queued.
    wake: Arc<Notify>,
    health: OutboxHealth,
    /// Cancelled when the relay stops: bounds how long an outcome write is retried.
    stop: CancellationToken,
    /// The order served last: the next claim starts after it (round robin).
    last_order: Option<OrderId>,
    rendered: HashMap<OrderId, Arc<Rendered>>,
    /// Whether the last send found the account unable to send.
    paused: bool,
    clock: Arc<dyn Clock>,
    /// Draws the jitter of the throttle and of the retry schedule.
    chance: Arc<dyn Chance>,
    /// When the next send may start, on the clock's monotonic time: the throttle after an
    /// attempt, the pause after the account could not send.
    next_send_at: Duration,
    /// Where finished batches and the account's pauses are told.
    events: EngineEvents,
}

impl Dispatcher {
    pub fn new(
        store: Store,
        channel: Arc<dyn Channel>,
        settings: SendPlan,
        wake: Arc<Notify>,
        health: OutboxHealth,
    ) -> Self {
        Self {
            store,
            channel,
            settings,
            wake,
            health,
            stop: CancellationToken::new(),
            last_order: None,
            rendered: HashMap::new(),
            paused: false,
            clock: Arc::new(SystemClock::default()),
            chance: Arc::new(SystemChance),
            next_send_at: Duration::ZERO,
            events: EngineEvents::default(),
        }
    }

    /// Tells `events` of finished batches and of the account's pauses.
    pub fn telling(self, events: EngineEvents) -> Self {
        Self { events, ..self }
    }

    /// Reads the time from `clock` and draws jitter from `chance` (tests: a manual clock and
    /// scripted numbers) instead of the machine's.
    pub fn with_time(mut self, clock: Arc<dyn Clock>, chance: Arc<dyn Chance>) -> Self {
        self.next_send_at = clock.monotonic();
        self.clock = clock;
        self.chance = chance;
        self
    }

    /// How long until the next send may start (zero: now). The run loop sleeps this long;
    /// a test advances its clock by it.
    pub fn wait_before_next_send(&self) -> Duration {
        self.next_send_at.saturating_sub(self.clock.monotonic())
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

    /// Claims the next due delivery and settles it: sends it, or records why not. Does not
    /// wait for the throttle ([`Self::wait_before_next_send`]) but sets it: after an attempt
    /// the next send may start the throttle plus a share of the jitter after this one started.
    pub async fn try_once(&mut self) -> Result<Step, StoreError> {
        let started = self.clock.monotonic();
        let step = self.settle_next().await?;
        match &step {
            Step::Attempted => self.next_send_at = started + self.gap(),
            Step::Paused(wait) => self.pause_for(*wait),
            Step::Settled | Step::Idle { .. } | Step::Held => {}
        }
        Ok(step)
    }

    fn pause_for(&mut self, wait: Duration) {
        self.next_send_at = self.clock.monotonic() + wait;
    }

    async fn settle_next(&mut self) -> Result<Step, StoreError> {
        // The claim itself claims nothing while staff paused sending (the pause may come from
        // another process on this database, the CLI next to `serve`); only when it found
        // nothing is the pause asked about, so a send costs no extra query.
        let claimed = self
            .store
            .claim_next(self.last_order, self.clock.now_ms(), self.channel.kind())
            .await;
        let claim = match claimed {
            Ok(claim) => {
                self.health.recovered(self.clock.now_ms());
                claim
            }
            Err(err) => {
                // Nothing was sent: the claim is tried again after a pause, and meanwhile the
                // alert says why nothing leaves.
                self.health.failed(&err, None, self.clock.now_ms());
                return Err(err);
            }
        };
        let Some(claim) = claim else {
            if self.store.paused_by_staff_since().await?.is_some() {
                return Ok(Step::Held);
            }
            return Ok(Step::Idle {
                next_due: self.store.next_due_at().await?,
            });
        };
        self.last_order = Some(claim.order());

        let refusal = match self.store.carrier_refusal(claim.carrier()).await {
            Ok(refusal) => refusal,
            Err(err) => return self.release(&claim, err).await,
        };
        if let Some(reason) = refusal {
            tracing::info!(
                "envoi à {} ({}) annulé : {reason}",
                claim.carrier_name,
                mask_phone(&claim.phone)
            );
            self.record(
                &claim,
                &final_outcome(DeliveryStatus::Skipped, reason, None),
            )
            .await?;
            return Ok(Step::Settled);
        }
        let rendered = match self.render(claim.order()).await {
            Ok(rendered) => rendered,
            Err(err) => return self.release(&claim, err).await,
        };
        let Some(rendered) = rendered else {
            let outcome = final_outcome(
                DeliveryStatus::Failed,
                "commande introuvable".to_string(),
                None,
            );
            self.record(&claim, &outcome).await?;
            return Ok(Step::Settled);
        };
        let phone = match PhoneNumber::parse(&claim.phone) {
            Ok(phone) => phone,
            Err(err) => {
                let outcome = final_outcome(DeliveryStatus::InvalidNumber, err.to_string(), None);
                self.record(&claim, &outcome).await?;
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
                    // Stored before the send, or there is no send: a receipt must be able to
                    // find the delivery whatever happens next.
                    self.write_until_landed(&claim, || {
                        self.store.plan_message_id(claim.id, message_id)
                    })
                    .await?;
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
        // The channel's own timeout knows what was written and fires first; this one only
        // catches a channel that hangs, and by then the message may have left.
        let outer_timeout = self.settings.send_timeout + OUTER_TIMEOUT_MARGIN;
        let outcome = match tokio::time::timeout(outer_timeout, self.channel.send(message)).await {
            Ok(outcome) => outcome,
            Err(_) => Err(SendError::Uncertain {
                reason: format!(
                    "pas de réponse du canal après {} s : le message est peut-être parti, il n'est pas renvoyé",
                    outer_timeout.as_secs()
                ),
                message_id: None,
            }),
        };
        let now = self.clock.now_ms();
        match outcome {
            Ok(accepted) => {
                let outcome = Outcome::Sent {
                    message_id: accepted.message_id.or(planned),
                };
                self.record(&claim, &outcome).await?;
                if self.paused {
                    self.paused = false;
                    self.store.clear_state(StateKey::SendingPaused).await?;
                    tracing::info!("envois repris");
                    self.events.tell(EngineEvent::SendingResumed);
                }
                tracing::info!(
                    "✅ Message envoyé à {} ({}) pour commande {}",
                    claim.carrier_name,
                    phone.masked(),
                    rendered.reference
                );
            }
            Err(SendError::Uncertain { reason, message_id }) => {
                let outcome = Outcome::Uncertain {
                    reason: reason.clone(),
                    message_id: message_id.or(planned),
                };
                self.record(&claim, &outcome).await?;
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
                self.record(&claim, &final_outcome(status, reason.clone(), code))
                    .await?;
                log_failure(&claim, &rendered.reference, &reason);
                if status == DeliveryStatus::Skipped {
                    // The provider says the carrier unsubscribed (Twilio's 21610): the same as
                    // a STOP they wrote us, so no later broadcast is tried either. A failed
                    // write only costs a refusal per broadcast: logged, not retried.
                    match self.store.opt_out_phone(&claim.phone, now).await {
                        Ok(true) => tracing::info!(
                            "{} ne recevra plus de diffusions (désinscrit chez le fournisseur)",
                            phone.masked()
                        ),
                        Ok(false) => {}
                        Err(err) => tracing::warn!("désinscription non enregistrée : {err}"),
                    }
                }
            }
            Err(SendError::Transient {
                reason,
                code,
                retry_after,
            }) => {
                if claim.attempts >= MAX_ATTEMPTS {
                    let reason = format!("{reason} (après {} tentatives)", claim.attempts);
                    let outcome = final_outcome(DeliveryStatus::Failed, reason.clone(), code);
                    self.record(&claim, &outcome).await?;
                    log_failure(&claim, &rendered.reference, &reason);
                } else {
                    let delay = retry_delay(claim.attempts, retry_after, self.chance.as_ref());
                    let outcome = Outcome::Retry {
                        reason: reason.clone(),
                        code,
                        next_attempt_at: now + millis(delay),
                        count_attempt: true,
                    };
                    self.record(&claim, &outcome).await?;
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
                let outcome = Outcome::Retry {
                    reason: reason.clone(),
                    code: None,
                    next_attempt_at: now + millis(retry_after),
                    count_attempt: false,
                };
                self.record(&claim, &outcome).await?;
                tracing::error!("envois suspendus {} s : {reason}", retry_after.as_secs());
                if !self.paused {
                    self.events.tell(EngineEvent::SendingPaused {
                        until_ms: now + millis(retry_after),
                        reason: reason.clone(),
                    });
                }
                self.paused = true;
                self.store
                    .set_problem(
                        StateKey::SendingPaused,
                        &TimedProblem::new(now + millis(retry_after), reason),
                    )
                    .await?;
                return Ok(Step::Paused(retry_after));
            }
        }
        Ok(Step::Attempted)
    }

    /// A read failed after the claim, before anything was sent: the delivery goes back to the
    /// queue without using an attempt, instead of staying `sending` until the next start.
    async fn release(&self, claim: &Claim, err: StoreError) -> Result<Step, StoreError> {
        let outcome = Outcome::Retry {
            reason: format!("envoi reporté : {err}"),
            code: None,
            next_attempt_at: self.clock.now_ms() + 1000,
            count_attempt: false,
        };
        self.record(claim, &outcome).await?;
        Err(err)
    }

    /// Writes what became of `claim`, until the write lands: see [`Self::write_until_landed`].
    /// The one path every outcome takes, so a later dispatcher with several sends in flight
    /// records each of them the same way.
    pub async fn record(&self, claim: &Claim, outcome: &Outcome) -> Result<(), StoreError> {
        self.write_until_landed(claim, || {
            self.store
                .record_outcome(claim.id, outcome, self.clock.now_ms())
        })
        .await?;
        if !matches!(outcome, Outcome::Retry { .. })
            && let Err(err) = self.events.after_settled(&self.store, claim.id).await
        {
            // The outcome is recorded; only the notice of a finished batch is lost.
            tracing::warn!("fin de diffusion non signalée : {err}");
        }
        Ok(())
    }

    /// Runs `write` (about `claim`, whose message may have left) until it succeeds. Meanwhile
    /// nothing else is claimed or sent, the alert is up ([`OutboxHealth`]: `/healthz`,
    /// `/metrics`, the desktop's notification) and each failure is logged; the message is
    /// never sent again. After a stop is asked, it keeps trying for
    /// [`OUTCOME_WRITE_GRACE_AFTER_STOP`], then gives up so the process can end: the row stays
    /// `sending` and the next start marks it `interrupted`, its planned message id (stored
    /// before the send) or its delivery id (which the Cloud API's reports echo) left for a
    /// report to settle it.
    async fn write_until_landed<F, Fut>(
        &self,
        claim: &Claim,
        mut write: F,
    ) -> Result<(), StoreError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<(), StoreError>>,
    {
        let mut wait = WRITE_RETRY_FIRST;
        let mut give_up_at: Option<Instant> = None;
        loop {
            let err = match write().await {
                Ok(()) => {
                    self.health.recovered(self.clock.now_ms());
                    return Ok(());
                }
                Err(err) => err,
            };
            self.health.failed(&err, Some(claim), self.clock.now_ms());
            if self.stop.is_cancelled() {
                let deadline = *give_up_at
                    .get_or_insert_with(|| Instant::now() + OUTCOME_WRITE_GRACE_AFTER_STOP);
                if Instant::now() >= deadline {
                    tracing::error!(
                        "arrêt : le résultat de l'envoi à {} ({}) n'a pas pu être enregistré en {} s ({err}) ; la livraison sera marquée « interrupted » au prochain démarrage, jamais renvoyée automatiquement",
                        claim.carrier_name,
                        mask_phone(&claim.phone),
                        OUTCOME_WRITE_GRACE_AFTER_STOP.as_secs()
                    );
                    return Err(err);
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                // A stop starts the grace period at once instead of after this wait.
                _ = self.stop.cancelled(), if give_up_at.is_none() => {}
            }
            wait = (wait * 2).min(WRITE_RETRY_MAX);
        }
    }

    /// The alert raised while outcomes cannot be written.
    pub fn health(&self) -> &OutboxHealth {
        &self.health
    }

    /// Runs until `cancel`; a send in flight is always finished and recorded first (within
    /// [`OUTCOME_WRITE_GRACE_AFTER_STOP`] when the database refuses the write).
    pub async fn run_until_stopped(mut self, cancel: CancellationToken) {
        self.stop = cancel.clone();
        loop {
            // A timer that is already due still costs a timer tick (about 1 ms): skip it.
            let wait = self.wait_before_next_send();
            if !wait.is_zero() {
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(wait) => {}
                }
            } else if cancel.is_cancelled() {
                return;
            }
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = self.channel.ready() => {}
            }
            // Not raced against `cancel`: once claimed, a delivery is sent and recorded.
            let step = match self.try_once().await {
                Ok(step) => step,
                Err(err) => {
                    // A refused write is logged by the alert, at most every 30 s.
                    if self.health.write_failure().is_none() {
                        tracing::error!("file d'envoi : {err}");
                    }
                    self.pause_for(Duration::from_secs(1));
                    continue;
                }
            };
            match step {
                Step::Attempted | Step::Settled | Step::Paused(_) => {}
                Step::Held => {
                    tokio::select! {
                        _ = cancel.cancelled() => return,
                        _ = self.wake.notified() => {}
                        _ = tokio::time::sleep(IDLE_POLL) => {}
                    }
                }
                Step::Idle { next_due } => {
                    tokio::select! {
                        _ = cancel.cancelled() => return,
                        _ = self.wake.notified() => {}
                        _ = tokio::time::sleep(idle_wait(next_due, self.clock.now_ms())) => {}
                    }
                }
            }
        }
    }

    /// The time between two send starts: the throttle plus a random share of the jitter, so
    /// the account does not send at a machine's perfectly regular beat.
    fn gap(&self) -> Duration {
        let jitter = u64::try_from(self.settings.jitter.as_millis()).unwrap_or(u64::MAX);
        self.settings.throttle + Duration::from_millis(self.chance.up_to(jitter))
    }
}

/// How long an idle dispatcher waits before looking at the queue again: until the next
/// delivery falls due, and never more than [`IDLE_POLL`], since a relaunch queued by another
/// process (the CLI) rings no bell here.
pub fn idle_wait(next_due: Option<i64>, now_ms: i64) -> Duration {
    next_due
        .map(|due| Duration::from_millis(u64::try_from(due - now_ms).unwrap_or(0)))
        .unwrap_or(IDLE_POLL)
        .min(IDLE_POLL)
}

/// When to try again after the `attempt`-th transient failure: `Retry-After` when the channel
/// gives one (bounded), else 5 s then 20 s, plus up to as much again drawn from `chance`.
pub fn retry_delay(attempt: i64, retry_after: Option<Duration>, chance: &dyn Chance) -> Duration {
    if let Some(wait) = retry_after {
        return wait.clamp(Duration::from_secs(1), MAX_RETRY_AFTER);
    }
    let base = ExponentialBuilder::default()
        .with_min_delay(Duration::from_secs(5))
        .with_factor(4.0)
        .with_max_delay(Duration::from_secs(300))
        .without_max_times()
        .build()
        .nth(usize::try_from(attempt.max(1) - 1).unwrap_or(0))
        .unwrap_or(Duration::from_secs(300));
    with_jitter(base, chance)
}

fn final_outcome(status: DeliveryStatus, reason: String, code: Option<String>) -> Outcome {
    Outcome::Final {
        status,
        reason,
        code,
    }
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
mod tests;
