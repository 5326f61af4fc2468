//! The WhatsApp message: the spec's template, its placeholders, and how an order fills them.

use crate::order::{MAX_PRICE_CHARS, Order, TextField};
use crate::text;

/// WhatsApp's limit for one text message (the Cloud API's `text.body`). Counted here in
/// UTF-16 code units, the unit the apps count in: never fewer than characters, so a message
/// within it is within the limit however Meta counts.
pub const MAX_MESSAGE_UTF16: usize = 4096;

/// The template of the specification, emojis and line breaks exactly as written there.
pub const DEFAULT_TEMPLATE: &str = include_str!("default_template.txt");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Placeholder {
    VilleDepart,
    VilleArrivee,
    Date,
    Prix,
    TypeColis,
    LienCommande,
    Reference,
}

impl Placeholder {
    fn name(self) -> &'static str {
        Self::NAMES
            .iter()
            .find(|(_, p)| *p == self)
            .map_or("", |(name, _)| name)
    }

    const NAMES: [(&'static str, Placeholder); 7] = [
        ("ville_depart", Self::VilleDepart),
        ("ville_arrivee", Self::VilleArrivee),
        ("date", Self::Date),
        ("prix", Self::Prix),
        ("type_colis", Self::TypeColis),
        ("lien_commande", Self::LienCommande),
        ("reference", Self::Reference),
    ];

    fn parse(name: &str) -> Option<Self> {
        Self::NAMES
            .iter()
            .find(|(known, _)| *known == name)
            .map(|(_, p)| *p)
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Segment {
    Text(String),
    Field(Placeholder),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error(
        "variable inconnue {{{{{0}}}}} dans le modèle de message (connues : ville_depart, ville_arrivee, date, prix, type_colis, lien_commande, reference)"
    )]
    UnknownPlaceholder(String),
    #[error("« {{{{ » sans « }}}} » à la ligne {0} du modèle de message")]
    Unclosed(usize),
    #[error("le modèle de message est vide")]
    Empty,
    #[error(
        "avec ce modèle, un message pourrait atteindre {longest} caractères (commande aux champs les plus longs acceptés, lien de {link_chars} caractères) ; WhatsApp en accepte {MAX_MESSAGE_UTF16} : raccourcissez le modèle, répétez moins les variables, ou raccourcissez ORDER_LINK_BASE"
    )]
    TooLong { longest: usize, link_chars: usize },
}

/// The values an order gives to the template, in the order the Cloud API template
/// parameters use: ville_depart, ville_arrivee, date, prix, type_colis, lien_commande.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateFields {
    /// The order the message is about: not shown, but carried where a channel can tag the
    /// message with it (the Cloud API template's quick-reply payload `INTERESSE:<id>`).
    pub order_id: crate::OrderId,
    pub ville_depart: String,
    pub ville_arrivee: String,
    pub date: String,
    pub prix: String,
    pub type_colis: String,
    pub lien_commande: String,
    pub reference: String,
}

impl TemplateFields {
    /// The values of `order` as a message shows them. The customer's text (already cleaned
    /// when the order came in) has its WhatsApp markers neutralised here, the one place both
    /// the free-text message and the Cloud API template parameters come from.
    pub fn of(order: &Order, link_base: &str) -> Self {
        Self {
            order_id: order.id,
            ville_depart: text::neutralise_markup(&order.ville_depart),
            ville_arrivee: text::neutralise_markup(&order.ville_arrivee),
            date: order.date_french(),
            prix: order.prix.to_french(),
            type_colis: text::neutralise_markup(&order.type_marchandise),
            lien_commande: format!("{link_base}{}", order.id),
            reference: text::neutralise_markup(&order.reference),
        }
    }

    /// The six body parameters of an approved Cloud API template, in order.
    pub fn template_parameters(&self) -> [&str; 6] {
        [
            &self.ville_depart,
            &self.ville_arrivee,
            &self.date,
            &self.prix,
            &self.type_colis,
            &self.lien_commande,
        ]
    }

    fn get(&self, placeholder: Placeholder) -> &str {
        match placeholder {
            Placeholder::VilleDepart => &self.ville_depart,
            Placeholder::VilleArrivee => &self.ville_arrivee,
            Placeholder::Date => &self.date,
            Placeholder::Prix => &self.prix,
            Placeholder::TypeColis => &self.type_colis,
            Placeholder::LienCommande => &self.lien_commande,
            Placeholder::Reference => &self.reference,
        }
    }
}

/// A checked template: every `{{name}}` is known, so rendering cannot fail.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageTemplate {
    segments: Vec<Segment>,
}

impl Default for MessageTemplate {
    fn default() -> Self {
        // The built-in template is covered by a test; parsing it cannot fail at run time.
        Self::parse(DEFAULT_TEMPLATE).unwrap_or_else(|_| Self {
            segments: vec![Segment::Text(DEFAULT_TEMPLATE.to_string())],
        })
    }
}

