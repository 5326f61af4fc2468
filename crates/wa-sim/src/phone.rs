//! The contacts' phones and the account's own phone writing to the linked companion: receipts,
//! texts, the app-state key share; all queued like the real server's offline queue until the
//! client acknowledges them.

use tokio::sync::oneshot;
use wa_rs_binary::builder::NodeBuilder;
use wa_rs_binary::jid::Jid;
use wa_rs_binary::node::Node;

use crate::signal::SimDevice;
use crate::{Cmd, ReceiptKind, Shared, WaSim, message_id, now_secs, pad};

impl WaSim {
    /// Sends a receipt for a received message, from its recipient. Queued while the client
    /// is offline. Panics if `message_id` was never received.
    pub async fn send_receipt(&self, message_id: &str, kind: ReceiptKind) {
        let to = self
            .shared
            .state()
            .received
            .iter()
            .find(|r| r.message_id == message_id)
            .map(|r| r.to.clone())
            .unwrap_or_else(|| panic!("send_receipt: message {message_id} was not received"));
        let mut b = NodeBuilder::new("receipt")
            .attr("from", format!("{to}@s.whatsapp.net"))
            .attr("id", message_id)
            .attr("t", now_secs().to_string());
        match kind {
            ReceiptKind::Delivery => {}
            ReceiptKind::Read => b = b.attr("type", "read"),
            ReceiptKind::Played => b = b.attr("type", "played"),
        }
        self.deliver(b.build()).await;
    }

    /// A carrier (`phone`, digits) writes `text` to the linked account: encrypted by that
    /// phone's Signal session with the companion (or from the pre-keys the companion uploaded).
    /// Queued while the client is offline. Returns the message id. Panics if nothing is
    /// linked, or if the companion never uploaded pre-keys and never wrote to `phone`.
    pub async fn send_text_from(&self, phone: &str, text: &str) -> String {
        let message = wa_rs_proto::whatsapp::Message {
            conversation: Some(text.to_string()),
            ..Default::default()
        };
        self.send_message_from(phone, &message, "text").await
    }

    /// `message`, end-to-end encrypted from the phone `phone` to the linked companion, as a
    /// `<message type=TYPE>`; returns its id.
    async fn send_message_from(
        &self,
        phone: &str,
        message: &wa_rs_proto::whatsapp::Message,
        typ: &str,
    ) -> String {
        let (id, node) = message_from(&self.shared, phone, message, typ).await;
        self.deliver(node).await;
        id
    }
    /// The account's own phone shares an app-state sync key with the linked companion (a
    /// `protocolMessage` APP_STATE_SYNC_KEY_SHARE, end-to-end encrypted from the phone, as after
    /// a real linking). whatsapp-rust 0.7 waits up to 10 s for it before its initial app-state
    /// sync, so tests call this right after the login to reach `Connected` at once. The key also
    /// opens the account's `nct_salt_sync` record that the server then serves (and announces
    /// with a `server_sync` notification): whatsapp-rust 0.7 needs that salt for cstokens.
    /// Returns the message's id.
    pub async fn share_app_state_key(&self) -> String {
        let (id, nodes) = app_state_key_share(&self.shared, true).await;
        for node in nodes {
            self.deliver(node).await;
        }
        id
    }

    /// Sends to the logged-in client (if any) and keeps the stanza until the client acks it.
    pub(crate) async fn deliver(&self, node: Node) {
        let tx = {
            let mut st = self.shared.state();
            st.unacked.push(node.clone());
            match st.current.as_ref().filter(|c| c.logged_in) {
                Some(c) => c.tx.clone(),
                None => return,
            }
        };
        let (done, wait) = oneshot::channel();
        if tx.send(Cmd::Send(vec![node], done)).is_ok() {
            let _ = wait.await;
        }
    }
}

