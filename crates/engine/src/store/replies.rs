//! Carriers' replies on every channel, stored once per provider message id, each with the order
//! it is about (a button payload, a quoted broadcast, else the last order sent to that number
//! within the window), whether it says "interested", and its forward to CamionBack, queued in
//! the same transaction (`reply_forwards`) and worked through by `replies::forward`.

use crate::config::ChannelKind;
use crate::replies::{ReplyRules, payload_order};

use super::{Store, StoreError};

/// A carrier's message as a channel received it.
#[derive(Debug, Clone, Copy)]
pub struct InboundReply<'a> {
    pub channel: ChannelKind,
    /// The provider's id: a redelivered message is stored once.
    pub message_id: &'a str,
    /// E.164 (`+212…`).
    pub phone: &'a str,
    /// Meta's business-scoped user id, when it gives one.
    pub user_id: Option<&'a str>,
    /// What the carrier wrote, or the label of the button they tapped.
    pub text: &'a str,
    /// A quick-reply tap's payload (Cloud API `button.payload`, `button_reply.id`; Twilio's
    /// `ButtonPayload`).
    pub button_payload: Option<&'a str>,
    /// The provider id of the message this one quotes.
    pub quoted_message_id: Option<&'a str>,
    pub received_at: i64,
}

/// How the order of a reply was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attribution {
    /// A button payload `INTERESSE:<order id>`.
    Payload,
    /// The reply quotes one of our broadcasts.
    Quote,
    /// The last order sent to that number within `RELAY_REPLY_WINDOW_HOURS`.
    Window,
}

impl Attribution {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Payload => "payload",
            Self::Quote => "quote",
            Self::Window => "window",
        }
    }

    fn parse(raw: &str) -> Option<Self> {
        match raw {
            "payload" => Some(Self::Payload),
            "quote" => Some(Self::Quote),
            "window" => Some(Self::Window),
            _ => None,
        }
    }
}

/// Where a reply's forward to CamionBack stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForwardState {
    /// Queued, or failed and waiting for its next try.
    Pending,
    /// CamionBack took it (2xx).
    Done,
    /// CamionBack refused it (a 4xx other than 408/429), or it failed for more than 24 h.
    GivenUp,
    /// Attributed while forwarding was off (`RELAY_FORWARD_REPLIES=0`, or no API): never sent.
    Off,
    /// Not about any order: nothing to forward.
    None,
}

impl ForwardState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Done => "done",
            Self::GivenUp => "given_up",
            Self::Off => "off",
            Self::None => "none",
        }
    }

    fn parse(raw: Option<&str>) -> Result<Self, StoreError> {
        match raw {
            None => Ok(Self::None),
            Some("pending") => Ok(Self::Pending),
            Some("done") => Ok(Self::Done),
            Some("given_up") => Ok(Self::GivenUp),
            Some("off") => Ok(Self::Off),
            Some(other) => Err(StoreError::Corrupt(format!("état de transfert {other}"))),
        }
    }

    /// In French, for screens and the CLI.
    pub fn label(self) -> &'static str {
        match self {
            Self::Pending => "à transmettre à CamionBack",
            Self::Done => "transmise à CamionBack",
            Self::GivenUp => "refusée par CamionBack",
            Self::Off => "non transmise (transfert désactivé)",
            Self::None => "sans commande",
        }
    }
}

/// What storing a reply did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyOutcome {
    /// False when the same message was already stored (redelivery): nothing else was done.
    pub stored: bool,
    /// True when this reply opted a carrier out who was not already: the channel confirms it.
    pub newly_opted_out: bool,
    pub interested: bool,
    /// The order the reply is about, and how it was found.
    pub order: Option<(i64, Attribution)>,
    pub forward: ForwardState,
}

/// One stored reply, as screens and the CLI show it.
#[derive(Debug, Clone)]
pub struct ReplyRow {
    pub id: i64,
    pub message_id: Option<String>,
    /// `None` for replies stored before the channel was recorded (WhatsApp Web or Twilio).
    pub channel: Option<String>,
    pub phone: String,
    pub user_id: Option<String>,
    pub carrier_id: Option<i64>,
    pub carrier_name: Option<String>,
    pub text: String,
    pub received_at: i64,
    pub opt_out: bool,
    pub interested: bool,
    /// The order the reply is about, its reference, and how it was found.
    pub order_id: Option<i64>,
    pub order_reference: Option<String>,
    pub attributed_by: Option<Attribution>,
    pub forwarded: ForwardState,
    /// Why the last forward failed (or was given up).
    pub forward_error: Option<String>,
}

