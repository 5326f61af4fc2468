//! The CamionBack Relay engine: everything the relay does, with no user interface. The CLI,
//! the desktop shell and the tests drive it through [`Engine`], [`Ops`] (what staff do) and
//! [`Store`]; the modules they need no part of are `pub(crate)`.
//! See ARCHITECTURE.md for the map and the invariants.

pub(crate) mod broadcast;
pub mod camionback;
pub mod carrier_sync;
pub mod channel;
pub mod clock;
pub mod config;
pub mod dispatcher;
pub(crate) mod engine;
pub mod events;
pub mod export;
pub mod fs;
pub(crate) mod http;
pub(crate) mod intake;
pub mod lock;
pub mod ops;
pub mod replies;
pub mod server;
pub(crate) mod signature;
pub mod store;
pub mod telemetry;

pub use config::Settings;
pub use engine::{Engine, EngineError};
pub use events::{EngineEvent, EngineEvents};
pub use ops::Ops;
pub use store::Store;
