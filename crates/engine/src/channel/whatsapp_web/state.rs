//! The WhatsApp Web connection as the rest of the relay sees it: one value, watched by the
//! dispatcher, the CLI, the desktop shell and the tests. No wa-rs type appears here.

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
    Reconnecting {
        attempt: u32,
        next_in: Duration,
    },
    /// Logged out from the phone: the session was set aside, a new QR is needed.
    LoggedOut,
    /// Another client took the session over; the relay does not fight it.
    Replaced,
    /// WhatsApp banned the account temporarily; nothing is sent until `until`.
    Banned {
        until: DateTime<Utc>,
        reason: String,
    },
}

impl ConnectionState {
    pub fn is_connected(&self) -> bool {
        matches!(self, Self::Connected { .. })
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
            Self::LoggedOut => {
                "déconnecté depuis le téléphone : reliez à nouveau le compte avec un QR code".into()
            }
            Self::Replaced => {
                "une autre application a pris la session WhatsApp : fermez-la, puis reliez à nouveau le relais".into()
            }
            Self::Banned { until, reason } => format!(
                "compte WhatsApp suspendu temporairement ({reason}) jusqu'au {} UTC : aucun envoi d'ici là",
                until.format("%d/%m/%Y %H:%M")
            ),
        }
    }
}
