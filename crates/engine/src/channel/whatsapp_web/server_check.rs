//! Whether this build of the client checks the WhatsApp server's certificate chain, asked of
//! the client itself, and the guard that follows from the answer.
//!
//! whatsapp-rust 0.7 verifies the chain against WhatsApp's root key unless it was built with
//! `danger-skip-cert-chain-verify`, which every build that links the loopback simulator turns on
//! (the simulator cannot sign with WhatsApp's key; see crates/wa-sim/Cargo.toml). A Cargo
//! feature can arrive through any crate of a build, so the relay does not trust a flag of its
//! own: at start it hands the client's verifier a chain with empty signatures. A build that
//! accepts it may only talk to a server on this machine.

use std::sync::OnceLock;

use whatsapp_rust::buffa::{Message as _, MessageField};
use whatsapp_rust::wacore::handshake::HandshakeUtils;
use whatsapp_rust::waproto::whatsapp::{self as wa, cert_chain::noise_certificate};

use super::WhatsAppWebError;

/// True when the linked client refuses a chain that WhatsApp did not sign.
pub(super) fn verifies_certificates() -> bool {
    static ANSWER: OnceLock<bool> = OnceLock::new();
    *ANSWER.get_or_init(|| {
        let server_static = [7u8; 32];
        HandshakeUtils::verify_server_cert(&unsigned_chain(&server_static), &server_static).is_err()
    })
}

/// A chain that is right in every way but its signatures, which are zeros.
fn unsigned_chain(server_static: &[u8; 32]) -> Vec<u8> {
    let intermediate = noise_certificate::Details {
        serial: Some(1),
        issuer_serial: Some(0),
        key: Some(vec![0xCC; 32]),
        not_before: Some(1_700_000_000),
        not_after: Some(4_000_000_000),
    };
    let leaf = noise_certificate::Details {
        serial: Some(2),
        issuer_serial: Some(1),
        key: Some(server_static.to_vec()),
        not_before: Some(1_700_000_000),
        not_after: Some(4_000_000_000),
    };
    wa::CertChain {
        leaf: MessageField::some(wa::cert_chain::NoiseCertificate {
            details: Some(leaf.encode_to_vec()),
            signature: Some(vec![0u8; 64]),
        }),
        intermediate: MessageField::some(wa::cert_chain::NoiseCertificate {
            details: Some(intermediate.encode_to_vec()),
            signature: Some(vec![0u8; 64]),
        }),
    }
    .encode_to_vec()
}

/// Refuses a server other than this machine when the build does not verify certificates.
pub(super) fn guard(url: &str) -> Result<(), WhatsAppWebError> {
    if verifies_certificates() {
        return Ok(());
    }
    let loopback = url::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .is_some_and(|host| {
            let host = host.trim_start_matches('[').trim_end_matches(']');
            host == "localhost"
                || host
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        });
    if loopback {
        tracing::warn!(
            "WhatsApp : version de test du relais (certificat du serveur non vérifié) : simulateur local {url} seulement"
        );
        Ok(())
    } else {
        Err(WhatsAppWebError::UnverifiedBuild {
            url: url.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_build_that_skips_the_check_only_talks_to_this_machine() {
        assert!(guard("ws://127.0.0.1:4567/ws/chat").is_ok());
        assert!(guard("ws://[::1]:4567/ws/chat").is_ok());
        // The test build links the simulator, so it skips the check: the real server and any
        // other host are refused, with the reason.
        assert!(!verifies_certificates());
        let refused = guard("wss://web.whatsapp.com/ws/chat");
        assert!(
            matches!(&refused, Err(WhatsAppWebError::UnverifiedBuild { url }) if url.contains("web.whatsapp.com")),
            "{refused:?}"
        );
        assert!(guard("ws://192.168.1.10:4567/ws/chat").is_err());
    }
}
