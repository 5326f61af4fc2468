//! How orders reach the relay: signed webhooks pushed by CamionBack, and polling of its API
//! (which also catches up on orders created while the relay was stopped). Both store the order
//! under its CamionBack id, so an order is kept, and broadcast, once.

pub mod poller;
pub mod webhook;
