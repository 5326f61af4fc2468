//! Polling `GET /api/orders`: the safety net under the webhook, and the catch-up after a stop.
//! The cursor is persisted, so a restart asks for exactly what it missed; the very first start
//! only looks back `CAMIONBACK_BACKFILL_MINUTES`.
//!
//! The cursor rule: it only ever moves to the id of an order that was read and stored. An
//! order that cannot be read (a missing field, a bad date...) is logged once per run and never
//! moves it: with a wild id it would otherwise carry the cursor past every order created after
//! it. Each poll sees that order again at the end of its answer until CamionBack fixes it or a
//! readable order with a higher id is stored. A page that does not move the cursor ends the
//! poll (an API that ignores `since_id` would otherwise be asked the same page for ever), as
//! an error, until the next interval.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use chrono::{TimeZone, Utc};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::camionback::{ApiError, CamionBackApi, ORDERS_PAGE_SIZE, Since};
use crate::clock::{Chance, Clock, SystemChance, SystemClock, with_jitter};
use crate::store::{OrderSource, StateKey, Store, StoreError, TimedProblem};

/// The longest wait between two polls while the API keeps failing.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// Pages one poll reads at most (5,000 orders): a long catch-up goes on at the next interval
/// instead of holding one poll for as long as the API keeps finding orders.
const MAX_PAGES_PER_POLL: usize = 50;

/// Unreadable order ids remembered so each is logged once; past this many the memory starts
/// over (and each is logged once more), so a flood of bad orders cannot grow it without end.
const MAX_REPORTED_UNREADABLE: usize = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum PollError {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "l'API CamionBack a renvoyé une page pleine ({ORDERS_PAGE_SIZE} commandes) sans aucune commande lisible {after} : elle ne tient pas compte de since_id, ou {ORDERS_PAGE_SIZE} commandes d'affilée sont illisibles — pagination arrêtée jusqu'à la prochaine interrogation"
    )]
    Stalled { after: String },
    /// The relay is stopping: the API's answer was not waited for.
    #[error("interrogation interrompue par l'arrêt du relais")]
    Stopped,
}

pub struct Poller {
    api: CamionBackApi,
    store: Store,
    backfill: Duration,
    new_order: Arc<Notify>,
    /// Unreadable orders already logged in this run.
    reported: Reported,
    clock: Arc<dyn Clock>,
    /// Draws the jitter of the waits after a failed poll.
    chance: Arc<dyn Chance>,
}

/// The unreadable order ids already logged, so each is logged once, in bounded memory.
#[derive(Default)]
struct Reported(HashSet<i64>);

