//! A loopback WhatsApp Web server for tests: the real client (whatsapp-rust 0.7; wa-rs 0.2.0
//! still works where noted) connects to it over `ws://127.0.0.1:PORT/ws/chat`, completes the Noise handshake, links with a simulated phone,
//! logs in, looks numbers up and sends end-to-end encrypted messages that the simulator decrypts
//! as the recipients' phones would.
//!
//! # What it implements
//!
//! * **Handshake**: the server side of Noise XX (`Noise_XX_25519_AESGCM_SHA256`, prologue
//!   `WA 6 3`), with a certificate chain really signed by a test root key
//!   ([`WaSim::test_root_public_key`]; [`CertChain`], `handshake.rs`): whatsapp-rust 0.7 refuses
//!   it unless built with `danger-skip-cert-chain-verify`, and refuses
//!   [`CertChain::LeafKeyMismatch`] even then; wa-rs 0.2.0 checks the structure only. Then frames `len24 | AES-256-GCM(counter IV)` over `wa_rs_binary::marshal(node)`. A Noise
//!   IK hello (whatsapp-rust 0.7 reconnecting with the static key it cached) is declined with an
//!   XX-shaped answer under `Noise_XXfallback_25519_AESGCM_SHA256`, as after a key rotation.
//! * **Linking**: a client without a session (its `ClientPayload` carries `devicePairingData`) gets
//!   a `pair-device` IQ with [`WaSim::set_qr_refs`] refs (default 6) — wa-rs shows each as a
//!   `PairingQrCode` (60 s for the first, 20 s for each next one) and, when all have expired,
//!   disconnects and ends its run loop without any event. [`WaSim::scan_qr`] plays the phone
//!   ([`WaSim::scan_qr_code`] reads the code shown, for the ADV secret the HMAC is keyed with):
//!   `pair-success` with an `ADVSignedDeviceIdentity` signed by that phone's identity key; the
//!   client answers `pair-device-sign`, the server sends `<stream:error code="515"/>` and closes,
//!   the client reconnects at once with a login payload and gets `<success>`. What the companion
//!   says of itself at registration (`DeviceProps` os and platform) is recorded
//!   ([`WaSim::registered_device`]).
//! * **Pairing codes**: the `link_code_companion_reg` IQ stages `companion_hello` (answered with a
//!   pairing ref, or 400 when the display name is not `Browser (OS)`; recorded as
//!   [`WaSim::pair_code_requests`]) and `companion_finish`, and the `primary_hello` notification in
//!   between, when [`WaSim::enter_pair_code`] plays the user typing the code on the phone. The
//!   phone's side does the real key derivations (PBKDF2 of the code, X25519, HKDF, AES-CTR and
//!   AES-GCM; see `pair_code.rs`), so only the code the client generated links, and then
//!   `pair-success` follows as for a QR scan.
//! * **Login**: `<success t lid>`; the client then asks the pre-key count (answered from what it
//!   uploaded to this simulator, so a fresh session uploads 50 keys), sets itself active, and
//!   only then emits `Event::Connected`. Right after `<success>` the server sends what it queued
//!   for the client and `<ib><offline count=N/></ib>` (end of offline delivery), which wa-rs waits
//!   for (up to 5 s) before `Connected`. Keepalive pings, blocklist, app-state and other IQs get
//!   an empty `result` (props and privacy a minimal one).
//! * **Lifecycle**: [`WaSim::rotate_qr`] (fresh refs for an unlinked client),
//!   [`WaSim::drop_connection`], [`WaSim::go_silent`], [`WaSim::remove_device`],
//!   [`WaSim::replace_session`], [`WaSim::ban`]. A removed device gets `<failure reason="401"/>`
//!   at every later login; a ban answers logins with `<failure reason="402">` until it expires.
//! * **Numbers**: `usync` contact queries answer one `<user jid=…>` per number, with
//!   `<contact type="in"/>` for the numbers given to [`WaSim::set_registered`], `type="out"` for
//!   the others, and `<lid val=…/>` (each number's LID, [`WaSim::lid_of`]) when asked (`usync.rs`). The `jid` attribute travels as a JID value, as from the real server — and
//!   wa-rs 0.2.0's `contacts().is_on_whatsapp()` reads it with `optional_string`, so it returns an
//!   empty list for every query; read the same answer with `optional_jid` (see
//!   `tests/it/usync.rs`).
//! * **Messages**: each registered number is one phone (device 0) with its own Signal identity,
//!   signed pre-key and one-time pre-keys. Device-list queries list it (and, for the account's
//!   own number, only the linked companion — no primary phone, so no device-sent copies), pre-key
//!   fetches hand out a fresh bundle, and every `<message>` is decrypted with libsignal as that
//!   phone, its text recorded ([`WaSim::received`]) and acknowledged with `<ack class="message"
//!   id=… from=… t=…>` (whatsapp-rust 0.7: `Event::ServerAck { error: None, .. }`, what `sent`
//!   waits for). Messages may be addressed by phone number or LID.
//!   Unregistered numbers have no devices: wa-rs then sends a message with no recipients, and
//!   still returns `Ok(id)`. [`WaSim::nack_messages_to`] makes the server refuse a recipient's
//!   messages with `<ack class="message" error=CODE>` (463, 400, 479…), undelivered and recorded
//!   ([`WaSim::nacked`]); whatsapp-rust 0.7 reports it as `Event::ServerAck { error, .. }`.
//!   The real server's ack also carries a participant hash (`phash`); not modelled.
//! * **Privacy tokens and LIDs** (`privacy.rs`): a message to a cold contact (the default for
//!   every registered number) needs a valid `<cstoken>` or an issued `<tctoken>`, else 463
//!   ([`WaSim::require_privacy_tokens`], [`WaSim::set_contact_warm`], [`WaSim::issue_tc_token`],
//!   [`WaSim::token_checks`]); an account LID-migrated with [`WaSim::set_lid_migrated`] (AB prop
//!   and `client-props`) gets 400 for a message addressed by phone number. The AB props answer
//!   turns on the client's token sending.
//! * **App state** (`appstate.rs`): the sync IQ is answered with each collection at the version
//!   asked, no patches, except `critical_block` from version 0 once the phone shared its key: one
//!   patch with the account's `nct_salt_sync` ([`WaSim::nct_salt`]). After each linking the phone
//!   shares its app-state key by itself once the companion uploaded its pre-keys
//!   ([`WaSim::set_auto_key_share`]); whatsapp-rust 0.7 waits for it (up to 10 s) before
//!   `Connected`. [`WaSim::share_app_state_key`] shares it on demand (e.g. for a session linked
//!   elsewhere) and, to a client that already synced that collection without it, announces the
//!   salt with a `server_sync` notification.
//! * **Restrictions**: the reach-out time-lock MEX query (`w:mex`, doc id `23983697327930364`,
//!   whatsapp-rust 0.7's `fetch_reachout_timelock`) answers [`WaSim::set_reachout_timelock`]:
//!   `is_active` (false by default), with `time_enforcement_ends` (Unix seconds, as a string) and
//!   `enforcement_type` when set. The real server also locks by itself after repeated 463s; the
//!   simulator only when told.
//! * **Typing**: `<chatstate>` stanzas are only logged, like every client stanza, with the time
//!   they were read ([`WaSim::client_stanzas_timed`]).
//! * **Receipts and replies**: [`WaSim::send_receipt`] and [`WaSim::send_text_from`]; they are
//!   kept until the client confirms them (`<ack class=… id=… [type=…]>`, or for a message
//!   whatsapp-rust 0.7's `<receipt>`) and sent again after
//!   each `<success>`, like the real server's offline queue: one caught by a disconnect may
//!   arrive twice.
//!
//! # wa-rs 0.2.0 behaviours seen against it
//!
//! * Pairing code: `pair_with_code` after the QR refs (the socket must be up) returns the code
//!   and emits `PairingCode` (timeout 180 s, but the socket still closes when the QR round ends);
//!   `PairingQrCode` rotations go on meanwhile. A wrong code typed on the phone: wa-rs still
//!   answers `companion_finish` and nothing links. Its source shows it then leaves its waiting
//!   state, so a second try on the same request is ignored ("not in waiting state"): a new code
//!   must be asked for (tested that way in the engine).
//! * Linking: `PairingQrCode` at once, then after `scan_qr`: `PairSuccess`,
//!   `OfflineSyncCompleted`, `Connected` (two connections). A second `Bot` on the same SQLite
//!   file gets `OfflineSyncCompleted`, `Connected`, no QR.
//! * A drop: `Disconnected`, reconnection at once (the error count is reset by each
//!   `<success>`), `Connected` again ~50 ms later.
//! * `LoggedOut`, `StreamReplaced`, `TemporaryBan` end the run loop; QR exhaustion too, with no
//!   event.
//! * `Client::disconnect()` can hang for good (its read pump and the websocket `close()` poll the
//!   same split stream; when the pump reads the server's close reply, `close()` is never woken):
//!   always bound it with a timeout.
//! * The first three texts to a new recipient are all `pkmsg` (libsignal keeps sending pre-key
//!   messages until the recipient answers).
//!
//! One client at a time: the control methods act on the latest connection.
//!
//! The `relay-wa-sim` binary (`src/bin/relay-wa-sim.rs`) runs it as a process driven by stdin
//! lines, for the desktop end-to-end test written in Python (`tests/e2e/test_whatsapp.py`).
//!
//! Not modelled: groups, media, app-state data beyond the salt, history sync, retry receipts,
//! `key-index-list` in device lists (whatsapp-rust 0.7 then skips the account's other companions,
//! which the simulator does not have anyway). `companion_reg_refresh` is sent on
//! request ([`WaSim::companion_reg_refresh`]), never by itself.
//!
//! # Example
//!
//! ```text
//! let sim = relay_wa_sim::WaSim::start().await;
//! let bot = Bot::builder()
//!     .with_backend(store)
//!     .with_transport_factory(TokioWebSocketTransportFactory::new().with_url(sim.url()))
//!     .with_http_client(NoHttp)            // never used when a version is given
//!     .with_version((2, 3000, 1_023_868_176))
//!     .build()
//!     .await?;
//! // … on Event::PairingQrCode:
//! sim.scan_qr("212600000001").await;
//! // … on Event::Connected:
//! sim.set_registered(&["212611111111"]);
//! let id = client.send_message(Jid::pn("212611111111"), text).await?;
//! let got = sim.wait_for_received(1, Duration::from_secs(5)).await.unwrap();
//! sim.send_receipt(&id, ReceiptKind::Read).await;
//! ```

