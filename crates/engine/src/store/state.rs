//! Small named values that must survive a restart (the polling cursor above all).

use super::{Store, StoreError};

#[derive(Debug, Clone, Copy)]
pub enum StateKey {
    /// Highest order id seen by polling: the next poll asks for what came after it.
    PollCursor,
    /// Unix ms the very first poll looks back to, fixed once.
    PollCreatedAfter,
    /// Unix ms of the last poll that reached the API.
    LastPollOkAt,
    /// Unix ms and text of the last poll failure.
    LastPollError,
    LastCarrierSyncAt,
    LastCarrierSyncError,
    /// Set while the account cannot send: `<until unix ms> <reason>`.
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

impl Store {
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
