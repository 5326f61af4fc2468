//! The WhatsApp message: the spec's template, its placeholders, and how an order fills them.

use crate::order::Order;

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
}

/// The values an order gives to the template, in the order the Cloud API template
/// parameters use: ville_depart, ville_arrivee, date, prix, type_colis, lien_commande.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateFields {
    pub ville_depart: String,
    pub ville_arrivee: String,
    pub date: String,
    pub prix: String,
    pub type_colis: String,
    pub lien_commande: String,
    pub reference: String,
}

impl TemplateFields {
    pub fn of(order: &Order, link_base: &str) -> Self {
        Self {
            ville_depart: order.ville_depart.clone(),
            ville_arrivee: order.ville_arrivee.clone(),
            date: order.date_french(),
            prix: order.prix.to_french(),
            type_colis: order.type_marchandise.clone(),
            lien_commande: format!("{link_base}{}", order.id),
            reference: order.reference.clone(),
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
        Order::parse(OrderFields::example()).expect("valid order")
    }

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
}
