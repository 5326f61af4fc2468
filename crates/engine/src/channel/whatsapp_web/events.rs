//! whatsapp-rust's events, copied into the few the supervisor acts on. The handler runs inside
//! the client, on its dispatch path, and must never block: it only forwards, except for the
//! server's acknowledgements, which go straight to the send waiting for them.

use std::sync::Arc;
use std::time::Duration;

use relay_domain::DeliveryStatus;
use tokio::sync::mpsc;
use whatsapp_rust::Jid;
use whatsapp_rust::prelude::{Event, EventHandler, MessageExt};
use whatsapp_rust::wacore::types::events::ConnectFailureReason;
use whatsapp_rust::wacore::types::presence::ReceiptType;
use whatsapp_rust::wacore_binary::JidExt;

use super::acks::{PendingAcks, ServerAnswer};

#[derive(Debug)]
pub(super) enum WaEvent {
    Qr {
        code: String,
        timeout: Duration,
    },
    QrExhausted,
    PairCode(String),
    PairSuccess,
    Connected,
    Disconnected,
    LoggedOut,
    Locked {
        message: Option<String>,
    },
    Replaced,
    Banned {
        reason: String,
        expire: Duration,
        url: Option<String>,
    },
    Fatal(String),
    Receipt {
        ids: Vec<String>,
        report: DeliveryStatus,
    },
    Text {
        id: String,
        sender: Jid,
        sender_alt: Option<Jid>,
        text: String,
        quoted: Option<String>,
    },
    /// The server refused one of our messages with this code (463: a first message to a
    /// contact WhatsApp does not let us reach).
    Refused {
        code: String,
    },
}

pub(super) struct Forwarder {
    pub(super) events: mpsc::UnboundedSender<WaEvent>,
    pub(super) acks: Arc<PendingAcks>,
}

impl EventHandler for Forwarder {
    fn handle_event(&self, event: Arc<Event>) {
        for forwarded in translate(&event, &self.acks) {
            // The supervisor only goes away at shutdown; a lost event then does not matter.
            let _ = self.events.send(forwarded);
        }
    }
}

fn ban_reason(code: &whatsapp_rust::wacore::types::events::TempBanReason) -> String {
    use whatsapp_rust::wacore::types::events::TempBanReason as Ban;
    match code {
        Ban::SentToTooManyPeople => {
            "101 : messages envoyés à trop de personnes qui n'ont pas ce numéro dans leurs contacts"
                .into()
        }
        Ban::BlockedByUsers => "102 : bloqué par trop de destinataires".into(),
        Ban::CreatedTooManyGroups => "103 : trop de groupes créés".into(),
        Ban::SentTooManySameMessage => "104 : le même message envoyé à trop de personnes".into(),
        Ban::BroadcastList => "106 : liste de diffusion signalée".into(),
        Ban::Unknown(code) => format!("{code}"),
    }
}

fn translate(event: &Event, acks: &PendingAcks) -> Vec<WaEvent> {
    let one = match event {
        Event::PairingQrCode(qr) => WaEvent::Qr {
            code: qr.code.clone(),
            timeout: qr.timeout,
        },
        Event::PairingQrCodesExhausted(_) => WaEvent::QrExhausted,
        Event::PairingCode(code) => WaEvent::PairCode(code.code.clone()),
        Event::PairSuccess(_) => WaEvent::PairSuccess,
        Event::Connected(_) => WaEvent::Connected,
        Event::Disconnected(_) => WaEvent::Disconnected,
        Event::LoggedOut(out) if out.reason == ConnectFailureReason::AccountLocked => {
            WaEvent::Locked {
                message: out.logout_message.as_ref().and_then(|m| {
                    let parts: Vec<&str> = [m.header.as_deref(), m.subtext.as_deref()]
                        .into_iter()
                        .flatten()
                        .collect();
                    (!parts.is_empty()).then(|| parts.join(" — "))
                }),
            }
        }
        Event::LoggedOut(_) => WaEvent::LoggedOut,
        Event::StreamReplaced(_) => WaEvent::Replaced,
        Event::TemporaryBan(ban) => WaEvent::Banned {
            reason: match &ban.message {
                Some(message) => format!("{} — {message}", ban_reason(&ban.code)),
                None => ban_reason(&ban.code),
            },
            expire: ban.expire.to_std().unwrap_or(Duration::from_secs(3600)),
            url: ban.url.clone(),
        },
        Event::ClientOutdated(_) => WaEvent::Fatal("version de WhatsApp Web périmée".into()),
        Event::ConnectFailure(failure) => WaEvent::Fatal(format!(
            "connexion refusée par WhatsApp ({:?}){}",
            failure.reason,
            failure
                .message
                .as_deref()
                .map(|m| format!(" : {m}"))
                .unwrap_or_default()
        )),
        Event::ServerAck(ack) if ack.class.as_deref().is_none_or(|c| c == "message") => {
            match &ack.error {
                None => {
                    acks.answer(&ack.id, ServerAnswer::Taken);
                    return Vec::new();
                }
                Some(code) => {
                    acks.answer(&ack.id, ServerAnswer::Refused { code: code.clone() });
                    WaEvent::Refused { code: code.clone() }
                }
            }
        }
        Event::Receipt(receipt) => {
            let report = match &receipt.r#type {
                ReceiptType::Delivered => DeliveryStatus::Delivered,
                ReceiptType::Other(kind) if kind == "delivery" => DeliveryStatus::Delivered,
                ReceiptType::Read | ReceiptType::Played => DeliveryStatus::Read,
                _ => return Vec::new(),
            };
            WaEvent::Receipt {
                ids: receipt
                    .message_ids
                    .iter()
                    .map(|id| id.to_string())
                    .collect(),
                report,
            }
        }
        Event::Messages(batch) => {
            return batch
                .messages
                .iter()
                .filter_map(|inbound| {
                    let source = &inbound.info.source;
                    if source.is_from_me || source.is_group || source.chat.is_status_broadcast() {
                        return None;
                    }
                    // The phone's app-state key share and other protocol messages carry no text.
                    let text = inbound.message.text_content()?;
                    let quoted = inbound
                        .message
                        .get_base_message()
                        .extended_text_message
                        .as_option()
                        .and_then(|ext| ext.context_info.as_option())
                        .and_then(|context| context.stanza_id.clone());
                    Some(WaEvent::Text {
                        id: inbound.info.id.to_string(),
                        sender: source.sender.clone(),
                        sender_alt: source.sender_alt.clone(),
                        text: text.to_string(),
                        quoted,
                    })
                })
                .collect();
        }
        _ => return Vec::new(),
    };
    vec![one]
}
