//! Customers' free text on its way into a message sent from CamionBack's official number:
//! cleaned of what must never be shown (control, bidi and invisible characters, line breaks),
//! searched for links, and stripped of WhatsApp's formatting markers.

/// Characters that draw nothing but change how the text around them reads: bidi controls
/// (they can turn `moc.live` into `evil.com` on screen), zero-width spaces and joiners (they
/// hide a link from a filter and split words invisibly), and other format characters.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'                      // soft hyphen
        | '\u{061C}'                    // Arabic letter mark
        | '\u{115F}' | '\u{1160}'       // Hangul fillers
        | '\u{17B4}' | '\u{17B5}'       // Khmer inherent vowels
        | '\u{180E}'                    // Mongolian vowel separator
        | '\u{200B}'..='\u{200F}'       // zero-width space/non-joiner/joiner, LRM, RLM
        | '\u{202A}'..='\u{202E}'       // bidi embeddings and overrides
        | '\u{2060}'..='\u{2064}'       // word joiner, invisible operators
        | '\u{2066}'..='\u{206F}'       // bidi isolates, deprecated format characters
        | '\u{3164}' | '\u{FFA0}'       // Hangul fillers
        | '\u{FEFF}'                    // zero-width no-break space (BOM)
        | '\u{FFF9}'..='\u{FFFB}'       // interlinear annotation
        | '\u{1D173}'..='\u{1D17A}'     // musical format characters
        | '\u{E0000}'..='\u{E007F}' // tag characters
    )
}

/// One line of plain text: invisible and control characters removed, every line break, tab
/// and run of spaces (of any Unicode kind) folded to one space, and no space at either end.
/// A newline can therefore neither lengthen a message nor forge a line in the logs.
pub fn clean(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len().min(1024));
    let mut pending_space = false;
    for c in raw.chars() {
        if c.is_whitespace() {
            pending_space = true;
        } else if c.is_control() || is_invisible(c) {
            // Removed without a space: `Casa\0blanca` was meant as one word.
        } else {
            if pending_space && !out.is_empty() {
                out.push(' ');
            }
            pending_space = false;
            out.push(c);
        }
    }
    out
}

/// The first thing in `text` that WhatsApp would show as a link, if any: an address with a
/// scheme (`https://…`), anything starting with `www.`, an IPv4 address, or a bare domain
/// (`evil.ma/x`, `bit.ly`, `contact@site.com`) whose last label is a real top-level domain
/// of the Public Suffix List. Words joined by a dot whose end is no domain (`Palettes.Bois`,
/// `S.A.R.L`, `1.5 t`) are not links, so a typo does not cost an order.
pub fn find_link(text: &str) -> Option<&str> {
    if let Some(at) = text.find("://") {
        return Some(word_around(text, at));
    }
    let mut start = None;
    for (i, c) in text.char_indices().chain([(text.len(), ' ')]) {
        let host_char = c.is_alphanumeric() || c == '-' || c == '.';
        match (host_char, start) {
            (true, None) => start = Some(i),
            (false, Some(from)) => {
                if is_host(&text[from..i]) {
                    return Some(word_around(text, from));
                }
                start = None;
            }
            _ => {}
        }
    }
    None
}

/// `candidate` is a run of letters, digits, `-` and `.`.
fn is_host(candidate: &str) -> bool {
    // A sentence's full stop (`Fès.`) ends the run without making it a domain.
    let candidate = candidate.trim_matches(|c| c == '.' || c == '-');
    let labels: Vec<&str> = candidate.split('.').collect();
    if labels.len() < 2 || labels.iter().any(|label| label.is_empty()) {
        return false;
    }
    if labels[0].eq_ignore_ascii_case("www") {
        return true;
    }
    if labels.len() == 4
        && labels
            .iter()
            .all(|label| label.len() <= 3 && label.parse::<u8>().is_ok())
    {
        return true;
    }
    let tld = labels[labels.len() - 1].to_lowercase();
    tld.chars().all(char::is_alphabetic)
        && tld.chars().count() >= 2
        && psl::suffix(tld.as_bytes()).is_some_and(|suffix| suffix.is_known())
}

/// The whole space-separated word containing byte `at`, for the error message.
fn word_around(text: &str, at: usize) -> &str {
    let start = text[..at].rfind(' ').map_or(0, |i| i + 1);
    let end = text[at..].find(' ').map_or(text.len(), |i| at + i);
    &text[start..end]
}

/// The text with WhatsApp's formatting markers replaced by look-alikes that format nothing:
/// `*bold*`, `_italic_`, `~strike~`, `` `code` `` and ```` ``` ```` blocks cannot be
/// opened from a customer's field, nor pair with a marker of the template, and a leading `>`
/// cannot quote. What the carrier reads stays the same words.
pub fn neutralise_markup(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for (i, c) in text.chars().enumerate() {
        out.push(match c {
            '*' => '\u{2217}',           // ∗ asterisk operator
            '_' => '\u{02CD}',           // ˍ modifier letter low macron
            '~' => '\u{223C}',           // ∼ tilde operator
            '`' => '\u{02CB}',           // ˋ modifier letter grave accent
            '>' if i == 0 => '\u{203A}', // › single right-pointing angle quotation mark
            other => other,
        });
    }
    out
}

