//! Channels: the one WhatsApp account connection the dispatcher sends through. The engine only
//! knows this trait; each channel (Cloud API, WhatsApp Web, Twilio) is an adapter
//! that turns its own wire errors into the three outcomes the dispatcher acts on.

pub mod cloud_api;
pub mod twilio;
pub mod whatsapp_web;

use std::time::Duration;

use async_trait::async_trait;
use relay_domain::{ChannelKind, DeliveryStatus, PhoneNumber, TemplateFields};

/// One message to one carrier.
#[derive(Debug, Clone, Copy)]
pub struct OutgoingMessage<'a> {
    /// The delivery row this message is for: channels that can carry an opaque tag through
    /// to their status reports (Meta's `biz_opaque_callback_data`) attach it, so a report can
    /// settle a delivery whose answer was lost.
    pub delivery_id: i64,
    /// The id the channel planned for this message (`Channel::plan_message_id`), already
    /// stored on the delivery before the send.
    pub message_id: Option<&'a str>,
    pub to: &'a PhoneNumber,
    /// The rendered template.
    pub text: &'a str,
    /// The values behind the text, for channels that send approved templates.
    pub fields: &'a TemplateFields,
}

/// The channel accepted the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The id status reports will use, when the channel gives one.
    pub message_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SendError {
    /// Worth trying again later: network, timeout, 5xx, rate limit.
    #[error("{reason}")]
    Transient {
        reason: String,
        code: Option<String>,
        retry_after: Option<Duration>,
    },
    /// Will never work for this recipient: the delivery ends with `status`. `skipped` says
    /// the provider knows the carrier unsubscribed: they are opted out as by a STOP.
    #[error("{reason}")]
    Permanent {
        status: DeliveryStatus,
        reason: String,
        code: Option<String>,
    },
    /// The request may have reached the provider, but whether it took the message is unknown
    /// (timeout after the request was written, an unreadable answer after a 2xx, no
    /// acknowledgement): never retried, recorded `uncertain`, settled by a later report.
    #[error("{reason}")]
    Uncertain {
        reason: String,
        message_id: Option<String>,
    },
    /// The account itself cannot send right now (bad token, not connected, banned): nothing
    /// is wrong with this delivery, so it is not charged an attempt and sending pauses.
    #[error("{reason}")]
    Unavailable {
        reason: String,
        retry_after: Duration,
    },
}

impl SendError {
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Transient { code, .. } | Self::Permanent { code, .. } => code.as_deref(),
            Self::Uncertain { .. } | Self::Unavailable { .. } => None,
        }
    }
}

#[async_trait]
pub trait Channel: Send + Sync + 'static {
    /// For logs and metrics.
    fn name(&self) -> &'static str;

    /// Which provider this is, stored on each delivery it sends: its error codes are explained
    /// with it (`relay_domain::error_help`). `None` for the tests' stand-ins.
    fn kind(&self) -> Option<ChannelKind> {
        None
    }

    async fn send(&self, message: OutgoingMessage<'_>) -> Result<Accepted, SendError>;

    /// For channels that choose the message id themselves (WhatsApp Web): the id the next
    /// send will use. The dispatcher stores it on the delivery before sending, so receipts
    /// can settle the delivery even if the relay dies before the send returns.
    fn plan_message_id(&self) -> Option<String> {
        None
    }

    /// Resolves once the channel can send (connected, not banned). The dispatcher claims
    /// nothing before, so while WhatsApp is down no delivery sits in `sending` and nothing is
    /// marked failed; sending resumes by itself when this resolves.
    async fn ready(&self) {}
}

/// How an HTTP provider is named in the French text of a request that got no answer.
pub(crate) struct ProviderNames {
    /// "API Twilio"
    pub api: &'static str,
    /// "de Twilio"
    pub from: &'static str,
    /// "vers Twilio"
    pub to: &'static str,
}

/// A send to an HTTP provider that got no answer at all. Only a connection that never opened
/// (refused, no route, DNS, TLS handshake, connect timeout: reqwest's `is_connect`) proves
/// nothing was written; after that, a timeout or a broken connection may have come after the
/// provider took the message.
pub(crate) fn request_error(err: &reqwest::Error, names: &ProviderNames) -> SendError {
    if err.is_connect() || err.is_builder() {
        SendError::Transient {
            reason: describe_transport_error(err, names),
            code: None,
            retry_after: None,
        }
    } else {
        SendError::Uncertain {
            reason: format!(
                "{} — la requête était peut-être déjà partie : le message n'est pas renvoyé",
                describe_transport_error(err, names)
            ),
            message_id: None,
        }
    }
}

pub(crate) fn describe_transport_error(err: &reqwest::Error, names: &ProviderNames) -> String {
    if err.is_connect() {
        format!("{} injoignable (connexion impossible)", names.api)
    } else if err.is_timeout() {
        format!("pas de réponse {} dans le délai", names.from)
    } else {
        format!("erreur réseau {} : {err}", names.to)
    }
}

/// Replies that opt a carrier out, compared without case or surrounding punctuation: the same
/// words on every channel.
const OPT_OUT_WORDS: [&str; 4] = ["STOP", "ARRET", "ARRÊT", "توقف"];

/// What a carrier who opted out is told, once, on the channel they wrote on.
pub(crate) const OPT_OUT_CONFIRMATION: &str =
    "C'est noté : vous ne recevrez plus les nouvelles commandes CamionBack par WhatsApp.";

/// Whether a carrier's message asks for no more broadcasts.
pub(crate) fn is_opt_out(text: &str) -> bool {
    let word = text
        .trim()
        .trim_matches(|c: char| !c.is_alphanumeric())
        .to_uppercase();
    OPT_OUT_WORDS.iter().any(|w| *w == word)
}
