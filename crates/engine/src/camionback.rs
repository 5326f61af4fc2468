//! The CamionBack API as the relay uses it: new orders (`/api/orders`), one order's status
//! (`/api/orders/{id}`) and carriers (`/api/transporteurs`). Its JSON is read into private
//! wire structs and converted to domain types here; nothing else in the relay sees the API's
//! spelling.

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use relay_domain::{CarrierId, Order, OrderError, OrderFields, OrderId, clean_statut};
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

use crate::store::CarrierRecord;

/// Orders asked for per page; a full page means there may be more.
pub const ORDERS_PAGE_SIZE: usize = 100;
/// The most an orders page may weigh: 100 orders of 20 KiB each, some fifty times an order as
/// the API documents it (~400 bytes), with room for fields the relay does not read. Read as
/// it arrives and refused past this, so a runaway answer costs this much memory, not its size.
pub const MAX_ORDERS_PAGE_BYTES: usize = 2 * 1024 * 1024;
/// The most a carriers page may weigh: ~25,000 carriers of ~160 bytes, whatever page size
/// CamionBack chooses (ours is not asked for).
pub const MAX_CARRIERS_PAGE_BYTES: usize = 4 * 1024 * 1024;
/// A carrier list longer than this many pages is taken for an API that loops: at 50 carriers
/// a page, 50,000 carriers, five times the broadcast the benchmarks measure.
pub const MAX_CARRIER_PAGES: u32 = 1_000;
/// A list of more carriers than this is refused as a whole (the last list is kept): it bounds
/// the memory a sync holds (~20 MB), and is ten times the 10,000 carriers of the benchmarks.
pub const MAX_CARRIERS: usize = 100_000;
/// The most one order's answer may weigh (an order as documented is ~400 bytes).
pub const MAX_ORDER_BYTES: usize = 64 * 1024;
/// What is kept of an error answer's body for the message (its start says enough).
const MAX_ERROR_BODY_BYTES: usize = 4 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("API CamionBack injoignable : {0}")]
    Unreachable(String),
    #[error("l'API CamionBack a répondu HTTP {status} : {body}")]
    Status { status: u16, body: String },
    #[error("réponse illisible de l'API CamionBack ({what}) : {detail}")]
    Garbage { what: &'static str, detail: String },
    #[error(
        "réponse de l'API CamionBack trop grande ({what}) : plus de {} Mio, refusée sans être lue en entier",
        limit / (1024 * 1024)
    )]
    TooLarge { what: &'static str, limit: usize },
}

/// Why a reply's forward did not land.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ForwardError {
    /// No answer, a timeout, 408, 429 or 5xx: tried again later.
    #[error("{0}")]
    Transient(String),
    /// Any other 4xx: CamionBack will not take this reply as it is; never tried again.
    #[error("{0}")]
    Refused(String),
}

/// The order as CamionBack sends it, in webhooks and in `/api/orders`.
#[derive(Debug, Deserialize)]
pub(crate) struct OrderJson {
    id: i64,
    reference: String,
    ville_depart: String,
    ville_arrivee: String,
    date_souhaitee: String,
    prix: f64,
    type_marchandise: String,
    #[serde(default)]
    statut: Option<String>,
    #[serde(default)]
    created_at: Option<String>,
}

impl OrderJson {
    /// Every rule of an arriving order, today being the relay's date: webhook and polling
    /// both come through here.
    pub(crate) fn into_order(self) -> Result<Order, OrderError> {
        let fields = OrderFields {
            id: self.id,
            reference: self.reference,
            ville_depart: self.ville_depart,
            ville_arrivee: self.ville_arrivee,
            date_souhaitee: self.date_souhaitee,
            prix: self.prix,
            type_marchandise: self.type_marchandise,
            statut: self.statut,
            created_at: self.created_at,
        };
        Order::parse(fields, crate::clock::today())
    }
}

/// An order's state as the close webhooks (`order.updated`, `order.closed`) and
/// `GET /api/orders/{id}` give it: only `id` and `statut` are read, the other fields may be
/// there or not.
#[derive(Debug, Deserialize)]
pub(crate) struct OrderStateJson {
    pub id: i64,
    #[serde(default)]
    pub statut: Option<String>,
}

#[derive(Deserialize)]
struct OrderAnswer {
    order: OrderAnswerJson,
}

#[derive(Deserialize)]
struct OrderAnswerJson {
    #[serde(default)]
    id: Option<i64>,
    #[serde(default)]
    statut: Option<String>,
}

