//! The history as a CSV file for French Excel: UTF-8 with a BOM, `;` between fields, the
//! grid's columns and words (a known error code explained in French, as in the grid). Rows stream from the store to the writer, one at a time.

use std::time::Duration;

use chrono::TimeZone;
use tokio::io::{AsyncWrite, AsyncWriteExt, BufWriter};

use crate::store::{HistoryFilter, HistoryRow, Store, StoreError};

/// Excel reads a file as UTF-8 only when it starts with this mark.
pub const BOM: &str = "\u{feff}";

/// The grid's columns, in its order, then the provider's error code ("Erreur" says in French
/// what a known code means and what to do; the code is what the provider's support asks for).
pub const CSV_HEADER: [&str; 8] = [
    "Date d'envoi",
    "Transporteur",
    "Numéro",
    "Référence commande",
    "Statut",
    "Tentatives",
    "Erreur",
    "Code erreur",
];

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("écriture du fichier CSV impossible : {0}")]
    Write(#[from] std::io::Error),
}

/// What the words of a row depend on besides the row: the time zone of the dates and when a
/// `sent` without receipt counts as "non confirmé".
#[derive(Debug, Clone)]
pub struct CsvStyle<Tz> {
    pub time_zone: Tz,
    pub unconfirmed_after: Duration,
    pub now_ms: i64,
}

/// Writes every row matching `filter` (its cursor and limit ignored) as CSV to `out`, and
/// answers how many rows were written.
pub async fn write_history_csv<Tz, W>(
    store: &Store,
    filter: &HistoryFilter,
    style: &CsvStyle<Tz>,
    out: W,
) -> Result<u64, ExportError>
where
    Tz: TimeZone,
    Tz::Offset: std::fmt::Display,
    W: AsyncWrite + Unpin,
{
    let mut out = BufWriter::with_capacity(64 * 1024, out);
    let mut line = String::with_capacity(256);
    line.push_str(BOM);
    push_record(&mut line, CSV_HEADER);
    out.write_all(line.as_bytes()).await?;
    let unpaged = HistoryFilter {
        after: None,
        ..filter.clone()
    };
    let mut rows = store.history_rows(&unpaged);
    let mut written = 0;
    while let Some(row) = rows.next().await {
        line.clear();
        push_row(&mut line, &row?, style);
        out.write_all(line.as_bytes()).await?;
        written += 1;
    }
    out.flush().await?;
    Ok(written)
}

fn push_row<Tz>(line: &mut String, row: &HistoryRow, style: &CsvStyle<Tz>)
where
    Tz: TimeZone,
    Tz::Offset: std::fmt::Display,
{
    // As in the grid: the send date, or the queue date for a row never sent.
    let at = row.sent_at.unwrap_or(row.queued_at);
    let date = style
        .time_zone
        .timestamp_millis_opt(at)
        .single()
        .map(|t| t.format("%d/%m/%Y %H:%M").to_string())
        .unwrap_or_default();
    let mut status = row.status.label().to_string();
    if row.is_unconfirmed(style.unconfirmed_after, style.now_ms) {
        status.push_str(" (non confirmé)");
    }
    // A skip reason in the grid's French words ("commande pourvue : envoi évité"), an error
    // code as its French explanation.
    let error = match row
        .error
        .as_deref()
        .and_then(relay_domain::SkipReason::of_stored)
    {
        Some(reason) => reason.label().to_string(),
        None => row.error_text(),
    };
    push_record(
        line,
        [
            date.as_str(),
            row.carrier_name.as_str(),
            row.phone.as_str(),
            row.order_reference.as_str(),
            status.as_str(),
            &row.attempts.to_string(),
            error.as_str(),
            row.error_code.as_deref().unwrap_or_default(),
        ],
    );
}

/// One CSV line, `\r\n`-terminated as Excel writes them.
fn push_record<'a>(line: &mut String, fields: impl IntoIterator<Item = &'a str>) {
    for (i, field) in fields.into_iter().enumerate() {
        if i > 0 {
            line.push(';');
        }
        push_field(line, field);
    }
    line.push_str("\r\n");
}

/// A field quoted when it holds `;`, `"` or a line break (quotes doubled), and defused when a
/// spreadsheet would read it as a formula: carrier names and errors come from outside.
fn push_field(line: &mut String, field: &str) {
    let formula = field.starts_with(['=', '+', '-', '@', '\t', '\r']) && !is_phone_number(field);
    let quoted = formula || field.contains([';', '"', '\n', '\r']);
    if quoted {
        line.push('"');
    }
    if formula {
        line.push('\'');
    }
    for c in field.chars() {
        if c == '"' {
            line.push('"');
        }
        line.push(c);
    }
    if quoted {
        line.push('"');
    }
}

/// `+212612345678`: what a phone number looks like, not a formula.
fn is_phone_number(field: &str) -> bool {
    field
        .strip_prefix('+')
        .is_some_and(|digits| !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit()))
}

/// `historique-20251121-1842.csv`: the export's file name at `now` in `tz`.
pub fn export_file_name<Tz>(tz: &Tz, now_ms: i64) -> String
where
    Tz: TimeZone,
    Tz::Offset: std::fmt::Display,
{
    let stamp = tz
        .timestamp_millis_opt(now_ms)
        .single()
        .map(|t| t.format("%Y%m%d-%H%M").to_string())
        .unwrap_or_default();
    format!("historique-{stamp}.csv")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(fields: &[&str]) -> String {
        let mut line = String::new();
        push_record(&mut line, fields.iter().copied());
        line
    }

    #[test]
    fn separators_quotes_and_line_breaks_are_quoted() {
        assert_eq!(record(&["a", "b"]), "a;b\r\n");
        assert_eq!(record(&["Atlas; Fils", "x"]), "\"Atlas; Fils\";x\r\n");
        assert_eq!(
            record(&["dit \"Le Rapide\""]),
            "\"dit \"\"Le Rapide\"\"\"\r\n"
        );
        assert_eq!(record(&["ligne 1\nligne 2"]), "\"ligne 1\nligne 2\"\r\n");
    }

    #[test]
    fn formulas_are_defused_but_phone_numbers_stay_as_they_are() {
        assert_eq!(
            record(&["=HYPERLINK(\"x\")"]),
            "\"'=HYPERLINK(\"\"x\"\")\"\r\n"
        );
        assert_eq!(record(&["@SUM(A1)", "-1"]), "\"'@SUM(A1)\";\"'-1\"\r\n");
        assert_eq!(record(&["+212612345601"]), "+212612345601\r\n");
    }

    #[test]
    fn the_file_name_carries_the_local_minute() {
        let utc = chrono::Utc;
        // 2025-11-21 18:42:10 UTC
        assert_eq!(
            export_file_name(&utc, 1_763_750_530_000),
            "historique-20251121-1842.csv"
        );
    }
}
