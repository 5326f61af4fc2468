//! The server's answer to each message we send: `<ack>` (taken) or `<ack error="…">`
//! (refused, with WhatsApp's code). whatsapp-rust 0.7 returns from `send_message` once the
//! stanza is written and reports the server's answer separately (`Event::ServerAck`), so a send
//! waits here for the answer to its own id before the delivery may become `sent`.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::oneshot;

/// What the server said about one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum ServerAnswer {
    Taken,
    Refused { code: String },
}

#[derive(Default)]
pub(super) struct PendingAcks {
    waiting: Mutex<HashMap<String, oneshot::Sender<ServerAnswer>>>,
}

/// A send's claim on the answer to its id; dropping it forgets the id.
pub(super) struct AckWaiter<'a> {
    acks: &'a PendingAcks,
    id: String,
    answer: oneshot::Receiver<ServerAnswer>,
}

impl PendingAcks {
    /// Registered before the stanza leaves: the answer can come before `send_message` returns.
    pub(super) fn expect(&self, id: &str) -> AckWaiter<'_> {
        let (tx, rx) = oneshot::channel();
        if let Ok(mut waiting) = self.waiting.lock() {
            waiting.insert(id.to_string(), tx);
        }
        AckWaiter {
            acks: self,
            id: id.to_string(),
            answer: rx,
        }
    }

    /// An answer for an id nobody waits for (a send that timed out, another device's message)
    /// is dropped: the delivery's later receipts still settle it.
    pub(super) fn answer(&self, id: &str, answer: ServerAnswer) {
        let waiter = self.waiting.lock().ok().and_then(|mut w| w.remove(id));
        if let Some(waiter) = waiter {
            let _ = waiter.send(answer);
        }
    }
}

impl PendingAcks {
    /// The connection is gone: no answer will come on it. Each waiting send learns it now (a
    /// transient failure, retried with the same id, which WhatsApp takes once) instead of at its
    /// timeout, so a shutdown or a reconnection is not held up by it.
    pub(super) fn abandon_all(&self) {
        if let Ok(mut waiting) = self.waiting.lock() {
            waiting.clear();
        }
    }
}

impl AckWaiter<'_> {
    /// The server's answer, or `None` when the connection went away first.
    pub(super) async fn answer(&mut self) -> Option<ServerAnswer> {
        (&mut self.answer).await.ok()
    }
}

impl Drop for AckWaiter<'_> {
    fn drop(&mut self) {
        if let Ok(mut waiting) = self.acks.waiting.lock() {
            waiting.remove(&self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_answer_reaches_the_send_waiting_for_that_id_only() {
        let acks = PendingAcks::default();
        let mut first = acks.expect("3EB0AAA");
        let mut second = acks.expect("3EB0BBB");
        acks.answer("3EB0BBB", ServerAnswer::Refused { code: "463".into() });
        acks.answer("3EB0AAA", ServerAnswer::Taken);
        acks.answer("3EB0CCC", ServerAnswer::Taken);
        assert_eq!(first.answer().await, Some(ServerAnswer::Taken));
        assert_eq!(
            second.answer().await,
            Some(ServerAnswer::Refused { code: "463".into() })
        );
    }

    #[tokio::test]
    async fn a_lost_connection_answers_every_waiting_send_at_once() {
        let acks = PendingAcks::default();
        let mut waiting = acks.expect("3EB0AAA");
        acks.abandon_all();
        assert_eq!(waiting.answer().await, None);
    }

    #[tokio::test]
    async fn a_send_that_gave_up_leaves_nothing_behind() {
        let acks = PendingAcks::default();
        drop(acks.expect("3EB0AAA"));
        assert!(acks.waiting.lock().map(|w| w.is_empty()).unwrap_or(false));
    }
}
