//! WhatsApp Web through whatsapp-rust 0.7: CamionBack's own account, linked once by QR code
//! (or pairing code), kept in its own SQLite file, reconnected by a supervisor. This module is
//! the only place that knows the client; the engine sees a `Channel` and a `ConnectionState`
//! stream.
//!
//! A delivery is `sent` only once WhatsApp's server acknowledged its message id (`acks`); a
//! refusal is recorded with WhatsApp's code. A 463 (a first message refused) and every 5
//! minutes of sending, the account's reach-out time lock is asked for: while it holds, the state
//! is `Restricted` and nothing is claimed.

mod acks;
mod events;
mod server_check;
mod state;
mod supervisor;
mod wire;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use whatsapp_rust::prelude::{Client, Jid, SendOptions, wa};

pub use state::ConnectionState;

use super::{Accepted, Channel, OutgoingMessage, SendError};
use crate::clock::now_ms;
use crate::store::Store;
use relay_domain::{DeliveryStatus, PhoneNumber};

/// Numbers checked together with the one about to be sent to (others queued next).
const NUMBER_CHECK_BATCH: u32 = 50;
/// How long the dispatcher waits before asking again while WhatsApp is down.
const OFFLINE_RETRY: Duration = Duration::from_secs(5);
/// How long a reach-out time lock answer counts: the first send after that asks again, so a
/// broadcast starts with a fresh answer.
const RESTRICTION_CHECK_EVERY: Duration = Duration::from_secs(5 * 60);

#[derive(Debug, Clone)]
pub struct WhatsAppWebSettings {
    /// `wss://web.whatsapp.com/ws/chat`, or a loopback simulator in tests.
    pub url: String,
    /// The session's own SQLite file (never the relay's database).
    pub session_path: PathBuf,
    /// A typing indicator before each send.
    pub typing: bool,
    pub send_timeout: Duration,
    /// The throttle, kept between two messages as WhatsApp's server sees them: the dispatcher
    /// spaces the starts of sends, and the first send of a broadcast spends longer before its
    /// message leaves (the number check), which would bring the second one closer.
    pub min_gap: Duration,
    /// Pins the WhatsApp Web version instead of discovering it online at each connect.
    pub version: Option<(u32, u32, u32)>,
    /// How often a live connection is pinged to catch a half-open socket.
    pub watchdog_every: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum WhatsAppWebError {
    #[error("session WhatsApp {path} : {message}")]
    Session { path: String, message: String },
    #[error("pas de code d'appairage : {0}")]
    PairCode(String),
    #[error("déconnexion impossible : {0}")]
    Unlink(String),
    #[error(
        "cette version du relais a été construite pour les tests et ne vérifie pas le certificat du serveur WhatsApp : elle ne se connecte qu'au simulateur local (127.0.0.1), pas à {url}. Construisez le relais comme l'indique le README"
    )]
    UnverifiedBuild { url: String },
}

/// What staff can ask of the connection.
#[derive(Debug)]
pub enum Command {
    /// The QR codes ran out: start a new round.
    NewQr,
    /// Link with a pairing code typed on the phone instead of a QR code (digits, country code
    /// first: `2126…`).
    PairWithPhone(String),
    /// "Déconnecter": tell WhatsApp to remove this device from the account, then set the
    /// session aside and offer a new QR code, as after a logout from the phone.
    Unlink(tokio::sync::oneshot::Sender<Result<(), WhatsAppWebError>>),
}

/// The channel and its handle: cheap to clone.
#[derive(Clone)]
pub struct WhatsAppWeb {
    shared: Arc<Shared>,
}

struct Shared {
    client: RwLock<Option<Arc<Client>>>,
    state: watch::Sender<ConnectionState>,
    commands: mpsc::UnboundedSender<Command>,
    store: Store,
    settings: WhatsAppWebSettings,
    /// Sends waiting for the server's answer to their message id.
    acks: Arc<acks::PendingAcks>,
    /// When the reach-out time lock was last asked for.
    restriction_checked: Mutex<Option<Instant>>,
    /// Told when a connection ends: the sends on it stop waiting.
    connection_lost: tokio::sync::Notify,
    /// When the last message went to WhatsApp (see `WhatsAppWebSettings::min_gap`).
    last_written: tokio::sync::Mutex<Option<tokio::time::Instant>>,
}

