//! Owns the wa-rs connection loop: starts it, reads its events in order, restarts it with
//! backoff when it ends for no terminal reason, watches for half-open sockets, sets a logged-out
//! session aside, waits out bans, and never fights a client that replaced us.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};
use chrono::Utc;
use relay_domain::DeliveryStatus;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use wa_rs::bot::Bot;
use wa_rs::proto_helpers::MessageExt;
use wa_rs::types::events::{Event, EventHandler};
use wa_rs::types::presence::ReceiptType;
use wa_rs::wa_rs_proto::whatsapp as wa;
use wa_rs::{Client, Jid};
use wa_rs_core::iq::keepalive::KeepaliveSpec;
use wa_rs_sqlite_storage::SqliteStore;
use wa_rs_tokio_transport::TokioWebSocketTransportFactory;
use wa_rs_ureq_http::UreqHttpClient;

use super::{Command, ConnectionState, Shared, WhatsAppWebError, WhatsAppWebSettings};
use crate::clock::now_ms;

/// How long the watchdog's ping may take: wa-rs's own keepalive counts a timeout as a success,
/// so a half-open socket would go unnoticed.
const WATCHDOG_DEADLINE: Duration = Duration::from_secs(10);
/// Longest wait between two restarts of the connection loop.
const MAX_RESTART_DELAY: Duration = Duration::from_secs(120);
/// How long a stopping connection loop gets before it is aborted (its back-off sleep does not
/// listen to `disconnect`).
const STOP_GRACE: Duration = Duration::from_secs(5);

/// The name a pairing code request gives the phone (see `request_pair_code`).
const PAIR_CODE_DISPLAY: &str = "Chrome (Linux)";
/// How long a pairing code request waits for the linking connection to be up.
const PAIR_CODE_SOCKET_WAIT: Duration = Duration::from_secs(30);

const OPT_OUT_CONFIRMATION: &str =
    "C'est noté : vous ne recevrez plus les nouvelles commandes CamionBack par WhatsApp.";

/// The events the supervisor acts on, copied out of wa-rs's handler (which runs inside the
/// library and must never block).
#[derive(Debug)]
pub(super) enum WaEvent {
    Qr {
        code: String,
        timeout: Duration,
    },
    PairCode(String),
    PairSuccess,
    Connected,
    Disconnected,
    LoggedOut,
    Replaced,
    Banned {
        reason: String,
        expire: Duration,
    },
    Fatal(String),
    Receipt {
        ids: Vec<String>,
        report: DeliveryStatus,
    },
    Text {
        id: String,
        sender: Jid,
        sender_alt: Option<Jid>,
        text: String,
    },
    CompanionRegRefresh,
}

struct Forwarder(mpsc::UnboundedSender<WaEvent>);

impl EventHandler for Forwarder {
    fn handle_event(&self, event: &Event) {
        let forwarded = match event {
            Event::PairingQrCode { code, timeout } => WaEvent::Qr {
                code: code.clone(),
                timeout: *timeout,
            },
            Event::PairingCode { code, .. } => WaEvent::PairCode(code.clone()),
            Event::PairSuccess(_) => WaEvent::PairSuccess,
            Event::Connected(_) => WaEvent::Connected,
            Event::Disconnected(_) => WaEvent::Disconnected,
            Event::LoggedOut(_) => WaEvent::LoggedOut,
            Event::StreamReplaced(_) => WaEvent::Replaced,
            Event::TemporaryBan(ban) => WaEvent::Banned {
                reason: format!("{:?}", ban.code),
                expire: ban.expire.to_std().unwrap_or(Duration::from_secs(3600)),
            },
            Event::ClientOutdated(_) => WaEvent::Fatal("version de WhatsApp Web périmée".into()),
            Event::ConnectFailure(failure) => WaEvent::Fatal(format!(
                "connexion refusée ({:?}) {}",
                failure.reason, failure.message
            )),
            Event::Receipt(receipt) => {
                let report = match &receipt.r#type {
                    ReceiptType::Delivered => DeliveryStatus::Delivered,
                    // wa-rs 0.2.0 reports a plain delivery receipt this way.
                    ReceiptType::Other(kind) if kind == "delivery" => DeliveryStatus::Delivered,
                    ReceiptType::Read | ReceiptType::Played => DeliveryStatus::Read,
                    _ => return,
                };
                WaEvent::Receipt {
                    ids: receipt
                        .message_ids
                        .iter()
                        .map(|id| id.to_string())
                        .collect(),
                    report,
                }
            }
            Event::Message(message, info) => {
                let source = &info.source;
                if source.is_from_me || source.is_group || source.chat.server == "broadcast" {
                    return;
                }
                let Some(text) = message.text_content() else {
                    return;
                };
                WaEvent::Text {
                    id: info.id.to_string(),
                    sender: source.sender.clone(),
                    sender_alt: source.sender_alt.clone(),
                    text: text.to_string(),
                }
            }
            // WhatsApp retires an unpaired companion's registration secret; WA Web accepts
            // the notification only with one of these children.
            Event::Notification(node)
                if node
                    .attrs
                    .get("type")
                    .is_some_and(|t| *t == "companion_reg_refresh")
                    && ["companion_reg_refresh", "pair-device-rotate-qr"]
                        .iter()
                        .any(|tag| node.get_optional_child(tag).is_some()) =>
            {
                WaEvent::CompanionRegRefresh
            }
            _ => return,
        };
        // The supervisor only goes away at shutdown; a lost event then does not matter.
        let _ = self.0.send(forwarded);
    }
}

