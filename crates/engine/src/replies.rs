//! Carriers' replies, whatever the channel they came on: what a reply says (an opt-out, an
//! interest), the rules that decide it (`ReplyRules`, from the settings), and the forwarder that
//! posts replies attributed to an order to CamionBack from their durable queue (`forward`).
//! Every channel hands its messages to `Store::record_reply` (WhatsApp Web through
//! `Store::store_reply`), which applies these rules in the reply's own transaction.

pub mod forward;

use std::time::Duration;

use crate::config::{Settings, table};

/// The start of a quick-reply payload that says "interested", and names the order after a
/// colon: `INTERESSE:<order id>` (what the Cloud API template's button carries).
pub const INTEREST_PAYLOAD: &str = "INTERESSE";

/// How replies are read and what is done with them.
#[derive(Debug, Clone)]
pub struct ReplyRules {
    /// Folded (`fold`): compared with a folded reply.
    interest_words: Vec<String>,
    /// A reply naming no order is about the last order sent to that number this recently.
    pub window: Duration,
    /// Whether attributed replies are queued for CamionBack (`RELAY_FORWARD_REPLIES`, and an
    /// API to post to).
    pub forward: bool,
}

impl Default for ReplyRules {
    /// The table's defaults: what a store opened without settings (a CLI command) applies.
    fn default() -> Self {
        Self {
            interest_words: parse_words(
                table::default_value("RELAY_INTEREST_WORDS").unwrap_or_default(),
            ),
            window: Duration::from_secs(24 * 3600),
            forward: true,
        }
    }
}

impl ReplyRules {
    pub fn of(settings: &Settings) -> Self {
        Self {
            interest_words: parse_words(&settings.replies.interest_words),
            window: settings.replies.window,
            forward: settings.replies.forward && settings.camionback.api_url.is_some(),
        }
    }

    /// A tap on a button whose payload starts with `INTERESSE`, or a text that is one of the
    /// interest words once trimmed, without case or accents.
    pub fn is_interested(&self, text: &str, button_payload: Option<&str>) -> bool {
        if button_payload.is_some_and(|p| fold(p).starts_with(&INTEREST_PAYLOAD.to_lowercase())) {
            return true;
        }
        let folded = fold(text);
        !folded.is_empty() && self.interest_words.contains(&folded)
    }
}

/// The order a payload `INTERESSE:<id>` names.
pub fn payload_order(button_payload: &str) -> Option<i64> {
    let (head, id) = button_payload.trim().split_once(':')?;
    if !fold(head).eq(&INTEREST_PAYLOAD.to_lowercase()) {
        return None;
    }
    id.trim().parse().ok().filter(|id: &i64| *id > 0)
}

/// The words of `RELAY_INTEREST_WORDS` (comma-separated), folded, blanks left out.
pub fn parse_words(list: &str) -> Vec<String> {
    list.split(',')
        .map(fold)
        .filter(|w| !w.is_empty())
        .collect()
}

/// A reply as the interest words are compared with it: trimmed of spaces and of the
/// punctuation around it ("Oui !"), lower case, Latin letters without their accents, Arabic
/// without its short vowels and elongation.
pub fn fold(text: &str) -> String {
    text.trim()
        .trim_matches(|c: char| !c.is_alphanumeric())
        .chars()
        .flat_map(char::to_lowercase)
        .filter_map(|c| match c {
            'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' => Some('a'),
            'ç' => Some('c'),
            'è' | 'é' | 'ê' | 'ë' => Some('e'),
            'ì' | 'í' | 'î' | 'ï' => Some('i'),
            'ñ' => Some('n'),
            'ò' | 'ó' | 'ô' | 'õ' | 'ö' => Some('o'),
            'ù' | 'ú' | 'û' | 'ü' => Some('u'),
            'ý' | 'ÿ' => Some('y'),
            'œ' => Some('o'),
            // Combining accents (a decomposed "é"), Arabic harakat, superscript alef, tatweel.
            '\u{0300}'..='\u{036F}' | '\u{064B}'..='\u{065F}' | '\u{0670}' | '\u{0640}' => None,
            c => Some(c),
        })
        .collect()
}

/// When a forward that failed is tried again: 10 s, 20 s, 40 s… doubling up to an hour
/// (`first` is the first delay; the tests shorten it).
pub fn retry_delay(first: Duration, failures: u32) -> Duration {
    let factor = 2u32.saturating_pow(failures.saturating_sub(1).min(16));
    first.saturating_mul(factor).min(forward::MAX_RETRY_DELAY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interest_words_match_without_case_accents_or_surrounding_punctuation() {
        let rules = ReplyRules::default();
        for text in [
            "1",
            "oui",
            "OUI",
            " Oui ! ",
            "ok",
            "Ok.",
            "intéressé",
            "INTERESSE",
            "Intéressé",
            "interesse\u{301}",
            "dispo",
            "Disponible",
            "wakha",
            "نعم",
            "مهتم",
            "نَعَم",
        ] {
            assert!(rules.is_interested(text, None), "{text}");
        }
        for text in ["", "non", "oui mais demain", "12", "pas dispo", "STOP", "?"] {
            assert!(!rules.is_interested(text, None), "{text}");
        }
    }

    #[test]
    fn a_tap_on_the_interest_button_is_interest_whatever_its_label() {
        let rules = ReplyRules::default();
        assert!(rules.is_interested("Je prends", Some("INTERESSE:42")));
        assert!(rules.is_interested("", Some("INTERESSE")));
        assert!(!rules.is_interested("Plus tard", Some("PLUS_TARD")));
        assert_eq!(payload_order("INTERESSE:42"), Some(42));
        assert_eq!(payload_order(" interessé : 7 "), Some(7));
        assert_eq!(payload_order("INTERESSE"), None);
        assert_eq!(payload_order("INTERESSE:abc"), None);
        assert_eq!(payload_order("AUTRE:42"), None);
    }

    #[test]
    fn staff_s_own_words_replace_the_defaults() {
        let rules = ReplyRules {
            interest_words: parse_words("Partant, d'accord ,,"),
            ..ReplyRules::default()
        };
        assert!(rules.is_interested("partant", None));
        assert!(rules.is_interested("D'ACCORD", None));
        assert!(!rules.is_interested("oui", None));
    }

    #[test]
    fn retries_double_from_the_first_delay_up_to_an_hour() {
        let first = Duration::from_secs(10);
        assert_eq!(retry_delay(first, 1), Duration::from_secs(10));
        assert_eq!(retry_delay(first, 2), Duration::from_secs(20));
        assert_eq!(retry_delay(first, 4), Duration::from_secs(80));
        assert_eq!(retry_delay(first, 12), Duration::from_secs(3600));
        assert_eq!(retry_delay(first, 1000), Duration::from_secs(3600));
    }
}