impl Shared {
    fn client(&self) -> Option<Arc<Client>> {
        self.client.read().ok().and_then(|c| c.clone())
    }

    fn set_client(&self, client: Arc<Client>) {
        if let Ok(mut current) = self.client.write() {
            *current = Some(client);
        }
    }

    fn set_state(&self, state: ConnectionState) {
        self.state.send_if_modified(|current| {
            if *current == state {
                false
            } else {
                tracing::info!("WhatsApp : {}", state.describe());
                *current = state;
                true
            }
        });
    }
}

impl WhatsAppWeb {
    /// Opens the session and starts its supervisor on `tracker`; it stops with `cancel`.
    pub async fn start(
        settings: WhatsAppWebSettings,
        store: Store,
        cancel: CancellationToken,
        tracker: &TaskTracker,
    ) -> Result<Self, WhatsAppWebError> {
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let acks = Arc::new(acks::PendingAcks::default());
        let session = supervisor::Session::open(&settings, events_tx.clone(), acks.clone()).await?;
        let (commands_tx, commands_rx) = mpsc::unbounded_channel();
        let (state_tx, _) = watch::channel(ConnectionState::Connecting);
        let shared = Arc::new(Shared {
            client: RwLock::new(Some(session.client())),
            state: state_tx,
            commands: commands_tx,
            store,
            settings,
            acks,
            restriction_checked: Mutex::new(None),
            last_written: tokio::sync::Mutex::new(None),
            connection_lost: tokio::sync::Notify::new(),
        });
        tracker.spawn(supervisor::run(
            shared.clone(),
            session,
            events_tx,
            events_rx,
            commands_rx,
            cancel,
        ));
        Ok(Self { shared })
    }

    /// The connection state, as it changes.
    pub fn state(&self) -> watch::Receiver<ConnectionState> {
        self.shared.state.subscribe()
    }

    /// Asks WhatsApp for a pairing code for the account `phone`, to type on that phone
    /// instead of scanning a QR code. The code then comes as [`ConnectionState::PairCode`];
    /// an error says why there is none (no linking connection, WhatsApp refused).
    pub async fn pair_with_phone(&self, phone: &PhoneNumber) -> Result<(), WhatsAppWebError> {
        let client = self.shared.client().ok_or_else(|| {
            WhatsAppWebError::PairCode("la connexion WhatsApp n'est pas démarrée".into())
        })?;
        supervisor::request_pair_code(&client, phone.digits()).await
    }