/// One session file and the wa-rs client over it.
pub(super) struct Session {
    /// Kept for the life of the session: it owns the tasks `run` wires up.
    bot: Bot,
    started: bool,
    client: Arc<Client>,
}

impl Session {
    pub(super) async fn open(
        settings: &WhatsAppWebSettings,
        events: mpsc::UnboundedSender<WaEvent>,
    ) -> Result<Self, WhatsAppWebError> {
        let path = &settings.session_path;
        let error = |message: String| WhatsAppWebError::Session {
            path: path.display().to_string(),
            message,
        };
        // Owner-only before SQLite opens it: the WAL and journal files inherit its mode.
        crate::fs::create_private_file(path).map_err(|err| error(err.to_string()))?;
        let backend = SqliteStore::new(&path.display().to_string())
            .await
            .map_err(|err| error(err.to_string()))?;
        let mut builder = Bot::builder()
            .with_backend(Arc::new(backend))
            .with_transport_factory(
                TokioWebSocketTransportFactory::new().with_url(settings.url.clone()),
            )
            .with_http_client(UreqHttpClient::new())
            // Not persisted by wa-rs: set at every start, or the phone lists "Unknown device".
            .with_device_props(
                Some("CamionBack Relay".to_string()),
                None,
                Some(wa::device_props::PlatformType::Desktop),
            )
            .skip_history_sync();
        if let Some(version) = settings.version {
            builder = builder.with_version(version);
        }
        let bot = builder
            .build()
            .await
            .map_err(|err| error(err.to_string()))?;
        let client = bot.client();
        // Registered before `run`: a synchronous handler sees events in order.
        client.register_handler(Arc::new(Forwarder(events)));
        Ok(Self {
            bot,
            started: false,
            client,
        })
    }

    pub(super) fn client(&self) -> Arc<Client> {
        self.client.clone()
    }

    async fn linked(&self) -> bool {
        self.client.get_pn().await.is_some()
    }

    /// Starts the connection loop: through the `Bot` the first time, then on the client again
    /// (the bot would register its handlers twice).
    async fn start(&mut self) -> Option<JoinHandle<()>> {
        if !self.started {
            self.started = true;
            match self.bot.run().await {
                Ok(handle) => return Some(handle),
                Err(err) => {
                    tracing::error!("WhatsApp : démarrage impossible : {err}");
                    return None;
                }
            }
        }
        // A terminal event switched reconnection off; this is a deliberate restart.
        self.client
            .enable_auto_reconnect
            .store(true, std::sync::atomic::Ordering::Relaxed);
        let client = self.client.clone();
        Some(tokio::spawn(async move { client.run().await }))
    }

    async fn stop(&self, handle: Option<JoinHandle<()>>) {
        let _ = tokio::time::timeout(STOP_GRACE, self.client.disconnect()).await;
        if let Some(handle) = handle {
            let abort = handle.abort_handle();
            if tokio::time::timeout(STOP_GRACE, handle).await.is_err() {
                abort.abort();
            }
        }
    }
}

/// Why the connection loop ended, from the last terminal event seen.
enum Ending {
    Replaced,
    LoggedOut,
    Banned {
        until: chrono::DateTime<Utc>,
        reason: String,
    },
    Fatal(String),
    /// No terminal event: a drop, a half-open socket, or QR codes that ran out.
    Unexplained,
}