#[derive(sqlx::FromRow)]
struct RawReply {
    id: i64,
    message_id: Option<String>,
    channel: Option<String>,
    phone: String,
    user_id: Option<String>,
    carrier_id: Option<i64>,
    carrier_name: Option<String>,
    text: String,
    received_at: i64,
    opt_out: bool,
    interested: bool,
    order_id: Option<i64>,
    order_reference: Option<String>,
    attributed_by: Option<String>,
    forward_status: Option<String>,
    forward_error: Option<String>,
}

impl TryFrom<RawReply> for ReplyRow {
    type Error = StoreError;

    fn try_from(raw: RawReply) -> Result<Self, StoreError> {
        Ok(Self {
            id: raw.id,
            message_id: raw.message_id,
            channel: raw.channel,
            phone: raw.phone,
            user_id: raw.user_id,
            carrier_id: raw.carrier_id,
            carrier_name: raw.carrier_name,
            text: raw.text,
            received_at: raw.received_at,
            opt_out: raw.opt_out,
            interested: raw.interested,
            order_id: raw.order_id,
            order_reference: raw.order_reference,
            attributed_by: raw.attributed_by.as_deref().and_then(Attribution::parse),
            forwarded: ForwardState::parse(raw.forward_status.as_deref())?,
            forward_error: raw.forward_error,
        })
    }
}

/// Which replies to list.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReplyFilter {
    pub order_id: Option<i64>,
    pub interested_only: bool,
}

/// A reply waiting to be posted to CamionBack.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ForwardJob {
    pub reply_id: i64,
    pub order_id: i64,
    pub message_id: Option<String>,
    pub channel: Option<String>,
    pub carrier_id: Option<i64>,
    pub phone: String,
    pub text: String,
    pub interested: bool,
    pub received_at: i64,
    pub attempts: i64,
    pub queued_at: i64,
}

impl ForwardJob {
    /// The `Idempotency-Key` of every attempt: the provider's message id.
    pub fn idempotency_key(&self) -> String {
        self.message_id
            .clone()
            .unwrap_or_else(|| format!("reply-{}", self.reply_id))
    }
}

impl Store {
    /// The rules replies are stored under; the engine sets its settings' before any task gets
    /// a handle (the handles share them).
    pub fn with_reply_rules(mut self, rules: ReplyRules) -> Self {
        self.replies = std::sync::Arc::new(super::RepliesShared {
            rules,
            forward_wake: tokio::sync::Notify::new(),
        });
        self
    }

    pub fn reply_rules(&self) -> &ReplyRules {
        &self.replies.rules
    }

    /// Woken when a forward is queued.
    pub(crate) fn forward_wake(&self) -> &tokio::sync::Notify {
        &self.replies.forward_wake
    }

    /// WhatsApp Web's entry (its supervisor's call): [`Store::record_reply`] for a message
    /// received on WhatsApp Web. `opt_out` is the caller's reading of the text; the store reads
    /// it again with the same words.
    pub async fn store_reply(
        &self,
        message_id: &str,
        phone: &str,
        text: &str,
        opt_out: bool,
        quoted_message_id: Option<&str>,
        now: i64,
    ) -> Result<ReplyOutcome, StoreError> {
        self.record(
            &InboundReply {
                channel: ChannelKind::WhatsappWeb,
                message_id,
                phone,
                user_id: None,
                text,
                button_payload: None,
                quoted_message_id,
                received_at: now,
            },
            opt_out,
        )
        .await
    }

    /// Stores a carrier's message once per provider message id, in one transaction: the
    /// carrier (by number), whether it opts out (STOP words: no more broadcasts) or says
    /// "interested", the order it is about, and its forward to CamionBack. An opt-out is
    /// about every broadcast, not one order: it is attributed to none and not forwarded.
    pub async fn record_reply(&self, reply: &InboundReply<'_>) -> Result<ReplyOutcome, StoreError> {
        self.record(reply, false).await
    }

