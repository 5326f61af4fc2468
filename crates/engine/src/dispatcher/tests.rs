//! The dispatcher on a manual clock and scripted jitter: each test drives `try_once` as the
//! run loop does — wait what `wait_before_next_send` says (here: move the clock by it), try
//! once — until the queue is idle, with a channel that notes the clock at each send. Gaps,
//! jitter and retry times are checked to the millisecond.

use std::collections::VecDeque;
use std::sync::Mutex;

use async_trait::async_trait;
use relay_domain::{CarrierId, Order, OrderFields};

use super::*;
use crate::channel::Accepted;
use crate::clock::{ManualClock, ScriptedChance};
use crate::store::{CarrierRecord, HistoryFilter, OrderSource};

/// 24/11/2025 16:00:00 UTC.
const START_MS: i64 = 1_764_000_000_000;

/// A channel that notes when (on the test's clock) each message was handed to it, takes
/// `takes` of that clock to answer, and answers from a script (then accepts).
struct Recorder {
    clock: ManualClock,
    takes: Duration,
    script: Mutex<VecDeque<Result<Accepted, SendError>>>,
    sent: Mutex<Vec<(i64, String)>>,
}

impl Recorder {
    fn new(clock: &ManualClock, takes: Duration) -> Arc<Self> {
        Arc::new(Self {
            clock: clock.clone(),
            takes,
            script: Mutex::default(),
            sent: Mutex::default(),
        })
    }

    fn answer(&self, reply: Result<Accepted, SendError>) {
        self.script.lock().expect("script").push_back(reply);
    }

    /// The clock (ms after the start) at each send.
    fn send_times(&self) -> Vec<i64> {
        let sent = self.sent.lock().expect("sent");
        sent.iter().map(|(at, _)| at - START_MS).collect()
    }
}

#[async_trait]
impl Channel for Recorder {
    fn name(&self) -> &'static str {
        "recorder"
    }

    async fn send(&self, message: OutgoingMessage<'_>) -> Result<Accepted, SendError> {
        self.sent
            .lock()
            .expect("sent")
            .push((self.clock.now_ms(), message.to.e164().to_string()));
        self.clock.advance(self.takes);
        self.script
            .lock()
            .expect("script")
            .pop_front()
            .unwrap_or(Ok(Accepted { message_id: None }))
    }
}

struct Bench {
    _dir: tempfile::TempDir,
    store: Store,
    clock: ManualClock,
    chance: ScriptedChance,
    channel: Arc<Recorder>,
    dispatcher: Dispatcher,
}

/// A store with `carriers` validated carriers and one order fanned out to them, and a
/// dispatcher over it on a manual clock.
async fn bench(carriers: i64, throttle_ms: u64, jitter_ms: u64, jitter: &[u64]) -> Bench {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&dir.path().join("relay.db"))
        .await
        .expect("store");
    let clock = ManualClock::at(START_MS);
    let records: Vec<CarrierRecord> = (1..=carriers)
        .map(|id| CarrierRecord {
            id: CarrierId(id),
            name: format!("Transporteur {id}"),
            phone_raw: format!("06123456{id:02}"),
            statut: "valide".into(),
        })
        .collect();
    store
        .replace_carriers(&records, START_MS)
        .await
        .expect("carriers");
    let order = Order::restore(OrderFields::example()).expect("order");
    store
        .insert_order(&order, OrderSource::Webhook, START_MS)
        .await
        .expect("order stored");
    store.fan_out(&order, START_MS).await.expect("fan-out");
    let channel = Recorder::new(&clock, Duration::from_millis(300));
    let chance = ScriptedChance::new(jitter.to_vec());
    let dispatcher = Dispatcher::new(
        store.clone(),
        channel.clone(),
        SendPlan {
            throttle: Duration::from_millis(throttle_ms),
            jitter: Duration::from_millis(jitter_ms),
            send_timeout: Duration::from_secs(30),
            template: MessageTemplate::default(),
            link_base: "https://camionback.com/commande/".into(),
        },
        Arc::new(Notify::new()),
        OutboxHealth::default(),
    )
    .with_time(Arc::new(clock.clone()), Arc::new(chance.clone()));
    Bench {
        _dir: dir,
        store,
        clock,
        chance,
        channel,
        dispatcher,
    }
}