    /// "Déconnecter": the linked device is removed from the account (WhatsApp must answer),
    /// the session is set aside and the state goes to a new QR code.
    pub async fn unlink(&self) -> Result<(), WhatsAppWebError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.command(Command::Unlink(reply));
        answer.await.unwrap_or_else(|_| {
            Err(WhatsAppWebError::Unlink(
                "aucun compte relié en ce moment".into(),
            ))
        })
    }

    pub fn command(&self, command: Command) {
        // The supervisor only stops with the engine; a command sent after that is moot.
        let _ = self.shared.commands.send(command);
    }

    /// Whether each number is on WhatsApp, from the 30-day cache or asked in one batch with
    /// the next queued numbers not checked yet. A number WhatsApp does not answer about is
    /// left unknown (`None`) and not cached.
    async fn is_registered(&self, client: &Client, phone: &str) -> Result<Option<bool>, SendError> {
        let store = &self.shared.store;
        let now = now_ms();
        let transient = |reason: String| SendError::Transient {
            reason,
            code: None,
            retry_after: None,
        };
        let cached = store
            .cached_number_checks(&[phone.to_string()], now)
            .await
            .map_err(|err| transient(err.to_string()))?;
        if let Some((_, registered)) = cached.first() {
            return Ok(Some(*registered));
        }
        let mut batch = store
            .queued_phones_unchecked(NUMBER_CHECK_BATCH, now)
            .await
            .map_err(|err| transient(err.to_string()))?;
        batch.retain(|p| p != phone);
        batch.insert(0, phone.to_string());
        let jids: Vec<Jid> = batch
            .iter()
            .map(|p| Jid::pn(p.trim_start_matches('+')))
            .collect();
        let answers = client
            .contacts()
            .is_on_whatsapp(&jids)
            .await
            .map_err(|err| transient(format!("vérification du numéro impossible : {err}")))?;
        // Matched by digits: WhatsApp answers in any order, may leave numbers out, and may
        // answer with the contact's LID, the phone number then beside it.
        let checks: Vec<(String, bool)> = answers
            .iter()
            .filter_map(|answer| {
                let pn = if answer.jid.is_pn() {
                    Some(&answer.jid)
                } else {
                    answer.pn_jid.as_ref()
                }?;
                batch
                    .iter()
                    .find(|p| p.trim_start_matches('+') == pn.user.as_str())
                    .map(|p| (p.clone(), answer.is_registered))
            })
            .collect();
        store
            .remember_number_checks(&checks, now)
            .await
            .map_err(|err| transient(err.to_string()))?;
        Ok(checks.iter().find(|(p, _)| p == phone).map(|(_, r)| *r))
    }

    /// Asks for the reach-out time lock when the last answer is older than
    /// [`RESTRICTION_CHECK_EVERY`] (or `force`).
    async fn check_restriction(&self, client: &Client, force: bool) {
        let due = {
            let Ok(mut checked) = self.shared.restriction_checked.lock() else {
                return;
            };
            let due = force || checked.is_none_or(|at| at.elapsed() >= RESTRICTION_CHECK_EVERY);
            if due {
                *checked = Some(Instant::now());
            }
            due
        };
        if due {
            supervisor::check_restriction(&self.shared, client).await;
        }
    }
}

/// What a refusal code from WhatsApp's server means, for the delivery's history.
fn refusal_reason(code: &str) -> String {
    match code {
        "463" => "WhatsApp a refusé ce premier message à ce contact (code 463) : le numéro n'a pas le droit d'ouvrir de nouvelles conversations pour l'instant".into(),
        "479" => "WhatsApp a refusé le message (code 479)".into(),
        "400" => "WhatsApp a refusé le message, adressé d'une façon qu'il n'accepte pas (code 400)".into(),
        other => format!("WhatsApp a refusé le message (code {other})"),
    }
}

fn offline(state: &ConnectionState) -> SendError {
    SendError::Unavailable {
        reason: format!("WhatsApp indisponible : {}", state.describe()),
        retry_after: OFFLINE_RETRY,
    }
}

/// The client's typed errors say whether the account can send at all.
fn classify(err: whatsapp_rust::SendError) -> SendError {
    use whatsapp_rust::{ClientError, SendError as Wa};
    let reason = format!("envoi WhatsApp impossible : {err}");
    match err {
        Wa::NotLoggedIn | Wa::Client(ClientError::NotConnected | ClientError::NotLoggedIn) => {
            SendError::Unavailable {
                reason,
                retry_after: OFFLINE_RETRY,
            }
        }
        Wa::InvalidRequest(_) => SendError::Permanent {
            status: DeliveryStatus::Failed,
            reason,
            code: None,
        },
        _ => SendError::Transient {
            reason,
            code: None,
            retry_after: None,
        },
    }
}

