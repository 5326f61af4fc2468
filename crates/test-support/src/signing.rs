//! Signatures as the senders compute them.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// `sha256=<hex HMAC-SHA256(secret, payload)>`.
pub fn hmac_sha256_header(secret: &str, payload: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(payload);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The headers CamionBack puts on an order webhook: timestamp and signature of
/// `"<timestamp>.<body>"`.
pub fn camionback_headers(secret: &str, timestamp: i64, body: &[u8]) -> [(String, String); 2] {
    let mut payload = format!("{timestamp}.").into_bytes();
    payload.extend_from_slice(body);
    [
        ("X-CamionBack-Timestamp".into(), timestamp.to_string()),
        (
            "X-CamionBack-Signature".into(),
            hmac_sha256_header(secret, &payload),
        ),
    ]
}

pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}
