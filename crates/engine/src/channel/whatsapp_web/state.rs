//! The WhatsApp Web connection as the rest of the relay sees it: one value, watched by the
//! dispatcher, the CLI, the desktop shell and the tests. No whatsapp-rust type appears here.

use std::time::Duration;

use chrono::{DateTime, Utc};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectionState {
    /// No session stored: a QR code (or a pairing code) is needed.
    Unlinked,
    Connecting,
    /// Show `code` as a QR code until `expires_at`; a new one follows.
    Qr {
        code: String,
        expires_at: DateTime<Utc>,
    },
    /// The QR codes ran out before anyone scanned one: new ones are offered on request.
    QrExpired,
    /// Type this code on the phone (WhatsApp > Appareils connectés > Connecter avec un numéro).
    PairCode {
        code: String,
    },
    Connected {
        phone: String,
    },
    /// The link was up and dropped: the relay tries again by itself.
    Reconnecting {
        attempt: u32,
        next_in: Duration,
    },
    /// WhatsApp could not be reached at all (network, DNS, TLS, version discovery, a server
    /// whose certificate does not verify): said as it is, with the next try.
    Unreachable {
        reason: String,
        attempt: u32,
        next_in: Duration,
    },
    /// Connected, but WhatsApp temporarily forbids new conversations from this number (the
    /// reach-out time lock): nothing is claimed until it ends (`until`, when WhatsApp says).
    Restricted {
        phone: String,
        until: Option<DateTime<Utc>>,
    },
    /// Logged out from the phone: the session was set aside, a new QR is needed.
    LoggedOut,
    /// WhatsApp locked the account (it must be unlocked in the WhatsApp app on the phone).
    Locked {
        message: Option<String>,
    },
    /// Another client took the session over; the relay does not fight it.
    Replaced,
    /// WhatsApp banned the account temporarily; nothing is sent until `until`.
    Banned {
        until: DateTime<Utc>,
        reason: String,
        /// Where WhatsApp says to appeal, when it says.
        url: Option<String>,
    },
}

impl ConnectionState {
    /// The link to WhatsApp is up (sending may still be forbidden: see [`Self::can_send`]).
    pub fn is_connected(&self) -> bool {
        matches!(self, Self::Connected { .. } | Self::Restricted { .. })
    }

    /// Messages may go out now.
    pub fn can_send(&self) -> bool {
        matches!(self, Self::Connected { .. })
    }

    pub fn is_restricted(&self) -> bool {
        matches!(self, Self::Restricted { .. })
    }

    /// What staff read: what happened and what to do.
    pub fn describe(&self) -> String {
        match self {
            Self::Unlinked => "WhatsApp non relié : scannez le QR code avec le téléphone CamionBack".into(),
            Self::Connecting => "connexion à WhatsApp…".into(),
            Self::Qr { expires_at, .. } => {
                let left = (*expires_at - Utc::now()).num_seconds().max(0);
                format!("scannez le QR code avec WhatsApp (Appareils connectés) — {left} s restantes")
            }
            Self::QrExpired => "les QR codes ont expiré : demandez-en de nouveaux".into(),
            Self::PairCode { code } => format!(
                "sur le téléphone : WhatsApp > Appareils connectés > Connecter avec un numéro, puis saisissez {code}"
            ),
            Self::Connected { phone } => format!("connecté (+{phone})"),
            Self::Reconnecting { attempt, next_in } => format!(
                "connexion perdue : nouvelle tentative ({attempt}) dans {} s",
                next_in.as_secs()
            ),
            Self::Unreachable {
                reason, next_in, ..
            } => format!(
                "connexion impossible : {reason} — nouvel essai dans {} s",
                next_in.as_secs()
            ),
            Self::Restricted { phone, until } => format!(
                "WhatsApp interdit temporairement les nouvelles conversations depuis +{phone} {} : les envois sont en pause et reprendront seuls. Attendez, ou passez au canal officiel (Cloud API) pour cette diffusion",
                match until {
                    Some(until) => format!("jusqu'au {} UTC", until.format("%d/%m/%Y %H:%M")),
                    None => "(fin non communiquée)".to_string(),
                }
            ),
            Self::LoggedOut => {
                "déconnecté depuis le téléphone : reliez à nouveau le compte avec un QR code".into()
            }
            Self::Locked { message } => format!(
                "compte WhatsApp verrouillé par WhatsApp{} : ouvrez WhatsApp sur le téléphone CamionBack et suivez ses instructions, puis reliez à nouveau le relais",
                message
                    .as_deref()
                    .map(|m| format!(" ({m})"))
                    .unwrap_or_default()
            ),
            Self::Replaced => {
                "une autre application a pris la session WhatsApp : fermez-la, puis reliez à nouveau le relais".into()
            }
            Self::Banned { until, reason, url } => format!(
                "compte WhatsApp suspendu temporairement ({reason}) jusqu'au {} UTC : aucun envoi d'ici là{}",
                until.format("%d/%m/%Y %H:%M"),
                url.as_deref()
                    .map(|u| format!(" — recours : {u}"))
                    .unwrap_or_default()
            ),
        }
    }
}
