//! Orders ("commandes") as CamionBack publishes them, checked once at the edge so the rest of
//! the relay only ever sees complete, broadcastable orders.

use std::fmt;

use chrono::{Days, NaiveDate};

use crate::text;

/// CamionBack's own id for an order; the key that makes intake idempotent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OrderId(pub i64);

impl fmt::Display for OrderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The least price an order may carry: a freight price under 1 MAD is a unit mistake, and the
/// message would show it as "0".
pub const MIN_PRICE_MAD: f64 = 1.0;
/// The greatest price an order may carry. The dearest ordinary road haul in Morocco (a full
/// 40 t truck from Tanger to Lagouira, ~2,800 km) costs tens of thousands of MAD, and an
/// exceptional convoy a few hundred thousand; one million leaves a wide margin above both
/// while refusing the extra zeros of a typo (and `1e20`, which printed as
/// "184 467 440 737 095 516,15 MAD").
pub const MAX_PRICE_MAD: f64 = 1_000_000.0;

/// A price in MAD: finite, within [`MIN_PRICE_MAD`]..=[`MAX_PRICE_MAD`] for an order taken in.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Price(f64);

impl Price {
    pub fn new(mad: f64) -> Result<Self, OrderError> {
        if !mad.is_finite() || mad <= 0.0 {
            Err(OrderError::InvalidPrice(mad.to_string()))
        } else if !(MIN_PRICE_MAD..=MAX_PRICE_MAD).contains(&mad) {
            Err(OrderError::PriceOutOfRange(mad.to_string()))
        } else {
            Ok(Self(mad))
        }
    }

    /// A price the relay stored itself: finite and not negative is all that is asked of it
    /// (rows written before the range was enforced are still shown).
    fn stored(mad: f64) -> Result<Self, OrderError> {
        if mad.is_finite() && mad >= 0.0 {
            Ok(Self(mad))
        } else {
            Err(OrderError::InvalidPrice(mad.to_string()))
        }
    }

    pub fn mad(self) -> f64 {
        self.0
    }

    /// As carriers read prices: `4500` -> `4 500`, `12500.5` -> `12 500,50`.
    pub fn to_french(self) -> String {
        let cents = (self.0 * 100.0).round() as u64;
        let (whole, fraction) = (cents / 100, cents % 100);
        let digits = whole.to_string();
        let mut grouped = String::with_capacity(digits.len() + digits.len() / 3);
        for (i, digit) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                grouped.push(' ');
            }
            grouped.push(digit);
        }
        if fraction == 0 {
            grouped
        } else {
            format!("{grouped},{fraction:02}")
        }
    }
}

/// The longest `{{prix}}` an accepted order renders to: `999 999,99`.
pub const MAX_PRICE_CHARS: usize = 10;

/// The free-text fields of an order, with the most characters each may hold once cleaned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextField {
    Reference,
    VilleDepart,
    VilleArrivee,
    TypeMarchandise,
    Statut,
    CreatedAt,
}

impl TextField {
    pub fn name(self) -> &'static str {
        match self {
            Self::Reference => "reference",
            Self::VilleDepart => "ville_depart",
            Self::VilleArrivee => "ville_arrivee",
            Self::TypeMarchandise => "type_marchandise",
            Self::Statut => "statut",
            Self::CreatedAt => "created_at",
        }
    }

    /// Characters (Unicode scalar values) allowed after cleaning.
    ///
    /// - `reference`: 40. CamionBack's references are `CMD-2025-123` (12 characters); 40
    ///   leaves room for a longer numbering while staying an identifier staff can type.
    /// - cities: 80. Morocco's longest commune names ("Sidi Bouzid Arba Ayacha", "Ouled Ayad
    ///   Moulay Bouazza") are under 30 characters; 80 also fits a district after a dash
    ///   ("Casablanca - Aïn Sebaâ") or the Arabic spelling, not an address or a paragraph.
    /// - `type_marchandise`: 200, a sentence or two ("Matériaux de construction : 20 sacs de
    ///   ciment, fer à béton, carreaux 60x60"): what a carrier needs to decide, on one line.
    /// - `statut`: 40 and `created_at`: 64 are not in the message; bounded because they reach
    ///   the history and the logs.
    pub fn max_chars(self) -> usize {
        match self {
            Self::Reference => 40,
            Self::VilleDepart | Self::VilleArrivee => 80,
            Self::TypeMarchandise => 200,
            Self::Statut => 40,
            Self::CreatedAt => 64,
        }
    }

    /// Whether a link in it is refused: every field a message can show.
    fn refuses_links(self) -> bool {
        !matches!(self, Self::Statut | Self::CreatedAt)
    }
}

