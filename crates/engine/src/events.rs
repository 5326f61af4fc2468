//! What the engine tells a shell as it happens, instead of the shell finding it out by reading
//! the database again and again: a broadcast (or a relaunch) finished, the account stopped or
//! started sending again. Only this process's engine speaks here; what another process changes
//! on the same database (the CLI's pause or relaunch) is still read from the store.

use relay_domain::OrderId;
use tokio::sync::broadcast;

use crate::store::{BatchProgress, Store, StoreError};

/// Events a slow follower may fall behind by before it loses the oldest (it is told how many
/// it missed): far more than a few seconds of a busy relay.
const CAPACITY: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EngineEvent {
    /// Every delivery of a batch (the automatic broadcast, 0, or a relaunch) is settled, and
    /// at least one was sent or failed: its figures.
    BatchFinished(BatchProgress),
    /// The account cannot send (refused token, WhatsApp down…): nothing is claimed until
    /// `until_ms`, when sending is tried again.
    SendingPaused { until_ms: i64, reason: String },
    /// A send went through after [`EngineEvent::SendingPaused`].
    SendingResumed,
}

/// The engine's side of the channel: the dispatcher and the broadcaster tell, shells
/// [`EngineEvents::subscribe`].
#[derive(Clone)]
pub struct EngineEvents {
    sender: broadcast::Sender<EngineEvent>,
}

impl Default for EngineEvents {
    fn default() -> Self {
        Self {
            sender: broadcast::Sender::new(CAPACITY),
        }
    }
}

impl EngineEvents {
    /// Every event from now on, in order.
    pub fn subscribe(&self) -> broadcast::Receiver<EngineEvent> {
        self.sender.subscribe()
    }

    /// Whether `other` is this engine's channel (a shell that restarts its engine follows
    /// the new one).
    pub fn same_as(&self, other: &EngineEvents) -> bool {
        self.sender.same_channel(&other.sender)
    }

    pub(crate) fn tell(&self, event: EngineEvent) {
        // No follower (the CLI, the benches): nobody to tell.
        let _ = self.sender.send(event);
    }

    /// Whether anyone listens: what is only asked for the events (a batch's figures) is not
    /// asked otherwise, so the CLI's sends cost no extra query.
    pub(crate) fn followed(&self) -> bool {
        self.sender.receiver_count() > 0
    }

    /// After delivery `delivery_id` was settled: tells its batch finished when it was the last.
    pub(crate) async fn after_settled(
        &self,
        store: &Store,
        delivery_id: i64,
    ) -> Result<(), StoreError> {
        if !self.followed() {
            return Ok(());
        }
        if let Some(progress) = store.batch_progress_of(delivery_id).await? {
            self.tell_if_finished(progress);
        }
        Ok(())
    }

    /// After a batch was queued with nothing to send (every number unusable): it is finished
    /// as soon as it is written.
    pub(crate) async fn after_queued(
        &self,
        store: &Store,
        order: OrderId,
        batch: i64,
    ) -> Result<(), StoreError> {
        if !self.followed() {
            return Ok(());
        }
        if let Some(progress) = store.batch_progress(order, batch).await? {
            self.tell_if_finished(progress);
        }
        Ok(())
    }

    fn tell_if_finished(&self, progress: BatchProgress) {
        if progress.pending == 0 && progress.succeeded + progress.failed > 0 {
            self.tell(EngineEvent::BatchFinished(progress));
        }
    }
}
