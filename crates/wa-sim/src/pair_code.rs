//! The server and phone sides of linking with a pairing code (`link_code_companion_reg`), the
//! mirror of what wa-rs 0.2.0 does as the companion (`wa_rs::pair_code`,
//! `wa_rs_core::pair_code`), written from the protocol rather than with wa-rs's helpers, so a
//! mistake on either side shows up as a failed link:
//!
//! 1. `companion_hello` IQ: the companion's ephemeral public key wrapped with the code
//!    (`salt 32 | iv 16 | AES-256-CTR(PBKDF2-SHA256(code, salt, 2^17), iv)`), its platform id and
//!    display name. The server answers a `link_code_pairing_ref`.
//! 2. The user types the code on the phone ([`crate::WaSim::enter_pair_code`]): the phone unwraps
//!    the companion's key with what was typed, wraps its own ephemeral key the same way and the
//!    server sends the companion a `link_code_companion_reg` notification (`primary_hello`) with it
//!    and the phone's identity key.
//! 3. `companion_finish` IQ: `salt 32 | iv 12 | AES-256-GCM(HKDF-SHA256(salt, DH(ephemerals),
//!    "link_code_pairing_key_bundle_encryption_key"))` over `companion identity | primary identity
//!    | 32 random bytes`. Only a phone that typed the right code shares the ephemeral secret and
//!    can open it; it then derives the ADV secret (`HKDF(DH(ephemerals) | DH(identities) |
//!    random, "adv_secret")`) and sends `pair-success` as for a QR scan.

use aes::cipher::{KeyIvInit, StreamCipher};
use aes_gcm::aead::{Aead, KeyInit};
use hkdf::Hkdf;
use rand::Rng;
use sha2::Sha256;
use wa_rs_binary::builder::NodeBuilder;
use wa_rs_binary::jid::SERVER_JID;
use wa_rs_binary::node::Node;
use wa_rs_core::libsignal::protocol::{IdentityKeyPair, KeyPair, PublicKey};

type Aes256Ctr = ctr::Ctr128BE<aes::Aes256>;

const PBKDF2_ROUNDS: u32 = 1 << 17;
const BUNDLE_INFO: &[u8] = b"link_code_pairing_key_bundle_encryption_key";
const ADV_SECRET_INFO: &[u8] = b"adv_secret";

/// Browsers and systems a `companion_platform_display` may name: the real server answers 400
/// to anything not formatted `Browser (OS)` with a common browser and system (whatsmeow's
/// documentation of `PairPhone`; the exact list is WhatsApp's and not public).
const BROWSERS: [&str; 6] = ["Chrome", "Edge", "Firefox", "IE", "Opera", "Safari"];
const SYSTEMS: [&str; 4] = ["Linux", "Windows", "Mac OS", "macOS"];

/// A companion waiting for its code to be typed on the phone (`companion_hello` received).
#[derive(Clone)]
pub(crate) struct LinkCodeRequest {
    pub(crate) pairing_ref: String,
    /// The account the companion wants to join (digits).
    pub(crate) phone: String,
    pub(crate) wrapped_companion_ephemeral: Vec<u8>,
    /// Set once the phone typed a code: its ephemeral key and what it unwrapped with it.
    pub(crate) primary: Option<PrimarySide>,
}

#[derive(Clone)]
pub(crate) struct PrimarySide {
    pub(crate) ephemeral: KeyPair,
    pub(crate) companion_ephemeral: [u8; 32],
    pub(crate) identity: IdentityKeyPair,
}

/// Why a `companion_hello` is refused (400, as the real server does).
pub(crate) fn check_hello(phone: &str, display: &str) -> Result<(), &'static str> {
    if phone.len() < 7 || phone.starts_with('0') || !phone.chars().all(|c| c.is_ascii_digit()) {
        return Err("bad-request");
    }
    let valid_display = display
        .strip_suffix(')')
        .and_then(|d| d.split_once(" ("))
        .is_some_and(|(browser, os)| BROWSERS.contains(&browser) && SYSTEMS.contains(&os));
    if valid_display {
        Ok(())
    } else {
        Err("bad-request")
    }
}

fn code_key(code: &str, salt: &[u8]) -> [u8; 32] {
    let mut key = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(code.as_bytes(), salt, PBKDF2_ROUNDS, &mut key);
    key
}

/// `salt | iv | ciphertext` (80 bytes) → the 32-byte key, with the code as typed. A wrong code
/// gives other bytes, not an error: AES-CTR cannot tell.
pub(crate) fn unwrap_ephemeral(wrapped: &[u8], code: &str) -> Option<[u8; 32]> {
    if wrapped.len() != 80 {
        return None;
    }
    let key = code_key(code, &wrapped[..32]);
    let iv: [u8; 16] = wrapped[32..48].try_into().ok()?;
    let mut plain: [u8; 32] = wrapped[48..80].try_into().ok()?;
    Aes256Ctr::new(&key.into(), &iv.into()).apply_keystream(&mut plain);
    Some(plain)
}