pub(super) async fn run(
    shared: Arc<Shared>,
    mut session: Session,
    events_tx: mpsc::UnboundedSender<WaEvent>,
    mut events: mpsc::UnboundedReceiver<WaEvent>,
    mut commands: mpsc::UnboundedReceiver<Command>,
    cancel: CancellationToken,
) {
    let mut restarts = restart_backoff();
    loop {
        let linked = session.linked().await;
        shared.set_state(if linked {
            ConnectionState::Connecting
        } else {
            ConnectionState::Unlinked
        });
        let mut handle = session.start().await;
        let mut ending = Ending::Unexplained;
        let every = shared.settings.watchdog_every;
        let mut watchdog = tokio::time::interval(every);
        watchdog.tick().await;
        loop {
            tokio::select! {
                _ = cancel.cancelled() => {
                    session.stop(handle).await;
                    return;
                }
                Some(event) = events.recv() => {
                    if let Some(end) = on_event(&shared, &session, event, &mut restarts).await {
                        ending = end;
                    }
                }
                Some(command) = commands.recv() => match command {
                    Command::Unlink(reply) => {
                        let unlinked = unlink(&session.client).await;
                        let done = unlinked.is_ok();
                        let _ = reply.send(unlinked);
                        if done {
                            // As a logout from the phone: this session is over.
                            ending = Ending::LoggedOut;
                            session.stop(handle.take()).await;
                            break;
                        }
                    }
                    command => on_command(&session, command),
                },
                _ = watchdog.tick(), if shared.state.borrow().is_connected() => {
                    if !alive(&session.client, every.min(WATCHDOG_DEADLINE)).await {
                        tracing::warn!("WhatsApp : pas de réponse au ping, connexion à moitié ouverte : reconnexion");
                        let _ = tokio::time::timeout(STOP_GRACE, session.client.disconnect()).await;
                    }
                }
                // No loop (it failed to start) counts as a loop that ended.
                _ = async {
                    if let Some(h) = handle.as_mut() {
                        let _ = h.await;
                    }
                } => break,
            }
        }
        // Events dispatched just before the loop ended still count.
        while let Ok(event) = events.try_recv() {
            if let Some(end) = on_event(&shared, &session, event, &mut restarts).await {
                ending = end;
            }
        }

        match ending {
            Ending::Replaced => {
                shared.set_state(ConnectionState::Replaced);
                // Never restarted by itself: only when staff ask for it.
                if !wait_for_command(&mut commands, &cancel).await {
                    return;
                }
            }
            Ending::Banned { until, reason } => {
                shared.set_state(ConnectionState::Banned {
                    until,
                    reason: reason.clone(),
                });
                tracing::error!(
                    "WhatsApp : compte suspendu ({reason}) jusqu'au {until} : envois arrêtés"
                );
                let wait = (until - Utc::now()).to_std().unwrap_or(Duration::ZERO);
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(wait) => {}
                }
            }
            Ending::LoggedOut => {
                shared.set_state(ConnectionState::LoggedOut);
                match new_session(&shared, &mut session, events_tx.clone()).await {
                    Ok(()) => {}
                    Err(err) => {
                        tracing::error!("WhatsApp : nouvelle session impossible : {err}");
                        if !wait_for_command(&mut commands, &cancel).await {
                            return;
                        }
                    }
                }
            }
            Ending::Fatal(reason) => {
                tracing::error!("WhatsApp : {reason}");
                if !sleep_before_restart(&shared, &mut restarts, &cancel).await {
                    return;
                }
            }
            // An unlinked client's loop only ends by itself when its round of QR codes ran
            // out (an unreachable server is retried forever inside the loop).
            Ending::Unexplained if !session.linked().await => {
                shared.set_state(ConnectionState::QrExpired);
                if !wait_for_command(&mut commands, &cancel).await {
                    return;
                }
            }
            Ending::Unexplained => {
                if !sleep_before_restart(&shared, &mut restarts, &cancel).await {
                    return;
                }
            }
        }
    }
}

fn restart_backoff() -> ExponentialBackoff {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_secs(1))
        .with_max_delay(MAX_RESTART_DELAY)
        .with_jitter()
        .without_max_times()
        .build()
}