// Test code only: a simulator whose state is poisoned or whose reply cannot be built ends the
// test that drives it, with the message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod appstate;
mod conn;
mod handshake;
mod pair_code;
mod pairing;
mod phone;
mod privacy;
mod signal;
mod usync;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::{AbortHandle, JoinHandle};
use wa_rs_binary::builder::NodeBuilder;
use wa_rs_binary::node::Node;

pub use wa_rs_binary::node::Node as Stanza;

use handshake::ServerIdentity;
use signal::{PeerBundle, SimDevice};

pub use privacy::{PrivacyToken, TokenCheck};

/// Which certificate chain the simulator's Noise handshake presents (see `handshake.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CertChain {
    /// Well formed and really signed: the intermediate by the simulator's test root key
    /// ([`WaSim::test_root_public_key`]), the leaf (the server's static key) by the intermediate.
    /// whatsapp-rust 0.7 refuses it (the root is not WhatsApp's) unless built with
    /// `danger-skip-cert-chain-verify`; wa-rs 0.2.0 accepts it.
    #[default]
    TestRootSigned,
    /// Signed the same way, but the leaf certifies another key than the static key the server
    /// uses in the handshake: a structural fault that every client refuses, even one built with
    /// `danger-skip-cert-chain-verify` (that feature skips the signature checks only).
    LeafKeyMismatch,
}

