//! Owns the whatsapp-rust connection loop: starts it, reads its events in order, restarts it
//! with backoff when it ends for no terminal reason (the client's own reconnection is switched
//! off, so the wait shown to staff is the real one), says why WhatsApp could not be reached,
//! watches for half-open sockets, sets a logged-out session aside, waits out bans and the
//! reach-out time lock, and never fights a client that replaced us.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};
use chrono::{DateTime, Utc};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use whatsapp_rust::prelude::{Bot, Client, Jid, wa};
use whatsapp_rust::store::SqliteStore;
use whatsapp_rust::wacore::iq::devices::RemoveCompanionDeviceSpec;
use whatsapp_rust::wacore::iq::keepalive::KeepaliveSpec;
use whatsapp_rust::wacore::store::device::DevicePropsOverride;

use super::acks::PendingAcks;
use super::events::{Forwarder, WaEvent};
use super::wire::{ConnectProbe, ObservedHttpClient, ObservedTransportFactory, WireFailure};
use super::{Command, ConnectionState, Shared, WhatsAppWebError, WhatsAppWebSettings};
use crate::clock::now_ms;

/// How long the watchdog's ping may take before the socket counts as half-open.
const WATCHDOG_DEADLINE: Duration = Duration::from_secs(10);
/// Longest wait between two restarts of the connection loop.
const MAX_RESTART_DELAY: Duration = Duration::from_secs(120);
/// How long a stopping connection loop gets before it is aborted.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// How long a pairing code request waits for the linking connection to be up.
const PAIR_CODE_SOCKET_WAIT: Duration = Duration::from_secs(30);
/// While WhatsApp restricts the account without saying until when, how often to ask again.
const RESTRICTION_RECHECK: Duration = Duration::from_secs(15 * 60);
const UNLINK_DEADLINE: Duration = Duration::from_secs(10);
/// How long the reach-out time lock question may take; unanswered, nothing changes.
const RESTRICTION_CHECK_DEADLINE: Duration = Duration::from_secs(10);

/// One session file and the client over it.
pub(super) struct Session {
    /// Until the first start: it wires the client's handlers and workers when it runs.
    bot: Option<Bot>,
    client: Arc<Client>,
    probe: Arc<ConnectProbe>,
}

impl Session {
    pub(super) async fn open(
        settings: &WhatsAppWebSettings,
        events: mpsc::UnboundedSender<WaEvent>,
        acks: Arc<PendingAcks>,
    ) -> Result<Self, WhatsAppWebError> {
        let path = &settings.session_path;
        let error = |message: String| WhatsAppWebError::Session {
            path: path.display().to_string(),
            message,
        };
        super::server_check::guard(&settings.url)?;
        // Owner-only before SQLite opens it: the WAL and journal files inherit its mode.
        crate::fs::create_private_file(path).map_err(|err| error(err.to_string()))?;
        let backend = SqliteStore::new(&path.display().to_string())
            .await
            .map_err(|err| error(err.to_string()))?;
        let probe = Arc::new(ConnectProbe::default());
        let mut builder = Bot::builder()
            .with_backend(backend)
            .with_transport_factory(ObservedTransportFactory::new(
                settings.url.clone(),
                probe.clone(),
            ))
            .with_http_client(ObservedHttpClient::new(probe.clone()))
            // Not persisted by the client: set at every start, or the phone lists an unknown
            // device.
            .with_device_props(
                DevicePropsOverride::new()
                    .with_os("CamionBack Relay")
                    .with_platform_type(wa::device_props::PlatformType::DESKTOP),
            )
            .with_event_handler(Forwarder { events, acks })
            .skip_history_sync();
        if let Some(version) = settings.version {
            builder = builder.with_version(version);
        }
        let bot = builder
            .build()
            .await
            .map_err(|err| error(err.to_string()))?;
        let client = bot.client();
        // The supervisor decides when to connect again, so the state it shows is the truth.
        client.enable_auto_reconnect.store(false, Ordering::Relaxed);
        Ok(Self {
            bot: Some(bot),
            client,
            probe,
        })
    }

    pub(super) fn client(&self) -> Arc<Client> {
        self.client.clone()
    }

    fn linked(&self) -> bool {
        self.client.pn().is_some()
    }

    /// Starts one connection: through the `Bot` the first time (it wires the handlers), then
    /// on the client again.
    fn start(&mut self) -> JoinHandle<()> {
        match self.bot.take() {
            Some(bot) => tokio::spawn(bot.run()),
            None => {
                let client = self.client.clone();
                tokio::spawn(async move { client.run().await })
            }
        }
    }