pub(crate) fn wrap_ephemeral(public: &[u8; 32], code: &str) -> Vec<u8> {
    let mut rng = rand::rng();
    let salt: [u8; 32] = rng.random();
    let iv: [u8; 16] = rng.random();
    let key = code_key(code, &salt);
    let mut cipher = *public;
    Aes256Ctr::new(&key.into(), &iv.into()).apply_keystream(&mut cipher);
    [salt.as_slice(), &iv, &cipher].concat()
}

/// What the phone learns from a `companion_finish` it could open.
pub(crate) struct Finished {
    pub(crate) companion_identity: [u8; 32],
    pub(crate) adv_secret: [u8; 32],
}

/// Opens the companion's key bundle; `None` when the phone typed another code than the one
/// shown (the ephemeral secrets differ, so AES-GCM refuses) or the bundle names other keys.
pub(crate) fn open_bundle(
    primary: &PrimarySide,
    wrapped: &[u8],
    companion_identity: &[u8],
) -> Option<Finished> {
    if wrapped.len() < 32 + 12 + 16 {
        return None;
    }
    let companion_ephemeral =
        PublicKey::from_djb_public_key_bytes(&primary.companion_ephemeral).ok()?;
    let ephemeral_shared = primary
        .ephemeral
        .private_key
        .calculate_agreement(&companion_ephemeral)
        .ok()?;
    let mut key = [0u8; 32];
    Hkdf::<Sha256>::new(Some(&wrapped[..32]), &ephemeral_shared)
        .expand(BUNDLE_INFO, &mut key)
        .ok()?;
    let bundle = aes_gcm::Aes256Gcm::new_from_slice(&key)
        .ok()?
        .decrypt(aes_gcm::Nonce::from_slice(&wrapped[32..44]), &wrapped[44..])
        .ok()?;
    if bundle.len() != 96 {
        return None;
    }
    let (companion, rest) = bundle.split_at(32);
    let (primary_identity, random) = rest.split_at(32);
    let own_identity = primary.identity.public_key().public_key_bytes();
    if companion != companion_identity || primary_identity != own_identity {
        return None;
    }
    let companion_key = PublicKey::from_djb_public_key_bytes(companion).ok()?;
    let identity_shared = primary
        .identity
        .private_key()
        .calculate_agreement(&companion_key)
        .ok()?;
    let mut adv_secret = [0u8; 32];
    Hkdf::<Sha256>::new(
        None,
        &[ephemeral_shared.as_slice(), &identity_shared, random].concat(),
    )
    .expand(ADV_SECRET_INFO, &mut adv_secret)
    .ok()?;
    Some(Finished {
        companion_identity: companion.try_into().ok()?,
        adv_secret,
    })
}

/// The answer to `companion_hello`.
pub(crate) fn hello_result(id: &str, pairing_ref: &str) -> Node {
    NodeBuilder::new("iq")
        .attrs([("from", SERVER_JID), ("type", "result"), ("id", id)])
        .children([NodeBuilder::new("link_code_companion_reg")
            .children([NodeBuilder::new("link_code_pairing_ref")
                .bytes(pairing_ref.as_bytes().to_vec())
                .build()])
            .build()])
        .build()
}

/// `primary_hello`: the phone's wrapped ephemeral key and its identity key.
pub(crate) fn primary_hello(
    id: &str,
    pairing_ref: &str,
    wrapped_primary_ephemeral: Vec<u8>,
    primary_identity: &[u8],
) -> Node {
    NodeBuilder::new("notification")
        .attr("from", SERVER_JID)
        .attr("type", "link_code_companion_reg")
        .attr("id", id)
        .attr("t", crate::now_secs().to_string())
        .children([NodeBuilder::new("link_code_companion_reg")
            .attr("stage", "primary_hello")
            .children([
                NodeBuilder::new("link_code_pairing_ref")
                    .bytes(pairing_ref.as_bytes().to_vec())
                    .build(),
                NodeBuilder::new("link_code_pairing_wrapped_primary_ephemeral_pub")
                    .bytes(wrapped_primary_ephemeral)
                    .build(),
                NodeBuilder::new("primary_identity_pub")
                    .bytes(primary_identity.to_vec())
                    .build(),
            ])
            .build()])
        .build()
}

/// A random pairing ref, in the style of the QR refs.
pub(crate) fn pairing_ref() -> String {
    let mut rng = rand::rng();
    let body: String = (0..32)
        .map(|_| {
            let c = rng.random_range(0..36u8);
            char::from(if c < 10 { b'0' + c } else { b'a' + c - 10 })
        })
        .collect();
    format!("2@{body}")
}