/// A text the client sent, decrypted by the recipient's simulated phone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedText {
    /// Recipient phone number, digits only.
    pub to: String,
    /// `conversation` (or `extendedTextMessage.text`) of the decrypted message.
    pub text: String,
    /// The stanza id: what `Client::send_message` returned.
    pub message_id: String,
    /// When the simulator decrypted it.
    pub at: Instant,
}

/// What a companion says of itself when it registers (the `DeviceProps` in its
/// `devicePairingData`): the phone lists the linked device under this name and icon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompanionDevice {
    /// `DeviceProps.os`: the name shown under "Linked devices".
    pub os: Option<String>,
    /// `DeviceProps.platformType` by its protobuf name (`DESKTOP`, `CHROME`, `UNKNOWN`…).
    pub platform: Option<String>,
}

/// A `companion_hello` the simulator received: a companion asking to link to `phone` with a
/// pairing code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairCodeRequest {
    /// The account to link to, digits.
    pub phone: String,
    /// `companion_platform_id` (the `DeviceProps.PlatformType` number, as text).
    pub platform_id: String,
    /// `companion_platform_display`, shown in the phone's notification.
    pub platform_display: String,
    /// Whether the server was answered a pairing ref (false: refused with 400).
    pub accepted: bool,
}

/// Why [`WaSim::enter_pair_code`] did not link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PairCodeRefused {
    /// No connected companion asked for a code for this phone's number.
    NoRequest,
    /// The companion answered, but its key bundle does not open with the code typed: the phone
    /// says the code is wrong and nothing is linked.
    WrongCode,
    /// The companion never sent `companion_finish` (within 20 s).
    NoAnswer,
}

/// Which receipt [`WaSim::send_receipt`] sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceiptKind {
    /// `<receipt>` with no `type`: wa-rs reports `ReceiptType::Other("delivery")`.
    Delivery,
    /// `type="read"`: `ReceiptType::Read`.
    Read,
    /// `type="played"`: `ReceiptType::Played`.
    Played,
}

/// A running simulator on `127.0.0.1:<random port>`. Dropping it stops the server and closes
/// every connection.
pub struct WaSim {
    shared: Arc<Shared>,
    addr: SocketAddr,
    accept: JoinHandle<()>,
}

impl Drop for WaSim {
    fn drop(&mut self) {
        self.accept.abort();
        for task in self.shared.tasks.lock().expect("tasks lock").drain(..) {
            task.abort();
        }
    }
}

pub(crate) struct Shared {
    pub(crate) identity: ServerIdentity,
    state: Mutex<State>,
    /// The simulated phones, by phone number (digits).
    pub(crate) phones: tokio::sync::Mutex<HashMap<String, SimDevice>>,
    changed: watch::Sender<u64>,
    tasks: Mutex<Vec<AbortHandle>>,
}

