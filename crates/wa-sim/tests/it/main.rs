//! The real wa-rs 0.2.0 client against the simulator, one module per milestone.

mod common;
mod fixture;
mod handshake;
mod lifecycle;
mod messages;
mod pairing;
mod replies;
mod usync;