impl MessageTemplate {
    pub fn parse(text: &str) -> Result<Self, TemplateError> {
        // A file saved by an editor ends with a newline the message should not carry.
        let text = text.trim_end_matches(['\n', '\r']);
        if text.trim().is_empty() {
            return Err(TemplateError::Empty);
        }
        let mut segments = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find("{{") {
            if start > 0 {
                segments.push(Segment::Text(rest[..start].to_string()));
            }
            let after = &rest[start + 2..];
            let end = after.find("}}").ok_or_else(|| {
                let consumed = text.len() - rest.len() + start;
                TemplateError::Unclosed(text[..consumed].matches('\n').count() + 1)
            })?;
            let name = after[..end].trim();
            let placeholder = Placeholder::parse(name)
                .ok_or_else(|| TemplateError::UnknownPlaceholder(name.to_string()))?;
            segments.push(Segment::Field(placeholder));
            rest = &after[end + 2..];
        }
        if !rest.is_empty() {
            segments.push(Segment::Text(rest.to_string()));
        }
        Ok(Self { segments })
    }

    /// The template as staff write it, `{{name}}` for each placeholder: what the settings
    /// form starts from. Parsing it again gives the same template.
    pub fn text(&self) -> String {
        let mut out = String::with_capacity(512);
        for segment in &self.segments {
            match segment {
                Segment::Text(text) => out.push_str(text),
                Segment::Field(placeholder) => {
                    out.push_str("{{");
                    out.push_str(placeholder.name());
                    out.push_str("}}");
                }
            }
        }
        out
    }

    /// The longest message, in UTF-16 code units, this template renders for any order the
    /// relay accepts: each placeholder at the most its field can hold (every character
    /// counted as two units, as an emoji would be), the link with the longest order id.
    pub fn longest_message(&self, link_base: &str) -> usize {
        // i64::MAX has 19 digits.
        let link = link_base.encode_utf16().count() + 19;
        self.segments
            .iter()
            .map(|segment| match segment {
                Segment::Text(text) => text.encode_utf16().count(),
                Segment::Field(placeholder) => match placeholder {
                    Placeholder::VilleDepart => 2 * TextField::VilleDepart.max_chars(),
                    Placeholder::VilleArrivee => 2 * TextField::VilleArrivee.max_chars(),
                    Placeholder::TypeColis => 2 * TextField::TypeMarchandise.max_chars(),
                    Placeholder::Reference => 2 * TextField::Reference.max_chars(),
                    Placeholder::Date => "JJ/MM/AAAA".len(),
                    Placeholder::Prix => MAX_PRICE_CHARS,
                    Placeholder::LienCommande => link,
                },
            })
            .sum()
    }

    /// Refuses a template (with the order link it will use) that could render a message
    /// longer than WhatsApp takes: checked when the template is loaded or saved, so a valid
    /// order can never produce a message that is cut or refused.
    pub fn check_fits(&self, link_base: &str) -> Result<(), TemplateError> {
        let longest = self.longest_message(link_base);
        if longest > MAX_MESSAGE_UTF16 {
            Err(TemplateError::TooLong {
                longest,
                link_chars: link_base.chars().count() + 19,
            })
        } else {
            Ok(())
        }
    }