pub(crate) struct Account {
    pub(crate) phone: String,
    pub(crate) device: u32,
}

pub(crate) struct PendingPair {
    pub(crate) phone: String,
    pub(crate) device: u32,
    pub(crate) bundle: PeerBundle,
}

#[derive(Clone)]
pub(crate) enum Session {
    /// No stored session: the client wants to link (its keys, from `devicePairingData`).
    Registration {
        bundle: PeerBundle,
        device: CompanionDevice,
    },
    /// A linked companion logging in.
    Login { phone: String, device: u32 },
}

pub(crate) enum Cmd {
    Send(Vec<Node>, oneshot::Sender<()>),
    SendAndClose(Vec<Node>, oneshot::Sender<()>),
    Drop(oneshot::Sender<()>),
    Silent(oneshot::Sender<()>),
}

#[derive(Clone)]
pub(crate) struct ConnHandle {
    pub(crate) id: u64,
    pub(crate) tx: mpsc::UnboundedSender<Cmd>,
    pub(crate) session: Session,
    /// Set once `<success>` was sent on this connection.
    pub(crate) logged_in: bool,
}

pub(crate) struct State {
    pub(crate) connections: usize,
    pub(crate) next_id: u64,
    pub(crate) current: Option<ConnHandle>,
    pub(crate) qr_refs: usize,
    pub(crate) registered: BTreeSet<String>,
    pub(crate) received: Vec<ReceivedText>,
    /// Message ids already recorded (a message is recorded once even if sent again).
    pub(crate) seen_ids: HashSet<String>,
    pub(crate) removed: HashSet<(String, u32)>,
    /// The `jid` of each `remove-companion-device` a companion sent (its own "Log out").
    pub(crate) unlinked: Vec<String>,
    pub(crate) ban: Option<(u32, Instant)>,
    pub(crate) accounts: HashMap<String, Account>,
    pub(crate) companions: HashMap<(String, u32), PeerBundle>,
    pub(crate) pending_pairs: HashMap<String, PendingPair>,
    /// Receipts and messages for the client not yet acknowledged by it (`<ack>`): sent again
    /// after each `<success>`, like the real server's offline queue (so a stanza caught by a
    /// disconnect can arrive twice).
    pub(crate) unacked: Vec<Node>,
    /// Every stanza the client sent, with when the simulator read it.
    pub(crate) log: Vec<(Instant, Node)>,
    /// Companions that registered (one per linking connection), in order.
    pub(crate) registrations: Vec<CompanionDevice>,
    pub(crate) pair_code_requests: Vec<PairCodeRequest>,
    /// The latest companion waiting for its pairing code to be typed.
    pub(crate) link_code: Option<pair_code::LinkCodeRequest>,
    /// Whether the phone could open each `companion_finish`, by pairing ref.
    pub(crate) link_code_results: HashMap<String, bool>,
    pub(crate) refuse_pair_codes: bool,
    /// Recipients (digits) whose messages are refused, with the `<ack error>` code.
    pub(crate) nack_to: HashMap<String, u16>,
    /// Each refused message: (message id, code), in order.
    pub(crate) nacked: Vec<(String, u16)>,
    /// The account's reach-out time lock, as the MEX query answers it.
    pub(crate) reachout: ReachoutTimelock,
    /// Privacy tokens, LIDs and the account's LID migration (see `privacy.rs`).
    pub(crate) privacy: privacy::PrivacyState,
    /// The app-state sync key the account's phone shared, if any: (key id, key data).
    pub(crate) app_state_key: Option<(Vec<u8>, [u8; 32])>,
    /// Whether the phone shares its app-state key by itself after each linking.
    pub(crate) auto_key_share: bool,
    /// Companions just linked whose phone shares the key once they uploaded their pre-keys.
    pub(crate) key_share_due: HashSet<(String, u32)>,
}

/// The account's reach-out time lock (WhatsApp forbids starting new chats while active), as the
/// `WAWebMexFetchReachoutTimelockJobQuery` MEX query reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReachoutTimelock {
    pub is_active: bool,
    /// When it ends, in Unix seconds.
    pub ends_at: Option<u64>,
    /// WhatsApp's name for the kind of enforcement, e.g. `"REACHOUT_TIMELOCK"`.
    pub enforcement_type: Option<String>,
}

impl State {
    pub(crate) fn next_id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}{}", self.next_id)
    }
}

impl Shared {
    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("simulator state lock")
    }

    pub(crate) fn bump(&self) {
        self.changed.send_modify(|v| *v += 1);
    }
}

/// The LID the simulator gives a phone number.
pub(crate) fn lid_for(phone: &str) -> String {
    format!("9{phone}")
}

pub(crate) fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

/// Random message id in WhatsApp's style (`3EB0` + 16 hex digits).
pub(crate) fn message_id() -> String {
    format!("3EB0{:016X}", rand::random::<u64>())
}