    async fn record(
        &self,
        reply: &InboundReply<'_>,
        opt_out_said: bool,
    ) -> Result<ReplyOutcome, StoreError> {
        let rules = &self.replies.rules;
        let opt_out = opt_out_said
            || crate::channel::is_opt_out(reply.text)
            || reply.button_payload.is_some_and(crate::channel::is_opt_out);
        let interested = !opt_out && rules.is_interested(reply.text, reply.button_payload);
        let mut tx = self.write_transaction().await?;
        let known: Option<(i64,)> = sqlx::query_as("SELECT id FROM replies WHERE message_id = ?")
            .bind(reply.message_id)
            .fetch_optional(&mut *tx)
            .await?;
        if known.is_some() {
            return Ok(ReplyOutcome {
                stored: false,
                newly_opted_out: false,
                interested,
                order: None,
                forward: ForwardState::None,
            });
        }
        let carrier: Option<(i64,)> =
            sqlx::query_as("SELECT id FROM carriers WHERE phone = ? ORDER BY id LIMIT 1")
                .bind(reply.phone)
                .fetch_optional(&mut *tx)
                .await?;
        let mut order = None;
        if !opt_out {
            if let Some(id) = reply.button_payload.and_then(payload_order) {
                let exists: Option<(i64,)> = sqlx::query_as("SELECT id FROM orders WHERE id = ?")
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await?;
                order = exists.map(|(id,)| (id, Attribution::Payload));
            }
            if let (None, Some(quoted)) = (order, reply.quoted_message_id) {
                let quoted: Option<(i64,)> =
                    sqlx::query_as("SELECT order_id FROM deliveries WHERE message_id = ?")
                        .bind(quoted)
                        .fetch_optional(&mut *tx)
                        .await?;
                order = quoted.map(|(id,)| (id, Attribution::Quote));
            }
            if order.is_none() {
                let window_ms = i64::try_from(rules.window.as_millis()).unwrap_or(i64::MAX);
                // Sent, or may have been (a send whose answer was lost, settled or not by a
                // report): the carrier is answering something. A delivery a report settled
                // before its send returned has no `sent_at`; its last change stands for it.
                let last: Option<(i64,)> = sqlx::query_as(
                    "SELECT order_id FROM deliveries
                     WHERE phone = ?
                       AND status IN ('sent', 'delivered', 'read', 'uncertain', 'interrupted')
                       AND COALESCE(sent_at, updated_at) >= ?
                     ORDER BY COALESCE(sent_at, updated_at) DESC, id DESC LIMIT 1",
                )
                .bind(reply.phone)
                .bind(reply.received_at.saturating_sub(window_ms))
                .fetch_optional(&mut *tx)
                .await?;
                order = last.map(|(id,)| (id, Attribution::Window));
            }
        }
        let reply_id: i64 = sqlx::query_scalar(
            "INSERT INTO replies (message_id, phone, carrier_id, text, received_at, opt_out,
                                  quoted_message_id, order_id, channel, user_id, button_payload,
                                  interested, attributed_by)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(reply.message_id)
        .bind(reply.phone)
        .bind(carrier.map(|c| c.0))
        .bind(reply.text)
        .bind(reply.received_at)
        .bind(opt_out)
        .bind(reply.quoted_message_id)
        .bind(order.map(|o| o.0))
        .bind(reply.channel.as_str())
        .bind(reply.user_id)
        .bind(reply.button_payload)
        .bind(interested)
        .bind(order.map(|o| o.1.as_str()))
        .fetch_one(&mut *tx)
        .await?;
        let forward = match order {
            None => ForwardState::None,
            Some(_) if rules.forward => ForwardState::Pending,
            Some(_) => ForwardState::Off,
        };
        if forward != ForwardState::None {
            sqlx::query(
                "INSERT INTO reply_forwards (reply_id, status, queued_at, next_attempt_at)
                 VALUES (?, ?, ?, ?)",
            )
            .bind(reply_id)
            .bind(forward.as_str())
            .bind(reply.received_at)
            .bind(reply.received_at)
            .execute(&mut *tx)
            .await?;
        }
        let newly_opted_out = if opt_out {
            sqlx::query(
                "UPDATE carriers SET opted_out_at = ? WHERE phone = ? AND opted_out_at IS NULL",
            )
            .bind(reply.received_at)
            .bind(reply.phone)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                > 0
        } else {
            false
        };
        tx.commit().await?;
        if forward == ForwardState::Pending {
            self.replies.forward_wake.notify_one();
        }
        Ok(ReplyOutcome {
            stored: true,
            newly_opted_out,
            interested,
            order,
            forward,
        })
    }

    /// Newest first.
    pub async fn replies(&self, limit: u32) -> Result<Vec<ReplyRow>, StoreError> {
        self.replies_matching(ReplyFilter::default(), limit).await
    }