    pub fn render(&self, fields: &TemplateFields) -> String {
        let mut out = String::with_capacity(512);
        for segment in &self.segments {
            match segment {
                Segment::Text(text) => out.push_str(text),
                Segment::Field(placeholder) => out.push_str(fields.get(*placeholder)),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::order::{Order, OrderFields};

    fn order() -> Order {
        Order::parse(OrderFields::example(), OrderFields::EXAMPLE_TODAY).expect("valid order")
    }

    fn order_with(change: impl FnOnce(&mut OrderFields)) -> Order {
        let mut fields = OrderFields::example();
        change(&mut fields);
        Order::parse(fields, OrderFields::EXAMPLE_TODAY).expect("valid order")
    }

    const LINK: &str = "https://camionback.com/commande/";

    #[test]
    fn the_spec_template_renders_exactly() {
        let fields = TemplateFields::of(&order(), "https://camionback.com/commande/");
        let text = MessageTemplate::default().render(&fields);
        assert_eq!(
            text,
            "🚛 *Nouvelle commande disponible sur CamionBack !*\n\
             \n\
             📍 Ville de départ : Casablanca\n\
             🎯 Ville d’arrivée : Marrakech\n\
             🗓️ Date souhaitée : 03/11/2025\n\
             💰 Prix proposé : 4 500 MAD\n\
             📦 Type de marchandise : Palettes\n\
             \n\
             👉 Cliquez ici pour voir la commande :\n\
             🔗 https://camionback.com/commande/123\n\
             \n\
             Ne laissez pas votre camion revenir à vide !\n\
             🌐 www.camionback.com"
        );
        assert_eq!(
            MessageTemplate::parse(DEFAULT_TEMPLATE),
            Ok(MessageTemplate::default())
        );
    }

    #[test]
    fn the_text_of_a_template_is_what_was_written() {
        assert_eq!(
            MessageTemplate::default().text(),
            DEFAULT_TEMPLATE.trim_end_matches('\n')
        );
        let spaced =
            MessageTemplate::parse("Trajet {{ ville_depart }} → {{ville_arrivee}}").expect("valid");
        assert_eq!(spaced.text(), "Trajet {{ville_depart}} → {{ville_arrivee}}");
        assert_eq!(MessageTemplate::parse(&spaced.text()), Ok(spaced));
    }

    #[test]
    fn an_unknown_placeholder_is_named() {
        let err = MessageTemplate::parse("Départ {{ville_depart}} {{ville}}").unwrap_err();
        assert_eq!(err, TemplateError::UnknownPlaceholder("ville".into()));
        assert!(err.to_string().contains("{{ville}}"), "{err}");
        assert_eq!(
            MessageTemplate::parse("ligne 1\nligne {{prix"),
            Err(TemplateError::Unclosed(2))
        );
        assert_eq!(MessageTemplate::parse("\n"), Err(TemplateError::Empty));
    }

    #[test]
    fn cloud_template_parameters_follow_the_spec_order() {
        let fields = TemplateFields::of(&order(), "https://x.test/c/");
        assert_eq!(
            fields.template_parameters(),
            [
                "Casablanca",
                "Marrakech",
                "03/11/2025",
                "4 500",
                "Palettes",
                "https://x.test/c/123"
            ]
        );
    }

    #[test]
    fn a_customer_cannot_format_the_message_nor_break_its_lines() {
        let order = order_with(|f| {
            f.ville_depart = "*GRATUIT* Casablanca".into();
            f.reference = "> CMD-1".into();
            f.ville_arrivee = "Marrakech\n\n> Payez d'abord".into();
            f.type_marchandise = "~Palettes~ _urgent_ ```x```".into();
        });
        let fields = TemplateFields::of(&order, LINK);
        let text = MessageTemplate::default().render(&fields);
        assert_eq!(
            text.lines().count(),
            MessageTemplate::default()
                .render(&TemplateFields::of(&self::order(), LINK))
                .lines()
                .count(),
            "the customer's line breaks are gone: {text}"
        );
        assert!(
            text.contains("📍 Ville de départ : ∗GRATUIT∗ Casablanca\n"),
            "{text}"
        );
        assert!(
            text.contains("🎯 Ville d’arrivée : Marrakech > Payez d'abord\n"),
            "folded onto the line, the `>` is no quote any more: {text}"
        );
        assert!(
            text.contains("📦 Type de marchandise : ∼Palettes∼ ˍurgentˍ ˋˋˋxˋˋˋ\n"),
            "{text}"
        );
        assert_eq!(
            text.matches('*').count(),
            2,
            "only the template's own bold title keeps its stars"
        );
        assert_eq!(
            fields.reference, "› CMD-1",
            "a field that starts a line cannot quote"
        );
        assert_eq!(
            fields.template_parameters()[4],
            "∼Palettes∼ ˍurgentˍ ˋˋˋxˋˋˋ",
            "the Cloud API template parameters get the same values"
        );
    }

    #[test]
    fn placeholders_in_a_field_stay_text() {
        let order = order_with(|f| f.ville_depart = "{{prix}} {{reference}}".into());
        let text = MessageTemplate::default().render(&TemplateFields::of(&order, LINK));
        assert!(
            text.contains("📍 Ville de départ : {{prix}} {{reference}}\n"),
            "a field is never read as a template: {text}"
        );
    }

    #[test]
    fn the_longest_accepted_order_fits_in_one_whatsapp_message() {
        let template = MessageTemplate::default();
        assert_eq!(template.check_fits(LINK), Ok(()));
        let longest = order_with(|f| {
            f.id = i64::MAX;
            f.reference = "🚛".repeat(40);
            f.ville_depart = "🚛".repeat(80);
            f.ville_arrivee = "🚛".repeat(80);
            f.type_marchandise = "🚛".repeat(200);
            f.prix = 999_999.99;
        });
        let text = template.render(&TemplateFields::of(&longest, LINK));
        let units = text.encode_utf16().count();
        assert!(
            units <= template.longest_message(LINK),
            "the bound holds: {units} > {}",
            template.longest_message(LINK)
        );
        assert!(units <= MAX_MESSAGE_UTF16);
    }

    #[test]
    fn a_template_that_could_exceed_whatsapp_s_limit_is_refused_when_loaded() {
        // A city counts 80 characters, 160 units: 25 of them fit in 4,096, 26 do not.
        let repeated = MessageTemplate::parse(&"{{ville_depart}}".repeat(26)).expect("parses");
        let err = repeated.check_fits(LINK).unwrap_err();
        assert_eq!(
            err,
            TemplateError::TooLong {
                longest: 26 * 160,
                link_chars: LINK.chars().count() + 19
            }
        );
        assert!(err.to_string().contains("4096"), "{err}");
        assert_eq!(
            MessageTemplate::parse(&"{{ville_depart}}".repeat(25))
                .expect("parses")
                .check_fits(LINK),
            Ok(())
        );
        let long_link = "https://camionback.com/".to_string() + &"x".repeat(4_000);
        assert!(
            MessageTemplate::default().check_fits(&long_link).is_err(),
            "the link base counts too"
        );
    }
}