async fn sleep_before_restart(
    shared: &Shared,
    restarts: &mut ExponentialBackoff,
    cancel: &CancellationToken,
) -> bool {
    let next_in = restarts.next().unwrap_or(MAX_RESTART_DELAY);
    let attempt = match &*shared.state.borrow() {
        ConnectionState::Reconnecting { attempt, .. } => attempt + 1,
        _ => 1,
    };
    shared.set_state(ConnectionState::Reconnecting { attempt, next_in });
    tokio::select! {
        _ = cancel.cancelled() => false,
        _ = tokio::time::sleep(next_in) => true,
    }
}

/// Waits for staff to ask for something (new QR codes, reconnection). False on shutdown.
async fn wait_for_command(
    commands: &mut mpsc::UnboundedReceiver<Command>,
    cancel: &CancellationToken,
) -> bool {
    tokio::select! {
        _ = cancel.cancelled() => false,
        command = commands.recv() => command.is_some(),
    }
}

/// Asks WhatsApp to remove this companion from the account, as WhatsApp Web's own "Log out"
/// does (`remove-companion-device`, reason `user_initiated`).
async fn unlink(client: &Client) -> Result<(), WhatsAppWebError> {
    let Some(own) = client.get_pn().await else {
        return Err(WhatsAppWebError::Unlink(
            "aucun compte relié en ce moment".into(),
        ));
    };
    let answered = tokio::time::timeout(
        UNLINK_DEADLINE + Duration::from_secs(1),
        client.execute(RemoveCompanionDevice {
            jid: own.to_string(),
        }),
    )
    .await;
    match answered {
        Ok(Ok(())) => {
            tracing::info!("WhatsApp : appareil retiré du compte à la demande de l'équipe");
            Ok(())
        }
        Ok(Err(err)) => Err(WhatsAppWebError::Unlink(format!(
            "WhatsApp a refusé ({err}) : retirez l'appareil depuis le téléphone (Appareils connectés)"
        ))),
        Err(_) => Err(WhatsAppWebError::Unlink(
            "WhatsApp ne répond pas : réessayez une fois connecté, ou retirez l'appareil depuis le téléphone (Appareils connectés)".into(),
        )),
    }
}

const UNLINK_DEADLINE: Duration = Duration::from_secs(10);

struct RemoveCompanionDevice {
    jid: String,
}

impl wa_rs_core::iq::spec::IqSpec for RemoveCompanionDevice {
    type Response = ();

    fn build_iq(&self) -> wa_rs_core::request::InfoQuery<'static> {
        use wa_rs_binary::builder::NodeBuilder;
        use wa_rs_binary::node::NodeContent;
        let remove = NodeBuilder::new("remove-companion-device")
            .attr("jid", self.jid.clone())
            .attr("reason", "user_initiated")
            .build();
        wa_rs_core::request::InfoQuery::set(
            "md",
            Jid::new("", "s.whatsapp.net"),
            Some(NodeContent::Nodes(vec![remove])),
        )
        .with_timeout(UNLINK_DEADLINE)
    }

    fn parse_response(&self, _response: &wa_rs_binary::node::Node) -> Result<(), anyhow::Error> {
        Ok(())
    }
}

fn on_command(session: &Session, command: Command) {
    match command {
        // While the loop runs, new codes come by themselves.
        Command::NewQr => {}
        // Handled by the loop, which owns the session; outside a running loop there is no
        // linked account to remove (the dropped reply says so).
        Command::Unlink(_) => {}
        Command::PairWithPhone(phone) => {
            let client = session.client.clone();
            tokio::spawn(async move {
                if let Err(err) = request_pair_code(&client, &phone).await {
                    tracing::warn!("WhatsApp : {err}");
                }
            });
        }
    }
}

