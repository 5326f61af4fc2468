//! How orders reach the relay: signed webhooks pushed by CamionBack, and polling of its API
//! (which also catches up on orders created while the relay was stopped). Both store the order
//! under its CamionBack id, so an order is kept, and broadcast, once. The same webhook and the
//! API also say when an order is no longer open (`order_check`), which stops its broadcast.

pub mod order_check;
pub mod poller;
pub mod webhook;