    /// Ends the session for good (shutdown, or a session set aside).
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
    Locked(Option<String>),
    Banned {
        until: DateTime<Utc>,
        reason: String,
        url: Option<String>,
    },
    Fatal(String),
    /// Paired: WhatsApp closes the linking connection and expects a new one at once.
    Paired,
    /// The QR codes of this round ran out.
    QrExhausted,
    /// No terminal event: a drop, a half-open socket, or a connection that never came up.
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
    // Set when the client was ended for good (a half-open socket, QR codes run out): the next
    // connection needs a new client over the same session file.
    let mut stopped = false;
    loop {
        if std::mem::take(&mut stopped) {
            session.stop(None).await;
            match Session::open(&shared.settings, events_tx.clone(), shared.acks.clone()).await {
                Ok(fresh) => {
                    session = fresh;
                    shared.set_client(session.client());
                }
                Err(err) => {
                    tracing::error!("WhatsApp : session illisible : {err}");
                    stopped = true;
                    if !sleep_before_restart(&shared, &mut restarts, &cancel, Some(err.to_string()))
                        .await
                    {
                        return;
                    }
                    continue;
                }
            }
        }
        let linked = session.linked();
        if !matches!(
            *shared.state.borrow(),
            ConnectionState::Unreachable { .. } | ConnectionState::Reconnecting { .. }
        ) {
            shared.set_state(if linked {
                ConnectionState::Connecting
            } else {
                ConnectionState::Unlinked
            });
        }
        session.probe.take();
        let mut handle = Some(session.start());
        let mut ending = Ending::Unexplained;
        let mut came_up = false;
        let every = shared.settings.watchdog_every;
        let mut watchdog = tokio::time::interval(every);
        watchdog.tick().await;
        loop {
            tokio::select! {
                _ = cancel.cancelled() => {
                    // A send waiting for its ack is recorded (to retry) rather than held.
                    shared.acks.abandon_all();
                    shared.connection_lost.notify_waiters();
                    session.stop(handle).await;
                    return;
                }
                Some(event) = events.recv() => {
                    came_up |= matches!(event, WaEvent::Connected | WaEvent::Qr { .. });
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
                        // Said at once: closing a socket nobody answers on takes a while.
                        shared.set_state(ConnectionState::Reconnecting {
                            attempt: 1,
                            next_in: Duration::ZERO,
                        });
                        session.stop(handle.take()).await;
                        stopped = true;
                        break;
                    }
                }
                _ = restriction_ends(&shared) => {
                    check_restriction(&shared, &session.client).await;
                }
                _ = async {
                    if let Some(h) = handle.as_mut() {
                        let _ = h.await;
                    }
                } => break,
            }
        }
        // Acks for this connection are never coming now.
        shared.acks.abandon_all();
        shared.connection_lost.notify_waiters();
        // Events dispatched just before the loop ended still count.
        while let Ok(event) = events.try_recv() {
            came_up |= matches!(event, WaEvent::Connected | WaEvent::Qr { .. });
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
            Ending::Banned { until, reason, url } => {
                tracing::error!(
                    "WhatsApp : compte suspendu ({reason}) jusqu'au {until} : envois arrêtés"
                );
                shared.set_state(ConnectionState::Banned { until, reason, url });
                let wait = (until - Utc::now()).to_std().unwrap_or(Duration::ZERO);
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(wait) => {}
                }
            }
            Ending::Locked(message) => {
                tracing::error!("WhatsApp : compte verrouillé par WhatsApp : envois arrêtés");
                shared.set_state(ConnectionState::Locked { message });
                // The phone must unlock the account; the session is then linked again.
                if !set_aside_and_reopen(&shared, &mut session, &events_tx, &mut commands, &cancel)
                    .await
                {
                    return;
                }
                if !wait_for_command(&mut commands, &cancel).await {
                    return;
                }
            }
            Ending::LoggedOut => {
                shared.set_state(ConnectionState::LoggedOut);
                if !set_aside_and_reopen(&shared, &mut session, &events_tx, &mut commands, &cancel)
                    .await
                {
                    return;
                }
            }
            Ending::Fatal(reason) => {
                tracing::error!("WhatsApp : {reason}");
                if !sleep_before_restart(&shared, &mut restarts, &cancel, Some(reason)).await {
                    return;
                }
            }
            Ending::Paired => {}
            Ending::QrExhausted => {
                shared.set_state(ConnectionState::QrExpired);
                if !wait_for_command(&mut commands, &cancel).await {
                    return;
                }
                // The client closed itself for good when its codes ran out: the next round
                // runs on a new one over the same (still unlinked) session file.
                stopped = true;
            }
            Ending::Unexplained => {
                let failure = session.probe.take();
                if let Some(WireFailure::Version(reason)) = &failure {
                    // The version WhatsApp Web runs could not be discovered: the last one that
                    // worked (stored with the session) is used until a discovery succeeds.
                    use_stored_version(&session.client, reason).await;
                }
                let reason = match failure {
                    Some(failure) => Some(failure.describe()),
                    None if !came_up => Some("pas de réponse du serveur WhatsApp".to_string()),
                    None => None,
                };
                if let Some(reason) = &reason
                    && reason.starts_with("certificat")
                {
                    tracing::error!("WhatsApp : {reason}");
                }
                if !sleep_before_restart(&shared, &mut restarts, &cancel, reason).await {
                    return;
                }
            }
        }
    }
}

