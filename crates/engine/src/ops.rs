//! What staff do to the relay, once for both shells: the CLI (`camionback-relay`) and the
//! desktop app call these and only adapt their input and output (arguments and text, or
//! Tauri commands and views). Relaunching an order (its preview and the relaunch, with their
//! French texts), the history query built from what staff typed, finding an order by id or
//! reference, pausing and resuming, syncing the carriers, and linking WhatsApp.

use std::sync::Arc;

use relay_domain::{DeliveryStatus, Order, OrderId, UnknownStatus};
use tokio::sync::Notify;

use crate::camionback::ApiError;
use crate::carrier_sync::{CarrierSync, SyncError, SyncReport};
use crate::config::Settings;
use crate::store::{
    FanOut, HistoryCursor, HistoryFilter, HistoryInputError, HistorySort, RelaunchCounts,
    RelaunchMode, SortColumn, Store, StoreError, StoredOrder,
};

mod whatsapp_link;

pub use whatsapp_link::WhatsAppLink;

/// Why an operation was refused; each says it in French, as staff read it.
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    /// No order with this id or reference, as staff typed it.
    #[error("commande « {0} » inconnue")]
    UnknownOrder(String),
    /// No order with this id (the desktop's grid names orders by id).
    #[error("commande {0} inconnue")]
    UnknownOrderId(i64),
    #[error(
        "la commande {reference} n'a pas encore été diffusée automatiquement : sa diffusion est en attente, inutile de la relancer"
    )]
    NotBroadcastYet { reference: String },
    /// CamionBack said the order is no longer open: a relaunch would message carriers about
    /// a truck already found. Staff may still force it (each shell says how).
    #[error(
        "la commande {reference} est pourvue (statut CamionBack « {statut} ») : elle n'est pas relancée ({avoided} envoi(s) évité(s) à sa fermeture)"
    )]
    OrderClosed {
        reference: String,
        statut: String,
        avoided: i64,
    },
    #[error(transparent)]
    Status(#[from] UnknownStatus),
    /// A sort or a page position the history does not know.
    #[error(transparent)]
    History(#[from] HistoryInputError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Api(#[from] ApiError),
}

/// The operations over one database: opened by the CLI for one command
/// ([`Ops::open`]), or taken from the running engine by the desktop ([`crate::Engine::ops`]),
/// whose dispatcher it then wakes after a relaunch or a resume.
#[derive(Clone)]
pub struct Ops {
    store: Store,
    carriers: CarrierSync,
    /// The dispatcher of this process, when one runs; another process's dispatcher sees the
    /// change in the database within a second.
    dispatcher: Option<Arc<Notify>>,
}

impl Ops {
    /// Opens the database of `settings` (creating and migrating it) and the CamionBack API
    /// client when its URL is set; starts nothing.
    pub async fn open(settings: &Settings) -> Result<Self, OpsError> {
        let store = crate::engine::open_store(settings).await?;
        let api = crate::engine::camionback_api(settings)?;
        Ok(Self {
            carriers: CarrierSync::new(api, store.clone()),
            store,
            dispatcher: None,
        })
    }

    pub(crate) fn of_engine(store: Store, carriers: CarrierSync, dispatcher: Arc<Notify>) -> Self {
        Self {
            store,
            carriers,
            dispatcher: Some(dispatcher),
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// An order by id or reference (`123`, `CMD-2025-123`).
    pub async fn find_order(&self, key: &str) -> Result<StoredOrder, OpsError> {
        self.store
            .find_order(key)
            .await?
            .ok_or_else(|| OpsError::UnknownOrder(key.to_string()))
    }

    /// The history's filter from what staff asked: a bad status, sort or page position, or
    /// an unknown order, is refused with its message.
    pub async fn history_filter(&self, query: HistoryQuery) -> Result<HistoryFilter, OpsError> {
        self.checked_history_filter(query.check()?).await
    }

    /// [`Ops::history_filter`] for a query checked already ([`HistoryQuery::check`]).
    pub async fn checked_history_filter(
        &self,
        checked: CheckedQuery,
    ) -> Result<HistoryFilter, OpsError> {
        let order = match checked.order {
            None => None,
            Some(key) => Some(self.find_order(&key).await?.order.id),
        };
        Ok(HistoryFilter {
            order,
            ..checked.filter
        })
    }

    /// An order that may be relaunched: found, and broadcast automatically already.
    pub async fn relaunchable(&self, key: OrderKey<'_>) -> Result<Order, OpsError> {
        let stored = match key {
            OrderKey::Typed(key) => self.find_order(key).await?,
            OrderKey::Id(id) => self
                .store
                .get_order(id)
                .await?
                .ok_or(OpsError::UnknownOrderId(id.0))?,
        };
        if stored.fanned_out_at.is_none() {
            return Err(OpsError::NotBroadcastYet {
                reference: stored.order.reference,
            });
        }
        Ok(stored.order)
    }

    /// What each kind of relaunch of `key` would queue, for staff to choose; for an order
    /// CamionBack closed, its closing too, so the window asks before forcing it.
    pub async fn relaunch_preview(&self, key: OrderKey<'_>) -> Result<RelaunchPreview, OpsError> {
        let order = self.relaunchable(key).await?;
        let counts = self.store.relaunch_counts(order.id).await?;
        let closed = self.closed(&order).await?;
        Ok(RelaunchPreview {
            order,
            counts,
            closed,
        })
    }

    /// Why `order` may not be relaunched without forcing it: CamionBack closed it.
    pub async fn closed(&self, order: &Order) -> Result<Option<ClosedOrder>, OpsError> {
        let Some(closure) = self.store.order_closure(order.id).await? else {
            return Ok(None);
        };
        Ok(Some(ClosedOrder {
            statut: closure.statut,
            closed_at: closure.closed_at,
            avoided: self.store.avoided_by_closure(order.id).await?,
        }))
    }

    /// Relaunches `order` to the carriers `mode` names: the carrier list is refreshed first
    /// (so carriers validated since are included; a failed refresh keeps the last list and
    /// says so), a new batch is queued, and this process's dispatcher is woken. An order
    /// CamionBack closed is refused ([`OpsError::OrderClosed`]), nothing queued:
    /// [`Ops::relaunch_forced`] is staff's override.
    pub async fn relaunch(
        &self,
        order: &Order,
        mode: RelaunchMode,
        now_ms: i64,
    ) -> Result<Relaunched, OpsError> {
        if let Some(closed) = self.closed(order).await? {
            return Err(OpsError::OrderClosed {
                reference: order.reference.clone(),
                statut: closed.statut,
                avoided: closed.avoided,
            });
        }
        self.queue_relaunch(order, mode, false, now_ms).await
    }

    /// [`Ops::relaunch`] even when CamionBack closed the order (`relaunch --force`, the
    /// window's confirmation): its new deliveries are sent despite the closure.
    pub async fn relaunch_forced(
        &self,
        order: &Order,
        mode: RelaunchMode,
        now_ms: i64,
    ) -> Result<Relaunched, OpsError> {
        let forced = self.closed(order).await?.is_some();
        if forced {
            tracing::warn!(
                "relance forcée de la commande {} pourtant pourvue chez CamionBack",
                order.reference
            );
        }
        self.queue_relaunch(order, mode, forced, now_ms).await
    }

    async fn queue_relaunch(
        &self,
        order: &Order,
        mode: RelaunchMode,
        forced: bool,
        now_ms: i64,
    ) -> Result<Relaunched, OpsError> {
        let sync_warning = match self.carriers.sync_now().await {
            Ok(_) | Err(SyncError::NotConfigured) => None,
            Err(err) => Some(format!("{err} — dernière liste de transporteurs utilisée")),
        };
        let counts = self.store.relaunch_counts(order.id).await?;
        let queued = if forced {
            self.store.relaunch_forced(order.id, mode, now_ms).await?
        } else {
            self.store.relaunch(order.id, mode, now_ms).await?
        };
        self.wake_dispatcher();
        Ok(Relaunched {
            reference: order.reference.clone(),
            mode,
            queued,
            doubtful: counts.doubtful,
            sync_warning,
            forced,
        })
    }

    /// Pauses sending: the send in flight finishes, nothing more is claimed by any relay on
    /// this database, across restarts, until [`Ops::resume_sending`]. False when it already
    /// was paused.
    pub async fn pause_sending(&self) -> Result<bool, StoreError> {
        let paused = self.store.pause_sending(crate::clock::now_ms()).await?;
        if paused {
            tracing::info!("envois mis en pause (l'envoi en cours se termine)");
        }
        Ok(paused)
    }

    /// Lifts the pause. False when sending was not paused.
    pub async fn resume_sending(&self) -> Result<bool, StoreError> {
        let resumed = self.store.resume_sending().await?;
        if resumed {
            tracing::info!("envois repris");
            self.wake_dispatcher();
        }
        Ok(resumed)
    }

    /// Refreshes the carrier list from the CamionBack API now.
    pub async fn sync_carriers(&self) -> Result<SyncReport, SyncError> {
        self.carriers.sync_now().await
    }

    fn wake_dispatcher(&self) {
        if let Some(dispatcher) = &self.dispatcher {
            dispatcher.notify_one();
        }
    }
}

/// How staff name the order to relaunch.
#[derive(Debug, Clone, Copy)]
pub enum OrderKey<'a> {
    /// An id or a reference as typed (`123`, `CMD-2025-123`).
    Typed(&'a str),
    /// An id from a list already shown.
    Id(OrderId),
}

/// The confirmation a relaunch asks for.
#[derive(Debug, Clone)]
pub struct RelaunchPreview {
    pub order: Order,
    pub counts: RelaunchCounts,
    /// Set when CamionBack closed the order: relaunching it means forcing it.
    pub closed: Option<ClosedOrder>,
}

/// An order CamionBack said is no longer open, as staff are told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClosedOrder {
    /// CamionBack's word (`attribuee`, `annulee`…).
    pub statut: String,
    /// When the relay learnt it (unix ms).
    pub closed_at: i64,
    /// Deliveries not sent because it closed.
    pub avoided: i64,
}

impl ClosedOrder {
    /// "Commande pourvue — 7 envois évités", as the window and the CLI say it.
    pub fn headline(&self) -> String {
        closed_headline(self.avoided)
    }
}

/// "Commande pourvue — 7 envois évités" (`1 envoi évité`, `0 envoi évité`): what the window
/// says of an order CamionBack closed, given the deliveries its closing skipped.
pub fn closed_headline(avoided: i64) -> String {
    let s = if avoided > 1 { "s" } else { "" };
    format!("Commande pourvue — {avoided} envoi{s} évité{s}")
}

/// What a relaunch queued.
#[derive(Debug, Clone)]
pub struct Relaunched {
    pub reference: String,
    pub mode: RelaunchMode,
    pub queued: FanOut,
    /// Carriers in doubt (`interrupted`, `uncertain`: they may have it) when it was queued:
    /// left out by [`RelaunchMode::Missing`], included by
    /// [`RelaunchMode::MissingAndDoubtful`].
    pub doubtful: i64,
    /// Set when the carrier list could not be refreshed first (the last list was used).
    pub sync_warning: Option<String>,
    /// Sent although CamionBack closed the order (staff forced it).
    pub forced: bool,
}

impl Relaunched {
    /// `CMD-2025-123 : 3 transporteur(s) en file, 1 numéro(s) invalide(s) — …`.
    pub fn summary(&self) -> String {
        format!(
            "{}{} : {} transporteur(s) en file{}{}",
            self.reference,
            if self.forced {
                " (pourvue, relance forcée)"
            } else {
                ""
            },
            self.queued.queued,
            if self.queued.invalid_numbers > 0 {
                format!(", {} numéro(s) invalide(s)", self.queued.invalid_numbers)
            } else {
                String::new()
            },
            if self.queued.queued > 0 {
                " — le relais en cours d'exécution les envoie dans la seconde"
            } else {
                ""
            }
        )
    }

    /// What became of the carriers in doubt, when there are any. `include_hint` is how this
    /// shell lets staff include them (the CLI's flag), said when they were left out.
    pub fn doubtful_note(&self, include_hint: &str) -> Option<String> {
        if self.doubtful == 0 {
            return None;
        }
        match self.mode {
            RelaunchMode::Missing => Some(format!(
                "{} transporteur(s) en doute (envoi interrompu ou incertain : ils l'ont peut-être déjà reçue) laissé(s) de côté — {include_hint}",
                self.doubtful
            )),
            RelaunchMode::MissingAndDoubtful => Some(format!(
                "dont {} transporteur(s) en doute (envoi interrompu ou incertain), inclus à la demande",
                self.doubtful
            )),
            RelaunchMode::All => None,
        }
    }
}

/// The history as staff ask for it, before it is checked: every text as typed (a shell trims
/// blanks if its fields can be left empty).
#[derive(Debug, Clone, Default)]
pub struct HistoryQuery {
    /// Id or reference of an order.
    pub order: Option<String>,
    pub status: Option<String>,
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    pub text: Option<String>,
    /// `date` (default), `carrier`, `status` or `reference`.
    pub sort: Option<String>,
    /// Newest / last first; with no direction given, dates read newest first and names and
    /// words from A.
    pub descending: Option<bool>,
    /// The token of the last row of the previous page ([`HistoryCursor::token`]).
    pub cursor: Option<String>,
    pub limit: u32,
}

/// A query whose words were read; only the order remains to be found.
#[derive(Debug)]
pub struct CheckedQuery {
    order: Option<String>,
    filter: HistoryFilter,
}

impl HistoryQuery {
    /// Reads the status, sort and page position, touching nothing: a bad one is refused
    /// before the database is even opened.
    pub fn check(self) -> Result<CheckedQuery, OpsError> {
        let status = self
            .status
            .map(|s| s.parse::<DeliveryStatus>())
            .transpose()?;
        let column = self
            .sort
            .map(|s| s.parse::<SortColumn>())
            .transpose()?
            .unwrap_or_default();
        let sort = HistorySort {
            column,
            descending: self.descending.unwrap_or(column == SortColumn::Date),
        };
        let after = self
            .cursor
            .map(|token| HistoryCursor::parse(sort.column, &token))
            .transpose()?;
        Ok(CheckedQuery {
            order: self.order,
            filter: HistoryFilter {
                order: None,
                status,
                from_ms: self.from_ms,
                to_ms: self.to_ms,
                text: self.text,
                sort,
                after,
                limit: self.limit,
            },
        })
    }
}
