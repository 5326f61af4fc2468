//! Wall-clock time as the database stores it. Business functions take `now` as a parameter;
//! only the loops at the edge read the clock.

/// Unix time in milliseconds.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Today's date in UTC: the reference of an order's date window. UTC so the window does not
/// depend on the machine's time zone (it is a week wide on the past side).
pub fn today() -> chrono::NaiveDate {
    chrono::Utc::now().date_naive()
}

/// A stored unix ms as local time for people reading logs (`21/11/2026 14:05`).
pub fn format_local(ms: i64) -> String {
    use chrono::TimeZone;
    chrono::Local
        .timestamp_millis_opt(ms)
        .single()
        .map(|time| time.format("%d/%m/%Y %H:%M").to_string())
        .unwrap_or_else(|| ms.to_string())
}
