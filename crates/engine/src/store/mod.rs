//! The relay's SQLite database: the only module that speaks SQL. Every other module asks it
//! questions in domain terms.

mod carriers;
mod closures;
mod file;
mod history;
mod orders;
mod outbox;
mod replies;
mod reports;
mod state;
mod ui;
mod whatsapp;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

pub use carriers::{CarrierRecord, CarrierRow};
pub use closures::{Closed, OrderClosure};
pub use history::{
    CursorKey, HistoryCursor, HistoryFilter, HistoryInputError, HistoryRow, HistoryRows,
    HistorySort, SortColumn, StatusCount,
};
pub use orders::{FanOut, OrderSource, StoredOrder};
pub use outbox::{Claim, Outcome, RelaunchCounts, RelaunchMode};
pub use replies::{
    Attribution, ForwardJob, ForwardState, InboundReply, ReplyFilter, ReplyOutcome, ReplyRow,
};
pub use reports::{ReportOutcome, ReportedError};
pub use state::{StateKey, TimedProblem};
pub use ui::{BatchProgress, OrderCounters, OrderSummary};
pub use whatsapp::NUMBER_CHECK_TTL_MS;

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations");

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("base de données : {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration de la base de données impossible : {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error("{}", file_error(path, source))]
    File {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "la base de données {path} est illisible ({reason}) : elle est endommagée, ou ce n'est pas une base SQLite. Arrêtez le relais, puis remplacez ce fichier par une sauvegarde, ou mettez-le de côté (renommez-le, avec ses fichiers -wal et -shm) pour que le relais en crée un neuf au prochain démarrage (l'historique repart alors de zéro). Le relais ne supprime jamais ce fichier."
    )]
    Damaged { path: String, reason: String },
    #[error(
        "{path} n'est pas une base de CamionBack Relay ({what}) : le relais n'y écrit rien. Vérifiez RELAY_DATA_DIR, ou déplacez ce fichier pour que le relais crée sa base au prochain démarrage."
    )]
    Foreign { path: String, what: String },
    #[error("valeur invalide en base ({0})")]
    Corrupt(String),
    /// An outcome write that changed no row: the delivery was not where the dispatcher left it.
    #[error(
        "résultat de l'envoi non enregistré : la livraison {id} est « {found} » au lieu de « sending »"
    )]
    NotRecorded { id: i64, found: String },
}

/// How long a statement waits for another connection's write lock before it fails.
pub const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// How the database file is opened. The defaults are the product's; tests and benches shorten
/// the busy timeout (a lock held past it, without waiting 10 s) or put a fault-injecting SQLite
/// VFS under the store (a full disk), so the product's own statements meet the failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreOptions {
    pub busy_timeout: Duration,
    /// A SQLite VFS registered by the caller, by name; `None`: the system's.
    pub vfs: Option<String>,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            busy_timeout: DEFAULT_BUSY_TIMEOUT,
            vfs: None,
        }
    }
}

/// A handle on the database; cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: SqlitePool,
    /// How replies are read and whether they are forwarded, shared by every handle.
    replies: std::sync::Arc<RepliesShared>,
}

#[derive(Debug, Default)]
struct RepliesShared {
    rules: crate::replies::ReplyRules,
    forward_wake: tokio::sync::Notify,
}

impl Store {
    /// Opens (creating it if needed, owner-only) and migrates the database at `path`. A file
    /// that is damaged, or is another program's database, is refused with what to do, and
    /// left untouched.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_with(path, &StoreOptions::default()).await
    }

    /// [`Store::open`] with other [`StoreOptions`].
    pub async fn open_with(path: &Path, store_options: &StoreOptions) -> Result<Self, StoreError> {
        crate::fs::create_private_file(path).map_err(|source| StoreError::File {
            path: path.display().to_string(),
            source,
        })?;
        let mut options = SqliteConnectOptions::from_str("sqlite://")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // WAL + NORMAL survives a process crash (kill -9) without losing commits; only a
            // power loss can drop the last transactions, which the crash tests do not cover.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(store_options.busy_timeout)
            .foreign_keys(true);
        if let Some(vfs) = &store_options.vfs {
            options = options.vfs(vfs.clone());
        }
        let opened = async {
            file::check_is_ours(path).await?;
            let pool = SqlitePoolOptions::new()
                .max_connections(4)
                .connect_with(options)
                .await?;
            MIGRATOR.run(&pool).await?;
            file::mark_as_ours(&pool).await?;
            Ok::<_, StoreError>(pool)
        };
        let pool = opened.await.map_err(|err| file::opening(path, err))?;
        Ok(Self {
            pool,
            replies: std::sync::Arc::default(),
        })
    }

    /// A transaction that takes SQLite's write lock at once. A deferred one that reads first
    /// fails with "database is locked", without waiting, when another connection wrote in
    /// between; an immediate one waits its turn under the busy timeout.
    async fn write_transaction(
        &self,
    ) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, StoreError> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn parse_status(raw: &str) -> Result<relay_domain::DeliveryStatus, StoreError> {
    raw.parse()
        .map_err(|_| StoreError::Corrupt(format!("statut {raw}")))
}

/// `path : error`, or the error alone when it already names the path (the data directory
/// checks of `fs` do), so the path is said once.
fn file_error(path: &str, source: &std::io::Error) -> String {
    let said = source.to_string();
    if said.contains(path) {
        said
    } else {
        format!("{path} : {said}")
    }
}