/// Sets the ended session aside and opens a fresh one (a new QR code). False on shutdown.
async fn set_aside_and_reopen(
    shared: &Arc<Shared>,
    session: &mut Session,
    events_tx: &mpsc::UnboundedSender<WaEvent>,
    commands: &mut mpsc::UnboundedReceiver<Command>,
    cancel: &CancellationToken,
) -> bool {
    session.stop(None).await;
    match new_session(shared, session, events_tx.clone()).await {
        Ok(()) => true,
        Err(err) => {
            tracing::error!("WhatsApp : nouvelle session impossible : {err}");
            wait_for_command(commands, cancel).await
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

/// Waits before the next connection, saying why (`unreachable`: the connection never came up,
/// and this is what stopped it) and when. False on shutdown.
async fn sleep_before_restart(
    shared: &Shared,
    restarts: &mut ExponentialBackoff,
    cancel: &CancellationToken,
    unreachable: Option<String>,
) -> bool {
    let next_in = restarts.next().unwrap_or(MAX_RESTART_DELAY);
    let attempt = match &*shared.state.borrow() {
        ConnectionState::Reconnecting { attempt, .. }
        | ConnectionState::Unreachable { attempt, .. } => attempt + 1,
        _ => 1,
    };
    shared.set_state(match unreachable {
        Some(reason) => ConnectionState::Unreachable {
            reason,
            attempt,
            next_in,
        },
        None => ConnectionState::Reconnecting { attempt, next_in },
    });
    tokio::select! {
        _ = cancel.cancelled() => false,
        _ = tokio::time::sleep(next_in) => true,
    }
}

/// The version discovery failed: mark the stored version fresh so the next connection uses it.
async fn use_stored_version(client: &Client, reason: &str) {
    let pm = client.persistence_manager();
    let device = pm.get_device_snapshot();
    let version = format!(
        "{}.{}.{}",
        device.app_version_primary, device.app_version_secondary, device.app_version_tertiary
    );
    let stored = device.app_version_last_fetched_ms > 0;
    pm.modify_device(|device| device.app_version_last_fetched_ms = now_ms())
        .await;
    if stored {
        tracing::warn!(
            "WhatsApp : version de WhatsApp Web introuvable en ligne ({reason}) : la dernière qui a fonctionné ({version}) est utilisée"
        );
    } else {
        tracing::warn!(
            "WhatsApp : version de WhatsApp Web introuvable en ligne ({reason}) : la version connue du client ({version}) est utilisée"
        );
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

/// Resolves when the current restriction's end (or its next re-check) is due; never while
/// the account is not restricted.
async fn restriction_ends(shared: &Shared) {
    let restricted = match &*shared.state.borrow() {
        ConnectionState::Restricted { until, .. } => Some(*until),
        _ => None,
    };
    let Some(until) = restricted else {
        return std::future::pending().await;
    };
    let wait = match until {
        Some(until) => (until - Utc::now()).to_std().unwrap_or(Duration::ZERO),
        None => RESTRICTION_RECHECK,
    };
    tokio::time::sleep(wait).await;
}

/// Asks WhatsApp whether the account may start new conversations, and sets the state from
/// the answer. An unanswered question changes nothing.
pub(super) async fn check_restriction(shared: &Shared, client: &Client) {
    let answer = tokio::time::timeout(
        RESTRICTION_CHECK_DEADLINE,
        client.mex().fetch_reachout_timelock(),
    )
    .await;
    let lock = match answer {
        Ok(Ok(lock)) => lock,
        Ok(Err(err)) => {
            tracing::warn!("WhatsApp : état des restrictions du compte inconnu : {err}");
            return;
        }
        Err(_) => {
            tracing::warn!(
                "WhatsApp : état des restrictions du compte inconnu : pas de réponse en {} s",
                RESTRICTION_CHECK_DEADLINE.as_secs()
            );
            return;
        }
    };
    let phone = client
        .pn()
        .map(|jid| jid.user.to_string())
        .unwrap_or_default();
    if lock.is_active == Some(true) {
        let until = lock
            .time_enforcement_ends
            .as_deref()
            .and_then(parse_lock_end);
        // Still active at its announced end: ask again later rather than in a loop.
        let until = until.filter(|u| *u > Utc::now());
        let state = ConnectionState::Restricted { phone, until };
        if !shared.state.borrow().is_restricted() {
            tracing::error!("WhatsApp : {}", state.describe());
        }
        shared.set_state(state);
    } else if shared.state.borrow().is_restricted() {
        tracing::info!("WhatsApp : fin de la restriction, les envois reprennent");
        shared.set_state(ConnectionState::Connected { phone });
    }
}

/// WhatsApp gives the end of a time lock as a string: seconds since 1970, or a date.
fn parse_lock_end(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<i64>() {
        // Milliseconds, for values too large to be seconds.
        let seconds = if seconds > 100_000_000_000 {
            seconds / 1000
        } else {
            seconds
        };
        return DateTime::from_timestamp(seconds, 0);
    }
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

/// Asks WhatsApp to remove this companion from the account, as WhatsApp Web's own "Log out"
/// does (`remove-companion-device`), and waits for its answer.
async fn unlink(client: &Client) -> Result<(), WhatsAppWebError> {
    let Some(own) = client.pn() else {
        return Err(WhatsAppWebError::Unlink(
            "aucun compte relié en ce moment".into(),
        ));
    };
    let answered = tokio::time::timeout(
        UNLINK_DEADLINE,
        client.execute(RemoveCompanionDeviceSpec::new(&own)),
    )
    .await;
    match answered {
        Ok(Ok(_)) => {
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

fn on_command(session: &Session, command: Command) {
    match command {
        // While the loop runs, new codes come by themselves.
        Command::NewQr => {}
        // Handled by the loop, which owns the session.
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
    use whatsapp_rust::pair_code::PairCodeOptions;
    use whatsapp_rust::wacore::companion_reg::CompanionWebClientType;
    if client.pn().is_some() {
        return Err(WhatsAppWebError::PairCode(
            "le relais est déjà relié à un compte WhatsApp".into(),
        ));
    }
    let digits: String = digits.chars().filter(char::is_ascii_digit).collect();
    if digits.len() < 7 || digits.starts_with('0') {
        return Err(WhatsAppWebError::PairCode(
            "numéro invalide : indicatif du pays attendu (ex. 212664373534)".into(),
        ));
    }
    client
        .wait_for_socket(PAIR_CODE_SOCKET_WAIT)
        .await
        .map_err(|_| WhatsAppWebError::PairCode("WhatsApp ne répond pas".into()))?;
    // Staff asked for a new code: the one on screen (mistyped, or never typed) is withdrawn.
    client.cancel_pair_code().await;
    let options = PairCodeOptions {
        phone_number: digits,
        // Only shown in the phone's "enter the code" notification, and WhatsApp refuses (400)
        // any name that is not a common `Browser (OS)`: "Chrome (Linux)". The device is listed
        // afterwards under its DeviceProps: "CamionBack Relay", desktop.
        platform_id: Some(CompanionWebClientType::Chrome),
        show_push_notification: true,
        ..Default::default()
    };
    client
        .pair_with_code(options)
        .await
        .map(drop)
        .map_err(|err| WhatsAppWebError::PairCode(format!("WhatsApp a refusé la demande ({err})")))
}

async fn alive(client: &Client, deadline: Duration) -> bool {
    matches!(
        tokio::time::timeout(
            deadline + Duration::from_secs(1),
            client.execute(KeepaliveSpec::with_timeout(deadline)),
        )
        .await,
        Ok(Ok(_))
    )
}

async fn on_event(
    shared: &Arc<Shared>,
    session: &Session,
    event: WaEvent,
    restarts: &mut ExponentialBackoff,
) -> Option<Ending> {
    match event {
        // The client keeps rotating QR codes while a pairing code waits to be typed: the code
        // stays on screen until the round of QR codes ends.
        WaEvent::Qr { .. }
            if matches!(*shared.state.borrow(), ConnectionState::PairCode { .. }) => {}
        WaEvent::Qr { code, timeout } => {
            let expires_at = Utc::now() + chrono::Duration::from_std(timeout).unwrap_or_default();
            shared.set_state(ConnectionState::Qr { code, expires_at });
        }
        WaEvent::QrExhausted => return Some(Ending::QrExhausted),
        WaEvent::PairCode(code) => shared.set_state(ConnectionState::PairCode { code }),
        WaEvent::PairSuccess => {
            tracing::info!("WhatsApp : appareil relié");
            shared.set_state(ConnectionState::Connecting);
            return Some(Ending::Paired);
        }
        WaEvent::Connected => {
            let phone = session
                .client
                .pn()
                .map(|jid| jid.user.to_string())
                .unwrap_or_default();
            *restarts = restart_backoff();
            shared.set_state(ConnectionState::Connected { phone });
            // A restriction outlives a reconnection: asked now, beside the loop, which must
            // keep watching the socket while WhatsApp answers.
            let (shared, client) = (shared.clone(), session.client());
            tokio::spawn(async move { check_restriction(&shared, &client).await });
        }
        WaEvent::Disconnected => {}
        WaEvent::LoggedOut => return Some(Ending::LoggedOut),
        WaEvent::Locked { message } => return Some(Ending::Locked(message)),
        WaEvent::Replaced => return Some(Ending::Replaced),
        WaEvent::Banned {
            reason,
            expire,
            url,
        } => {
            let until = Utc::now() + chrono::Duration::from_std(expire).unwrap_or_default();
            return Some(Ending::Banned { until, reason, url });
        }
        WaEvent::Fatal(reason) => return Some(Ending::Fatal(reason)),
        WaEvent::Receipt { ids, report } => {
            for id in ids {
                if let Err(err) = shared.store.apply_report(&id, report, None, now_ms()).await {
                    tracing::error!("accusé de réception WhatsApp non enregistré : {err}");
                }
            }
        }
        WaEvent::Refused { code } => {
            tracing::warn!("WhatsApp a refusé un message (code {code})");
        }
        WaEvent::Text {
            id,
            sender,
            sender_alt,
            text,
            quoted,
        } => on_text(shared, session, id, sender, sender_alt, text, quoted).await,
    }
    None
}

/// The phone number (digits) behind a sender, whether WhatsApp gave a phone JID or a LID.
async fn sender_phone(client: &Client, sender: &Jid, alt: Option<&Jid>) -> Option<String> {
    for jid in std::iter::once(sender).chain(alt) {
        if jid.is_pn() {
            return Some(jid.user.to_string());
        }
    }
    if sender.is_lid() {
        return match client.get_lid_pn_entry(sender).await {
            Ok(entry) => entry.map(|e| e.phone_number.to_string()),
            Err(err) => {
                tracing::warn!("WhatsApp : numéro derrière un identifiant LID introuvable : {err}");
                None
            }
        };
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
    quoted: Option<String>,
) {
    let Some(digits) = sender_phone(&session.client, &sender, sender_alt.as_ref()).await else {
        tracing::warn!("message WhatsApp reçu d'un expéditeur sans numéro : ignoré");
        return;
    };
    let phone = format!("+{digits}");
    let opt_out = crate::channel::is_opt_out(&text);
    match shared
        .store
        .store_reply(&id, &phone, &text, opt_out, quoted.as_deref(), now_ms())
        .await
    {
        Ok(outcome) if outcome.newly_opted_out => {
            tracing::info!(
                "{} ne recevra plus de diffusions (désinscription par message)",
                relay_domain::mask_phone(&phone)
            );
            let confirmation = wa::Message {
                conversation: Some(crate::channel::OPT_OUT_CONFIRMATION.to_string()),
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
    *session = Session::open(&shared.settings, events, shared.acks.clone()).await?;
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
    use super::parse_lock_end;
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

    #[test]
    fn the_end_of_a_time_lock_is_read_in_seconds_milliseconds_or_as_a_date() {
        let expected = chrono::DateTime::from_timestamp(1_900_000_000, 0);
        assert_eq!(parse_lock_end("1900000000"), expected);
        assert_eq!(parse_lock_end("1900000000000"), expected);
        assert_eq!(parse_lock_end("2030-03-17T17:46:40Z"), expected);
        assert_eq!(parse_lock_end("bientôt"), None);
    }
}