/// How far before today `date_souhaitee` may be: a relay stopped over a long weekend or a
/// holiday week catches up on the orders of those days when it starts, and CamionBack's
/// clock may be a day ahead of ours. Older, the date is a typo (wrong year) or the order
/// is stale, and a carrier cannot act on it.
pub const DATE_PAST_DAYS: i64 = 7;
/// How far after today `date_souhaitee` may be: freight is booked days or weeks ahead, a
/// seasonal contract months ahead; further than a year is a wrong year (`2205`).
pub const DATE_FUTURE_DAYS: i64 = 365;

/// An order the relay can broadcast. Built by [`Order::parse`] (an order arriving from
/// CamionBack: every rule) or [`Order::restore`] (one the relay stored itself), its text
/// fields are always clean, single-line, and within [`TextField::max_chars`].
#[derive(Debug, Clone, PartialEq)]
pub struct Order {
    pub id: OrderId,
    pub reference: String,
    pub ville_depart: String,
    pub ville_arrivee: String,
    pub date_souhaitee: NaiveDate,
    pub prix: Price,
    pub type_marchandise: String,
    /// CamionBack's status for the order. `None`: the field was absent (or null), and the
    /// order is open; `Some("")`: it was sent empty, which is not "open".
    pub statut: Option<String>,
    /// As the API gave it (cleaned); kept for the history, never interpreted.
    pub created_at: Option<String>,
}

/// The raw fields of an order before checking, as any intake (webhook, polling) reads them.
#[derive(Debug, Clone, Default)]
pub struct OrderFields {
    pub id: i64,
    pub reference: String,
    pub ville_depart: String,
    pub ville_arrivee: String,
    pub date_souhaitee: String,
    pub prix: f64,
    pub type_marchandise: String,
    pub statut: Option<String>,
    pub created_at: Option<String>,
}

/// Why an order is refused. Every message names the field, and quotes what was sent only
/// cleaned and shortened, so an error can be logged and answered as is.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OrderError {
    #[error("id de commande invalide : {0} (entier positif attendu)")]
    InvalidId(i64),
    #[error("champ « {0} » vide")]
    EmptyField(&'static str),
    #[error("champ « {field} » trop long : {chars} caractères, {max} au plus")]
    TooLong {
        field: &'static str,
        chars: usize,
        max: usize,
    },
    #[error(
        "champ « {field} » : lien refusé (« {link} ») ; une commande ne peut pas faire envoyer de lien depuis le numéro de CamionBack"
    )]
    Link { field: &'static str, link: String },
    #[error("date_souhaitee invalide « {0} » (format AAAA-MM-JJ attendu)")]
    InvalidDate(String),
    #[error(
        "date_souhaitee {date} hors de la période acceptée : du {earliest} au {latest} (au plus {DATE_PAST_DAYS} jours avant aujourd'hui, {DATE_FUTURE_DAYS} jours après)"
    )]
    DateOutOfRange {
        date: String,
        earliest: String,
        latest: String,
    },
    #[error("prix invalide « {0} » (nombre positif attendu)")]
    InvalidPrice(String),
    #[error("prix {0} MAD hors limites (de 1 à 1 000 000 MAD)")]
    PriceOutOfRange(String),
}

impl OrderError {
    /// The order field the error is about, as CamionBack names it.
    pub fn field(&self) -> &'static str {
        match self {
            Self::InvalidId(_) => "id",
            Self::EmptyField(field) | Self::TooLong { field, .. } | Self::Link { field, .. } => {
                field
            }
            Self::InvalidDate(_) | Self::DateOutOfRange { .. } => "date_souhaitee",
            Self::InvalidPrice(_) | Self::PriceOutOfRange(_) => "prix",
        }
    }
}

