//! The life of one delivery (one order to one carrier), as stored and shown.

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryStatus {
    /// Written to the outbox, waiting for its turn (or for a retry).
    Queued,
    /// Claimed by the dispatcher; the channel has been asked to send it.
    Sending,
    /// The channel accepted it.
    Sent,
    Delivered,
    Read,
    Failed,
    InvalidNumber,
    NotOnWhatsapp,
    /// Not sent on purpose (carrier no longer validated, opted out...).
    Skipped,
    /// Was being sent when the relay stopped abruptly: it may or may not have left, so it is
    /// shown and never resent automatically.
    Interrupted,
    /// The request may have reached WhatsApp but its answer never came or could not be read
    /// (a timeout after the request was written, a broken answer after a success, no
    /// acknowledgement from the server): resending could give the carrier a second copy, so
    /// it is shown and never resent automatically; a later status report settles it.
    Uncertain,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "statut inconnu « {0} » (attendu : queued, sending, sent, delivered, read, failed, invalid_number, not_on_whatsapp, skipped, interrupted, uncertain)"
)]
pub struct UnknownStatus(pub String);

impl DeliveryStatus {
    pub const ALL: [DeliveryStatus; 11] = [
        Self::Queued,
        Self::Sending,
        Self::Sent,
        Self::Delivered,
        Self::Read,
        Self::Failed,
        Self::InvalidNumber,
        Self::NotOnWhatsapp,
        Self::Skipped,
        Self::Interrupted,
        Self::Uncertain,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Sending => "sending",
            Self::Sent => "sent",
            Self::Delivered => "delivered",
            Self::Read => "read",
            Self::Failed => "failed",
            Self::InvalidNumber => "invalid_number",
            Self::NotOnWhatsapp => "not_on_whatsapp",
            Self::Skipped => "skipped",
            Self::Interrupted => "interrupted",
            Self::Uncertain => "uncertain",
        }
    }

    /// The French word staff read in the grid and in exports (the same as the window's).
    pub fn label(self) -> &'static str {
        match self {
            Self::Queued => "En file",
            Self::Sending => "Envoi en cours",
            Self::Sent => "Envoyé",
            Self::Delivered => "Distribué",
            Self::Read => "Lu",
            Self::Failed => "Échec",
            Self::InvalidNumber => "Numéro invalide",
            Self::NotOnWhatsapp => "Pas sur WhatsApp",
            Self::Skipped => "Ignoré",
            Self::Interrupted => "Interrompu",
            Self::Uncertain => "Incertain",
        }
    }

    /// The carrier has it (or WhatsApp accepted it for them).
    pub fn is_success(self) -> bool {
        matches!(self, Self::Sent | Self::Delivered | Self::Read)
    }

    /// Still owed by the dispatcher.
    pub fn is_pending(self) -> bool {
        matches!(self, Self::Queued | Self::Sending)
    }

    /// May or may not have reached the carrier: never resent automatically, and left out of a
    /// default relaunch unless staff include it.
    pub fn is_doubtful(self) -> bool {
        matches!(self, Self::Interrupted | Self::Uncertain)
    }

    /// Whether a status report from WhatsApp (`sent`, `delivered`, `read`, `failed`) may
    /// replace `self`. Reports arrive late, twice and out of order; a status never moves
    /// backwards, and a failure report cannot undo a delivery or a read.
    pub fn accepts_report(self, report: DeliveryStatus) -> bool {
        let rank = |s: DeliveryStatus| match s {
            Self::Sending => Some(0),
            Self::Sent => Some(1),
            Self::Delivered => Some(2),
            Self::Read => Some(3),
            _ => None,
        };
        match report {
            Self::Failed => matches!(
                self,
                Self::Sending | Self::Sent | Self::Interrupted | Self::Uncertain
            ),
            Self::Sent | Self::Delivered | Self::Read => match (rank(self), rank(report)) {
                (Some(current), Some(new)) => new > current,
                // A message we marked interrupted, uncertain or failed that WhatsApp says it
                // has after all: the report is the truth.
                (None, Some(_)) => {
                    matches!(self, Self::Interrupted | Self::Uncertain | Self::Failed)
                }
                _ => false,
            },
            _ => false,
        }
    }
}

/// Why a delivery is `skipped`: the word stored in its `error` column and printed as is (the
/// history's reason, `history --json`'s `error`). A carrier who is no longer validated is
/// skipped with the words of its status instead (`transporteur non validé (bloqué)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SkipReason {
    /// The carrier wrote STOP (or unsubscribed at the provider).
    OptedOut,
    /// CamionBack said the order is no longer open (filled, cancelled…) before this delivery
    /// left: it is not sent.
    OrderClosed,
}

impl SkipReason {
    pub const ALL: [SkipReason; 2] = [Self::OptedOut, Self::OrderClosed];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::OptedOut => "opted_out",
            Self::OrderClosed => "order_closed",
        }
    }

    /// The French words staff read.
    pub fn label(self) -> &'static str {
        match self {
            Self::OptedOut => "désinscrit (STOP)",
            Self::OrderClosed => "commande pourvue : envoi évité",
        }
    }

    /// The reason a stored `error` names, when it is one of these words.
    pub fn of_stored(error: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|reason| reason.as_str() == error)
    }
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for DeliveryStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DeliveryStatus {
    type Err = UnknownStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == s.trim())
            .ok_or_else(|| UnknownStatus(s.to_string()))
    }
}

/// How a stored status is read back (the store's rows decode through it).
impl TryFrom<String> for DeliveryStatus {
    type Error = UnknownStatus;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

#[cfg(test)]
mod tests {
    use super::DeliveryStatus::*;
    use super::*;

    #[test]
    fn every_status_round_trips_through_its_name() {
        for status in DeliveryStatus::ALL {
            assert_eq!(status.as_str().parse::<DeliveryStatus>(), Ok(status));
        }
        assert!("envoyé".parse::<DeliveryStatus>().is_err());
    }

    #[test]
    fn every_skip_reason_is_read_back_from_its_stored_word() {
        for reason in SkipReason::ALL {
            assert_eq!(SkipReason::of_stored(reason.as_str()), Some(reason));
        }
        assert_eq!(
            SkipReason::of_stored("transporteur non validé (bloqué)"),
            None
        );
    }

    #[test]
    fn reports_never_move_a_status_backwards() {
        assert!(Sent.accepts_report(Delivered));
        assert!(Sent.accepts_report(Read));
        assert!(Delivered.accepts_report(Read));
        assert!(!Read.accepts_report(Delivered));
        assert!(!Delivered.accepts_report(Sent));
        assert!(
            !Read.accepts_report(Read),
            "a repeated report changes nothing"
        );
        assert!(!Delivered.accepts_report(Failed));
        assert!(Sent.accepts_report(Failed));
        assert!(Interrupted.accepts_report(Delivered));
        assert!(Uncertain.accepts_report(Sent));
        assert!(Uncertain.accepts_report(Failed));
        assert!(!Skipped.accepts_report(Delivered));
    }
}