impl Bench {
    /// What the run loop does, with the clock moved instead of slept, until nothing is due.
    async fn run_until_idle(&mut self) -> Step {
        loop {
            self.clock.advance(self.dispatcher.wait_before_next_send());
            match self.dispatcher.try_once().await.expect("try_once") {
                idle @ Step::Idle { .. } => return idle,
                held @ Step::Held => return held,
                Step::Attempted | Step::Settled | Step::Paused(_) => {}
            }
        }
    }

    async fn statuses(&self) -> Vec<(DeliveryStatus, i64)> {
        let mut rows = self
            .store
            .history(&HistoryFilter {
                limit: 100,
                ..HistoryFilter::default()
            })
            .await
            .expect("history");
        rows.sort_by_key(|r| r.carrier_id);
        rows.iter()
            .map(|r| (r.status.to_string().parse().expect("status"), r.attempts))
            .collect()
    }
}

#[tokio::test]
async fn sends_start_the_throttle_plus_the_drawn_jitter_apart_however_long_each_takes() {
    // Throttle 1 s, jitter up to 400 ms drawn as 400, 0, 250, then 400 again; each send
    // takes 300 ms of the clock.
    let mut bench = bench(5, 1_000, 400, &[400, 0, 250]).await;

    let idle = bench.run_until_idle().await;

    assert_eq!(idle, Step::Idle { next_due: None });
    // The throttle runs from the start of a send: its 300 ms are inside the gap.
    assert_eq!(bench.channel.send_times(), [0, 1_400, 2_400, 3_650, 5_050]);
    assert_eq!(
        bench.chance.asked(),
        [400; 5],
        "one draw of the jitter per send, up to RELAY_JITTER_MS"
    );
    assert_eq!(bench.statuses().await, [(DeliveryStatus::Sent, 1); 5]);
}

#[tokio::test]
async fn a_send_slower_than_the_throttle_is_followed_as_soon_as_it_ends() {
    // 150 ms of throttle, 300 ms per send, no jitter: nothing is added after a slow send.
    let mut bench = bench(3, 150, 0, &[]).await;
    bench.run_until_idle().await;
    assert_eq!(bench.channel.send_times(), [0, 300, 600]);
}

#[tokio::test]
async fn a_transient_failure_is_due_again_after_the_scheduled_delay_and_its_jitter() {
    let mut bench = bench(1, 1_000, 0, &[2_000]).await;
    bench.channel.answer(Err(SendError::Transient {
        reason: "Something went wrong".into(),
        code: Some("131000".into()),
        retry_after: None,
    }));

    // The first attempt fails at 0 and is recorded when its answer comes, 300 ms later; the
    // retry falls due 5 s plus the 2 s of jitter drawn after that.
    let idle = bench.run_until_idle().await;
    let due = START_MS + 300 + 7_000;
    assert_eq!(
        idle,
        Step::Idle {
            next_due: Some(due)
        }
    );
    assert_eq!(
        bench.chance.asked(),
        [5_000, 0],
        "the retry's jitter (up to the delay itself), then the throttle's"
    );
    let until_due = u64::try_from(due - bench.clock.now_ms()).expect("due ahead");
    bench.clock.advance(Duration::from_millis(until_due - 1));
    assert!(
        matches!(
            bench.dispatcher.try_once().await.expect("try"),
            Step::Idle { .. }
        ),
        "not due a millisecond early"
    );
    bench.clock.advance(Duration::from_millis(1));
    assert_eq!(
        bench.dispatcher.try_once().await.expect("try"),
        Step::Attempted
    );
    assert_eq!(bench.channel.send_times(), [0, 7_300]);
    assert_eq!(bench.statuses().await, [(DeliveryStatus::Sent, 2)]);
}

