//! Small named values that must survive a restart (the polling cursor above all), and the
//! dated problems the engine keeps there for every process on the database to read
//! ([`TimedProblem`]: the last poll and carrier sync failures, the account's pause).

use super::{Store, StoreError};

#[derive(Debug, Clone, Copy)]
pub enum StateKey {
    /// Highest order id seen by polling: the next poll asks for what came after it.
    PollCursor,
    /// Unix ms the very first poll looks back to, fixed once.
    PollCreatedAfter,
    /// Unix ms of the last poll that reached the API.
    LastPollOkAt,
    /// The last poll failure, while it lasts ([`Store::problem`]: when and why).
    LastPollError,
    LastCarrierSyncAt,
    /// The last carrier sync failure, while it lasts ([`Store::problem`]: when and why).
    LastCarrierSyncError,
    /// Set while the account cannot send ([`Store::problem`]: until when, and why).
    SendingPaused,
    /// Set while staff paused sending ("Pause" in the app, `camionback-relay pause`): the unix
    /// ms it started. Kept across restarts: a relay paused on purpose stays paused.
    PausedByStaff,
}

impl StateKey {
    fn as_str(self) -> &'static str {
        match self {
            Self::PollCursor => "poll_cursor",
            Self::PollCreatedAfter => "poll_created_after",
            Self::LastPollOkAt => "last_poll_ok_at",
            Self::LastPollError => "last_poll_error",
            Self::LastCarrierSyncAt => "last_carrier_sync_at",
            Self::LastCarrierSyncError => "last_carrier_sync_error",
            Self::SendingPaused => "sending_paused",
            Self::PausedByStaff => "paused_by_staff",
        }
    }
}

/// A problem the engine keeps for every shell to show: an instant and a French text that
/// holds no secret. The instant is when it happened, or, for [`StateKey::SendingPaused`], when
/// sending is tried again. Stored as `"<unix ms> <text>"`, read and written only here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimedProblem {
    /// `None` only for a value not written by the relay (no leading instant).
    pub at_ms: Option<i64>,
    pub text: String,
}

impl TimedProblem {
    pub fn new(at_ms: i64, text: impl Into<String>) -> Self {
        Self {
            at_ms: Some(at_ms),
            text: text.into(),
        }
    }

    /// Reads a stored value; one without a leading instant is all text.
    pub fn parse(raw: &str) -> Self {
        match raw.split_once(' ') {
            Some((at, text)) if at.parse::<i64>().is_ok() => Self {
                at_ms: at.parse().ok(),
                text: text.to_string(),
            },
            _ => Self {
                at_ms: None,
                text: raw.to_string(),
            },
        }
    }

    fn stored(&self) -> String {
        match self.at_ms {
            Some(at) => format!("{at} {}", self.text),
            None => self.text.clone(),
        }
    }
}

impl Store {
    /// The problem kept under `key` (one of the keys documented as holding one), if any.
    pub async fn problem(&self, key: StateKey) -> Result<Option<TimedProblem>, StoreError> {
        Ok(self
            .get_state(key)
            .await?
            .map(|raw| TimedProblem::parse(&raw)))
    }

    /// Keeps `problem` under `key` until it is replaced or cleared ([`Store::clear_state`]).
    pub async fn set_problem(
        &self,
        key: StateKey,
        problem: &TimedProblem,
    ) -> Result<(), StoreError> {
        self.set_state(key, &problem.stored()).await
    }

    pub async fn get_state(&self, key: StateKey) -> Result<Option<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT value FROM relay_state WHERE key = ?")
                .bind(key.as_str())
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    pub async fn set_state(&self, key: StateKey, value: &str) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO relay_state (key, value) VALUES (?, ?)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(key.as_str())
        .bind(value)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn clear_state(&self, key: StateKey) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM relay_state WHERE key = ?")
            .bind(key.as_str())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Pauses sending on staff's request; returns false when it already was (the first
    /// pause's time is kept). The dispatcher of any process on this database stops claiming.
    pub async fn pause_sending(&self, now_ms: i64) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO relay_state (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
        )
        .bind(StateKey::PausedByStaff.as_str())
        .bind(now_ms.to_string())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Lifts staff's pause; returns false when sending was not paused.
    pub async fn resume_sending(&self) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM relay_state WHERE key = ?")
            .bind(StateKey::PausedByStaff.as_str())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Since when staff paused sending (unix ms), if they did.
    pub async fn paused_by_staff_since(&self) -> Result<Option<i64>, StoreError> {
        self.get_state_i64(StateKey::PausedByStaff).await
    }

    pub async fn get_state_i64(&self, key: StateKey) -> Result<Option<i64>, StoreError> {
        match self.get_state(key).await? {
            None => Ok(None),
            Some(raw) => raw
                .parse()
                .map(Some)
                .map_err(|_| StoreError::Corrupt(format!("{} = {raw}", key.as_str()))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_problem_splits_into_instant_and_text() {
        let timed = TimedProblem::parse("1700000000000 API injoignable : délai dépassé");
        assert_eq!(timed.at_ms, Some(1_700_000_000_000));
        assert_eq!(timed.text, "API injoignable : délai dépassé");
        assert_eq!(
            TimedProblem::parse(&timed.stored()),
            timed,
            "read back as written"
        );
        let bare = TimedProblem::parse("texte seul");
        assert_eq!(bare.at_ms, None);
        assert_eq!(bare.text, "texte seul");
    }
}
