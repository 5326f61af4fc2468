//! What a phone reads off the relay's QR code, read instead from the client's session file,
//! for tests where the code is drawn where they cannot read it (a terminal, a window).

use std::path::Path;
use std::str::FromStr;

use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Row};

/// The ADV secret of the QR code whatsapp-rust 0.7 shows for the session at `session` (its
/// `device` row), once the client has created it.
pub async fn qr_secret(session: &Path) -> Option<[u8; 32]> {
    let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", session.display()))
        .ok()?
        .read_only(true);
    let mut conn = options.connect().await.ok()?;
    let row = sqlx::query("SELECT adv_secret_key FROM device LIMIT 1")
        .fetch_optional(&mut conn)
        .await
        .ok()??;
    let secret: Vec<u8> = row.try_get(0).ok()?;
    <[u8; 32]>::try_from(secret).ok()
}