#[tokio::test]
async fn an_account_that_cannot_send_pauses_every_send_for_the_time_it_gives() {
    let mut bench = bench(2, 1_000, 0, &[]).await;
    bench.channel.answer(Err(SendError::Unavailable {
        reason: "jeton refusé (190)".into(),
        retry_after: Duration::from_secs(300),
    }));

    assert_eq!(
        bench.dispatcher.try_once().await.expect("try"),
        Step::Paused(Duration::from_secs(300))
    );
    assert_eq!(
        bench.dispatcher.wait_before_next_send(),
        Duration::from_secs(300),
        "nothing is tried before the pause is over"
    );
    bench.run_until_idle().await;
    // The failed send at 0 took 300 ms; the pause runs from its end.
    assert_eq!(bench.channel.send_times(), [0, 300_300, 301_300]);
    assert_eq!(
        bench.statuses().await,
        [(DeliveryStatus::Sent, 1), (DeliveryStatus::Sent, 1)],
        "the pause charged no attempt and failed nothing"
    );
}

#[tokio::test]
async fn staff_pause_holds_every_claim_until_resume() {
    let mut bench = bench(2, 1_000, 0, &[]).await;
    bench.store.pause_sending(START_MS).await.expect("pause");

    assert_eq!(bench.run_until_idle().await, Step::Held);
    bench.clock.advance(Duration::from_secs(3_600));
    assert_eq!(bench.run_until_idle().await, Step::Held);
    assert!(
        bench.channel.send_times().is_empty(),
        "nothing sent while paused"
    );
    assert_eq!(
        bench.statuses().await,
        [(DeliveryStatus::Queued, 0), (DeliveryStatus::Queued, 0)]
    );

    bench.store.resume_sending().await.expect("resume");
    bench.run_until_idle().await;
    assert_eq!(bench.channel.send_times(), [3_600_000, 3_601_000]);
}

#[test]
fn an_idle_dispatcher_looks_at_the_queue_again_within_half_a_second() {
    let now = START_MS;
    // A relaunch queued by the CLI rings no bell in this process: it is found at the next
    // look, at most IDLE_POLL later.
    assert_eq!(idle_wait(None, now), Duration::from_millis(500));
    assert_eq!(
        idle_wait(Some(now + 200), now),
        Duration::from_millis(200),
        "a retry due sooner is woken for"
    );
    assert_eq!(
        idle_wait(Some(now + 60_000), now),
        Duration::from_millis(500)
    );
    assert_eq!(idle_wait(Some(now - 5), now), Duration::ZERO);
}

#[test]
fn retries_wait_longer_each_time_and_honour_retry_after_within_bounds() {
    let chance = crate::clock::SystemChance;
    let first = retry_delay(1, None, &chance);
    let second = retry_delay(2, None, &chance);
    assert!(
        first >= Duration::from_secs(5) && first < Duration::from_secs(11),
        "{first:?}"
    );
    assert!(second >= Duration::from_secs(20), "{second:?}");
    assert_eq!(
        retry_delay(1, Some(Duration::from_secs(42)), &chance),
        Duration::from_secs(42)
    );
    assert_eq!(
        retry_delay(1, Some(Duration::ZERO), &chance),
        Duration::from_secs(1)
    );
    assert_eq!(
        retry_delay(1, Some(Duration::from_secs(86_400)), &chance),
        MAX_RETRY_AFTER
    );
}

#[test]
fn the_retry_schedule_is_5_s_then_20_s_up_to_5_min_plus_up_to_as_much_jitter() {
    let none = ScriptedChance::new([0]);
    let most = ScriptedChance::new([u64::MAX]);
    let secs = |attempt, chance: &ScriptedChance| retry_delay(attempt, None, chance).as_secs();
    assert_eq!(
        (1..=5).map(|a| secs(a, &none)).collect::<Vec<_>>(),
        [5, 20, 80, 300, 300]
    );
    assert_eq!(
        (1..=5).map(|a| secs(a, &most)).collect::<Vec<_>>(),
        [10, 40, 160, 600, 600]
    );
    assert_eq!(
        retry_delay(1, Some(Duration::from_secs(42)), &most),
        Duration::from_secs(42),
        "no jitter on a Retry-After"
    );
}
