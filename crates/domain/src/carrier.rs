//! Carriers ("transporteurs") as CamionBack describes them, and the access rule: who may
//! receive a broadcast.

use std::fmt;

/// CamionBack's own id for a carrier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CarrierId(pub i64);

impl fmt::Display for CarrierId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A carrier's account status, as the API spells it. Only validated carriers receive
/// anything; the API's own `statut=valide` filter is never trusted, every row is checked here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CarrierStatus {
    Validated,
    Blocked,
    Pending,
    /// Any spelling we do not know: treated as not validated, so an API change can only
    /// stop messages, never send them to the wrong people.
    Other,
}

impl CarrierStatus {
    pub fn parse(raw: &str) -> Self {
        match raw.trim().to_lowercase().as_str() {
            "valide" | "validé" | "actif" | "active" => Self::Validated,
            "bloque" | "bloqué" | "blocked" | "suspendu" => Self::Blocked,
            "en_attente" | "en attente" | "pending" | "attente" => Self::Pending,
            _ => Self::Other,
        }
    }

    pub fn is_eligible(self) -> bool {
        self == Self::Validated
    }

    /// The French word the history and the carrier list show.
    pub fn label(self) -> &'static str {
        match self {
            Self::Validated => "validé",
            Self::Blocked => "bloqué",
            Self::Pending => "en attente",
            Self::Other => "inconnu",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_validated_spellings_are_eligible_whatever_the_case() {
        for raw in ["valide", "Validé", "ACTIF", "active", " valide "] {
            assert!(
                CarrierStatus::parse(raw).is_eligible(),
                "{raw} should be eligible"
            );
        }
        for raw in [
            "bloqué",
            "en_attente",
            "pending",
            "",
            "validated?",
            "inactif",
        ] {
            assert!(
                !CarrierStatus::parse(raw).is_eligible(),
                "{raw} must not be eligible"
            );
        }
    }
}
