//! Linking WhatsApp without running the relay: the WhatsApp Web session alone, over the data
//! directory the relay would use (`camionback-relay login`). The running desktop app links
//! through its engine's own connection instead ([`crate::Engine::whatsapp`]).

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::channel::whatsapp_web::WhatsAppWeb;
use crate::config::Settings;
use crate::engine::{EngineError, open_data_dir, whatsapp_web_settings};
use crate::lock::InstanceLock;
use crate::store::Store;

/// The WhatsApp Web session open on its own: nothing is polled, broadcast or sent. Holds the
/// data directory's lock, since a relay running beside it would use the same session file.
pub struct WhatsAppLink {
    whatsapp: WhatsAppWeb,
    store: Store,
    cancel: CancellationToken,
    tracker: TaskTracker,
    _lock: InstanceLock,
}

impl WhatsAppLink {
    /// Opens the data directory, as [`crate::Engine::start`] does, then the session only.
    pub async fn open(settings: &Settings) -> Result<Self, EngineError> {
        let (lock, store) = open_data_dir(settings).await?;
        let cancel = CancellationToken::new();
        let tracker = TaskTracker::new();
        let started = WhatsAppWeb::start(
            whatsapp_web_settings(settings),
            store.clone(),
            cancel.child_token(),
            &tracker,
        )
        .await;
        tracker.close();
        match started {
            Ok(whatsapp) => Ok(Self {
                whatsapp,
                store,
                cancel,
                tracker,
                _lock: lock,
            }),
            Err(err) => {
                cancel.cancel();
                tracker.wait().await;
                store.close().await;
                Err(err.into())
            }
        }
    }

    /// The connection: its state stream (QR codes, pairing code, linked) and its commands.
    pub fn whatsapp(&self) -> &WhatsAppWeb {
        &self.whatsapp
    }

    /// Closes the session (kept on disk for the relay) and releases the directory.
    pub async fn close(self) {
        self.cancel.cancel();
        self.tracker.wait().await;
        self.store.close().await;
    }
}
