//! Webhook signatures: HMAC-SHA256 over the raw bytes (CamionBack, Meta), HMAC-SHA1 over the
//! URL and the sorted form parameters (Twilio), compared in constant time. Pure functions, one
//! error per way a request can fail, so each has its test and its answer.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::Sha256;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("aucun secret configuré pour vérifier les signatures ({0} non défini)")]
    NoSecret(&'static str),
    #[error("en-tête de signature {0} absent")]
    Missing(&'static str),
    #[error("en-tête de signature {0} mal formé (attendu : sha256=<hex>)")]
    Malformed(&'static str),
    #[error("en-tête de signature {0} mal formé (attendu : Base64)")]
    MalformedBase64(&'static str),
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

/// Checks Twilio's `X-Twilio-Signature` (`header`, Base64) against HMAC-SHA1(`auth_token`,
/// `url` followed by each parameter's name and value, sorted by name then value). `url` is the
/// one Twilio requested: the relay's public base URL with the path and query as received.
/// Twilio's own validators accept the URL with or without the scheme's default port (a proxy
/// may add or drop it), so both are tried. Every parameter received is signed, never a fixed
/// list: Twilio adds fields over time.
pub fn verify_twilio(
    auth_token: &[u8],
    url: &str,
    params: &[(String, String)],
    header: &str,
    header_name: &'static str,
) -> Result<(), SignatureError> {
    let expected = base64::engine::general_purpose::STANDARD
        .decode(header.trim())
        .map_err(|_| SignatureError::MalformedBase64(header_name))?;
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    let matches = |url: &str| {
        let mut mac = sha1_mac(auth_token);
        mac.update(url.as_bytes());
        for (name, value) in &sorted {
            mac.update(name.as_bytes());
            mac.update(value.as_bytes());
        }
        // `verify_slice` compares in constant time.
        mac.verify_slice(&expected).is_ok()
    };
    let other = with_or_without_default_port(url);
    // Both forms are always computed, so the time taken says nothing about which one matched.
    let first = matches(url);
    let second = other.as_deref().is_some_and(matches);
    if first || second {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// `url` with the scheme's default port added when it has none, or removed when it has it;
/// `None` for a URL whose port is not the default or whose scheme has none.
fn with_or_without_default_port(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let default = match scheme.to_ascii_lowercase().as_str() {
        "https" => "443",
        "http" => "80",
        _ => return None,
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    // The port follows the last ':' after any IPv6 bracket.
    let host_end = authority.rfind(']').map_or(0, |i| i + 1);
    match authority[host_end..].rfind(':') {
        Some(colon) => {
            let (host, port) = authority.split_at(host_end + colon);
            (port[1..] == *default).then(|| format!("{scheme}://{host}{tail}"))
        }
        None => Some(format!("{scheme}://{authority}:{default}{tail}")),
    }
}

fn sha1_mac(secret: &[u8]) -> Hmac<Sha1> {
    // HMAC takes keys of any length; this constructor cannot fail.
    <Hmac<Sha1> as Mac>::new_from_slice(secret).unwrap_or_else(|_| unreachable!())
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

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const TWILIO_URL: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";
    const T: &str = "X-Twilio-Signature";

    fn twilio_call() -> Vec<(String, String)> {
        params(&[
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+14158675309"),
            ("Digits", "1234"),
            ("From", "+14158675309"),
            ("To", "+18005551212"),
        ])
    }

    /// Twilio's published vectors (its request-validator test suites).
    #[test]
    fn twilio_signatures_match_twilio_s_own_test_vectors() {
        let call = twilio_call();
        assert_eq!(
            verify_twilio(
                b"12345",
                TWILIO_URL,
                &call,
                "RSOYDt4T1cUTdK1PDd93/VVr8B8=",
                T
            ),
            Ok(())
        );
        let with_port = "https://mycompany.com:443/myapp.php?foo=1&bar=2";
        assert_eq!(
            verify_twilio(
                b"12345",
                with_port,
                &call,
                "kvajT1Ptam85bY51eRf/AJRuM3w=",
                T
            ),
            Ok(())
        );
        let repeated = params(&[
            ("Sid", "CA123"),
            ("SidAccount", "AC123"),
            ("Digits", "5678"),
            ("Digits", "1234"),
        ]);
        assert_eq!(
            verify_twilio(
                b"12345",
                TWILIO_URL,
                &repeated,
                "IK+Dwps556ElfBT0I3Rgjkr1wJU=",
                T
            ),
            Ok(()),
            "a repeated key: its values sorted too"
        );
    }

    #[test]
    fn a_twilio_signature_holds_with_or_without_the_default_port() {
        let call = twilio_call();
        // Signed over the URL without the port, received behind a proxy that adds it, and
        // the other way round.
        let with_port = "https://mycompany.com:443/myapp.php?foo=1&bar=2";
        assert_eq!(
            verify_twilio(
                b"12345",
                with_port,
                &call,
                "RSOYDt4T1cUTdK1PDd93/VVr8B8=",
                T
            ),
            Ok(())
        );
        assert_eq!(
            verify_twilio(
                b"12345",
                TWILIO_URL,
                &call,
                "kvajT1Ptam85bY51eRf/AJRuM3w=",
                T
            ),
            Ok(())
        );
        assert_eq!(
            with_or_without_default_port("http://relay.example:8080/x"),
            None,
            "not a default port"
        );
        assert_eq!(
            with_or_without_default_port("http://[::1]/x").as_deref(),
            Some("http://[::1]:80/x")
        );
    }

    #[test]
    fn a_twilio_signature_fails_on_any_change() {
        let good = "RSOYDt4T1cUTdK1PDd93/VVr8B8=";
        let mut call = twilio_call();
        assert_eq!(
            verify_twilio(b"54321", TWILIO_URL, &call, good, T),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_twilio(
                b"12345",
                "https://mycompany.com/myapp.php?foo=1",
                &call,
                good,
                T
            ),
            Err(SignatureError::Mismatch)
        );
        call.push(("Extra".into(), "1".into()));
        assert_eq!(
            verify_twilio(b"12345", TWILIO_URL, &call, good, T),
            Err(SignatureError::Mismatch),
            "every parameter received is signed"
        );
        assert_eq!(
            verify_twilio(b"12345", TWILIO_URL, &twilio_call(), "not base64!", T),
            Err(SignatureError::MalformedBase64(T))
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
