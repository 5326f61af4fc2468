//! Orders ("commandes") as CamionBack publishes them, checked once at the edge so the rest of
//! the relay only ever sees complete, broadcastable orders.

use std::fmt;

use chrono::NaiveDate;

/// CamionBack's own id for an order; the key that makes intake idempotent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OrderId(pub i64);

impl fmt::Display for OrderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A price in MAD: finite and not negative.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Price(f64);

impl Price {
    pub fn new(mad: f64) -> Result<Self, OrderError> {
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

/// An order the relay can broadcast.
#[derive(Debug, Clone, PartialEq)]
pub struct Order {
    pub id: OrderId,
    pub reference: String,
    pub ville_depart: String,
    pub ville_arrivee: String,
    pub date_souhaitee: NaiveDate,
    pub prix: Price,
    pub type_marchandise: String,
    /// CamionBack's status for the order; only an open order (or one without status) is
    /// broadcast.
    pub statut: Option<String>,
    /// As the API gave it; kept for the history, never interpreted.
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

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OrderError {
    #[error("id de commande invalide : {0} (entier positif attendu)")]
    InvalidId(i64),
    #[error("champ « {0} » vide")]
    EmptyField(&'static str),
    #[error("date_souhaitee invalide « {0} » (format AAAA-MM-JJ attendu)")]
    InvalidDate(String),
    #[error("prix invalide « {0} » (nombre positif attendu)")]
    InvalidPrice(String),
}

impl Order {
    pub fn parse(fields: OrderFields) -> Result<Self, OrderError> {
        if fields.id <= 0 {
            return Err(OrderError::InvalidId(fields.id));
        }
        let required = |name: &'static str, value: String| {
            let value = value.trim().to_string();
            if value.is_empty() {
                Err(OrderError::EmptyField(name))
            } else {
                Ok(value)
            }
        };
        let date_souhaitee = NaiveDate::parse_from_str(fields.date_souhaitee.trim(), "%Y-%m-%d")
            .map_err(|_| OrderError::InvalidDate(fields.date_souhaitee.clone()))?;
        Ok(Self {
            id: OrderId(fields.id),
            reference: required("reference", fields.reference)?,
            ville_depart: required("ville_depart", fields.ville_depart)?,
            ville_arrivee: required("ville_arrivee", fields.ville_arrivee)?,
            date_souhaitee,
            prix: Price::new(fields.prix)?,
            type_marchandise: required("type_marchandise", fields.type_marchandise)?,
            statut: fields
                .statut
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty()),
            created_at: fields.created_at,
        })
    }

    /// Only open orders are broadcast: an order that is already closed or cancelled when it
    /// reaches us must not wake up every carrier.
    pub fn is_open(&self) -> bool {
        match &self.statut {
            None => true,
            Some(s) => s.eq_ignore_ascii_case("ouverte"),
        }
    }

    /// `DD/MM/YYYY`, as written in the message.
    pub fn date_french(&self) -> String {
        self.date_souhaitee.format("%d/%m/%Y").to_string()
    }
}

impl OrderFields {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn fields() -> OrderFields {
        OrderFields::example()
    }

    #[test]
    fn prices_read_the_french_way() {
        let french = |mad: f64| Price::new(mad).map(Price::to_french);
        assert_eq!(french(4500.0), Ok("4 500".into()));
        assert_eq!(french(12500.5), Ok("12 500,50".into()));
        assert_eq!(french(0.0), Ok("0".into()));
        assert_eq!(french(999.0), Ok("999".into()));
        assert_eq!(french(1_000_000.0), Ok("1 000 000".into()));
        assert_eq!(french(1234.567), Ok("1 234,57".into()));
        assert!(Price::new(-1.0).is_err());
        assert!(Price::new(f64::NAN).is_err());
    }

    #[test]
    fn an_order_needs_every_field_it_is_broadcast_with() {
        let order = Order::parse(fields()).expect("complete order");
        assert_eq!(order.date_french(), "03/11/2025");
        assert!(order.is_open());

        let mut no_city = fields();
        no_city.ville_arrivee = "  ".into();
        assert_eq!(
            Order::parse(no_city),
            Err(OrderError::EmptyField("ville_arrivee"))
        );
        let mut bad_date = fields();
        bad_date.date_souhaitee = "03/11/2025".into();
        assert!(matches!(
            Order::parse(bad_date),
            Err(OrderError::InvalidDate(_))
        ));
        let mut bad_id = fields();
        bad_id.id = 0;
        assert_eq!(Order::parse(bad_id), Err(OrderError::InvalidId(0)));
    }

    #[test]
    fn only_open_orders_are_broadcast() {
        let mut closed = fields();
        closed.statut = Some("annulee".into());
        assert!(!Order::parse(closed).expect("valid").is_open());
        let mut open = fields();
        open.statut = Some("Ouverte".into());
        assert!(Order::parse(open).expect("valid").is_open());
    }
}