    /// Newest first, those of one order or only the interested ones.
    pub async fn replies_matching(
        &self,
        filter: ReplyFilter,
        limit: u32,
    ) -> Result<Vec<ReplyRow>, StoreError> {
        let rows: Vec<RawReply> = sqlx::query_as(
            "SELECT r.id, r.message_id, r.channel, r.phone, r.user_id, r.carrier_id,
                    c.name AS carrier_name, r.text, r.received_at, r.opt_out, r.interested,
                    r.order_id, o.reference AS order_reference, r.attributed_by,
                    f.status AS forward_status, f.last_error AS forward_error
             FROM replies r LEFT JOIN carriers c ON c.id = r.carrier_id
                            LEFT JOIN orders o ON o.id = r.order_id
                            LEFT JOIN reply_forwards f ON f.reply_id = r.id
             WHERE (?1 IS NULL OR r.order_id = ?1) AND (?2 = 0 OR r.interested = 1)
             ORDER BY r.id DESC LIMIT ?3",
        )
        .bind(filter.order_id)
        .bind(filter.interested_only)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(ReplyRow::try_from).collect()
    }

    /// The oldest forward due at `now`.
    pub(crate) async fn due_forward(&self, now: i64) -> Result<Option<ForwardJob>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT f.reply_id, r.order_id, r.message_id, r.channel, r.carrier_id, r.phone,
                    r.text, r.interested, r.received_at, f.attempts, f.queued_at
             FROM reply_forwards f JOIN replies r ON r.id = f.reply_id
             WHERE f.status = 'pending' AND f.next_attempt_at <= ? AND r.order_id IS NOT NULL
             ORDER BY f.next_attempt_at, f.reply_id LIMIT 1",
        )
        .bind(now)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// When the next pending forward is due.
    pub(crate) async fn next_forward_at(&self) -> Result<Option<i64>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT MIN(next_attempt_at) FROM reply_forwards WHERE status = 'pending'",
        )
        .fetch_one(&self.pool)
        .await?)
    }

    /// CamionBack took the reply.
    pub(crate) async fn forward_done(&self, reply_id: i64, now: i64) -> Result<(), StoreError> {
        self.finish_forward(reply_id, ForwardState::Done, None, now)
            .await
    }

    /// CamionBack refused it for good, or it failed for too long.
    pub(crate) async fn forward_given_up(
        &self,
        reply_id: i64,
        error: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        self.finish_forward(reply_id, ForwardState::GivenUp, Some(error), now)
            .await
    }

    async fn finish_forward(
        &self,
        reply_id: i64,
        state: ForwardState,
        error: Option<&str>,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE reply_forwards SET status = ?, attempts = attempts + 1, last_error = ?,
                                       finished_at = ?
             WHERE reply_id = ? AND status = 'pending'",
        )
        .bind(state.as_str())
        .bind(error)
        .bind(now)
        .bind(reply_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A try that may work later: tried again at `next_at`.
    pub(crate) async fn forward_failed(
        &self,
        reply_id: i64,
        error: &str,
        next_at: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE reply_forwards SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?
             WHERE reply_id = ? AND status = 'pending'",
        )
        .bind(error)
        .bind(next_at)
        .bind(reply_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The number the latest message under Meta's business-scoped `user_id` came from.
    pub async fn phone_of_user_id(&self, user_id: &str) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT phone FROM replies WHERE user_id = ? ORDER BY id DESC LIMIT 1",
        )
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Forwards waiting (queued or retrying), and the queue time of the oldest.
    pub async fn pending_forwards(&self) -> Result<(i64, Option<i64>), StoreError> {
        Ok(sqlx::query_as(
            "SELECT COUNT(*), MIN(queued_at) FROM reply_forwards WHERE status = 'pending'",
        )
        .fetch_one(&self.pool)
        .await?)
    }
}

#[cfg(test)]
mod tests {
    //! Attribution on a store whose deliveries were sent at chosen times.

    use relay_domain::{CarrierId, Order, OrderFields};

    use super::*;
    use crate::store::{CarrierRecord, OrderSource};

    /// 24/11/2025 16:00:00 UTC.
    const START_MS: i64 = 1_764_000_000_000;
    const HOUR_MS: i64 = 3_600_000;
    const ATLAS: &str = "+212612345601";