/// `text` cut to at most `max` characters, for quoting a value in an error message.
pub(crate) fn excerpt(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleaning_keeps_every_letter_and_folds_the_layout() {
        assert_eq!(
            clean("  Casablanca - Aïn Sebaâ  "),
            "Casablanca - Aïn Sebaâ"
        );
        assert_eq!(clean("Fès"), "Fès");
        assert_eq!(
            clean("الدار البيضاء"),
            "الدار البيضاء",
            "Arabic script is text"
        );
        assert_eq!(clean("Palettes\n\n\r\n\tbois"), "Palettes bois");
        assert_eq!(clean(&"\n".repeat(10_000)), "");
        assert_eq!(
            clean("Tanger\u{00A0}\u{2028}Med"),
            "Tanger Med",
            "no-break and line separators are spaces too"
        );
    }

    #[test]
    fn cleaning_removes_control_bidi_and_zero_width_characters() {
        assert_eq!(clean("Casa\0blanca"), "Casablanca");
        assert_eq!(clean("Rabat\u{7}\u{1b}[31m"), "Rabat[31m");
        for invisible in [
            '\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}', '\u{202E}', '\u{2066}', '\u{2067}',
            '\u{2068}', '\u{2069}', '\u{200E}', '\u{200F}', '\u{061C}', '\u{200B}', '\u{200C}',
            '\u{200D}', '\u{2060}', '\u{FEFF}', '\u{0085}', '\u{009B}',
        ] {
            assert_eq!(
                clean(&format!("Agadir{invisible}")),
                "Agadir",
                "U+{:04X} is removed",
                invisible as u32
            );
        }
        // "Fès" followed by a right-to-left override that would show `am.live` as `evil.ma`.
        assert_eq!(clean("Fès \u{202E}am.live"), "Fès am.live");
    }

    #[test]
    fn links_of_every_shape_are_found() {
        for (text, link) in [
            ("http://evil.ma/x", "http://evil.ma/x"),
            ("Casa https://bit.ly/abc", "https://bit.ly/abc"),
            ("voir hxxp://x", "hxxp://x"),
            ("www.evil", "www.evil"),
            ("WWW.Camion-Back.ma", "WWW.Camion-Back.ma"),
            ("Casablanca evil.ma/x", "evil.ma/x"),
            ("evil.ma", "evil.ma"),
            ("Livraison wa.me/212600000000", "wa.me/212600000000"),
            ("écrire à contact@arnaque.com", "contact@arnaque.com"),
            ("Tanger.Med", "Tanger.Med"),
            ("serveur 192.168.1.10", "192.168.1.10"),
            ("évil.ma", "évil.ma"),
        ] {
            assert_eq!(find_link(text), Some(link), "in {text:?}");
        }
    }

    #[test]
    fn real_cities_and_goods_are_not_links() {
        for text in [
            "Fès",
            "Casablanca - Aïn Sebaâ",
            "Carreaux 60x60",
            "Dar Bouazza",
            "Ksar El Kébir",
            "Sidi Bennour",
            "Laâyoune",
            "Tanger Med",
            "Béni Mellal-Khénifra",
            "الدار البيضاء",
            "Palettes 1.20x0.80, 1.5 t",
            "Matériaux (ciment, fer, etc.)",
            "Transports Atlas S.A.R.L.",
            "Bd. Zerktouni",
            "Palettes.Bois",
            "Meubles.Électroménager",
            "Version 2.0.1",
            "Casa.",
            "CMD-2025-123",
            "60*60 ~2 t",
        ] {
            assert_eq!(find_link(text), None, "{text:?} is no link");
        }
    }

    #[test]
    fn markup_is_neutralised_without_losing_a_word() {
        assert_eq!(
            neutralise_markup("*GRATUIT* _vite_ ~4500~ ```code``` `x`"),
            "∗GRATUIT∗ ˍviteˍ ∼4500∼ ˋˋˋcodeˋˋˋ ˋxˋ"
        );
        assert_eq!(neutralise_markup("> citation > 2 t"), "› citation > 2 t");
        assert_eq!(neutralise_markup("Carreaux 60x60"), "Carreaux 60x60");
        let neutral = neutralise_markup("*a*_b_~c~`d`");
        assert!(
            !neutral.contains(['*', '_', '~', '`']),
            "no WhatsApp marker survives: {neutral}"
        );
    }

    #[test]
    fn excerpts_are_short() {
        assert_eq!(excerpt("Rabat", 10), "Rabat");
        assert_eq!(excerpt(&"x".repeat(100), 10).chars().count(), 10);
    }
}
