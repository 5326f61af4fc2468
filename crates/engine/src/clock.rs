//! Wall-clock time as the database stores it. Business functions take `now` as a parameter;
//! only the loops at the edge read the clock.

/// Unix time in milliseconds.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
