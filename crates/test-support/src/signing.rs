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

/// `X-Twilio-Signature` as Twilio computes it: Base64(HMAC-SHA1(auth token, URL followed by
/// every POST parameter's name and value, sorted by name, then value)).
pub fn twilio_signature(auth_token: &str, url: &str, params: &[(&str, &str)]) -> String {
    use base64::Engine as _;
    let mut sorted: Vec<_> = params.to_vec();
    sorted.sort();
    let mut mac =
        Hmac::<sha1::Sha1>::new_from_slice(auth_token.as_bytes()).expect("any key length");
    mac.update(url.as_bytes());
    for (name, value) in sorted {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}
