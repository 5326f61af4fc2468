//! The engine as the shell holds it: started in the background at launch, shared by the
//! commands, the monitor and the tray, and shut down once, by "Quitter".

use std::sync::Arc;

use relay_engine::channel::whatsapp_web::WhatsAppWeb;
use relay_engine::dispatcher::OutboxHealth;
use relay_engine::{Engine, EngineError, EngineEvents, Ops, Settings, Store};
use tokio::sync::{Mutex, RwLock};
use tokio_util::sync::CancellationToken;

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
    /// What staff do (relaunch, history, pause…), as the CLI does it.
    pub ops: Ops,
    pub store: Store,
    pub whatsapp: Option<WhatsAppWeb>,
    /// Whether the outbox can record its sends (in memory: the database may be failing).
    pub outbox: OutboxHealth,
    /// Finished broadcasts and the account's pauses, as they happen.
    pub events: EngineEvents,
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
    /// Held by the start at launch, so "Quitter" waits for it to give up before exiting.
    launching: Mutex<()>,
    /// Cancelled by "Quitter": an engine still starting gives up instead of finishing first
    /// (a slow CamionBack API or WhatsApp no longer holds the exit).
    quitting: CancellationToken,
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
            launching: Mutex::new(()),
            quitting: CancellationToken::new(),
        }
    }

    pub fn settings(&self) -> Result<Arc<Settings>, UiError> {
        // A writer never panics while holding the lock; a poisoned one still holds settings.
        self.settings
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Starts the engine with the current settings at launch, in the background, so the
    /// window opens at once and shows "démarrage" meanwhile.
    pub async fn start(&self) -> Result<(), UiError> {
        let _launching = self.launching.lock().await;
        self.start_engine().await
    }

    /// Starts an engine; by [`Relay::start`] and [`Relay::restart`].
    async fn start_engine(&self) -> Result<(), UiError> {
        let settings = self.settings()?.as_ref().clone();
        let started = Engine::start_unless_stopped(settings, self.quitting.clone()).await;
        let mut phase = self.phase.write().await;
        match started {
            // "Quitter" came while starting, and the engine gave up: nothing runs.
            Err(EngineError::Stopped) => {
                *phase = Phase::Stopping;
                Err(UiError::stopping())
            }
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
        let Err(refused) = self.start_engine().await else {
            return Ok(());
        };
        // "Quitter" during the restart: the new engine gave up, and so would the old settings.
        if self.quitting.is_cancelled() {
            return Err(refused);
        }
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
        let fallback = match self.start_engine().await {
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
                ops: engine.ops(),
                store: engine.store().clone(),
                whatsapp: engine.whatsapp().cloned(),
                outbox: engine.outbox_health().clone(),
                events: engine.events().clone(),
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
                let ops = engine.ops();
                if paused {
                    ops.pause_sending().await?;
                } else {
                    ops.resume_sending().await?;
                }
                Ok(paused)
            }
            Phase::Starting => Err(UiError::starting()),
            Phase::Failed(err) => Err(err.clone()),
            Phase::Stopping | Phase::Stopped => Err(UiError::stopping()),
        }
    }

    /// Stops the engine: the send in flight is finished and recorded first; an engine still
    /// starting gives up at once and is waited for. Safe to call more than once; only the
    /// first call waits for anything.
    pub async fn shutdown(&self) {
        self.quitting.cancel();
        let _after_any_restart = self.lifecycle.lock().await;
        let _after_the_launch = self.launching.lock().await;
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// "Quitter" while the relay is still starting, its first carrier sync waiting on an API
    /// that accepted the request and never answers: the start gives up at once, the relay
    /// ends stopped, and the data directory is free again.
    #[tokio::test]
    async fn quitter_while_the_first_carrier_sync_hangs_stops_at_once() {
        // An API that takes connections and never answers.
        let api = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let api_url = format!("http://{}", api.local_addr().expect("addr"));
        let dir = tempfile::tempdir().expect("tempdir");
        let data_dir = dir.path().display().to_string();
        let env = move |key: &str| match key {
            "RELAY_DATA_DIR" => Some(data_dir.clone()),
            "RELAY_CHANNEL" => Some("cloud-api".into()),
            "RELAY_WEBHOOK_ADDR" => Some("127.0.0.1:0".into()),
            "CAMIONBACK_API_URL" => Some(api_url.clone()),
            "CAMIONBACK_POLL_SECS" => Some("0".into()),
            "WHATSAPP_API_URL" => Some("http://127.0.0.1:9".into()),
            "WHATSAPP_PHONE_NUMBER_ID" => Some("106540352242922".into()),
            "WHATSAPP_TOKEN" => Some("meta-token".into()),
            _ => None,
        };
        let relay = Arc::new(Relay::new(
            Ok(Settings::load(&env).expect("valid settings")),
        ));
        let starting = tokio::spawn({
            let relay = relay.clone();
            async move { relay.start().await }
        });
        // The sync's request has reached the API.
        let (_held, _) = api.accept().await.expect("the sync connects");

        // Well under the API client's 20 s timeout: the quit did not wait for it.
        tokio::time::timeout(Duration::from_secs(15), relay.shutdown())
            .await
            .expect("Quitter ends without waiting for the API");
        let started = starting.await.expect("task");
        assert_eq!(started.map_err(|e| e.code), Err("stopping"));
        assert_eq!(relay.phase().await.0, PhaseKind::Stopping);
        let _lock = relay_engine::lock::InstanceLock::acquire(dir.path()).expect("lock released");
    }
}