/// `pair_with_code` on the linking connection; its `PairingCode` event sets the state.
pub(super) async fn request_pair_code(
    client: &Arc<Client>,
    digits: &str,
) -> Result<(), WhatsAppWebError> {
    use wa_rs_core::pair_code::{PairCodeError, PairCodeOptions, PlatformId};
    if client.get_pn().await.is_some() {
        return Err(WhatsAppWebError::PairCode(
            "le relais est déjà relié à un compte WhatsApp".into(),
        ));
    }
    client
        .wait_for_socket(PAIR_CODE_SOCKET_WAIT)
        .await
        .map_err(|_| WhatsAppWebError::PairCode("WhatsApp ne répond pas".into()))?;
    let options = PairCodeOptions {
        phone_number: digits.chars().filter(char::is_ascii_digit).collect(),
        // Only shown in the phone's "enter the code" notification, and WhatsApp refuses (400)
        // any name that is not a common `Browser (OS)`. The device is listed afterwards under
        // its DeviceProps: "CamionBack Relay", desktop.
        platform_id: PlatformId::Chrome,
        platform_display: PAIR_CODE_DISPLAY.to_string(),
        show_push_notification: true,
        custom_code: None,
    };
    client
        .pair_with_code(options)
        .await
        .map(drop)
        .map_err(|err| {
            WhatsAppWebError::PairCode(match err {
                PairCodeError::PhoneNumberRequired
                | PairCodeError::PhoneNumberTooShort
                | PairCodeError::PhoneNumberNotInternational => {
                    "numéro invalide : indicatif du pays attendu (ex. 212664373534)".into()
                }
                PairCodeError::RequestFailed(reason) => {
                    format!("WhatsApp a refusé la demande ({reason})")
                }
                other => format!("échec de la demande ({other})"),
            })
        })
}

async fn alive(client: &Client, deadline: Duration) -> bool {
    matches!(
        tokio::time::timeout(
            deadline + Duration::from_secs(1),
            client.execute(KeepaliveSpec::with_timeout(deadline)),
        )
        .await,
        Ok(Ok(()))
    )
}

async fn on_event(
    shared: &Shared,
    session: &Session,
    event: WaEvent,
    restarts: &mut ExponentialBackoff,
) -> Option<Ending> {
    match event {
        // wa-rs keeps rotating QR codes while a pairing code waits to be typed: the code stays
        // on screen until the round of QR codes ends, which closes the socket and the code.
        WaEvent::Qr { .. }
            if matches!(*shared.state.borrow(), ConnectionState::PairCode { .. }) => {}
        WaEvent::Qr { code, timeout } => {
            let expires_at = Utc::now() + chrono::Duration::from_std(timeout).unwrap_or_default();
            // wa-rs renders every code of a round up front: carry the current secret, which a
            // `companion_reg_refresh` may have rotated since.
            let code = with_current_secret(&session.client, &code).await;
            shared.set_state(ConnectionState::Qr { code, expires_at });
        }
        WaEvent::PairCode(code) => shared.set_state(ConnectionState::PairCode { code }),
        WaEvent::PairSuccess => {
            tracing::info!("WhatsApp : appareil relié");
            shared.set_state(ConnectionState::Connecting);
        }
        WaEvent::Connected => {
            let phone = session
                .client
                .get_pn()
                .await
                .map(|jid| jid.user.clone())
                .unwrap_or_default();
            *restarts = restart_backoff();
            shared.set_state(ConnectionState::Connected { phone });
        }
        WaEvent::Disconnected => {
            let attempt = match &*shared.state.borrow() {
                ConnectionState::Reconnecting { attempt, .. } => attempt + 1,
                _ => 1,
            };
            // wa-rs reconnects by itself after min(2·n, 30) s.
            let next_in = Duration::from_secs(u64::from((attempt - 1) * 2).min(30));
            shared.set_state(ConnectionState::Reconnecting { attempt, next_in });
        }
        WaEvent::LoggedOut => return Some(Ending::LoggedOut),
        WaEvent::Replaced => return Some(Ending::Replaced),
        WaEvent::Banned { reason, expire } => {
            let until = Utc::now() + chrono::Duration::from_std(expire).unwrap_or_default();
            return Some(Ending::Banned { until, reason });
        }
        WaEvent::Fatal(reason) => return Some(Ending::Fatal(reason)),
        WaEvent::Receipt { ids, report } => {
            for id in ids {
                if let Err(err) = shared.store.apply_report(&id, report, None, now_ms()).await {
                    tracing::error!("accusé de réception WhatsApp non enregistré : {err}");
                }
            }
        }
        WaEvent::Text {
            id,
            sender,
            sender_alt,
            text,
        } => on_text(shared, session, id, sender, sender_alt, text).await,
        WaEvent::CompanionRegRefresh => {
            // Sent by WhatsApp to unpaired companions since mid-2026; wa-rs 0.2.0 ignores it,
            // and a QR code built on the retired secret cannot link. As WA Web does: a new
            // secret, and the code on screen re-rendered with it.
            if session.linked().await {
                return None;
            }
            let secret: [u8; 32] = rand::random();
            session
                .client
                .persistence_manager()
                .modify_device(|device| device.adv_secret_key = secret)
                .await;
            tracing::info!("WhatsApp : secret d'appairage renouvelé à la demande du serveur");
            let current = shared.state.borrow().clone();
            if let ConnectionState::Qr { code, expires_at } = current {
                let code = with_current_secret(&session.client, &code).await;
                shared.set_state(ConnectionState::Qr { code, expires_at });
            }
        }
    }
    None
}

