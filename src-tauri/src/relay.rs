//! The engine as the shell holds it: started in the background at launch, shared by the
//! commands, the monitor and the tray, and shut down once, by "Quitter".

use std::sync::Arc;

use relay_engine::carrier_sync::CarrierSync;
use relay_engine::channel::whatsapp_web::WhatsAppWeb;
use relay_engine::dispatcher::OutboxHealth;
use relay_engine::{Engine, Settings, Store};
use tokio::sync::{Mutex, RwLock};

use crate::error::UiError;

/// Where the engine is in its life.
enum Phase {
    Starting,
    Running(Box<Engine>),
    Failed(UiError),
    Stopping,
    Stopped,
}

/// What commands need from a running engine, cloned out so no lock is held across a query.
#[derive(Clone)]
pub struct Handles {
    pub store: Store,
    pub carriers: CarrierSync,
    pub whatsapp: Option<WhatsAppWeb>,
    /// Whether the outbox can record its sends (in memory: the database may be failing).
    pub outbox: OutboxHealth,
}

/// The phase as the UI sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PhaseKind {
    Starting,
    Running,
    Failed,
    Stopping,
}

pub struct Relay {
    /// The settings the engine runs with: loaded at launch, replaced by a saved edit. An error
    /// here (at launch) is shown instead of every screen.
    settings: std::sync::RwLock<Result<Arc<Settings>, UiError>>,
    phase: RwLock<Phase>,
    /// Held by a restart and by the final shutdown, so "Quitter" during a restart waits for
    /// the send in flight instead of exiting under it.
    lifecycle: Mutex<()>,
}

impl Relay {
    pub fn new(settings: Result<Settings, UiError>) -> Self {
        let phase = match &settings {
            Ok(_) => Phase::Starting,
            Err(err) => Phase::Failed(err.clone()),
        };
        Self {
            settings: std::sync::RwLock::new(settings.map(Arc::new)),
            phase: RwLock::new(phase),
            lifecycle: Mutex::new(()),
        }
    }

    pub fn settings(&self) -> Result<Arc<Settings>, UiError> {
        // A writer never panics while holding the lock; a poisoned one still holds settings.
        self.settings
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Starts the engine with the current settings: at launch, in the background, so the
    /// window opens at once and shows "démarrage" meanwhile; and by [`Relay::restart`].
    pub async fn start(&self) -> Result<(), UiError> {
        let settings = self.settings()?.as_ref().clone();
        let started = Engine::start(settings).await;
        let mut phase = self.phase.write().await;
        match started {
            // "Quitter" came while starting: stop what just started instead of running on.
            Ok(engine) if matches!(*phase, Phase::Stopping | Phase::Stopped) => {
                drop(phase);
                engine.shutdown().await;
                Err(UiError::stopping())
            }
            Ok(engine) => {
                *phase = Phase::Running(Box::new(engine));
                Ok(())
            }
            Err(err) => {
                let err = UiError::new("engine_failed", err.to_string());
                *phase = Phase::Failed(err.clone());
                Err(err)
            }
        }
    }

    /// Runs the relay with `settings` from now on: the running engine stops (the send in
    /// flight is finished and recorded; queued deliveries stay queued in the database), then
    /// a new one starts with them. Also starts an engine that had failed to start.
    pub async fn restart(&self, settings: Settings) -> Result<(), UiError> {
        let _one_at_a_time = self.lifecycle.lock().await;
        let engine = {
            let mut phase = self.phase.write().await;
            match &*phase {
                Phase::Stopping | Phase::Stopped => return Err(UiError::stopping()),
                Phase::Starting => {
                    return Err(UiError::new(
                        "starting",
                        "le relais démarre encore : les réglages enregistrés s'appliqueront au prochain lancement",
                    ));
                }
                Phase::Running(_) | Phase::Failed(_) => {}
            }
            // "Starting" meanwhile: commands wait for the new engine, the monitor keeps going.
            match std::mem::replace(&mut *phase, Phase::Starting) {
                Phase::Running(engine) => Some(engine),
                _ => None,
            }
        };
        if let Some(engine) = engine {
            engine.shutdown().await;
        }
        let previous = std::mem::replace(
            &mut *self
                .settings
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
            Ok(Arc::new(settings)),
        );
        let Err(refused) = self.start().await else {
            return Ok(());
        };
        // Valid settings can still fail to start (a webhook port already taken): the relay
        // goes back to the ones it ran with rather than staying stopped.
        let Ok(previous) = previous else {
            return Err(refused);
        };
        tracing::error!(
            "le relais ne démarre pas avec les nouveaux réglages ({}) : retour aux réglages précédents",
            refused.message
        );
        *self
            .settings
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Ok(previous);
        let fallback = match self.start().await {
            Ok(()) => {
                "il tourne de nouveau avec les réglages précédents jusqu'au prochain lancement"
                    .to_string()
            }
            Err(err) => format!("et pas davantage avec les précédents : {}", err.message),
        };
        Err(UiError::new(
            refused.code,
            format!("{} — {fallback}", refused.message),
        ))
    }

    pub async fn phase(&self) -> (PhaseKind, Option<UiError>) {
        match &*self.phase.read().await {
            Phase::Starting => (PhaseKind::Starting, None),
            Phase::Running(_) => (PhaseKind::Running, None),
            Phase::Failed(err) => (PhaseKind::Failed, Some(err.clone())),
            Phase::Stopping | Phase::Stopped => (PhaseKind::Stopping, None),
        }
    }

    pub async fn handles(&self) -> Result<Handles, UiError> {
        match &*self.phase.read().await {
            Phase::Running(engine) => Ok(Handles {
                store: engine.store().clone(),
                carriers: engine.carriers().clone(),
                whatsapp: engine.whatsapp().cloned(),
                outbox: engine.outbox_health().clone(),
            }),
            Phase::Starting => Err(UiError::starting()),
            Phase::Failed(err) => Err(err.clone()),
            Phase::Stopping | Phase::Stopped => Err(UiError::stopping()),
        }
    }

    /// Pauses or resumes sending (the engine keeps the choice across restarts); returns the
    /// new state. The send in flight always finishes.
    pub async fn set_paused(&self, paused: bool) -> Result<bool, UiError> {
        match &*self.phase.read().await {
            Phase::Running(engine) => {
                if paused {
                    engine.pause_sending().await?;
                } else {
                    engine.resume_sending().await?;
                }
                Ok(paused)
            }
            Phase::Starting => Err(UiError::starting()),
            Phase::Failed(err) => Err(err.clone()),
            Phase::Stopping | Phase::Stopped => Err(UiError::stopping()),
        }
    }

    /// Tells the dispatcher a relaunch was queued, so it starts within the throttle.
    pub async fn wake_dispatcher(&self) {
        if let Phase::Running(engine) = &*self.phase.read().await {
            engine.wake_dispatcher();
        }
    }

    /// Stops the engine: the send in flight is finished and recorded first. Safe to call
    /// more than once; only the first call waits for anything.
    pub async fn shutdown(&self) {
        let _after_any_restart = self.lifecycle.lock().await;
        let engine = {
            let mut phase = self.phase.write().await;
            match std::mem::replace(&mut *phase, Phase::Stopping) {
                Phase::Running(engine) => Some(engine),
                Phase::Stopped | Phase::Stopping => {
                    *phase = Phase::Stopped;
                    None
                }
                Phase::Starting | Phase::Failed(_) => None,
            }
        };
        // The lock is released: commands called meanwhile get "stopping" instead of waiting.
        if let Some(engine) = engine {
            engine.shutdown().await;
        }
        *self.phase.write().await = Phase::Stopped;
    }
}
