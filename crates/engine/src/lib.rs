//! The CamionBack Relay engine: everything the relay does, with no user interface. The CLI,
//! the desktop shell and the tests drive it through [`Engine`] and [`Store`].
//! See ARCHITECTURE.md for the map and the invariants.

pub mod broadcast;
pub mod camionback;
pub mod carrier_sync;
pub mod channel;
pub mod clock;
pub mod config;
pub mod dispatcher;
pub mod engine;
pub mod export;
pub mod fs;
pub mod http;
pub mod intake;
pub mod lock;
pub mod server;
pub mod signature;
pub mod store;
pub mod telemetry;

pub use config::Settings;
pub use engine::{Engine, EngineError};
pub use store::Store;
