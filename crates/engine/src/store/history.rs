//! The send history: what staff read to know who got which order.

use std::str::FromStr;

use futures_util::TryStreamExt;
use relay_domain::{ChannelKind, DeliveryStatus, ErrorHelp, OrderId, error_help};
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Row, Sqlite};

use super::{Store, StoreError};

/// The history's filters, sort and page. Every sort pages by key (`after`: the last row
/// shown), so a page costs about the same at row 1,000,000 as at row 1.
#[derive(Debug, Clone, Default)]
pub struct HistoryFilter {
    pub order: Option<OrderId>,
    pub status: Option<DeliveryStatus>,
    /// Queued at or after this unix ms.
    pub from_ms: Option<i64>,
    /// Queued before this unix ms.
    pub to_ms: Option<i64>,
    /// Part of a carrier name, a phone number or an order reference (case-insensitive).
    pub text: Option<String>,
    pub sort: HistorySort,
    /// Only rows after this one in `sort`'s order: [`HistoryRow::cursor`] of the last row of
    /// the previous page.
    pub after: Option<HistoryCursor>,
    pub limit: u32,
}

/// The grid's sortable columns.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum SortColumn {
    /// "Date d'envoi": by queue date, so each broadcast's rows stay together, then by id,
    /// which is the order they were sent in.
    #[default]
    Date,
    /// "Transporteur", case-insensitive.
    Carrier,
    /// "Statut", by the stored status.
    Status,
    /// "Référence commande".
    Reference,
}

impl SortColumn {
    pub const ALL: [SortColumn; 4] = [Self::Date, Self::Carrier, Self::Status, Self::Reference];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Date => "date",
            Self::Carrier => "carrier",
            Self::Status => "status",
            Self::Reference => "reference",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HistoryInputError {
    #[error("tri inconnu « {0} » (attendu : date, carrier, status ou reference)")]
    UnknownSort(String),
    #[error("position de page illisible « {0} » : revenez à la première page")]
    BadCursor(String),
}

impl FromStr for SortColumn {
    type Err = HistoryInputError;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|c| c.as_str() == raw)
            .ok_or_else(|| HistoryInputError::UnknownSort(raw.to_string()))
    }
}

/// A column and a direction. The default is the grid's: newest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HistorySort {
    pub column: SortColumn,
    pub descending: bool,
}

impl Default for HistorySort {
    fn default() -> Self {
        Self {
            column: SortColumn::Date,
            descending: true,
        }
    }
}

/// Where a page ends: the sort key of its last row and that row's id (which breaks ties, so
/// rows sharing a key are neither lost nor repeated across pages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryCursor {
    pub key: CursorKey,
    pub id: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CursorKey {
    Int(i64),
    Text(String),
}

impl HistoryCursor {
    /// An opaque text for the webview: `<id>:<key>` (the id has no colon; the key may).
    pub fn token(&self) -> String {
        match &self.key {
            CursorKey::Int(key) => format!("{}:{key}", self.id),
            CursorKey::Text(key) => format!("{}:{key}", self.id),
        }
    }

    /// Reads back a [`HistoryCursor::token`] for `column`'s key type.
    pub fn parse(column: SortColumn, token: &str) -> Result<Self, HistoryInputError> {
        let bad = || HistoryInputError::BadCursor(token.chars().take(40).collect());
        let (id, key) = token.split_once(':').ok_or_else(bad)?;
        let id = id.parse().map_err(|_| bad())?;
        let key = match column {
            SortColumn::Date => CursorKey::Int(key.parse().map_err(|_| bad())?),
            SortColumn::Carrier | SortColumn::Status | SortColumn::Reference => {
                CursorKey::Text(key.to_string())
            }
        };
        Ok(Self { key, id })
    }
}

/// One delivery with its order's reference and route.
#[derive(Debug, Clone)]
pub struct HistoryRow {
    pub id: i64,
    pub order_id: i64,
    pub order_reference: String,
    pub ville_depart: String,
    pub ville_arrivee: String,
    pub carrier_id: i64,
    pub carrier_name: String,
    pub phone: String,
    pub status: DeliveryStatus,
    pub attempts: i64,
    /// The provider's own text (or the relay's), as stored.
    pub error: Option<String>,
    /// The provider's code, as stored.
    pub error_code: Option<String>,
    /// The channel that last sent it (`None`: claimed before deliveries remembered it, or a
    /// test's stand-in channel).
    pub channel: Option<ChannelKind>,
    pub message_id: Option<String>,
    pub batch: i64,
    pub queued_at: i64,
    pub sent_at: Option<i64>,
    pub updated_at: i64,
}