/// How strictly fields are read: an order arriving is held to every rule; one read back from
/// the relay's own database only has to be readable.
#[derive(Clone, Copy)]
enum Intake {
    Arriving { today: NaiveDate },
    Stored,
}

impl Order {
    /// An order arriving from CamionBack, by webhook or polling: the one check every intake
    /// goes through. `today` is the relay's date (UTC), a parameter so tests choose it.
    pub fn parse(fields: OrderFields, today: NaiveDate) -> Result<Self, OrderError> {
        Self::read(fields, Intake::Arriving { today })
    }

    /// An order the relay stored itself, checked when it came in. Time has moved on since
    /// (its date may now be past) and rows written before today's rules are still shown, so
    /// only what makes it unreadable is refused; its text is cleaned and cut to the limits
    /// all the same, so no message is ever built from more.
    pub fn restore(fields: OrderFields) -> Result<Self, OrderError> {
        Self::read(fields, Intake::Stored)
    }

    fn read(fields: OrderFields, intake: Intake) -> Result<Self, OrderError> {
        if fields.id <= 0 {
            return Err(OrderError::InvalidId(fields.id));
        }
        let text = |field: TextField, raw: &str| -> Result<String, OrderError> {
            let value = text::clean(raw);
            let chars = value.chars().count();
            let max = field.max_chars();
            if chars > max {
                match intake {
                    Intake::Arriving { .. } => {
                        return Err(OrderError::TooLong {
                            field: field.name(),
                            chars,
                            max,
                        });
                    }
                    Intake::Stored => return Ok(value.chars().take(max).collect()),
                }
            }
            if field.refuses_links()
                && matches!(intake, Intake::Arriving { .. })
                && let Some(link) = text::find_link(&value)
            {
                return Err(OrderError::Link {
                    field: field.name(),
                    link: text::excerpt(link, 60),
                });
            }
            Ok(value)
        };
        let required = |field: TextField, raw: &str| {
            let value = text(field, raw)?;
            if value.is_empty() {
                Err(OrderError::EmptyField(field.name()))
            } else {
                Ok(value)
            }
        };
        let reference = required(TextField::Reference, &fields.reference)?;
        let ville_depart = required(TextField::VilleDepart, &fields.ville_depart)?;
        let ville_arrivee = required(TextField::VilleArrivee, &fields.ville_arrivee)?;
        let type_marchandise = required(TextField::TypeMarchandise, &fields.type_marchandise)?;
        // Absent stays absent; sent empty stays empty, which `is_open` does not take for open.
        let statut = fields
            .statut
            .as_deref()
            .map(|raw| text(TextField::Statut, raw))
            .transpose()?;
        let created_at = fields
            .created_at
            .as_deref()
            .map(|raw| text(TextField::CreatedAt, raw))
            .transpose()?
            .filter(|value| !value.is_empty());
        let date_text = text::clean(&fields.date_souhaitee);
        let date_souhaitee = NaiveDate::parse_from_str(&date_text, "%Y-%m-%d")
            .map_err(|_| OrderError::InvalidDate(text::excerpt(&date_text, 40)))?;
        let prix = match intake {
            Intake::Arriving { today } => {
                check_date(date_souhaitee, today)?;
                Price::new(fields.prix)?
            }
            Intake::Stored => Price::stored(fields.prix)?,
        };
        Ok(Self {
            id: OrderId(fields.id),
            reference,
            ville_depart,
            ville_arrivee,
            date_souhaitee,
            prix,
            type_marchandise,
            statut,
            created_at,
        })
    }

    /// Only open orders are broadcast: an order that is already closed or cancelled when it
    /// reaches us must not wake up every carrier. A status sent empty is not "open" either.
    pub fn is_open(&self) -> bool {
        statut_is_open(self.statut.as_deref())
    }

    /// `DD/MM/YYYY`, as written in the message.
    pub fn date_french(&self) -> String {
        self.date_souhaitee.format("%d/%m/%Y").to_string()
    }
}

