//! Time and chance as the engine's loops see them. Business functions take `now` as a
//! parameter; the loops (dispatcher, poller) read it from a [`Clock`] and draw their jitter
//! from a [`Chance`], both injected, so tests run them on a [`ManualClock`] and a
//! [`ScriptedChance`] and check throttle gaps and jitter exactly. The waits themselves stay
//! tokio timers: sqlx and reqwest run work outside the runtime, which tokio's paused time
//! would skip over (a pool's acquire timeout fires while SQLite works), so tests drive the
//! loops' steps (`Dispatcher::try_once`) instead of sleeping through them.

use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// Unix time in milliseconds.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Today's date in UTC: the reference of an order's date window. UTC so the window does not
/// depend on the machine's time zone (it is a week wide on the past side).
pub fn today() -> chrono::NaiveDate {
    chrono::Utc::now().date_naive()
}

/// A stored unix ms as local time for people reading logs (`21/11/2026 14:05`).
pub fn format_local(ms: i64) -> String {
    use chrono::TimeZone;
    chrono::Local
        .timestamp_millis_opt(ms)
        .single()
        .map(|time| time.format("%d/%m/%Y %H:%M").to_string())
        .unwrap_or_else(|| ms.to_string())
}

/// Where a loop reads the time.
pub trait Clock: Send + Sync + 'static {
    /// Unix ms, as the database stores it.
    fn now_ms(&self) -> i64;
    /// Time since the clock's own start, for waits: never jumps when the wall clock is set
    /// (a throttle computed on unix ms would stall for an hour after the clock went back one).
    fn monotonic(&self) -> Duration;
}

/// The machine's clocks.
#[derive(Debug, Clone, Copy)]
pub struct SystemClock {
    start: std::time::Instant,
}

impl Default for SystemClock {
    fn default() -> Self {
        Self {
            start: std::time::Instant::now(),
        }
    }
}

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        now_ms()
    }

    fn monotonic(&self) -> Duration {
        self.start.elapsed()
    }
}

/// A clock that moves only when told: both readings advance together.
#[derive(Debug, Clone)]
pub struct ManualClock {
    start_ms: i64,
    now_ms: Arc<AtomicI64>,
}

impl ManualClock {
    /// A clock showing `start_ms`.
    pub fn at(start_ms: i64) -> Self {
        Self {
            start_ms,
            now_ms: Arc::new(AtomicI64::new(start_ms)),
        }
    }

    pub fn advance(&self, by: Duration) {
        let by = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.now_ms.fetch_add(by, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.now_ms.load(Ordering::SeqCst)
    }

    fn monotonic(&self) -> Duration {
        let elapsed = self.now_ms() - self.start_ms;
        Duration::from_millis(u64::try_from(elapsed).unwrap_or(0))
    }
}

/// Where a loop draws its jitter.
pub trait Chance: Send + Sync + 'static {
    /// A number from 0 to `max`, both included.
    fn up_to(&self, max: u64) -> u64;
}

/// The thread's random generator.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemChance;

impl Chance for SystemChance {
    fn up_to(&self, max: u64) -> u64 {
        use rand::Rng;
        if max == 0 {
            return 0;
        }
        rand::rng().random_range(0..=max)
    }
}

/// Draws the given numbers in turn, again from the first after the last (each one capped at
/// the `max` asked), and remembers what was asked.
#[derive(Debug, Clone)]
pub struct ScriptedChance {
    values: Arc<[u64]>,
    next: Arc<AtomicUsize>,
    asked: Arc<Mutex<Vec<u64>>>,
}

impl ScriptedChance {
    pub fn new(values: impl Into<Vec<u64>>) -> Self {
        let values: Vec<u64> = values.into();
        Self {
            values: values.into(),
            next: Arc::default(),
            asked: Arc::default(),
        }
    }

    /// Each `max` drawn up to so far.
    pub fn asked(&self) -> Vec<u64> {
        self.asked
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Chance for ScriptedChance {
    fn up_to(&self, max: u64) -> u64 {
        self.asked
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(max);
        if self.values.is_empty() {
            return 0;
        }
        let i = self.next.fetch_add(1, Ordering::SeqCst) % self.values.len();
        self.values[i].min(max)
    }
}

/// `base` plus a random share of it, up to as much again (the retry and poll schedules'
/// jitter: spreads clients that failed together).
pub fn with_jitter(base: Duration, chance: &dyn Chance) -> Duration {
    let ms = u64::try_from(base.as_millis()).unwrap_or(u64::MAX);
    base.saturating_add(Duration::from_millis(chance.up_to(ms)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_both_readings_only_when_told() {
        let clock = ManualClock::at(1_700_000_000_000);
        assert_eq!(clock.monotonic(), Duration::ZERO);
        clock.advance(Duration::from_millis(1_500));
        assert_eq!(clock.now_ms(), 1_700_000_001_500);
        assert_eq!(clock.monotonic(), Duration::from_millis(1_500));
    }

    #[test]
    fn scripted_chance_draws_in_turn_within_the_bound_asked() {
        let chance = ScriptedChance::new([400, 0, 9_999]);
        assert_eq!(
            [chance.up_to(400), chance.up_to(400), chance.up_to(400)],
            [400, 0, 400]
        );
        assert_eq!(chance.up_to(1_000), 400, "again from the first");
        assert_eq!(chance.asked(), [400, 400, 400, 1_000]);
        assert_eq!(
            with_jitter(Duration::from_secs(5), &ScriptedChance::new([2_000])),
            Duration::from_secs(7)
        );
        for _ in 0..100 {
            assert!(SystemChance.up_to(3) <= 3);
        }
        assert_eq!(SystemChance.up_to(0), 0);
    }
}