    /// Orders 1 and 2 sent to Atlas at `START_MS` and one hour later, as messages `wamid.o1`
    /// and `wamid.o2`.
    async fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("relay.db"))
            .await
            .expect("store");
        store
            .replace_carriers(
                &[CarrierRecord {
                    id: CarrierId(1),
                    name: "Transports Atlas".into(),
                    phone_raw: "0612345601".into(),
                    statut: "valide".into(),
                }],
                START_MS,
            )
            .await
            .expect("carriers");
        for (id, sent_at) in [(1, START_MS), (2, START_MS + HOUR_MS)] {
            let order = Order::restore(OrderFields {
                id,
                reference: format!("CMD-{id}"),
                ..OrderFields::example()
            })
            .expect("order");
            store
                .insert_order(&order, OrderSource::Webhook, sent_at)
                .await
                .expect("order");
            store.fan_out(&order, sent_at).await.expect("fan-out");
            sqlx::query(
                "UPDATE deliveries SET status = 'sent', sent_at = ?, message_id = ?
                 WHERE order_id = ?",
            )
            .bind(sent_at)
            .bind(format!("wamid.o{id}"))
            .bind(id)
            .execute(&store.pool)
            .await
            .expect("sent");
        }
        (dir, store)
    }

    fn reply<'a>(
        id: &'a str,
        text: &'a str,
        payload: Option<&'a str>,
        quoted: Option<&'a str>,
        at: i64,
    ) -> InboundReply<'a> {
        InboundReply {
            channel: ChannelKind::WhatsappWeb,
            message_id: id,
            phone: ATLAS,
            user_id: None,
            text,
            button_payload: payload,
            quoted_message_id: quoted,
            received_at: at,
        }
    }

    #[tokio::test]
    async fn a_payload_beats_a_quote_which_beats_the_window() {
        let (_dir, store) = store().await;
        let at = START_MS + 2 * HOUR_MS;
        let cases = [
            (
                reply("r1", "Oui", Some("INTERESSE:1"), Some("wamid.o2"), at),
                Some((1, Attribution::Payload)),
            ),
            (
                reply("r2", "Oui", None, Some("wamid.o1"), at),
                Some((1, Attribution::Quote)),
            ),
            // A payload naming no stored order, a quote of no broadcast: the window decides.
            (
                reply("r3", "Oui", Some("INTERESSE:99"), Some("wamid.other"), at),
                Some((2, Attribution::Window)),
            ),
            (
                reply("r4", "Oui", None, None, at),
                Some((2, Attribution::Window)),
            ),
        ];
        for (inbound, expected) in cases {
            let outcome = store.record_reply(&inbound).await.expect("stored");
            assert_eq!(outcome.order, expected, "{}", inbound.message_id);
            assert_eq!(
                outcome.forward,
                ForwardState::Pending,
                "{}",
                inbound.message_id
            );
        }
    }

    #[tokio::test]
    async fn the_window_counts_from_the_last_send_to_that_number() {
        let (_dir, store) = store().await;
        // Order 2 left at START + 1 h: 24 h later it still counts, a minute more it does not.
        let inside = reply("in", "ok", None, None, START_MS + 25 * HOUR_MS);
        let outside = reply("out", "ok", None, None, START_MS + 25 * HOUR_MS + 60_000);
        assert_eq!(
            store.record_reply(&inside).await.expect("stored").order,
            Some((2, Attribution::Window))
        );
        let late = store.record_reply(&outside).await.expect("stored");
        assert_eq!(late.order, None);
        assert_eq!(late.forward, ForwardState::None);
        // Another number: nothing was sent to it.
        let stranger = InboundReply {
            phone: "+212699999999",
            ..reply("s", "ok", None, None, START_MS + 2 * HOUR_MS)
        };
        assert_eq!(
            store.record_reply(&stranger).await.expect("stored").order,
            None
        );
    }

    #[tokio::test]
    async fn a_redelivered_message_changes_nothing_and_queues_nothing_more() {
        let (_dir, store) = store().await;
        let first = reply("dup", "STOP", None, None, START_MS + HOUR_MS);
        let stored = store.record_reply(&first).await.expect("stored");
        assert!(stored.stored && stored.newly_opted_out);
        assert_eq!(stored.order, None, "an opt-out is about no order");
        let again = store.record_reply(&first).await.expect("again");
        assert!(!again.stored && !again.newly_opted_out);
        let oui = reply("oui", "oui", None, None, START_MS + HOUR_MS);
        store.record_reply(&oui).await.expect("stored");
        store.record_reply(&oui).await.expect("again");
        assert_eq!(store.pending_forwards().await.expect("queue").0, 1);
        assert_eq!(store.replies(10).await.expect("replies").len(), 2);
    }
}