#[derive(Deserialize)]
struct OrdersPage {
    orders: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
struct CarriersPage {
    transporteurs: Vec<CarrierJson>,
    #[serde(default)]
    next_page: Option<u32>,
}

#[derive(Deserialize)]
struct CarrierJson {
    id: i64,
    #[serde(default)]
    nom: String,
    #[serde(default)]
    telephone: String,
    #[serde(default)]
    statut: String,
}

/// Where a poll starts.
#[derive(Debug, Clone, Copy)]
pub enum Since {
    /// After the last order id seen.
    Id(i64),
    /// Very first poll: only orders created after this instant.
    CreatedAfter(DateTime<Utc>),
}

/// One order of a poll: either usable, or refused with the reason (the poll goes on).
pub type PolledOrder = Result<Order, (i64, String)>;

#[derive(Clone)]
pub struct CamionBackApi {
    http: reqwest::Client,
    base: Url,
    token: Option<SecretString>,
}

impl CamionBackApi {
    pub fn new(mut base: Url, token: Option<SecretString>) -> Result<Self, ApiError> {
        // `https://host/prefix` must keep its prefix when `api/orders` is joined to it.
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|err| ApiError::Unreachable(err.to_string()))?;
        Ok(Self { http, base, token })
    }

    /// GETs `path` and reads its body, at most `limit` bytes of it: a longer answer is
    /// refused as soon as it is known to be (its `Content-Length`, or the bytes read so far).
    async fn get(
        &self,
        path: &str,
        query: &[(&str, String)],
        what: &'static str,
        limit: usize,
    ) -> Result<bytes_body::Body, ApiError> {
        let url = self
            .base
            .join(path)
            .map_err(|err| ApiError::Unreachable(err.to_string()))?;
        let mut request = self.http.get(url).query(query);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token.expose_secret());
        }
        let response = request.send().await.map_err(unreachable)?;
        let status = response.status();
        if status != StatusCode::OK {
            let body = match read_capped(response, MAX_ERROR_BODY_BYTES).await {
                Ok(body) | Err(Cut::TooLarge(body)) => body,
                Err(Cut::Broken(_)) => bytes::BytesMut::new(),
            };
            return Err(ApiError::Status {
                status: status.as_u16(),
                body: String::from_utf8_lossy(&body).chars().take(200).collect(),
            });
        }
        if response
            .content_length()
            .is_some_and(|length| length > limit as u64)
        {
            return Err(ApiError::TooLarge { what, limit });
        }
        match read_capped(response, limit).await {
            Ok(bytes) => Ok(bytes_body::Body(bytes.freeze())),
            Err(Cut::TooLarge(_)) => Err(ApiError::TooLarge { what, limit }),
            Err(Cut::Broken(err)) => Err(unreachable(err)),
        }
    }

    /// Posts a carrier's reply to `POST /api/orders/{order_id}/reponses`. Every attempt of one
    /// reply carries the same `Idempotency-Key`, so a post whose answer was lost and is sent
    /// again is taken once.
    pub async fn post_reply(
        &self,
        order_id: i64,
        idempotency_key: &str,
        body: &serde_json::Value,
    ) -> Result<(), ForwardError> {
        let url = self
            .base
            .join(&format!("api/orders/{order_id}/reponses"))
            .map_err(|err| ForwardError::Refused(format!("adresse invalide : {err}")))?;
        let mut request = self
            .http
            .post(url)
            .header("Idempotency-Key", idempotency_key)
            .json(body);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token.expose_secret());
        }
        let response = request
            .send()
            .await
            .map_err(|err| ForwardError::Transient(unreachable(err).to_string()))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let body = match read_capped(response, MAX_ERROR_BODY_BYTES).await {
            Ok(body) | Err(Cut::TooLarge(body)) => body,
            Err(Cut::Broken(_)) => bytes::BytesMut::new(),
        };
        let said = ApiError::Status {
            status: status.as_u16(),
            body: String::from_utf8_lossy(&body).chars().take(200).collect(),
        }
        .to_string();
        if status == StatusCode::REQUEST_TIMEOUT
            || status == StatusCode::TOO_MANY_REQUESTS
            || status.is_server_error()
        {
            Err(ForwardError::Transient(said))
        } else {
            Err(ForwardError::Refused(said))
        }
    }

    /// One page of orders, ascending by id. Orders the relay cannot use are returned as
    /// errors with their id, so the poll can log them and move past them.
    pub async fn list_orders(&self, since: Since) -> Result<Vec<PolledOrder>, ApiError> {
        let mut query = vec![("limit", ORDERS_PAGE_SIZE.to_string())];
        match since {
            Since::Id(id) => query.push(("since_id", id.to_string())),
            Since::CreatedAfter(at) => query.push((
                "created_after",
                at.to_rfc3339_opts(SecondsFormat::Secs, true),
            )),
        }
        let what = "liste des commandes";
        let body = self
            .get("api/orders", &query, what, MAX_ORDERS_PAGE_BYTES)
            .await?;
        let page: OrdersPage = body.json(what)?;
        Ok(page
            .orders
            .into_iter()
            .map(|value| {
                let id = value
                    .get("id")
                    .and_then(serde_json::Value::as_i64)
                    .unwrap_or(0);
                serde_json::from_value::<OrderJson>(value)
                    .map_err(|err| (id, err.to_string()))
                    .and_then(|json| json.into_order().map_err(|err| (id, err.to_string())))
            })
            .collect())
    }

    /// `GET /api/orders/{id}` → `{"order":{…}}`: the order's `statut` as CamionBack has it
    /// now, cleaned (`None`: absent or `null`, an open order). A 404 is
    /// [`ApiError::Status`] like any other refusal.
    pub async fn order_statut(&self, id: OrderId) -> Result<Option<String>, ApiError> {
        let what = "commande";
        let body = self
            .get(&format!("api/orders/{}", id.0), &[], what, MAX_ORDER_BYTES)
            .await?;
        let answer: OrderAnswer = body.json(what)?;
        if let Some(other) = answer.order.id.filter(|other| *other != id.0) {
            return Err(ApiError::Garbage {
                what,
                detail: format!("la commande {other} au lieu de la commande {}", id.0),
            });
        }
        Ok(answer.order.statut.as_deref().map(clean_statut))
    }

    /// Every carrier the API lists, all pages. Fails as a whole: a partial list must never
    /// replace a complete one.
    pub async fn list_carriers(&self) -> Result<Vec<CarrierRecord>, ApiError> {
        let what = "liste des transporteurs";
        let mut carriers = Vec::new();
        let mut page = 1;
        for _ in 0..MAX_CARRIER_PAGES {
            let body = self
                .get(
                    "api/transporteurs",
                    &[("statut", "valide".to_string()), ("page", page.to_string())],
                    what,
                    MAX_CARRIERS_PAGE_BYTES,
                )
                .await?;
            let answer: CarriersPage = body.json(what)?;
            if carriers.len() + answer.transporteurs.len() > MAX_CARRIERS {
                return Err(ApiError::Garbage {
                    what,
                    detail: format!("plus de {MAX_CARRIERS} transporteurs listés"),
                });
            }
            carriers.extend(answer.transporteurs.into_iter().map(|c| CarrierRecord {
                id: CarrierId(c.id),
                name: c.nom,
                phone_raw: c.telephone,
                statut: c.statut,
            }));
            match answer.next_page {
                Some(next) if next > page => page = next,
                Some(next) => {
                    return Err(ApiError::Garbage {
                        what,
                        detail: format!("next_page {next} après la page {page}"),
                    });
                }
                None => return Ok(carriers),
            }
        }
        Err(ApiError::Garbage {
            what,
            detail: format!("plus de {MAX_CARRIER_PAGES} pages"),
        })
    }
}

