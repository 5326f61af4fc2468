//! Phone numbers: every number we send to is a valid E.164 number, parsed once with
//! libphonenumber's rules (default region Morocco), never a free-form string.

use std::fmt;

use phonenumber::country;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PhoneNumber(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    #[error("numéro vide")]
    Empty,
    #[error("numéro illisible « {0} »")]
    Unparsable(String),
    #[error("numéro invalide « {0} »")]
    Invalid(String),
}

impl PhoneNumber {
    /// Parses a number as carriers type it (`0612345678`, `+212 6 12 34 56 78`,
    /// `00212612345678`, `212612345678`) into E.164.
    pub fn parse(raw: &str) -> Result<Self, PhoneError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(PhoneError::Empty);
        }
        // `212612345678` without a plus is how many Moroccan systems store numbers; read as a
        // national number it would be invalid, so try it as international first.
        let candidates: Vec<String> = if trimmed.starts_with("212") && trimmed.len() >= 12 {
            vec![format!("+{trimmed}"), trimmed.to_string()]
        } else {
            vec![trimmed.to_string()]
        };
        let mut last_error = PhoneError::Unparsable(trimmed.to_string());
        for candidate in candidates {
            match phonenumber::parse(Some(country::Id::MA), &candidate) {
                Ok(number) if phonenumber::is_valid(&number) => {
                    let e164 = number.format().mode(phonenumber::Mode::E164).to_string();
                    return Ok(Self(e164));
                }
                Ok(_) => last_error = PhoneError::Invalid(trimmed.to_string()),
                Err(_) => {}
            }
        }
        Err(last_error)
    }

    /// `+212612345678`.
    pub fn e164(&self) -> &str {
        &self.0
    }

    /// `212612345678`: what WhatsApp APIs take as a recipient.
    pub fn digits(&self) -> &str {
        self.0.trim_start_matches('+')
    }

    pub fn masked(&self) -> String {
        mask_phone(&self.0)
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Masks a number for logs: `+212612345678` -> `+2126…78`. Works on any string, so even an
/// invalid number never reaches a log in full.
pub fn mask_phone(raw: &str) -> String {
    let chars: Vec<char> = raw.trim().chars().collect();
    if chars.len() <= 7 {
        return "…".repeat(usize::from(!chars.is_empty()));
    }
    let head: String = chars[..5].iter().collect();
    let tail: String = chars[chars.len() - 2..].iter().collect();
    format!("{head}…{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moroccan_numbers_as_typed_become_e164() {
        for raw in [
            "0612345678",
            "06 12 34 56 78",
            "+212612345678",
            "+212 6 12 34 56 78",
            "00212612345678",
            "212612345678",
        ] {
            assert_eq!(
                PhoneNumber::parse(raw).map(|p| p.e164().to_string()),
                Ok("+212612345678".to_string()),
                "{raw}"
            );
        }
        let french = PhoneNumber::parse("+33612345678").expect("valid French mobile");
        assert_eq!(french.digits(), "33612345678");
    }

    #[test]
    fn unusable_numbers_are_refused() {
        assert_eq!(PhoneNumber::parse("  "), Err(PhoneError::Empty));
        for raw in ["12", "not a number", "0612", "+2126123456789999"] {
            assert!(PhoneNumber::parse(raw).is_err(), "{raw} should be refused");
        }
    }

    #[test]
    fn masking_keeps_only_the_prefix_and_last_two_digits() {
        assert_eq!(mask_phone("+212612345678"), "+2126…78");
        assert_eq!(mask_phone("123"), "…");
        assert_eq!(mask_phone(""), "");
    }
}