/// `message`, end-to-end encrypted from the phone `phone` to the linked companion, as a
/// `<message type=TYPE>`: its id and the stanza (not sent).
pub(crate) async fn message_from(
    shared: &Shared,
    phone: &str,
    message: &wa_rs_proto::whatsapp::Message,
    typ: &str,
) -> (String, Node) {
    let phone: String = phone.chars().filter(char::is_ascii_digit).collect();
    let (companion, bundle) = {
        let mut st = shared.state();
        // A contact who wrote to the account is no longer cold (see `privacy.rs`).
        st.privacy.warm.insert(phone.clone());
        let account = st
            .accounts
            .values()
            .next()
            .expect("send_text_from: no linked account");
        let key = (account.phone.clone(), account.device);
        (
            Jid::pn_device(account.phone.clone(), account.device as u16),
            st.companions.get(&key).cloned(),
        )
    };
    let plain = pad(prost::Message::encode_to_vec(message));
    let (enc_type, ciphertext) = {
        let mut phones = shared.phones.lock().await;
        let dev = phones.entry(phone.clone()).or_insert_with(SimDevice::new);
        dev.encrypt(&companion, bundle.as_ref(), &plain)
            .await
            .expect("send_text_from: encrypt")
    };
    if enc_type == "pkmsg" {
        // The one-time pre-key is used up.
        let mut st = shared.state();
        if let Some(b) = st
            .companions
            .get_mut(&(companion.user.clone(), u32::from(companion.device)))
            && !b.prekeys.is_empty()
        {
            b.prekeys.remove(0);
        }
    }
    let id = message_id();
    let node = NodeBuilder::new("message")
        .attr("from", format!("{phone}@s.whatsapp.net"))
        .attr("id", id.as_str())
        .attr("type", typ)
        .attr("t", now_secs().to_string())
        .attr("notify", format!("+{phone}"))
        .children([NodeBuilder::new("enc")
            .attr("v", "2")
            .attr("type", enc_type)
            .bytes(ciphertext)
            .build()])
        .build();
    (id, node)
}

/// The account's phone sharing its app-state key with the linked companion, then the server's
/// `server_sync` for the salt's collection when `announce` and a client already synced it without the
/// salt (not after a linking: the client's first sync waits for the key; announcing it then
/// only races that sync): the message id and the stanzas (not sent). See
/// [`WaSim::share_app_state_key`].
pub(crate) async fn app_state_key_share(shared: &Shared, announce: bool) -> (String, Vec<Node>) {
    use wa_rs_proto::whatsapp::message::{
        AppStateSyncKey, AppStateSyncKeyData, AppStateSyncKeyFingerprint, AppStateSyncKeyId,
        AppStateSyncKeyShare, ProtocolMessage, protocol_message,
    };
    let own = {
        let st = shared.state();
        st.accounts
            .values()
            .next()
            .expect("share_app_state_key: no linked account")
            .phone
            .clone()
    };
    // One key per account, kept: the server side of app state (the `nct_salt_sync` patch)
    // is encrypted with it, and sharing again sends the same key.
    let (key_id, key_data) = shared
        .state()
        .app_state_key
        .get_or_insert_with(|| (vec![0, 0, 0, 1, 0, 1], rand::random()))
        .clone();
    let key = AppStateSyncKey {
        key_id: Some(AppStateSyncKeyId {
            key_id: Some(key_id),
        }),
        key_data: Some(AppStateSyncKeyData {
            key_data: Some(key_data.to_vec()),
            fingerprint: Some(AppStateSyncKeyFingerprint {
                raw_id: Some(rand::random()),
                current_index: Some(1),
                device_indexes: vec![0, 1],
            }),
            timestamp: Some(i64::try_from(now_secs() * 1000).unwrap_or(i64::MAX)),
        }),
    };
    let message = wa_rs_proto::whatsapp::Message {
        protocol_message: Some(Box::new(ProtocolMessage {
            r#type: Some(protocol_message::Type::AppStateSyncKeyShare as i32),
            app_state_sync_key_share: Some(AppStateSyncKeyShare { keys: vec![key] }),
            ..Default::default()
        })),
        ..Default::default()
    };
    let (id, share) = message_from(shared, &own, &message, "protocol").await;
    // The server tells a companion that synced the salt's collection before it could read the salt
    // that the collection moved on: it fetches it again and gets the salt (see `appstate.rs`).
    let node = NodeBuilder::new("notification")
        .attr("from", "s.whatsapp.net")
        .attr("type", "server_sync")
        .attr("id", format!("sim-ss-{}", rand::random::<u32>()))
        .attr("t", now_secs().to_string())
        .children([NodeBuilder::new("collection")
            .attr("name", crate::appstate::NCT_SALT_COLLECTION)
            .attr("version", "1")
            .build()])
        .build();
    (
        id,
        if announce && std::mem::take(&mut shared.state().privacy.salt_owed) {
            vec![share, node]
        } else {
            vec![share]
        },
    )
}

impl WaSim {
    /// Whether the account's phone shares its app-state key by itself once a newly linked
    /// companion uploaded its pre-keys (on by default, as a real phone does after linking; the
    /// share arrives as a message with no text; whatsapp-rust 0.7's first app-state sync then
    /// gets the account's `nct_salt`, before `Connected`). Off: only
    /// [`WaSim::share_app_state_key`] shares it.
    pub fn set_auto_key_share(&self, on: bool) {
        self.shared.state().auto_key_share = on;
    }
}
