//! What WhatsApp's server checks on a 1:1 message since mid-2026, as the simulator models it:
//! privacy tokens on first messages to cold contacts, LIDs, and the account's LID migration.
//!
//! # Privacy tokens
//!
//! The real server refuses a message to a contact who never wrote to the account unless it
//! carries a privacy token: the contact's `tctoken` (a trusted-contact token the server hands
//! the account in a `privacy_token` notification, e.g. once the contact wrote), or else a
//! `cstoken` = `HMAC-SHA256(nct_salt, "<contact LID>@lid")`, where `nct_salt` is the account's
//! salt kept in app state (`nct_salt_sync`). A message without a valid one is answered
//! `<ack class="message" error="463">` and not delivered.
//!
//! The simulator does the same when [`WaSim::require_privacy_tokens`] is on: each `<message>` to
//! a registered contact that is cold (never wrote, not marked warm) must carry a `<tctoken>`
//! child equal to the one [`WaSim::issue_tc_token`] issued for that contact, or a `<cstoken>`
//! child equal to [`WaSim::expected_cs_token`]; else 463. Every check is recorded
//! ([`WaSim::token_checks`]).
//!
//! How whatsapp-rust 0.7 gets there (`send/tctoken_lifecycle.rs`): it attaches a stored
//! tctoken when the AB prop `privacy_token_sending_on_all_1_on_1_messages` (10518) is on, else a
//! cstoken when `wa_nct_token_send_enabled` (24941) is on and it knows both the salt and the
//! contact's LID (from usync answers). The simulator's AB props answer turns both on; the salt
//! reaches the client through app state (`appstate.rs`) once the phone shared its app-state key.
//!
//! Not modelled: token expiry and buckets (`tctoken_duration`…), the client's own `set privacy
//! tokens` IQ (answered, ignored), the server's rate of new chats (see
//! [`WaSim::set_reachout_timelock`] for the lock itself).
//!
//! # LIDs and the migration
//!
//! Each number has a LID (`9<digits>@lid` here; random on the real server) that usync answers
//! carry (`<lid val=…/>`) when the query asks for it, and device lists, pre-key fetches and
//! messages may use either address. An account is "1:1 LID-migrated" when its chats moved to
//! LIDs: whatsapp-rust 0.7 then addresses every DM stanza by LID (`resolve_dm_wire_jid`); it
//! learns it from `client-props` in `pair-success` or the AB prop
//! `lid_one_on_one_migration_enabled` (9435), which it then persists. [`WaSim::set_lid_migrated`]
//! serves that prop (read at each connection); a message to a contact addressed by phone number
//! on a migrated account is nacked 400. The real server's rules for unmigrated accounts
//! addressing by LID are not modelled (accepted).

use std::collections::{HashMap, HashSet};

use wa_rs_binary::builder::NodeBuilder;
use wa_rs_binary::jid::Jid;
use wa_rs_binary::node::{Node, NodeContent};

use crate::{WaSim, lid_for, now_secs};

/// AB prop codes (whatsapp-rust 0.7, `wacore::iq::abprops::web`).
const PROP_PRIVACY_TOKEN_ON_1_ON_1: u32 = 10518;
const PROP_NCT_TOKEN_SEND: u32 = 24941;
const PROP_LID_ONE_ON_ONE_MIGRATION: u32 = 9435;

/// The privacy token a client attached to a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrivacyToken {
    /// No `<tctoken>` nor `<cstoken>` child.
    None,
    /// `<tctoken>` bytes.
    TcToken(Vec<u8>),
    /// `<cstoken>` bytes.
    CsToken(Vec<u8>),
}

/// One 1:1 message the server checked for a privacy token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenCheck {
    /// The stanza id.
    pub message_id: String,
    /// The recipient's phone number, digits.
    pub to: String,
    /// Whether the recipient was cold (never wrote, not marked warm): only then is a token needed.
    pub cold: bool,
    /// What the client attached.
    pub token: PrivacyToken,
    /// Whether the message was let through (false: nacked 463).
    pub accepted: bool,
}