/// A QR payload (`ref,noise key,identity key,adv secret`) with the device's current secret.
async fn with_current_secret(client: &Client, code: &str) -> String {
    use base64::Engine as _;
    let secret = client
        .persistence_manager()
        .get_device_snapshot()
        .await
        .adv_secret_key;
    match code.rsplit_once(',') {
        Some((head, _)) => format!(
            "{head},{}",
            base64::engine::general_purpose::STANDARD.encode(secret)
        ),
        None => code.to_string(),
    }
}

/// The phone number (digits) behind a sender, whether WhatsApp gave a phone JID or a LID.
async fn sender_phone(client: &Client, sender: &Jid, alt: Option<&Jid>) -> Option<String> {
    for jid in std::iter::once(sender).chain(alt) {
        if jid.server == "s.whatsapp.net" {
            return Some(jid.user.clone());
        }
    }
    if sender.server == "lid" {
        return client.get_phone_number_from_lid(&sender.user).await;
    }
    None
}

async fn on_text(
    shared: &Shared,
    session: &Session,
    id: String,
    sender: Jid,
    sender_alt: Option<Jid>,
    text: String,
) {
    let Some(digits) = sender_phone(&session.client, &sender, sender_alt.as_ref()).await else {
        tracing::warn!("message WhatsApp reçu d'un expéditeur sans numéro : ignoré");
        return;
    };
    let phone = format!("+{digits}");
    let opt_out = crate::channel::is_opt_out(&text);
    match shared
        .store
        .store_reply(&id, &phone, &text, opt_out, now_ms())
        .await
    {
        Ok(outcome) if outcome.newly_opted_out => {
            tracing::info!(
                "{} ne recevra plus de diffusions (désinscription par message)",
                relay_domain::mask_phone(&phone)
            );
            let confirmation = wa::Message {
                conversation: Some(OPT_OUT_CONFIRMATION.to_string()),
                ..Default::default()
            };
            if let Err(err) = session
                .client
                .send_message(Jid::pn(digits), confirmation)
                .await
            {
                tracing::warn!("confirmation de désinscription non envoyée : {err}");
            }
        }
        Ok(_) => {}
        Err(err) => tracing::error!("réponse d'un transporteur non enregistrée : {err}"),
    }
}

/// Sets the logged-out session file aside (kept for diagnosis, never reused) and opens a
/// fresh one, which will ask for a new QR code.
async fn new_session(
    shared: &Shared,
    session: &mut Session,
    events: mpsc::UnboundedSender<WaEvent>,
) -> Result<(), WhatsAppWebError> {
    let path = &shared.settings.session_path;
    let aside = set_aside_path(path);
    for suffix in ["", "-wal", "-shm"] {
        let from = PathBuf::from(format!("{}{suffix}", path.display()));
        if from.exists() {
            let to = PathBuf::from(format!("{}{suffix}", aside.display()));
            std::fs::rename(&from, &to).map_err(|err| WhatsAppWebError::Session {
                path: from.display().to_string(),
                message: err.to_string(),
            })?;
        }
    }
    tracing::warn!(
        "WhatsApp : session déconnectée mise de côté ({}) : un nouveau QR code est nécessaire",
        aside.display()
    );
    *session = Session::open(&shared.settings, events).await?;
    shared.set_client(session.client());
    Ok(())
}

fn set_aside_path(path: &Path) -> PathBuf {
    let stamp = Utc::now().format("%Y%m%d-%H%M%S");
    path.with_file_name(format!(
        "{}.deconnectee-{stamp}",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("whatsapp-session.db")
    ))
}

#[cfg(test)]
mod tests {
    use crate::channel::is_opt_out;

    #[test]
    fn stop_words_opt_out_whatever_the_case_and_punctuation() {
        for text in [
            "STOP", "stop", " Stop. ", "ARRET", "arrêt", "Arrêt !", "توقف",
        ] {
            assert!(is_opt_out(text), "{text}");
        }
        for text in ["stop les messages svp", "je veux arrêter", "ok", ""] {
            assert!(!is_opt_out(text), "{text}");
        }
    }
}