#[async_trait]
impl Channel for WhatsAppWeb {
    fn name(&self) -> &'static str {
        "whatsapp-web"
    }

    fn kind(&self) -> Option<relay_domain::ChannelKind> {
        Some(relay_domain::ChannelKind::WhatsappWeb)
    }

    fn plan_message_id(&self) -> Option<String> {
        self.shared
            .client()
            .filter(|client| client.pn().is_some())
            .map(|client| client.generate_message_id())
    }

    async fn ready(&self) {
        let mut state = self.shared.state.subscribe();
        // `wait_for` returns at once when already able to send; an error means the supervisor
        // is gone (shutdown): never resolve, the dispatcher stops on its own cancellation.
        if state.wait_for(ConnectionState::can_send).await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    async fn send(&self, message: OutgoingMessage<'_>) -> Result<Accepted, SendError> {
        // A send on a connection that goes away (a drop, the shutdown) ends now, to be retried
        // with the same id, rather than at its timeout: the client's requests on a closed
        // connection may never answer.
        let lost = self.shared.connection_lost.notified();
        tokio::pin!(lost);
        lost.as_mut().enable();
        tokio::select! {
            sent = self.send_on_this_connection(message) => sent,
            _ = lost => Err(SendError::Transient {
                reason: "connexion WhatsApp perdue pendant l'envoi".to_string(),
                code: None,
                retry_after: None,
            }),
        }
    }
}

impl WhatsAppWeb {
    async fn send_on_this_connection(
        &self,
        message: OutgoingMessage<'_>,
    ) -> Result<Accepted, SendError> {
        let state = self.shared.state.borrow().clone();
        if !state.can_send() {
            return Err(offline(&state));
        }
        let client = self.shared.client().ok_or_else(|| offline(&state))?;
        self.check_restriction(&client, false).await;
        let state = self.shared.state.borrow().clone();
        if !state.can_send() {
            return Err(offline(&state));
        }
        let phone = message.to.e164();
        if self.is_registered(&client, phone).await? == Some(false) {
            return Err(SendError::Permanent {
                status: DeliveryStatus::NotOnWhatsapp,
                reason: "ce numéro n'a pas de compte WhatsApp".to_string(),
                code: None,
            });
        }
        let jid = Jid::pn(message.to.digits());
        if self.shared.settings.typing {
            // About as long as a person would take to type it, within reason.
            let typing =
                Duration::from_millis((message.text.chars().count() as u64 * 25).clamp(1000, 4000));
            let _ = client.chatstate().send_composing(&jid).await;
            tokio::time::sleep(typing).await;
            let _ = client.chatstate().send_paused(&jid).await;
        }
        let text = wa::Message {
            conversation: Some(message.text.to_string()),
            ..Default::default()
        };
        // The planned id, stored on the delivery before this send: a retry reuses it, and
        // WhatsApp takes a message id once.
        let id = message
            .message_id
            .map(str::to_string)
            .unwrap_or_else(|| client.generate_message_id());
        let mut waiter = self.shared.acks.expect(&id);
        {
            let mut last = self.shared.last_written.lock().await;
            if let Some(at) = *last {
                tokio::time::sleep_until(at + self.shared.settings.min_gap).await;
            }
            *last = Some(tokio::time::Instant::now());
        }
        let answered = tokio::time::timeout(self.shared.settings.send_timeout, async {
            client
                .send_message_with_options(
                    jid,
                    text,
                    SendOptions::default().with_message_id(id.clone()),
                )
                .await?;
            Ok::<_, whatsapp_rust::SendError>(waiter.answer().await)
        })
        .await;
        match answered {
            Ok(Ok(Some(acks::ServerAnswer::Taken))) => Ok(Accepted {
                message_id: Some(id),
            }),
            Ok(Ok(Some(acks::ServerAnswer::Refused { code }))) => {
                if code == "463" {
                    // Refused first messages come from a time lock on the whole account more
                    // often than from this contact: ask now, before the next carrier.
                    self.check_restriction(&client, true).await;
                }
                Err(SendError::Permanent {
                    status: DeliveryStatus::Failed,
                    reason: refusal_reason(&code),
                    code: Some(code),
                })
            }
            Ok(Ok(None)) => Err(SendError::Transient {
                reason: "connexion WhatsApp perdue avant sa réponse".to_string(),
                code: None,
                retry_after: None,
            }),
            Ok(Err(err)) => Err(classify(err)),
            Err(_) => Err(SendError::Transient {
                reason: format!(
                    "pas de réponse de WhatsApp après {} s",
                    self.shared.settings.send_timeout.as_secs()
                ),
                code: None,
                retry_after: None,
            }),
        }
    }
}