/// WhatsApp's v2 padding: 1..=15 bytes, each equal to the padding length.
pub(crate) fn pad(mut plain: Vec<u8>) -> Vec<u8> {
    let n = match rand::random::<u8>() & 0x0F {
        0 => 0x0F,
        n => n,
    };
    plain.extend(std::iter::repeat_n(n, usize::from(n)));
    plain
}

pub(crate) fn unpad(plain: &[u8]) -> Option<&[u8]> {
    let n = usize::from(*plain.last()?);
    if n == 0 || n > plain.len() {
        return None;
    }
    Some(&plain[..plain.len() - n])
}

impl WaSim {
    /// Starts a simulator on `127.0.0.1` with a random free port, presenting a certificate
    /// chain signed with the test root key ([`CertChain::TestRootSigned`]).
    pub async fn start() -> Self {
        Self::start_with_cert_chain(CertChain::TestRootSigned).await
    }

    /// [`WaSim::start`] presenting the certificate chain `chain` in every handshake.
    pub async fn start_with_cert_chain(chain: CertChain) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let shared = Arc::new(Shared {
            identity: ServerIdentity::generate(chain),
            state: Mutex::new(State {
                connections: 0,
                next_id: 0,
                current: None,
                qr_refs: 6,
                registered: BTreeSet::new(),
                received: Vec::new(),
                seen_ids: HashSet::new(),
                removed: HashSet::new(),
                unlinked: Vec::new(),
                ban: None,
                accounts: HashMap::new(),
                companions: HashMap::new(),
                pending_pairs: HashMap::new(),
                unacked: Vec::new(),
                log: Vec::new(),
                registrations: Vec::new(),
                pair_code_requests: Vec::new(),
                link_code: None,
                link_code_results: HashMap::new(),
                refuse_pair_codes: false,
                nack_to: HashMap::new(),
                nacked: Vec::new(),
                reachout: ReachoutTimelock::default(),
                privacy: privacy::PrivacyState::default(),
                app_state_key: None,
                auto_key_share: true,
                key_share_due: HashSet::new(),
            }),
            phones: tokio::sync::Mutex::new(HashMap::new()),
            changed: watch::channel(0).0,
            tasks: Mutex::new(Vec::new()),
        });
        let accept_shared = shared.clone();
        let accept = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let _ = tcp.set_nodelay(true);
                let task = tokio::spawn(conn::serve(accept_shared.clone(), tcp));
                let mut tasks = accept_shared.tasks.lock().expect("tasks lock");
                tasks.retain(|t| !t.is_finished());
                tasks.push(task.abort_handle());
            }
        });
        Self {
            shared,
            addr,
            accept,
        }
    }

    /// The public half of the test root key (Curve25519, 32 bytes) that signs the intermediate
    /// certificate of every simulator's chain; the same for all simulators. WhatsApp's root key
    /// is another one, so a client that verifies the chain refuses this server.
    pub fn test_root_public_key() -> [u8; 32] {
        handshake::test_root_public_key()
    }

    /// `ws://127.0.0.1:PORT/ws/chat`, for `TokioWebSocketTransportFactory::with_url`.
    pub fn url(&self) -> String {
        format!("ws://{}/ws/chat", self.addr)
    }

    /// Completed Noise handshakes so far (every connection, linking or login).
    pub fn connections(&self) -> usize {
        self.shared.state().connections
    }

    /// Whether a client is connected now (handshake done, socket open).
    pub fn is_connected(&self) -> bool {
        self.shared.state().current.is_some()
    }

    /// Whether the current connection got `<success>` (a logged-in companion).
    pub fn is_logged_in(&self) -> bool {
        self.shared
            .state()
            .current
            .as_ref()
            .is_some_and(|c| c.logged_in)
    }

    /// The phone number (digits) the companion was linked to, once `scan_qr` completed.
    pub fn linked_phone(&self) -> Option<String> {
        self.shared.state().accounts.keys().next().cloned()
    }

    /// How many refs the next `pair-device` IQ carries (default 6). wa-rs shows the first for
    /// 60 s and each next one for 20 s, then disconnects and ends its run loop with no event;
    /// with 0 refs that happens at once.
    pub fn set_qr_refs(&self, n: usize) {
        self.shared.state().qr_refs = n;
    }

    /// The phone `phone` (digits) scans the QR shown by the current, unlinked connection: sends
    /// `pair-success`. Panics if no unlinked client is connected. The client then emits
    /// `PairSuccess`, reconnects and, after `<success>`, `Connected`.
    pub async fn scan_qr(&self, phone: &str) {
        assert!(
            self.try_scan_qr(phone).await,
            "scan_qr: no unlinked client is connected"
        );
    }

    /// [`WaSim::scan_qr`] that returns false instead of panicking when no unlinked client is
    /// connected (the `relay-wa-sim` binary answers its caller instead of dying).
    pub async fn try_scan_qr(&self, phone: &str) -> bool {
        // wa-rs 0.2.0 does not check the HMAC, so any key does.
        self.scan_with_key(phone, &[0u8; 32]).await
    }

    /// The phone `phone` scans the QR code `qr` as the client rendered it (`ref,noise,identity,
    /// adv-secret[,platform]`, base64 fields): like a real phone, it HMACs the device identity
    /// with the ADV secret read from the code, which whatsapp-rust 0.7 verifies (a mismatch is
    /// refused with `hmac-mismatch`). False if no unlinked client is connected or the code is
    /// not one.
    pub async fn scan_qr_code(&self, phone: &str, qr: &str) -> bool {
        match pairing::adv_secret_of(qr) {
            Some(key) => self.scan_with_key(phone, &key).await,
            None => false,
        }
    }

    /// [`WaSim::scan_qr_code`] given only the code's ADV secret (as a test reads it from the
    /// client's session file, when the QR code is drawn where the test cannot read it).
    pub async fn scan_qr_with_secret(&self, phone: &str, secret: &[u8; 32]) -> bool {
        self.scan_with_key(phone, secret).await
    }

    async fn scan_with_key(&self, phone: &str, hmac_key: &[u8; 32]) -> bool {
        let phone: String = phone.chars().filter(char::is_ascii_digit).collect();
        let (tx, bundle) = {
            let st = self.shared.state();
            match &st.current {
                Some(ConnHandle {
                    tx,
                    session: Session::Registration { bundle, .. },
                    ..
                }) => (tx.clone(), bundle.clone()),
                _ => return false,
            }
        };
        let node = pairing::pair_success(&self.shared, &phone, bundle, hmac_key).await;
        let (done, wait) = oneshot::channel();
        if tx.send(Cmd::Send(vec![node], done)).is_ok() {
            let _ = wait.await;
        }
        true
    }

    /// The user of the phone `phone` (digits) types `code` under "Link with phone number" (a
    /// `-` or spaces in it are ignored, letters may be lower case). The phone unwraps the
    /// companion's key with what was typed and the server sends the companion `primary_hello`;
    /// when the companion's `companion_finish` opens with the same code, the phone sends
    /// `pair-success` and this returns `Ok` (the client then emits `PairSuccess`, reconnects
    /// and logs in as after a QR scan). A wrong code links nothing: `Err(WrongCode)`.
    pub async fn enter_pair_code(&self, phone: &str, code: &str) -> Result<(), PairCodeRefused> {
        let phone: String = phone.chars().filter(char::is_ascii_digit).collect();
        let code: String = code
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .map(|c| c.to_ascii_uppercase())
            .collect();
        let (tx, request) = {
            let st = self.shared.state();
            let request = st.link_code.clone().filter(|r| r.phone == phone);
            match (&st.current, request) {
                (
                    Some(ConnHandle {
                        tx,
                        session: Session::Registration { .. },
                        ..
                    }),
                    Some(request),
                ) => (tx.clone(), request),
                _ => return Err(PairCodeRefused::NoRequest),
            }
        };
        let identity = {
            let mut phones = self.shared.phones.lock().await;
            phones
                .entry(phone.clone())
                .or_insert_with(SimDevice::new)
                .identity()
                .clone()
        };
        // Two PBKDF2 derivations of 2^17 rounds: off the runtime's threads.
        let wrapped = request.wrapped_companion_ephemeral.clone();
        let typed = code.clone();
        let Ok(Some((companion_ephemeral, ephemeral, wrapped_primary))) =
            tokio::task::spawn_blocking(move || {
                let companion = pair_code::unwrap_ephemeral(&wrapped, &typed)?;
                let ephemeral =
                    wa_rs_core::libsignal::protocol::KeyPair::generate(&mut rand::rng());
                let public: [u8; 32] = ephemeral.public_key.public_key_bytes().try_into().ok()?;
                Some((
                    companion,
                    ephemeral,
                    pair_code::wrap_ephemeral(&public, &typed),
                ))
            })
            .await
        else {
            return Err(PairCodeRefused::WrongCode);
        };
        let primary_identity = identity.public_key().public_key_bytes().to_vec();
        let id = {
            let mut st = self.shared.state();
            let id = st.next_id("lc-");
            match st.link_code.as_mut() {
                Some(r) if r.pairing_ref == request.pairing_ref => {
                    r.primary = Some(pair_code::PrimarySide {
                        ephemeral,
                        companion_ephemeral,
                        identity,
                    });
                }
                _ => return Err(PairCodeRefused::NoRequest),
            }
            st.link_code_results.remove(&request.pairing_ref);
            id
        };
        let node = pair_code::primary_hello(
            &id,
            &request.pairing_ref,
            wrapped_primary,
            &primary_identity,
        );
        let (done, wait) = oneshot::channel();
        if tx.send(Cmd::Send(vec![node], done)).is_err() || wait.await.is_err() {
            return Err(PairCodeRefused::NoRequest);
        }
        let pairing_ref = request.pairing_ref;
        match self
            .wait_until(Duration::from_secs(20), |st| {
                st.link_code_results.get(&pairing_ref).copied()
            })
            .await
        {
            Some(true) => Ok(()),
            Some(false) => Err(PairCodeRefused::WrongCode),
            None => Err(PairCodeRefused::NoAnswer),
        }
    }

    /// From now on, `companion_hello` is answered `429 rate-overlimit` (too many pairing code
    /// requests for the number), or served again with `false`.
    /// Messages to `phone` (digits) are refused with `<ack class="message" error=CODE>` (463:
    /// a first message without a privacy token; 400: wrongly addressed; 479), or accepted again
    /// with `None`. A refused message is not delivered to the phone.
    pub fn nack_messages_to(&self, phone: &str, code: Option<u16>) {
        let phone: String = phone.chars().filter(char::is_ascii_digit).collect();
        let mut st = self.shared.state();
        match code {
            Some(code) => st.nack_to.insert(phone, code),
            None => st.nack_to.remove(&phone),
        };
    }

    /// Every message refused so far: (message id, error code), in order.
    pub fn nacked(&self) -> Vec<(String, u16)> {
        self.shared.state().nacked.clone()
    }

    /// Waits until `count` messages were refused; returns them, `None` on timeout.
    pub async fn wait_for_nacked(
        &self,
        count: usize,
        timeout: Duration,
    ) -> Option<Vec<(String, u16)>> {
        self.wait_until(timeout, |st| {
            (st.nacked.len() >= count).then(|| st.nacked.clone())
        })
        .await
    }

    /// What the reach-out time-lock query answers from now on (inactive by default).
    pub fn set_reachout_timelock(&self, timelock: ReachoutTimelock) {
        self.shared.state().reachout = timelock;
    }

    pub fn refuse_pair_codes(&self, refuse: bool) {
        self.shared.state().refuse_pair_codes = refuse;
    }

    /// The device JIDs companions removed themselves (`remove-companion-device`, their "Log
    /// out"), in order. Such a device can no longer log in (`<failure reason="401"/>`).
    pub fn companion_unlinks(&self) -> Vec<String> {
        self.shared.state().unlinked.clone()
    }

    /// Every `companion_hello` received so far, in order.
    pub fn pair_code_requests(&self) -> Vec<PairCodeRequest> {
        self.shared.state().pair_code_requests.clone()
    }

    /// What the latest companion that registered (connected without a session) said of
    /// itself; `None` before any.
    pub fn registered_device(&self) -> Option<CompanionDevice> {
        self.shared.state().registrations.last().cloned()
    }

    /// The server hands the current, unlinked connection a fresh `pair-device` IQ ([`WaSim::set_qr_refs`]
    /// new refs): wa-rs stops the rotation in progress and shows the first new code at once
    /// (valid 60 s), so a test sees a QR rotation without waiting a minute for wa-rs's own.
    /// Returns false when no unlinked client is connected.
    pub async fn rotate_qr(&self) -> bool {
        let (tx, refs, id) = {
            let mut st = self.shared.state();
            let tx = match &st.current {
                Some(ConnHandle {
                    tx,
                    session: Session::Registration { .. },
                    ..
                }) => tx.clone(),
                _ => return false,
            };
            let refs = st.qr_refs.max(1);
            (tx, refs, st.next_id("pd-"))
        };
        let node = pairing::pair_device_iq(&id, refs);
        let (done, wait) = oneshot::channel();
        tx.send(Cmd::Send(vec![node], done)).is_ok() && wait.await.is_ok()
    }

    async fn command(&self, make: impl FnOnce(oneshot::Sender<()>) -> Cmd) -> bool {
        let tx = self.shared.state().current.as_ref().map(|c| c.tx.clone());
        let Some(tx) = tx else { return false };
        let (done, wait) = oneshot::channel();
        if tx.send(make(done)).is_err() {
            return false;
        }
        wait.await.is_ok()
    }

    /// Closes the current connection (TCP close without a websocket close frame, like a network
    /// drop). wa-rs emits `Disconnected` and reconnects (at once after a login, then 2, 4 … s).
    pub async fn drop_connection(&self) {
        self.command(Cmd::Drop).await;
    }

    /// Half-open socket: the current connection stays open but the server reads and discards
    /// everything and sends nothing more (no IQ answers, no pongs). Later connections are
    /// served normally.
    pub async fn go_silent(&self) {
        self.command(Cmd::Silent).await;
    }

    /// The user unlinks this companion on the phone: `<stream:error code="401"><conflict
    /// type="device_removed"/></stream:error>` → `LoggedOut { on_connect: false }`; later logins
    /// of that device get `<failure reason="401"/>` → `LoggedOut { on_connect: true }`.
    pub async fn remove_device(&self) {
        let login = {
            let mut st = self.shared.state();
            let login = match st.current.as_ref().map(|c| c.session.clone()) {
                Some(Session::Login { phone, device }) => vec![(phone, device)],
                _ => st
                    .accounts
                    .values()
                    .map(|a| (a.phone.clone(), a.device))
                    .collect(),
            };
            st.removed.extend(login.iter().cloned());
            login
        };
        if login.is_empty() {
            return;
        }
        let node = NodeBuilder::new("stream:error")
            .attr("code", "401")
            .children([NodeBuilder::new("conflict")
                .attr("type", "device_removed")
                .build()])
            .build();
        self.command(|done| Cmd::SendAndClose(vec![node], done))
            .await;
    }

    /// Another client took the session: `<stream:error><conflict type="replaced"/>` →
    /// `StreamReplaced`.
    pub async fn replace_session(&self) {
        let node = NodeBuilder::new("stream:error")
            .children([NodeBuilder::new("conflict")
                .attr("type", "replaced")
                .build()])
            .build();
        self.command(|done| Cmd::SendAndClose(vec![node], done))
            .await;
    }

    /// `<notification type="companion_reg_refresh">` with its `companion_reg_refresh` child, on
    /// the current connection (linked or not): since mid-2026 WhatsApp sends it to unpaired
    /// companions to retire their registration secret. wa-rs 0.2.0 has no handler and emits
    /// `Event::Notification`. Returns false when no client is connected.
    pub async fn companion_reg_refresh(&self) -> bool {
        let node = NodeBuilder::new("notification")
            .attr("from", "s.whatsapp.net")
            .attr("type", "companion_reg_refresh")
            .attr("id", format!("sim-crr-{}", now_secs()))
            .attr("t", now_secs().to_string())
            .children([NodeBuilder::new("companion_reg_refresh").build()])
            .build();
        self.command(|done| Cmd::Send(vec![node], done)).await
    }

    /// Temporary ban: `<failure reason="402" code=CODE expire=SECS/>` on the current connection
    /// → `TemporaryBan { code, expire }`; logins are refused the same way until it expires.
    pub async fn ban(&self, code: u32, expire_secs: u64) {
        self.shared.state().ban = Some((code, Instant::now() + Duration::from_secs(expire_secs)));
        let node = conn::ban_failure(code, expire_secs);
        self.command(|done| Cmd::SendAndClose(vec![node], done))
            .await;
    }

    /// The numbers (digits; `+`, spaces… are ignored) that are on WhatsApp, replacing any
    /// previous set.
    pub fn set_registered(&self, phones: &[&str]) {
        self.shared.state().registered = phones
            .iter()
            .map(|p| p.chars().filter(char::is_ascii_digit).collect())
            .collect();
    }

    /// Every text decrypted so far, in arrival order.
    pub fn received(&self) -> Vec<ReceivedText> {
        self.shared.state().received.clone()
    }

    /// Waits until at least `count` texts were received; `None` on timeout.
    pub async fn wait_for_received(
        &self,
        count: usize,
        timeout: Duration,
    ) -> Option<Vec<ReceivedText>> {
        self.wait_until(timeout, |st| {
            (st.received.len() >= count).then(|| st.received.clone())
        })
        .await
    }

    /// Waits until at least `count` handshakes completed; false on timeout.
    pub async fn wait_for_connections(&self, count: usize, timeout: Duration) -> bool {
        self.wait_until(timeout, |st| (st.connections >= count).then_some(()))
            .await
            .is_some()
    }

    /// Waits until a logged-in connection exists; false on timeout.
    pub async fn wait_for_login(&self, timeout: Duration) -> bool {
        self.wait_until(timeout, |st| {
            st.current
                .as_ref()
                .is_some_and(|c| c.logged_in)
                .then_some(())
        })
        .await
        .is_some()
    }

    /// Waits until the client sent a stanza matching `pred`; returns it, `None` on timeout.
    pub async fn wait_for_stanza(
        &self,
        timeout: Duration,
        pred: impl Fn(&Node) -> bool,
    ) -> Option<Node> {
        self.wait_until(timeout, |st| {
            st.log.iter().map(|(_, n)| n).find(|n| pred(n)).cloned()
        })
        .await
    }

    /// Every stanza the client sent, decrypted, in order (all connections).
    pub fn client_stanzas(&self) -> Vec<Node> {
        self.shared
            .state()
            .log
            .iter()
            .map(|(_, n)| n.clone())
            .collect()
    }

    /// Every stanza the client sent, in order, with when the simulator read it: to compare
    /// gaps between stanzas (typing indicators before a message).
    pub fn client_stanzas_timed(&self) -> Vec<(Instant, Node)> {
        self.shared.state().log.clone()
    }

    pub(crate) async fn wait_until<T>(
        &self,
        timeout: Duration,
        mut check: impl FnMut(&State) -> Option<T>,
    ) -> Option<T> {
        let mut rx = self.shared.changed.subscribe();
        tokio::time::timeout(timeout, async move {
            loop {
                if let Some(t) = check(&self.shared.state()) {
                    return Some(t);
                }
                if rx.changed().await.is_err() {
                    return None;
                }
            }
        })
        .await
        .ok()
        .flatten()
    }
}
