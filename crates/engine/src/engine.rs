//! The engine handle: starts every background task of the relay over one database and stops
//! them cleanly. The CLI, the desktop shell and the tests all run the relay through it.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::broadcast::Broadcaster;
use crate::camionback::{ApiError, CamionBackApi};
use crate::carrier_sync::{CarrierSync, SyncError};
use crate::channel::Channel;
use crate::channel::cloud_api::{CloudApi, CloudApiConfigError};
use crate::channel::twilio::{Twilio, TwilioConfigError};
use crate::channel::whatsapp_web::{WhatsAppWeb, WhatsAppWebError, WhatsAppWebSettings};
use crate::clock::now_ms;
use crate::config::{ChannelKind, Settings};
use crate::dispatcher::{self, Dispatcher, OutboxHealth};
use crate::events::EngineEvents;
use crate::http::state::TwilioHooks;
use crate::http::{self, HttpState};
use crate::intake::order_check::OrderCheck;
use crate::intake::poller::Poller;
use crate::lock::{InstanceLock, LockError};
use crate::ops::Ops;
use crate::replies::forward::Forwarder;
use crate::server::{self, ServerStats};
use crate::store::{StateKey, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("impossible d'écouter sur {addr} (RELAY_WEBHOOK_ADDR) : {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    CloudApi(#[from] CloudApiConfigError),
    #[error(transparent)]
    Twilio(#[from] TwilioConfigError),
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error(transparent)]
    WhatsAppWeb(#[from] WhatsAppWebError),
    /// A stop was asked while the engine was starting; nothing was left running.
    #[error("démarrage interrompu par une demande d'arrêt")]
    Stopped,
}

pub struct Engine {
    store: Store,
    addr: SocketAddr,
    carriers: CarrierSync,
    dispatcher_wake: Arc<Notify>,
    outbox_health: OutboxHealth,
    events: EngineEvents,
    whatsapp: Option<WhatsAppWeb>,
    cancel: CancellationToken,
    tracker: TaskTracker,
    _lock: InstanceLock,
}

/// Opens the database of `settings` (creating and migrating it) without starting anything:
/// what the CLI's read and relaunch commands need.
pub async fn open_store(settings: &Settings) -> Result<Store, StoreError> {
    Store::open_with(&settings.database_path(), &settings.store).await
}

/// Creates the data directory if needed, takes its lock (one relay per directory) and opens
/// its database: the first steps of [`Engine::start`] and of linking WhatsApp
/// ([`crate::ops::WhatsAppLink`]), whose session file the running relay would fight over.
pub(crate) async fn open_data_dir(
    settings: &Settings,
) -> Result<(InstanceLock, Store), EngineError> {
    crate::fs::create_private_dir(&settings.data_dir).map_err(|source| StoreError::File {
        path: settings.data_dir.display().to_string(),
        source,
    })?;
    let lock = InstanceLock::acquire(&settings.data_dir)?;
    let store = open_store(settings).await?;
    Ok((lock, store))
}

/// The CamionBack API client, when its URL is set.
pub fn camionback_api(settings: &Settings) -> Result<Option<CamionBackApi>, ApiError> {
    settings
        .camionback
        .api_url
        .clone()
        .map(|url| CamionBackApi::new(url, settings.camionback.api_token.clone()))
        .transpose()
}

/// The WhatsApp Web settings of the relay's configuration.
pub fn whatsapp_web_settings(settings: &Settings) -> WhatsAppWebSettings {
    WhatsAppWebSettings {
        url: settings.whatsapp_web.url.clone(),
        session_path: settings.whatsapp_session_path(),
        typing: settings.whatsapp_web.typing,
        send_timeout: settings.dispatch.send_timeout,
        min_gap: settings.dispatch.throttle,
        version: settings.whatsapp_web.version,
        watchdog_every: settings.whatsapp_web.watchdog_every,
    }
}

/// Which channel to send through.
enum ChannelChoice {
    FromSettings,
    Given(Arc<dyn Channel>),
}

/// What `launch` started, for the engine handle.
struct Running {
    addr: SocketAddr,
    carriers: CarrierSync,
    dispatcher_wake: Arc<Notify>,
    outbox_health: OutboxHealth,
    events: EngineEvents,
    whatsapp: Option<WhatsAppWeb>,
}

impl Engine {
    /// Starts the relay with the channel the settings name.
    pub async fn start(settings: Settings) -> Result<Self, EngineError> {
        Self::start_inner(
            settings,
            ChannelChoice::FromSettings,
            CancellationToken::new(),
        )
        .await
    }

    /// Starts the relay unless `stop` comes first. A stop during start-up (SIGTERM while the
    /// first carrier sync waits on a slow API, or while WhatsApp opens) ends it with
    /// [`EngineError::Stopped`]: what had started is stopped, the database closed, the lock
    /// released, and nothing is left half-written (only waits on the network are cut short;
    /// every write is one transaction). Once the engine is up, `stop` is not looked at any
    /// more: [`Engine::shutdown`] stops it.
    pub async fn start_unless_stopped(
        settings: Settings,
        stop: CancellationToken,
    ) -> Result<Self, EngineError> {
        Self::start_inner(settings, ChannelChoice::FromSettings, stop).await
    }

    /// Starts the relay with a channel built by the caller.
    pub async fn start_with_channel(
        settings: Settings,
        channel: Arc<dyn Channel>,
    ) -> Result<Self, EngineError> {
        Self::start_inner(
            settings,
            ChannelChoice::Given(channel),
            CancellationToken::new(),
        )
        .await
    }

    async fn start_inner(
        settings: Settings,
        choice: ChannelChoice,
        stop: CancellationToken,
    ) -> Result<Self, EngineError> {
        // Checked before anything is opened: a bad channel setting changes nothing.
        let mut cloud_client = None;
        let cloud_api: Option<Arc<dyn Channel>> = match (&choice, settings.dispatch.channel) {
            (ChannelChoice::FromSettings, ChannelKind::CloudApi) => {
                let cloud_api = CloudApi::new(&settings.cloud_api, settings.dispatch.send_timeout)?;
                if let Some(warning) = crate::channel::cloud_api::versions::warning(
                    &settings.cloud_api.api_version,
                    chrono::Utc::now().date_naive(),
                ) {
                    tracing::warn!("{warning}");
                }
                let cloud_api = Arc::new(cloud_api);
                cloud_client = Some(cloud_api.clone());
                Some(cloud_api)
            }
            (ChannelChoice::FromSettings, ChannelKind::Twilio) => {
                let twilio = Twilio::new(
                    &settings.twilio,
                    settings.public_url.as_ref(),
                    settings.dispatch.send_timeout,
                )?;
                if !twilio.has_callbacks() {
                    tracing::warn!(
                        "RELAY_PUBLIC_URL n'est pas défini : Twilio n'enverra ni statuts ni réponses au relais, les envois resteront « sent »"
                    );
                }
                Some(Arc::new(twilio))
            }
            _ => None,
        };
        // A stop that came before anything was opened (SIGTERM while the settings were read).
        if stop.is_cancelled() {
            return Err(EngineError::Stopped);
        }
        let cancel = CancellationToken::new();
        let tracker = TaskTracker::new();
        let (lock, store) = open_data_dir(&settings).await?;
        // Before any task takes a handle: they all share these rules.
        let store = store.with_reply_rules(crate::replies::ReplyRules::of(&settings));
        let launched = Self::launch(
            settings,
            choice,
            (cloud_api, cloud_client),
            store.clone(),
            &stop,
            cancel.clone(),
            tracker.clone(),
        )
        .await;
        match launched {
            Ok(running) => Ok(Self {
                store,
                addr: running.addr,
                carriers: running.carriers,
                dispatcher_wake: running.dispatcher_wake,
                outbox_health: running.outbox_health,
                events: running.events,
                whatsapp: running.whatsapp,
                cancel,
                tracker,
                _lock: lock,
            }),
            Err(err) => {
                // Whatever had started (the WhatsApp supervisor, the server) stops before the
                // lock is released: a next engine on this directory never meets it.
                cancel.cancel();
                tracker.close();
                tracker.wait().await;
                store.close().await;
                if let EngineError::Stopped = err {
                    tracing::info!("démarrage interrompu par une demande d'arrêt : relais arrêté");
                }
                Err(err)
            }
        }
    }

    /// Starts every task over the opened store. `stop` is looked at until the tasks run; on
    /// an error the caller stops what had started.
    async fn launch(
        settings: Settings,
        choice: ChannelChoice,
        (cloud_api, cloud_client): (Option<Arc<dyn Channel>>, Option<Arc<CloudApi>>),
        store: Store,
        stop: &CancellationToken,
        cancel: CancellationToken,
        tracker: TaskTracker,
    ) -> Result<Running, EngineError> {
        if stop.is_cancelled() {
            return Err(EngineError::Stopped);
        }
        // A pause belongs to the process that saw it; this one will find out for itself.
        store.clear_state(StateKey::SendingPaused).await?;
        if let Some(since) = store.paused_by_staff_since().await? {
            tracing::warn!(
                "envois en pause depuis {} (demandé par l'équipe) : rien ne part avant « Reprendre les envois » ou `camionback-relay resume`",
                crate::clock::format_local(since)
            );
        }
        let interrupted = store.interrupt_in_flight(now_ms()).await?;
        if interrupted > 0 {
            tracing::warn!(
                "{interrupted} envoi(s) interrompu(s) avant d'avoir été enregistré(s) : marqués « interrupted », non renvoyés"
            );
        }
        store.prune_early_reports(now_ms()).await?;
        let outbox_health = OutboxHealth::default();

        let mut whatsapp = None;
        let channel: Arc<dyn Channel> = match (choice, cloud_api) {
            (ChannelChoice::Given(channel), _) => channel,
            (ChannelChoice::FromSettings, Some(api)) => api,
            (ChannelChoice::FromSettings, None) => {
                // Opening the session may fetch WhatsApp Web's version online: a stop does not
                // wait for it (the session file is SQLite, written by transactions).
                let web = stop
                    .run_until_cancelled(WhatsAppWeb::start(
                        whatsapp_web_settings(&settings),
                        store.clone(),
                        cancel.child_token(),
                        &tracker,
                    ))
                    .await
                    .ok_or(EngineError::Stopped)??;
                whatsapp = Some(web.clone());
                Arc::new(web)
            }
        };

        let listener = TcpListener::bind(settings.webhook.addr)
            .await
            .map_err(|source| EngineError::Bind {
                addr: settings.webhook.addr,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| EngineError::Bind {
            addr: settings.webhook.addr,
            source,
        })?;
        if settings.webhook.secret.is_none() {
            tracing::warn!(
                "RELAY_WEBHOOK_SECRET n'est pas défini : POST /webhooks/orders refusera toutes les requêtes (les commandes arrivent seulement par interrogation de l'API)"
            );
        }

        let api = camionback_api(&settings)?;
        if api.is_none() {
            tracing::warn!(
                "CAMIONBACK_API_URL n'est pas défini : ni interrogation des commandes ni synchronisation des transporteurs"
            );
        }
        let dispatcher_wake = Arc::new(Notify::new());
        let events = EngineEvents::default();
        let carriers = CarrierSync::new(api.clone(), store.clone()).stopped_by(cancel.clone());
        let broadcaster = Broadcaster::new(
            store.clone(),
            carriers.clone(),
            dispatcher_wake.clone(),
            events.clone(),
        );

        let server_stats = Arc::new(ServerStats::default());
        let state = HttpState {
            store: store.clone(),
            webhook_secret: settings.webhook.secret.clone(),
            whatsapp_verify_token: settings.cloud_api.verify_token.clone(),
            whatsapp_app_secret: settings.cloud_api.app_secret.clone(),
            twilio: settings
                .twilio
                .auth_token
                .clone()
                .zip(settings.public_url.clone())
                .map(|(auth_token, public_url)| TwilioHooks {
                    auth_token,
                    public_url,
                }),
            new_order: broadcaster.new_order.clone(),
            channel: channel.name(),
            cloud_api: cloud_client,
            whatsapp: whatsapp.as_ref().map(WhatsAppWeb::state),
            outbox: outbox_health.clone(),
            server: server_stats.clone(),
        };
        tracker.spawn(server::run_until_stopped(
            listener,
            http::router(state),
            settings.webhook.limits.clone(),
            server_stats,
            cancel.child_token(),
        ));

        if let Some(api) = api.clone() {
            if settings.camionback.order_check_interval.is_zero() {
                tracing::info!(
                    "vérification des commandes en cours désactivée (CAMIONBACK_ORDER_CHECK_SECS=0)"
                );
            } else {
                tracker.spawn(OrderCheck::new(api, store.clone()).run_until_stopped(
                    settings.camionback.order_check_interval,
                    cancel.child_token(),
                ));
            }
        }
        match (&api, store.reply_rules().forward) {
            (Some(api), true) => {
                let forwarder = Forwarder::new(
                    store.clone(),
                    api.clone(),
                    settings.replies.forward_first_retry,
                );
                tracker.spawn(forwarder.run_until_stopped(cancel.child_token()));
            }
            _ => tracing::info!(
                "réponses des transporteurs non transmises à CamionBack (RELAY_FORWARD_REPLIES=0 ou pas d'API)"
            ),
        }
        if let Some(api) = api {
            // The first sync runs before any broadcast is attempted; later ones on a timer. A
            // failed one is recorded and the last list kept; a stop ends the start-up here.
            if let Err(SyncError::Stopped) = carriers.sync_unless_stopped(stop).await {
                return Err(EngineError::Stopped);
            }
            tracker.spawn(carriers.clone().run_until_stopped(
                settings.camionback.carrier_sync_interval,
                cancel.child_token(),
            ));
            if settings.camionback.poll_interval.is_zero() {
                tracing::info!("interrogation des commandes désactivée (CAMIONBACK_POLL_SECS=0)");
            } else {
                let poller = Poller::new(
                    api,
                    store.clone(),
                    settings.camionback.backfill,
                    broadcaster.new_order.clone(),
                );
                tracker.spawn(
                    poller
                        .run_until_stopped(settings.camionback.poll_interval, cancel.child_token()),
                );
            }
        }
        tracker.spawn(broadcaster.run_until_stopped(cancel.child_token()));

        let dispatcher = Dispatcher::new(
            store.clone(),
            channel.clone(),
            dispatcher::SendPlan {
                throttle: settings.dispatch.throttle,
                jitter: settings.dispatch.jitter,
                send_timeout: settings.dispatch.send_timeout,
                template: settings.template.clone(),
                link_base: settings.order_link_base.clone(),
            },
            dispatcher_wake.clone(),
            outbox_health.clone(),
        )
        .telling(events.clone());
        tracker.spawn(dispatcher.run_until_stopped(cancel.child_token()));
        tracker.close();

        tracing::info!(
            "relais démarré : webhooks sur http://{addr}, canal {}, {} ms entre deux envois",
            channel.name(),
            settings.dispatch.throttle.as_millis()
        );
        Ok(Running {
            addr,
            carriers,
            dispatcher_wake,
            outbox_health,
            events,
            whatsapp,
        })
    }

    /// Where the HTTP server listens (the port is the real one when 0 was asked).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn carriers(&self) -> &CarrierSync {
        &self.carriers
    }

    /// The WhatsApp Web connection, when that is the channel: its state stream and commands.
    pub fn whatsapp(&self) -> Option<&WhatsAppWeb> {
        self.whatsapp.as_ref()
    }

    /// Whether the outbox can record what it sends: the alert raised while its database
    /// refuses writes (sending is stopped meanwhile).
    pub fn outbox_health(&self) -> &OutboxHealth {
        &self.outbox_health
    }

    /// What happens as it happens: finished broadcasts, the account's pauses
    /// ([`EngineEvent`]).
    pub fn events(&self) -> &EngineEvents {
        &self.events
    }

    /// Tells the dispatcher new deliveries are queued (a relaunch from this process).
    pub fn wake_dispatcher(&self) {
        self.dispatcher_wake.notify_one();
    }

    /// What staff do to the running relay (relaunch, history, pause…), this engine's
    /// dispatcher woken by what queues or resumes sending.
    pub fn ops(&self) -> Ops {
        Ops::of_engine(
            self.store.clone(),
            self.carriers.clone(),
            self.dispatcher_wake.clone(),
        )
    }

    /// Stops every task; a send in flight is finished and recorded first.
    pub async fn shutdown(self) {
        self.cancel.cancel();
        self.tracker.wait().await;
        self.store.close().await;
        tracing::info!("relais arrêté");
    }
}