fn check_date(date: NaiveDate, today: NaiveDate) -> Result<(), OrderError> {
    let earliest = today
        .checked_sub_days(Days::new(DATE_PAST_DAYS.unsigned_abs()))
        .unwrap_or(NaiveDate::MIN);
    let latest = today
        .checked_add_days(Days::new(DATE_FUTURE_DAYS.unsigned_abs()))
        .unwrap_or(NaiveDate::MAX);
    if (earliest..=latest).contains(&date) {
        Ok(())
    } else {
        let french = |d: NaiveDate| d.format("%d/%m/%Y").to_string();
        Err(OrderError::DateOutOfRange {
            date: french(date),
            earliest: french(earliest),
            latest: french(latest),
        })
    }
}

impl OrderFields {
    /// The day the example order is taken in by tests: two days before its date.
    pub const EXAMPLE_TODAY: NaiveDate = match NaiveDate::from_ymd_opt(2025, 11, 1) {
        Some(day) => day,
        None => NaiveDate::MIN,
    };

    /// The order of the specification's example (CMD-2025-123, Casablanca → Marrakech): the
    /// message preview before any real order has arrived, and the tests' usual order.
    pub fn example() -> Self {
        Self {
            id: 123,
            reference: "CMD-2025-123".into(),
            ville_depart: "Casablanca".into(),
            ville_arrivee: "Marrakech".into(),
            date_souhaitee: "2025-11-03".into(),
            prix: 4500.0,
            type_marchandise: "Palettes".into(),
            statut: None,
            created_at: None,
        }
    }
}

/// Whether CamionBack's `statut` (cleaned) says an order is open: absent, or `ouverte` in any
/// case. Every other word, empty included, is an order that is filled, cancelled or not yet
/// published: it is not broadcast, and one being broadcast stops (`order.updated`,
/// `order.closed`, or the API asked while deliveries are queued).
pub fn statut_is_open(statut: Option<&str>) -> bool {
    match statut {
        None => true,
        Some(s) => s.eq_ignore_ascii_case("ouverte"),
    }
}