/// A request that failed before any answer (or while reading it), in words.
fn unreachable(err: reqwest::Error) -> ApiError {
    ApiError::Unreachable(if err.is_timeout() {
        "délai dépassé".to_string()
    } else {
        // Without the URL: it is ours and adds noise, and reqwest never prints headers.
        err.without_url().to_string()
    })
}

/// Why a body was not read to its end.
enum Cut {
    /// It went over the limit; what was read before.
    TooLarge(bytes::BytesMut),
    /// The connection broke off, or the time ran out.
    Broken(reqwest::Error),
}

/// Reads a body chunk by chunk, `limit` bytes at most: past that it stops reading (and the
/// connection is dropped), so memory never holds more than `limit` of it.
async fn read_capped(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<bytes::BytesMut, Cut> {
    let mut body = bytes::BytesMut::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > limit {
                    return Err(Cut::TooLarge(body));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body),
            Err(err) => return Err(Cut::Broken(err)),
        }
    }
}

mod bytes_body {
    use super::ApiError;

    pub struct Body(pub bytes::Bytes);

    impl Body {
        pub fn json<T: serde::de::DeserializeOwned>(
            &self,
            what: &'static str,
        ) -> Result<T, ApiError> {
            serde_json::from_slice(&self.0).map_err(|err| ApiError::Garbage {
                what,
                detail: err.to_string(),
            })
        }
    }
}
