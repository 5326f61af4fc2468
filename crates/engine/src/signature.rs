//! Webhook signatures: HMAC-SHA256 over the raw bytes, compared in constant time. Pure
//! functions, one error per way a request can fail, so each has its test and its answer.

use hmac::{Hmac, Mac};
use sha2::Sha256;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("aucun secret configuré pour vérifier les signatures ({0} non défini)")]
    NoSecret(&'static str),
    #[error("en-tête de signature {0} absent")]
    Missing(&'static str),
    #[error("en-tête de signature {0} mal formé (attendu : sha256=<hex>)")]
    Malformed(&'static str),
    #[error("signature invalide")]
    Mismatch,
    #[error("en-tête d'horodatage {0} absent ou non numérique")]
    BadTimestamp(&'static str),
    #[error(
        "horodatage trop éloigné de l'heure actuelle ({skew} s d'écart, {tolerance} s au plus)"
    )]
    Stale { skew: u64, tolerance: u64 },
}

/// Checks `header` (`sha256=<hex>`) against HMAC-SHA256(`secret`, concatenation of `parts`).
pub fn verify(
    secret: &[u8],
    parts: &[&[u8]],
    header: &str,
    header_name: &'static str,
) -> Result<(), SignatureError> {
    let hex_digest = header
        .trim()
        .strip_prefix("sha256=")
        .ok_or(SignatureError::Malformed(header_name))?;
    let expected = hex::decode(hex_digest).map_err(|_| SignatureError::Malformed(header_name))?;
    let mut mac = mac(secret);
    for part in parts {
        mac.update(part);
    }
    // `verify_slice` compares in constant time.
    mac.verify_slice(&expected)
        .map_err(|_| SignatureError::Mismatch)
}

/// `sha256=<hex>` for `parts`: what a sender puts in the header (the fakes of
/// `relay-test-support` sign with their own copy, as a sender would).
#[cfg(test)]
pub fn sign(secret: &[u8], parts: &[&[u8]]) -> String {
    let mut mac = mac(secret);
    for part in parts {
        mac.update(part);
    }
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn mac(secret: &[u8]) -> Hmac<Sha256> {
    // HMAC takes keys of any length; this constructor cannot fail.
    <Hmac<Sha256> as Mac>::new_from_slice(secret).unwrap_or_else(|_| unreachable!())
}

/// Refuses timestamps more than `tolerance_secs` away from `now` (replayed or delayed
/// requests). The header is the sender's: any `i64` it holds, `i64::MIN` included, gives an
/// answer, never an overflow (`abs_diff` is exact over the whole range).
pub fn check_timestamp(
    header: Option<&str>,
    now_secs: i64,
    tolerance_secs: u64,
    header_name: &'static str,
) -> Result<i64, SignatureError> {
    let timestamp: i64 = header
        .and_then(|h| h.trim().parse().ok())
        .ok_or(SignatureError::BadTimestamp(header_name))?;
    let skew = now_secs.abs_diff(timestamp);
    if skew > tolerance_secs {
        return Err(SignatureError::Stale {
            skew,
            tolerance: tolerance_secs,
        });
    }
    Ok(timestamp)
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: &str = "X-Test-Signature";

    #[test]
    fn a_correct_signature_passes_and_any_change_fails() {
        let header = sign(b"secret", &[b"123.", b"{\"a\":1}"]);
        assert_eq!(
            verify(b"secret", &[b"123.", b"{\"a\":1}"], &header, H),
            Ok(())
        );
        assert_eq!(
            verify(b"secret", &[b"123.", b"{\"a\":2}"], &header, H),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(b"other", &[b"123.", b"{\"a\":1}"], &header, H),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(b"secret", &[b"x"], "md5=abc", H),
            Err(SignatureError::Malformed(H))
        );
        assert_eq!(
            verify(b"secret", &[b"x"], "sha256=zz", H),
            Err(SignatureError::Malformed(H))
        );
    }

    #[test]
    fn timestamps_older_or_newer_than_five_minutes_are_refused() {
        assert_eq!(check_timestamp(Some("1000"), 1200, 300, H), Ok(1000));
        let stale = |skew| {
            Err(SignatureError::Stale {
                skew,
                tolerance: 300,
            })
        };
        assert_eq!(check_timestamp(Some("1000"), 1301, 300, H), stale(301));
        assert_eq!(check_timestamp(Some("1400"), 1000, 300, H), stale(400));
        assert_eq!(
            check_timestamp(Some("abc"), 1000, 300, H),
            Err(SignatureError::BadTimestamp(H))
        );
        assert_eq!(
            check_timestamp(None, 1000, 300, H),
            Err(SignatureError::BadTimestamp(H))
        );
    }

    #[test]
    fn extreme_timestamps_are_refused_without_overflowing() {
        let now = 1_764_000_000;
        let min = i64::MIN.to_string();
        let max = i64::MAX.to_string();
        assert_eq!(
            check_timestamp(Some(&min), now, 300, H),
            Err(SignatureError::Stale {
                skew: now.abs_diff(i64::MIN),
                tolerance: 300
            })
        );
        assert!(matches!(
            check_timestamp(Some(&max), now, 300, H),
            Err(SignatureError::Stale { .. })
        ));
        // The clock itself at the ends of the range (a broken clock must not panic either).
        assert_eq!(
            check_timestamp(Some(&min), i64::MAX, 300, H),
            Err(SignatureError::Stale {
                skew: u64::MAX,
                tolerance: 300
            })
        );
        assert_eq!(check_timestamp(Some(&max), i64::MAX, 300, H), Ok(i64::MAX));
        assert_eq!(check_timestamp(Some(&min), i64::MIN, 300, H), Ok(i64::MIN));
        assert_eq!(
            check_timestamp(Some("99999999999999999999999"), now, 300, H),
            Err(SignatureError::BadTimestamp(H)),
            "beyond i64: not a timestamp"
        );
        assert_eq!(
            check_timestamp(Some("-9223372036854775809"), now, 300, H),
            Err(SignatureError::BadTimestamp(H))
        );
    }
}