// By hand for the two typed columns: `status` refuses an unknown word, `channel` reads one as
// unknown (NULL on rows from before migration 20261204024000).
impl<'r> sqlx::FromRow<'r, SqliteRow> for HistoryRow {
    fn from_row(row: &'r SqliteRow) -> Result<Self, sqlx::Error> {
        let status: String = row.try_get("status")?;
        let status = DeliveryStatus::try_from(status).map_err(|err| sqlx::Error::ColumnDecode {
            index: "status".into(),
            source: Box::new(err),
        })?;
        let channel: Option<String> = row.try_get("channel")?;
        Ok(Self {
            id: row.try_get("id")?,
            order_id: row.try_get("order_id")?,
            order_reference: row.try_get("order_reference")?,
            ville_depart: row.try_get("ville_depart")?,
            ville_arrivee: row.try_get("ville_arrivee")?,
            carrier_id: row.try_get("carrier_id")?,
            carrier_name: row.try_get("carrier_name")?,
            phone: row.try_get("phone")?,
            status,
            attempts: row.try_get("attempts")?,
            error: row.try_get("error")?,
            error_code: row.try_get("error_code")?,
            channel: channel.as_deref().and_then(ChannelKind::from_stored),
            message_id: row.try_get("message_id")?,
            batch: row.try_get("batch")?,
            queued_at: row.try_get("queued_at")?,
            sent_at: row.try_get("sent_at")?,
            updated_at: row.try_get("updated_at")?,
        })
    }
}

impl HistoryRow {
    /// What the stored error code means and what to do, in French, when the table knows the
    /// code for the channel that sent the row. Rows from before deliveries remembered their
    /// channel are read with the Cloud API's table, then Twilio's: only those two stored codes
    /// then, and their codes do not overlap (a domain test keeps it so).
    pub fn error_help(&self) -> Option<&'static ErrorHelp> {
        let code = self.error_code.as_deref()?;
        match self.channel {
            Some(channel) => error_help(channel, code),
            None => error_help(ChannelKind::CloudApi, code)
                .or_else(|| error_help(ChannelKind::Twilio, code)),
        }
    }

    /// The "Erreur" column: the French help when there is one, else the stored text and code.
    pub fn error_text(&self) -> String {
        if let Some(help) = self.error_help() {
            return help.text();
        }
        match (&self.error, &self.error_code) {
            (Some(error), Some(code)) => format!("{error} ({code})"),
            (Some(error), None) => error.clone(),
            (None, Some(code)) => format!("({code})"),
            (None, None) => String::new(),
        }
    }

    /// Sent, but WhatsApp never confirmed delivery within `after` (zero: never said).
    pub fn is_unconfirmed(&self, after: std::time::Duration, now_ms: i64) -> bool {
        let limit = i64::try_from(after.as_millis()).unwrap_or(i64::MAX);
        self.status == DeliveryStatus::Sent
            && !after.is_zero()
            && self
                .sent_at
                .is_some_and(|at| now_ms.saturating_sub(at) > limit)
    }

    /// The cursor that starts the page after this row, for `column`.
    pub fn cursor(&self, column: SortColumn) -> HistoryCursor {
        let key = match column {
            SortColumn::Date => CursorKey::Int(self.queued_at),
            SortColumn::Carrier => CursorKey::Text(self.carrier_name.clone()),
            SortColumn::Status => CursorKey::Text(self.status.as_str().to_string()),
            SortColumn::Reference => CursorKey::Text(self.order_reference.clone()),
        };
        HistoryCursor { key, id: self.id }
    }
}

/// Rows handed from the reading task to the export in chunks of this many, at most this many
/// chunks waiting.
const ROWS_PER_CHUNK: usize = 512;
const CHUNKS_IN_FLIGHT: usize = 4;

/// The rows of [`Store::history_rows`], in order.
#[derive(Debug)]
pub struct HistoryRows {
    rx: tokio::sync::mpsc::Receiver<Result<Vec<HistoryRow>, StoreError>>,
    chunk: std::vec::IntoIter<HistoryRow>,
}