impl Reported {
    /// True the first time `id` is seen (again after the memory started over).
    fn first_time(&mut self, id: i64) -> bool {
        if self.0.len() >= MAX_REPORTED_UNREADABLE {
            self.0.clear();
        }
        self.0.insert(id)
    }
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
            reported: Reported::default(),
            clock: Arc::new(SystemClock::default()),
            chance: Arc::new(SystemChance),
        }
    }

    /// Reads the time from `clock` and draws jitter from `chance` instead of the machine's.
    #[cfg(test)]
    pub(crate) fn with_time(mut self, clock: Arc<dyn Clock>, chance: Arc<dyn Chance>) -> Self {
        self.clock = clock;
        self.chance = chance;
        self
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
                let ms = self.clock.now_ms()
                    - i64::try_from(self.backfill.as_millis()).unwrap_or(i64::MAX);
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

    /// Fetches the pages of new orders and stores them; returns how many were new. `stop`
    /// cuts a request short (never a write): a stop does not wait for a slow API.
    pub async fn poll_once(&mut self, stop: &CancellationToken) -> Result<usize, PollError> {
        let mut new_orders = 0;
        for _ in 0..MAX_PAGES_PER_POLL {
            let since = self.since().await?;
            let page = stop
                .run_until_cancelled(self.api.list_orders(since))
                .await
                .ok_or(PollError::Stopped)??;
            let full = page.len() >= ORDERS_PAGE_SIZE;
            let before = match since {
                Since::Id(id) => Some(id),
                Since::CreatedAfter(_) => None,
            };
            let mut cursor = before;
            for polled in page {
                match polled {
                    Ok(order) => {
                        if self
                            .store
                            .insert_order(&order, OrderSource::Polling, self.clock.now_ms())
                            .await?
                        {
                            tracing::info!(
                                "commande {} reçue par interrogation de l'API",
                                order.reference
                            );
                            new_orders += 1;
                            self.new_order.notify_one();
                        }
                        cursor = Some(cursor.map_or(order.id.0, |c| c.max(order.id.0)));
                    }
                    Err((id, reason)) => self.report_unreadable(id, &reason),
                }
            }
            if cursor != before
                && let Some(cursor) = cursor
            {
                self.store
                    .set_state(StateKey::PollCursor, &cursor.to_string())
                    .await?;
            }
            if !full {
                self.poll_succeeded().await?;
                return Ok(new_orders);
            }
            if cursor == before {
                return Err(PollError::Stalled {
                    after: match since {
                        Since::Id(id) => format!("après la commande {id}"),
                        Since::CreatedAfter(at) => {
                            format!("créée après le {}", at.format("%d/%m/%Y %H:%M UTC"))
                        }
                    },
                });
            }
        }
        tracing::info!(
            "interrogation des commandes : {MAX_PAGES_PER_POLL} pages lues, la suite à la prochaine interrogation"
        );
        self.poll_succeeded().await?;
        Ok(new_orders)
    }

    async fn poll_succeeded(&self) -> Result<(), StoreError> {
        self.store
            .set_state(StateKey::LastPollOkAt, &self.clock.now_ms().to_string())
            .await?;
        self.store.clear_state(StateKey::LastPollError).await
    }

    /// Logs an unreadable order the first time this run sees it; it never moves the cursor.
    fn report_unreadable(&mut self, id: i64, reason: &str) {
        if self.reported.first_time(id) {
            tracing::error!(
                "commande {id} illisible, ignorée : {reason} (signalée une seule fois ; elle ne fait pas avancer le curseur d'interrogation)"
            );
        }
    }

    pub async fn run_until_stopped(mut self, every: Duration, cancel: CancellationToken) {
        let mut failures = failure_backoff(every);
        loop {
            let wait = match self.poll_once(&cancel).await {
                Ok(_) => {
                    failures = failure_backoff(every);
                    every
                }
                Err(PollError::Stopped) => return,
                Err(err) => {
                    let wait =
                        with_jitter(failures.next().unwrap_or(MAX_BACKOFF), self.chance.as_ref());
                    tracing::warn!(
                        "interrogation des commandes : {err} — nouvel essai dans {} s",
                        wait.as_secs()
                    );
                    let _ = self
                        .store
                        .set_problem(
                            StateKey::LastPollError,
                            &TimedProblem::new(self.clock.now_ms(), err.to_string()),
                        )
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

/// Waits between polls while the API fails, before jitter: from the poll interval up to five
/// minutes.
fn failure_backoff(every: Duration) -> impl Iterator<Item = Duration> {
    ExponentialBuilder::default()
        .with_min_delay(every.max(Duration::from_secs(1)))
        .with_max_delay(MAX_BACKOFF)
        .without_max_times()
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{ManualClock, ScriptedChance};

    /// 24/11/2025 16:00:00 UTC.
    const START_MS: i64 = 1_764_000_000_000;

    #[tokio::test]
    async fn the_first_polls_look_back_the_backfill_from_one_instant_of_the_clock() {
        let fake = relay_test_support::FakeCamionBack::start().await;
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("relay.db"))
            .await
            .expect("store");
        let url = url::Url::parse(&fake.url()).expect("fake url");
        let token = secrecy::SecretString::from(relay_test_support::camionback::TOKEN);
        let api = CamionBackApi::new(url, Some(token)).expect("api");
        let clock = ManualClock::at(START_MS);
        let mut poller = Poller::new(
            api,
            store.clone(),
            Duration::from_secs(10 * 60),
            Arc::new(Notify::new()),
        )
        .with_time(Arc::new(clock.clone()), Arc::new(ScriptedChance::new([0])));

        let stop = CancellationToken::new();
        poller.poll_once(&stop).await.expect("first poll");
        clock.advance(Duration::from_secs(3600));
        poller.poll_once(&stop).await.expect("second poll");

        // Ten minutes before the first poll, for as long as no order has been seen: nothing
        // created in between can slip through.
        let asked = "limit=100&created_after=2025-11-24T15%3A50%3A00Z";
        assert_eq!(fake.order_queries(), [asked, asked]);
        assert_eq!(
            store
                .get_state_i64(StateKey::LastPollOkAt)
                .await
                .expect("state"),
            Some(START_MS + 3_600_000),
            "the last poll's time, read from the clock"
        );
    }

    #[test]
    fn after_each_failed_poll_the_wait_doubles_up_to_five_minutes() {
        let waits: Vec<u64> = failure_backoff(Duration::from_secs(30))
            .take(6)
            .map(|d| d.as_secs())
            .collect();
        assert_eq!(waits, [30, 60, 120, 240, 300, 300]);
        assert_eq!(
            failure_backoff(Duration::ZERO).next(),
            Some(Duration::from_secs(1)),
            "polling every 0 s (off) still waits a second after a failure"
        );
    }

    #[test]
    fn an_unreadable_order_is_reported_once_and_the_memory_stays_bounded() {
        let mut reported = Reported::default();
        assert!(reported.first_time(9_000_000_000_000));
        assert!(
            !reported.first_time(9_000_000_000_000),
            "the next polls stay quiet"
        );
        for id in 0..i64::try_from(MAX_REPORTED_UNREADABLE).expect("fits") {
            reported.first_time(id);
        }
        assert!(reported.0.len() <= MAX_REPORTED_UNREADABLE);
    }
}
