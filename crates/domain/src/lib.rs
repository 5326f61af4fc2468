//! The CamionBack Relay domain: orders, carriers, phone numbers, delivery statuses, the
//! message template, the channels and what their error codes mean. Pure types and functions:
//! no I/O, no async, no SQL, no HTTP.

pub mod carrier;
pub mod channel;
pub mod error_help;
pub mod order;
pub mod phone;
pub mod status;
pub mod template;
pub mod text;

pub use carrier::{CarrierId, CarrierStatus};
pub use channel::ChannelKind;
pub use error_help::{ErrorHelp, KNOWN_ERRORS, KnownError, error_help};
pub use order::{
    Order, OrderError, OrderFields, OrderId, Price, TextField, clean_statut, statut_is_open,
};
pub use phone::{PhoneError, PhoneNumber, mask_phone};
pub use status::{DeliveryStatus, SkipReason, UnknownStatus};
pub use template::{MessageTemplate, TemplateError, TemplateFields};