impl HistoryRows {
    /// The next row; `None` after the last one (or after an error).
    pub async fn next(&mut self) -> Option<Result<HistoryRow, StoreError>> {
        loop {
            if let Some(row) = self.chunk.next() {
                return Some(Ok(row));
            }
            match self.rx.recv().await? {
                Ok(chunk) => self.chunk = chunk.into_iter(),
                Err(err) => return Some(Err(err)),
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusCount {
    pub status: DeliveryStatus,
    pub count: i64,
}

/// The one history query: filters, keyset bound, sort, limit (`None`: every row, for exports).
///
/// Each sort's `ORDER BY` is the column list of one index of migration 0003 (or
/// `deliveries_status`), and the keyset bound is written so SQLite turns it into a range on
/// that index. The store tests check the plans with `EXPLAIN QUERY PLAN`.
fn history_query(filter: &HistoryFilter, limit: Option<u32>) -> QueryBuilder<Sqlite> {
    history_query_after("", filter, limit)
}

/// [`history_query`] after `prefix` (the tests' `EXPLAIN QUERY PLAN`).
fn history_query_after(
    prefix: &str,
    filter: &HistoryFilter,
    limit: Option<u32>,
) -> QueryBuilder<Sqlite> {
    let mut query = QueryBuilder::new(prefix);
    query.push(
        "SELECT d.id, d.order_id, o.reference AS order_reference, o.ville_depart,
                o.ville_arrivee, d.carrier_id, d.carrier_name, d.phone, d.status, d.attempts,
                d.error, d.error_code, d.channel, d.message_id, d.batch, d.queued_at,
                d.sent_at, d.updated_at
         FROM deliveries d JOIN orders o ON o.id = d.order_id WHERE 1 = 1",
    );
    if let Some(order) = filter.order {
        query.push(" AND d.order_id = ").push_bind(order.0);
    }
    if let Some(status) = filter.status {
        query.push(" AND d.status = ").push_bind(status.as_str());
    }
    if let Some(from) = filter.from_ms {
        query.push(" AND d.queued_at >= ").push_bind(from);
    }
    if let Some(to) = filter.to_ms {
        query.push(" AND d.queued_at < ").push_bind(to);
    }
    if let Some(text) = filter
        .text
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        let pattern = format!("%{}%", escape_like(text));
        query
            .push(" AND (d.carrier_name LIKE ")
            .push_bind(pattern.clone())
            .push(" ESCAPE '\\' OR d.phone LIKE ")
            .push_bind(pattern.clone())
            .push(" ESCAPE '\\' OR o.reference LIKE ")
            .push_bind(pattern)
            .push(" ESCAPE '\\')");
    }
    let sort = filter.sort;
    let (op, dir) = if sort.descending {
        ("<", "DESC")
    } else {
        (">", "ASC")
    };
    match (&filter.after, sort.column) {
        // Without this always-true bound SQLite reads every delivery and sorts them all to
        // show the first page by reference, instead of walking `orders_reference`.
        (None, SortColumn::Reference) => {
            query.push(" AND o.reference >= ''");
        }
        (None, _) => {}
        (Some(after), _) => push_after(&mut query, after, sort.column, op),
    }
    let order_by = match sort.column {
        SortColumn::Date => format!("d.queued_at {dir}, d.id {dir}"),
        SortColumn::Carrier => format!("d.carrier_name COLLATE NOCASE {dir}, d.id {dir}"),
        SortColumn::Status => format!("d.status {dir}, d.id {dir}"),
        SortColumn::Reference => format!("o.reference {dir}, d.id {dir}"),
    };
    query.push(format!(" ORDER BY {order_by}"));
    if let Some(limit) = limit {
        query.push(" LIMIT ").push_bind(i64::from(limit));
    }
    query
}

/// The keyset bound: rows after `after` in `column`'s order (`op` is `>` ascending, `<`
/// descending).
fn push_after(
    query: &mut QueryBuilder<Sqlite>,
    after: &HistoryCursor,
    column: SortColumn,
    op: &str,
) {
    match column {
        // The row value `(key, id) > (?, ?)` is what SQLite turns into an index range.
        SortColumn::Date | SortColumn::Carrier | SortColumn::Status => {
            let (key, collate) = match column {
                SortColumn::Date => ("d.queued_at", ""),
                SortColumn::Carrier => ("d.carrier_name", " COLLATE NOCASE"),
                _ => ("d.status", ""),
            };
            query.push(format!(" AND ({key}, d.id) {op} ("));
            push_key(query, &after.key);
            query
                .push(format!("{collate}, "))
                .push_bind(after.id)
                .push(")");
        }
        // The reference is on the outer table of the join: a plain bound on it is the range on
        // `orders_reference`; the id only breaks ties within that reference.
        SortColumn::Reference => {
            query.push(format!(" AND o.reference {op}= "));
            push_key(query, &after.key);
            query.push(format!(" AND (o.reference {op} "));
            push_key(query, &after.key);
            query
                .push(format!(" OR d.id {op} "))
                .push_bind(after.id)
                .push(")");
        }
    }
}

fn push_key(query: &mut QueryBuilder<Sqlite>, key: &CursorKey) {
    match key {
        CursorKey::Int(key) => query.push_bind(*key),
        CursorKey::Text(key) => query.push_bind(key.clone()),
    };
}

impl Store {
    /// One page of the history: [`HistoryFilter`]'s filters, sort and cursor.
    pub async fn history(&self, filter: &HistoryFilter) -> Result<Vec<HistoryRow>, StoreError> {
        let mut query = history_query(filter, Some(filter.limit));
        Ok(query.build_query_as().fetch_all(&self.pool).await?)
    }

    /// Every row matching `filter` (its `limit` is ignored), in its sort order, as SQLite
    /// reads them: a task streams them through a small channel in chunks, so an export of a
    /// million rows holds a few thousand rows in memory at most. Dropping the answer stops the
    /// read.
    pub fn history_rows(&self, filter: &HistoryFilter) -> HistoryRows {
        let (tx, rx) = tokio::sync::mpsc::channel(CHUNKS_IN_FLIGHT);
        let pool = self.pool.clone();
        let filter = filter.clone();
        tokio::spawn(async move {
            let mut query = history_query(&filter, None);
            let mut rows = query.build_query_as::<HistoryRow>().fetch(&pool);
            let mut chunk = Vec::with_capacity(ROWS_PER_CHUNK);
            // Ends after the last row, after an error (handed on after the rows before it), or
            // as soon as the reader is gone. Rows go in chunks: one hand-over per row between
            // the two tasks costs more than the rest of the export on a busy machine.
            loop {
                match rows.try_next().await {
                    Ok(Some(row)) => {
                        chunk.push(row);
                        if chunk.len() == ROWS_PER_CHUNK {
                            let full =
                                std::mem::replace(&mut chunk, Vec::with_capacity(ROWS_PER_CHUNK));
                            if tx.send(Ok(full)).await.is_err() {
                                return;
                            }
                        }
                    }
                    Ok(None) => {
                        if !chunk.is_empty() {
                            let _ = tx.send(Ok(chunk)).await;
                        }
                        return;
                    }
                    Err(err) => {
                        if !chunk.is_empty() && tx.send(Ok(chunk)).await.is_err() {
                            return;
                        }
                        let _ = tx.send(Err(StoreError::from(err))).await;
                        return;
                    }
                }
            }
        });
        HistoryRows {
            rx,
            chunk: Vec::new().into_iter(),
        }
    }

    /// Deliveries by status, all orders together (for metrics and the dashboard).
    pub async fn status_counts(&self) -> Result<Vec<StatusCount>, StoreError> {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT status, COUNT(*) FROM deliveries GROUP BY status")
                .fetch_all(&self.pool)
                .await?;
        rows.into_iter()
            .map(|(status, count)| {
                Ok(StatusCount {
                    status: super::parse_status(&status)?,
                    count,
                })
            })
            .collect()
    }
}

/// Makes `%`, `_` and `\` in what staff typed match themselves in a `LIKE … ESCAPE '\'`.
fn escape_like(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_wildcards_match_themselves() {
        assert_eq!(escape_like("50%_a\\b"), "50\\%\\_a\\\\b");
        assert_eq!(escape_like("Atlas"), "Atlas");
    }

    #[test]
    fn page_positions_survive_the_trip_through_the_window() {
        let date = HistoryCursor {
            key: CursorKey::Int(1_700_000_000_000),
            id: 42,
        };
        assert_eq!(
            HistoryCursor::parse(SortColumn::Date, &date.token()),
            Ok(date)
        );
        let name = HistoryCursor {
            key: CursorKey::Text("Atlas : 2 camions".into()),
            id: 7,
        };
        assert_eq!(
            HistoryCursor::parse(SortColumn::Carrier, &name.token()),
            Ok(name)
        );
        for bad in ["", "12", "x:Atlas", "3:pas-un-nombre"] {
            assert!(
                matches!(
                    HistoryCursor::parse(SortColumn::Date, bad),
                    Err(HistoryInputError::BadCursor(_))
                ),
                "{bad:?} is refused"
            );
        }
        assert_eq!(
            "statut".parse::<SortColumn>(),
            Err(HistoryInputError::UnknownSort("statut".into()))
        );
    }

    /// SQLite's plan for the history query with `filter`, one line per step.
    async fn plan(store: &Store, filter: &HistoryFilter) -> String {
        let mut query = history_query_after("EXPLAIN QUERY PLAN ", filter, Some(101));
        let steps: Vec<(i64, i64, i64, String)> = query
            .build_query_as()
            .fetch_all(&store.pool)
            .await
            .expect("query plan");
        steps
            .into_iter()
            .map(|s| s.3)
            .collect::<Vec<_>>()
            .join(" | ")
    }

    fn sorted(column: SortColumn, descending: bool, after: CursorKey) -> HistoryFilter {
        HistoryFilter {
            sort: HistorySort { column, descending },
            after: Some(HistoryCursor {
                key: after,
                id: 500,
            }),
            limit: 100,
            ..HistoryFilter::default()
        }
    }

    #[tokio::test]
    async fn a_far_past_date_range_is_a_bound_on_the_queue_date_index() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("relay.db"))
            .await
            .expect("store");
        let one_day_long_ago = HistoryFilter {
            from_ms: Some(1_600_000_000_000),
            to_ms: Some(1_600_086_400_000),
            limit: 100,
            ..HistoryFilter::default()
        };
        let plan = plan(&store, &one_day_long_ago).await;
        assert!(
            plan.contains("SEARCH d USING INDEX deliveries_queued (queued_at>? AND queued_at<?)"),
            "the range starts and stops inside the index, instead of walking back from the newest row: {plan}"
        );
        assert!(!plan.contains("TEMP B-TREE"), "no sort step: {plan}");

        let same_range_failed_only = HistoryFilter {
            status: Some(DeliveryStatus::Failed),
            ..one_day_long_ago
        };
        let plan = self::plan(&store, &same_range_failed_only).await;
        assert!(
            plan.contains("deliveries_status_queued (status=? AND queued_at>? AND queued_at<?)"),
            "{plan}"
        );
    }

    #[tokio::test]
    async fn every_sort_pages_along_an_index_without_sorting() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("relay.db"))
            .await
            .expect("store");
        for descending in [false, true] {
            let cases = [
                (
                    sorted(SortColumn::Date, descending, CursorKey::Int(1)),
                    "SEARCH d USING INDEX deliveries_queued (queued_at",
                ),
                (
                    sorted(SortColumn::Carrier, descending, CursorKey::Text("a".into())),
                    "SEARCH d USING INDEX deliveries_carrier_name (carrier_name",
                ),
                (
                    sorted(SortColumn::Status, descending, CursorKey::Text("a".into())),
                    "SEARCH d USING INDEX deliveries_status (status",
                ),
                (
                    sorted(
                        SortColumn::Reference,
                        descending,
                        CursorKey::Text("a".into()),
                    ),
                    "SEARCH o USING INDEX orders_reference (reference",
                ),
                (
                    HistoryFilter {
                        after: None,
                        ..sorted(SortColumn::Reference, descending, CursorKey::Int(1))
                    },
                    "SEARCH o USING INDEX orders_reference (reference",
                ),
                (
                    HistoryFilter {
                        status: Some(DeliveryStatus::Sent),
                        ..sorted(SortColumn::Date, descending, CursorKey::Int(1))
                    },
                    "SEARCH d USING INDEX deliveries_status_queued (status=? AND queued_at",
                ),
            ];
            for (filter, expected) in cases {
                let plan = plan(&store, &filter).await;
                assert!(plan.contains(expected), "{:?}: {plan}", filter.sort);
                // Sorting by reference sorts only within one reference (one order's rows).
                assert!(
                    !plan.contains("USE TEMP B-TREE FOR ORDER BY"),
                    "{:?} reads rows in order: {plan}",
                    filter.sort
                );
            }
        }
    }
}
