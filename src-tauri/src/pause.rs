//! "Pause / Reprendre": a channel wrapper whose `ready()` waits while staff paused sending. The
//! dispatcher asks `ready()` before it claims anything, so a pause never cuts a send in half:
//! the one in flight finishes and is recorded, then nothing more is claimed until resumed.

use std::sync::Arc;

use async_trait::async_trait;
use relay_engine::channel::{Accepted, Channel, OutgoingMessage, SendError};
use tokio::sync::watch;

/// The switch the shell flips; cheap to clone.
#[derive(Clone)]
pub struct PauseSwitch {
    paused: Arc<watch::Sender<bool>>,
}

impl PauseSwitch {
    pub fn new() -> Self {
        let (paused, _) = watch::channel(false);
        Self {
            paused: Arc::new(paused),
        }
    }

    pub fn set(&self, paused: bool) {
        self.paused.send_replace(paused);
    }

    pub fn is_paused(&self) -> bool {
        *self.paused.borrow()
    }

    /// Resolves at once when not paused, else when resumed.
    async fn wait_until_resumed(&self) {
        let mut paused = self.paused.subscribe();
        // The sender lives in `self`, so the channel cannot close while we wait.
        let _ = paused.wait_for(|paused| !*paused).await;
    }
}

pub struct PausableChannel {
    inner: Arc<dyn Channel>,
    switch: PauseSwitch,
}

impl PausableChannel {
    pub fn new(inner: Arc<dyn Channel>, switch: PauseSwitch) -> Self {
        Self { inner, switch }
    }
}

#[async_trait]
impl Channel for PausableChannel {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    async fn send(&self, message: OutgoingMessage<'_>) -> Result<Accepted, SendError> {
        self.inner.send(message).await
    }

    async fn ready(&self) {
        self.switch.wait_until_resumed().await;
        self.inner.ready().await;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    struct Always;

    #[async_trait]
    impl Channel for Always {
        fn name(&self) -> &'static str {
            "test"
        }

        async fn send(&self, _message: OutgoingMessage<'_>) -> Result<Accepted, SendError> {
            Ok(Accepted { message_id: None })
        }
    }

    #[tokio::test]
    async fn ready_waits_while_paused_and_resolves_on_resume() {
        let switch = PauseSwitch::new();
        let channel = PausableChannel::new(Arc::new(Always), switch.clone());
        tokio::time::timeout(Duration::from_millis(100), channel.ready())
            .await
            .expect("not paused: ready at once");

        switch.set(true);
        assert!(
            tokio::time::timeout(Duration::from_millis(100), channel.ready())
                .await
                .is_err(),
            "paused: the dispatcher must not claim anything"
        );

        let waiting = tokio::spawn(async move { channel.ready().await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        switch.set(false);
        tokio::time::timeout(Duration::from_secs(1), waiting)
            .await
            .expect("resumed: ready resolves")
            .expect("task");
    }
}