/// CamionBack's `statut` as the relay keeps it when it closes an order: one line of at most
/// [`TextField::Statut`]'s length, so it can be logged and shown whatever was sent.
pub fn clean_statut(raw: &str) -> String {
    crate::text::clean(raw)
        .chars()
        .take(TextField::Statut.max_chars())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TODAY: NaiveDate = OrderFields::EXAMPLE_TODAY;

    fn fields() -> OrderFields {
        OrderFields::example()
    }

    fn parse(fields: OrderFields) -> Result<Order, OrderError> {
        Order::parse(fields, TODAY)
    }

    fn with(change: impl FnOnce(&mut OrderFields)) -> Result<Order, OrderError> {
        let mut fields = fields();
        change(&mut fields);
        parse(fields)
    }

    #[test]
    fn prices_read_the_french_way() {
        let french = |mad: f64| Price::new(mad).map(Price::to_french);
        assert_eq!(french(4500.0), Ok("4 500".into()));
        assert_eq!(french(12500.5), Ok("12 500,50".into()));
        assert_eq!(french(1.0), Ok("1".into()));
        assert_eq!(french(999.0), Ok("999".into()));
        assert_eq!(french(1_000_000.0), Ok("1 000 000".into()));
        assert_eq!(french(1234.567), Ok("1 234,57".into()));
        assert_eq!(french(999_999.99), Ok("999 999,99".into()));
        assert_eq!(
            "999 999,99".chars().count(),
            MAX_PRICE_CHARS,
            "the longest price an order can render"
        );
    }

    #[test]
    fn a_price_is_positive_and_below_a_million_dirhams() {
        for refused in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert_eq!(
                Price::new(refused),
                Err(OrderError::InvalidPrice(refused.to_string()))
            );
        }
        for refused in [0.5, 1_000_000.01, 1e20] {
            assert_eq!(
                Price::new(refused),
                Err(OrderError::PriceOutOfRange(refused.to_string()))
            );
        }
        let err = with(|f| f.prix = 1e20).unwrap_err();
        assert_eq!(err.field(), "prix");
        assert!(err.to_string().contains("1 000 000 MAD"), "{err}");
    }

    #[test]
    fn an_order_needs_every_field_it_is_broadcast_with() {
        let order = parse(fields()).expect("complete order");
        assert_eq!(order.date_french(), "03/11/2025");
        assert!(order.is_open());

        assert_eq!(
            with(|f| f.ville_arrivee = "  ".into()),
            Err(OrderError::EmptyField("ville_arrivee"))
        );
        assert_eq!(
            with(|f| f.type_marchandise = "\n\u{200B}\t".into()),
            Err(OrderError::EmptyField("type_marchandise")),
            "a field of invisible characters is empty"
        );
        assert!(matches!(
            with(|f| f.date_souhaitee = "03/11/2025".into()),
            Err(OrderError::InvalidDate(_))
        ));
        assert_eq!(with(|f| f.id = 0), Err(OrderError::InvalidId(0)));
    }

    #[test]
    fn text_fields_are_cleaned_once_at_the_edge() {
        let order = with(|f| {
            f.ville_depart = "Casa\nblanca\u{202E}\0".into();
            f.ville_arrivee = "\u{200B}Marrakech\u{FEFF}".into();
            f.type_marchandise = format!("Palettes{}bois", "\n".repeat(10_000));
            f.reference = " CMD-2025-123\r\n".into();
        })
        .expect("cleaned, not refused");
        assert_eq!(order.ville_depart, "Casa blanca");
        assert_eq!(order.ville_arrivee, "Marrakech");
        assert_eq!(order.type_marchandise, "Palettes bois");
        assert_eq!(order.reference, "CMD-2025-123");
    }

    #[test]
    fn each_text_field_has_a_length_limit() {
        for (field, max) in [
            (TextField::Reference, 40),
            (TextField::VilleDepart, 80),
            (TextField::VilleArrivee, 80),
            (TextField::TypeMarchandise, 200),
            (TextField::Statut, 40),
            (TextField::CreatedAt, 64),
        ] {
            assert_eq!(field.max_chars(), max);
            let set = |f: &mut OrderFields, value: String| match field {
                TextField::Reference => f.reference = value,
                TextField::VilleDepart => f.ville_depart = value,
                TextField::VilleArrivee => f.ville_arrivee = value,
                TextField::TypeMarchandise => f.type_marchandise = value,
                TextField::Statut => f.statut = Some(value),
                TextField::CreatedAt => f.created_at = Some(value),
            };
            // "é" is one character, two bytes: the limit counts what a person sees.
            assert!(
                with(|f| set(f, "é".repeat(max))).is_ok(),
                "{} holds {max} characters",
                field.name()
            );
            assert_eq!(
                with(|f| set(f, "é".repeat(max + 1))),
                Err(OrderError::TooLong {
                    field: field.name(),
                    chars: max + 1,
                    max
                })
            );
        }
        let huge = with(|f| f.ville_depart = "x".repeat(60_000)).unwrap_err();
        assert_eq!(huge.field(), "ville_depart");
        assert!(huge.to_string().contains("60000 caractères"), "{huge}");
    }

    #[test]
    fn a_link_in_any_field_of_the_message_is_refused_and_named() {
        let err = with(|f| f.ville_depart = "evil.ma/x".into()).unwrap_err();
        assert_eq!(
            err,
            OrderError::Link {
                field: "ville_depart",
                link: "evil.ma/x".into()
            }
        );
        assert!(err.to_string().contains("« ville_depart »"), "{err}");
        assert_eq!(
            with(|f| f.type_marchandise = "Palettes, voir https://bit.ly/x".into())
                .map_err(|e| e.field()),
            Err("type_marchandise")
        );
        assert_eq!(
            with(|f| f.ville_arrivee = "www.camionback-promo.com".into()).map_err(|e| e.field()),
            Err("ville_arrivee")
        );
        assert_eq!(
            with(|f| f.reference = "wa.me/212600000000".into()).map_err(|e| e.field()),
            Err("reference")
        );
        assert!(
            with(|f| f.ville_depart = "evil\u{200B}.ma".into()).is_err(),
            "a zero-width space does not hide a link: it is removed first"
        );
    }

    #[test]
    fn real_moroccan_orders_pass() {
        for (depart, arrivee, goods) in [
            ("Fès", "Casablanca - Aïn Sebaâ", "Carreaux 60x60"),
            ("Tanger Med", "Laâyoune", "Matériaux (ciment, fer, etc.)"),
            ("Béni Mellal", "Ksar El Kébir", "Palettes 1.20x0.80, 1.5 t"),
            ("الدار البيضاء", "مراكش", "أثاث منزلي"),
            ("Dar Bouazza", "Sidi Bennour", "Électroménager *fragile*"),
        ] {
            let order = with(|f| {
                f.ville_depart = depart.into();
                f.ville_arrivee = arrivee.into();
                f.type_marchandise = goods.into();
            })
            .unwrap_or_else(|err| panic!("{depart} → {arrivee} ({goods}) refused: {err}"));
            assert_eq!(order.ville_depart, depart);
            assert_eq!(order.type_marchandise, goods);
        }
    }

    #[test]
    fn the_desired_date_is_within_a_week_before_and_a_year_after_today() {
        let today = NaiveDate::from_ymd_opt(2026, 3, 10).expect("date");
        let at = |date: &str| {
            let mut fields = fields();
            fields.date_souhaitee = date.into();
            Order::parse(fields, today)
        };
        assert!(at("2026-03-10").is_ok(), "today");
        assert!(at("2026-03-03").is_ok(), "a week ago");
        assert!(at("2027-03-10").is_ok(), "a year ahead");
        for refused in ["2026-03-02", "2027-03-11", "2205-03-10", "0202-03-10"] {
            let err = at(refused).unwrap_err();
            assert!(
                matches!(err, OrderError::DateOutOfRange { .. }),
                "{refused}: {err}"
            );
            assert_eq!(err.field(), "date_souhaitee");
        }
        assert!(
            at("2026-03-02")
                .unwrap_err()
                .to_string()
                .contains("du 03/03/2026 au 10/03/2027"),
            "the error says which dates are accepted"
        );
        assert!(
            Order::parse(fields(), NaiveDate::MIN).is_err()
                && Order::parse(fields(), NaiveDate::MAX).is_err(),
            "no overflow at the ends of the calendar"
        );
    }

    #[test]
    fn errors_never_carry_a_line_break_from_the_order() {
        let err =
            with(|f| f.date_souhaitee = "demain\n2026-01-01 INFO faux journal".into()).unwrap_err();
        assert!(!err.to_string().contains('\n'), "{err}");
        let err = with(|f| f.ville_depart = "x\nhttps://evil.ma\nINFO faux".into()).unwrap_err();
        assert!(!err.to_string().contains('\n'), "{err}");
    }

    #[test]
    fn only_open_orders_are_broadcast() {
        assert!(
            !with(|f| f.statut = Some("annulee".into()))
                .expect("valid")
                .is_open()
        );
        assert!(
            with(|f| f.statut = Some("Ouverte".into()))
                .expect("valid")
                .is_open()
        );
        let absent = with(|f| f.statut = None).expect("valid");
        assert!(absent.is_open(), "no status: open");
        let empty = with(|f| f.statut = Some(" \n ".into())).expect("valid");
        assert_eq!(empty.statut.as_deref(), Some(""));
        assert!(!empty.is_open(), "a status sent empty is not open");
    }

    #[test]
    fn a_stored_order_is_read_back_even_when_today_s_rules_would_refuse_it() {
        let mut old = fields();
        old.date_souhaitee = "2020-01-01".into();
        old.prix = 0.0;
        old.type_marchandise = format!("Palettes\n{}", "x".repeat(500));
        let order = Order::restore(old).expect("stored orders stay readable");
        assert_eq!(order.date_french(), "01/01/2020");
        assert_eq!(
            order.type_marchandise.chars().count(),
            TextField::TypeMarchandise.max_chars(),
            "cut to the limit, so no message is built from more"
        );
        assert!(!order.type_marchandise.contains('\n'));
        let mut broken = fields();
        broken.prix = f64::NAN;
        assert!(Order::restore(broken).is_err());
    }
}