pub(crate) struct PrivacyState {
    pub(crate) required: bool,
    pub(crate) nct_salt: Vec<u8>,
    /// Phones (digits) that wrote to the account or were marked warm.
    pub(crate) warm: HashSet<String>,
    /// The tctoken issued to the account for each phone.
    pub(crate) tc_tokens: HashMap<String, Vec<u8>>,
    pub(crate) lid_migrated: bool,
    pub(crate) checks: Vec<TokenCheck>,
    /// How many times the `nct_salt_sync` patch was served.
    pub(crate) salt_served: usize,
    /// A client synced the salt's collection from version 0 before any key was shared (so without the
    /// salt): the next key share announces it with `server_sync`.
    pub(crate) salt_owed: bool,
}

impl Default for PrivacyState {
    fn default() -> Self {
        Self {
            required: true,
            nct_salt: rand::random::<[u8; 32]>().to_vec(),
            warm: HashSet::new(),
            tc_tokens: HashMap::new(),
            lid_migrated: false,
            checks: Vec::new(),
            salt_served: 0,
            salt_owed: false,
        }
    }
}

fn digits(phone: &str) -> String {
    phone.chars().filter(char::is_ascii_digit).collect()
}

/// `HMAC-SHA256(salt, "<lid>@lid")`, as whatsapp-rust 0.7's `compute_cs_token`.
pub(crate) fn cs_token(salt: &[u8], phone: &str) -> Vec<u8> {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(salt).expect("HMAC takes any key");
    mac.update(format!("{}@lid", lid_for(phone)).as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// The phone number (digits) a user JID stands for: its user part, or for a `@lid` JID the
/// number the simulator gave that LID.
pub(crate) fn phone_of(jid: &Jid) -> String {
    if jid.server == "lid" {
        jid.user
            .strip_prefix('9')
            .map_or_else(|| jid.user.clone(), str::to_string)
    } else {
        jid.user.clone()
    }
}

/// The AB props answer: privacy tokens on, the LID migration as set.
pub(crate) fn ab_props(lid_migrated: bool) -> Node {
    let prop = |code: u32, on: bool| {
        NodeBuilder::new("prop")
            .attr("config_code", code.to_string())
            .attr("config_value", if on { "true" } else { "false" })
            .build()
    };
    NodeBuilder::new("props")
        .attr("protocol", "1")
        .attr("hash", format!("sim-{}", u8::from(lid_migrated)))
        .attr("refresh", "86400")
        .children([
            prop(PROP_PRIVACY_TOKEN_ON_1_ON_1, true),
            prop(PROP_NCT_TOKEN_SEND, true),
            prop(PROP_LID_ONE_ON_ONE_MIGRATION, lid_migrated),
        ])
        .build()
}

fn child_bytes(node: &Node, tag: &str) -> Option<Vec<u8>> {
    match &node.get_optional_child(tag)?.content {
        Some(NodeContent::Bytes(b)) => Some(b.clone()),
        Some(NodeContent::String(s)) => Some(s.as_bytes().to_vec()),
        _ => Some(Vec::new()),
    }
}

/// The server's verdict on a client `<message>` to `to` (a contact, not the account itself):
/// `Some(code)` to nack it.
pub(crate) fn check_message(st: &mut crate::State, node: &Node, id: &str, to: &Jid) -> Option<u16> {
    let phone = phone_of(to);
    if !st.registered.contains(&phone) {
        return None;
    }
    if st.privacy.lid_migrated && to.server != "lid" {
        return Some(400);
    }
    if !st.privacy.required {
        return None;
    }
    let token = if let Some(b) = child_bytes(node, "tctoken") {
        PrivacyToken::TcToken(b)
    } else if let Some(b) = child_bytes(node, "cstoken") {
        PrivacyToken::CsToken(b)
    } else {
        PrivacyToken::None
    };
    let cold = !st.privacy.warm.contains(&phone);
    let accepted = !cold
        || match &token {
            PrivacyToken::TcToken(t) => st.privacy.tc_tokens.get(&phone) == Some(t),
            PrivacyToken::CsToken(t) => *t == cs_token(&st.privacy.nct_salt, &phone),
            PrivacyToken::None => false,
        };
    st.privacy.checks.push(TokenCheck {
        message_id: id.to_string(),
        to: phone,
        cold,
        token,
        accepted,
    });
    (!accepted).then_some(463)
}

impl WaSim {
    /// Whether the server refuses (463) messages to cold contacts that carry no valid privacy
    /// token, as WhatsApp does since mid-2026 (see `privacy.rs`). On by default: every number
    /// given to [`WaSim::set_registered`] is cold until it writes or is marked warm.
    /// whatsapp-rust 0.7 makes valid cstokens once it has the salt, which reaches it after the
    /// phone's app-state key share (sent by itself after a linking, see
    /// [`WaSim::set_auto_key_share`]; for a session linked elsewhere call
    /// [`WaSim::share_app_state_key`]).
    pub fn require_privacy_tokens(&self, required: bool) {
        self.shared.state().privacy.required = required;
    }

    /// The contact `phone` counts as having written to the account: its messages need no token.
    /// A text from it ([`WaSim::send_text_from`]) does the same.
    pub fn set_contact_warm(&self, phone: &str) {
        self.shared.state().privacy.warm.insert(digits(phone));
    }

    /// The contact `phone` counts as never having written (the default): a first message needs
    /// a valid token. Forgets a tctoken issued for it.
    pub fn set_contact_cold(&self, phone: &str) {
        let phone = digits(phone);
        let mut st = self.shared.state();
        st.privacy.warm.remove(&phone);
        st.privacy.tc_tokens.remove(&phone);
    }

    /// The server issues the account a trusted-contact token for `phone` (a `privacy_token`
    /// notification from that contact, with `sender_lid`): whatsapp-rust 0.7 stores it and
    /// attaches it as `<tctoken>` to its next messages there, which the server then accepts.
    /// Queued while the client is offline. Returns the token.
    pub async fn issue_tc_token(&self, phone: &str) -> Vec<u8> {
        let phone = digits(phone);
        let token = rand::random::<[u8; 24]>().to_vec();
        self.shared
            .state()
            .privacy
            .tc_tokens
            .insert(phone.clone(), token.clone());
        let t = now_secs().to_string();
        let node = NodeBuilder::new("notification")
            .attr("from", format!("{phone}@s.whatsapp.net"))
            .attr("sender_lid", format!("{}@lid", lid_for(&phone)))
            .attr("type", "privacy_token")
            .attr("id", format!("sim-pt-{}", rand::random::<u32>()))
            .attr("t", t.as_str())
            .children([NodeBuilder::new("tokens")
                .children([NodeBuilder::new("token")
                    .attr("type", "trusted_contact")
                    .attr("t", t.as_str())
                    .bytes(token.clone())
                    .build()])
                .build()])
            .build();
        self.deliver(node).await;
        token
    }

    /// The account's `nct_salt` (32 random bytes per simulator), served through app state.
    pub fn nct_salt(&self) -> Vec<u8> {
        self.shared.state().privacy.nct_salt.clone()
    }

    /// Waits until the server answered an app-state sync with the `nct_salt_sync` patch (the
    /// client applies it as it reads the answer, before `Connected` after a linking; after a
    /// late [`WaSim::share_app_state_key`] this is what to wait for). False on timeout.
    pub async fn wait_for_nct_salt_served(&self, timeout: std::time::Duration) -> bool {
        self.wait_until(timeout, |st| (st.privacy.salt_served > 0).then_some(()))
            .await
            .is_some()
    }

    /// The cstoken a message to `phone` must carry: `HMAC-SHA256(nct_salt, "<LID>@lid")`.
    pub fn expected_cs_token(&self, phone: &str) -> Vec<u8> {
        cs_token(&self.shared.state().privacy.nct_salt, &digits(phone))
    }

    /// The LID user (digits, without `@lid`) the simulator gives the number `phone`.
    pub fn lid_of(phone: &str) -> String {
        lid_for(&digits(phone))
    }

    /// Whether the account's 1:1 chats are LID-migrated: served as the AB prop
    /// `lid_one_on_one_migration_enabled`, which whatsapp-rust 0.7 reads at each connection
    /// (set it before the client connects, or reconnect it) and keeps once seen. While on, a
    /// message to a contact addressed by phone number is nacked 400.
    pub fn set_lid_migrated(&self, migrated: bool) {
        self.shared.state().privacy.lid_migrated = migrated;
    }

    /// Every privacy-token check so far, in order.
    pub fn token_checks(&self) -> Vec<TokenCheck> {
        self.shared.state().privacy.checks.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(to: &str, token: Option<(&str, Vec<u8>)>) -> (Node, Jid) {
        let mut b = NodeBuilder::new("message").attr("to", to).attr("id", "m1");
        if let Some((tag, bytes)) = token {
            b = b.children([NodeBuilder::new(tag).bytes(bytes).build()]);
        }
        (b.build(), to.parse().expect("a JID"))
    }

    fn verdict(sim: &WaSim, to: &str, token: Option<(&str, Vec<u8>)>) -> Option<u16> {
        let (node, jid) = message(to, token);
        check_message(&mut sim.shared.state(), &node, "m1", &jid)
    }

    #[tokio::test]
    async fn a_cold_contact_needs_the_cstoken_of_its_lid_or_its_issued_tctoken() {
        let sim = WaSim::start().await;
        sim.set_registered(&["212611111111", "212622222222"]);
        let a = "212611111111@s.whatsapp.net";
        assert_eq!(verdict(&sim, a, None), Some(463));
        let good = sim.expected_cs_token("212611111111");
        assert_eq!(verdict(&sim, a, Some(("cstoken", good.clone()))), None);
        // Another contact's token, or one over its phone number instead of its LID.
        let other = sim.expected_cs_token("212622222222");
        assert_eq!(verdict(&sim, a, Some(("cstoken", other))), Some(463));
        let over_pn = {
            use hmac::{Hmac, Mac};
            let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&sim.nct_salt()).expect("key");
            mac.update(a.as_bytes());
            mac.finalize().into_bytes().to_vec()
        };
        assert_eq!(verdict(&sim, a, Some(("cstoken", over_pn))), Some(463));
        // By LID, the same token is checked the same way.
        let by_lid = format!("{}@lid", WaSim::lid_of("212611111111"));
        assert_eq!(verdict(&sim, &by_lid, Some(("cstoken", good))), None);

        assert_eq!(
            verdict(&sim, a, Some(("tctoken", vec![1, 2, 3]))),
            Some(463)
        );
        let issued = sim.issue_tc_token("212611111111").await;
        assert_eq!(verdict(&sim, a, Some(("tctoken", issued))), None);

        let checks = sim.token_checks();
        assert_eq!(checks.len(), 7);
        assert!(checks.iter().all(|c| c.cold && c.to == "212611111111"));
        assert_eq!(checks[0].token, PrivacyToken::None);
    }

    #[tokio::test]
    async fn warm_contacts_unregistered_numbers_and_the_switch_need_no_token() {
        let sim = WaSim::start().await;
        sim.set_registered(&["212611111111"]);
        sim.set_contact_warm("+212 611 111 111");
        assert_eq!(verdict(&sim, "212611111111@s.whatsapp.net", None), None);
        sim.set_contact_cold("212611111111");
        assert_eq!(
            verdict(&sim, "212611111111@s.whatsapp.net", None),
            Some(463)
        );
        assert_eq!(verdict(&sim, "212699999999@s.whatsapp.net", None), None);
        sim.require_privacy_tokens(false);
        assert_eq!(verdict(&sim, "212611111111@s.whatsapp.net", None), None);
    }

    #[tokio::test]
    async fn a_lid_migrated_account_must_address_contacts_by_lid() {
        let sim = WaSim::start().await;
        sim.set_registered(&["212611111111"]);
        sim.require_privacy_tokens(false);
        sim.set_lid_migrated(true);
        assert_eq!(
            verdict(&sim, "212611111111@s.whatsapp.net", None),
            Some(400)
        );
        let lid = format!("{}@lid", WaSim::lid_of("212611111111"));
        assert_eq!(verdict(&sim, &lid, None), None);
        sim.set_lid_migrated(false);
        assert_eq!(verdict(&sim, "212611111111@s.whatsapp.net", None), None);
    }
}
