//! The "phone" side of QR linking: the `pair-device` refs and the `pair-success` stanza.
//!
//! wa-rs 0.2.0 (`wa_rs_core::pair::PairUtils::do_pair_crypto`) decodes
//! `ADVSignedDeviceIdentityHMAC{details, hmac}` (the HMAC check is commented out upstream), then
//! `ADVSignedDeviceIdentity{details, accountSignatureKey, accountSignature}` and verifies
//! `accountSignature` = XEdDSA over `[6, 0] ++ details ++ companion identity public key` with
//! `accountSignatureKey`. `details` is an `ADVDeviceIdentity` whose `keyIndex` is echoed back.

use crate::signal::{PeerBundle, SimDevice};
use crate::{PendingPair, Shared, lid_for};
use hmac::{Hmac, Mac};
use prost::Message as _;
use rand::Rng;
use sha2::Sha256;
use wa_rs_binary::builder::NodeBuilder;
use wa_rs_binary::jid::SERVER_JID;
use wa_rs_binary::node::Node;
use wa_rs_core::libsignal::protocol::IdentityKeyPair;
use wa_rs_proto::whatsapp as wa;

const ADV_PREFIX_ACCOUNT_SIGNATURE: &[u8] = &[6, 0];

/// The `<iq xmlns="md"><pair-device><ref/>…</pair-device></iq>` sent to an unpaired client.
pub(crate) fn pair_device_iq(id: &str, refs: usize) -> Node {
    let mut rng = rand::rng();
    let refs = (0..refs).map(|_| {
        let r: String = (0..40)
            .map(|_| {
                let c = rng.random_range(0..62u8);
                char::from(match c {
                    0..=9 => b'0' + c,
                    10..=35 => b'a' + c - 10,
                    _ => b'A' + c - 36,
                })
            })
            .collect();
        NodeBuilder::new("ref")
            .bytes(format!("2@{r}").into_bytes())
            .build()
    });
    NodeBuilder::new("iq")
        .attrs([
            ("from", SERVER_JID),
            ("type", "set"),
            ("id", id),
            ("xmlns", "md"),
        ])
        .children([NodeBuilder::new("pair-device").children(refs).build()])
        .build()
}

/// The signed device identity the phone gives the companion, as bytes of
/// `ADVSignedDeviceIdentityHMAC`.
pub(crate) fn signed_device_identity(
    phone_identity: &IdentityKeyPair,
    companion_identity: &[u8],
    key_index: u32,
    hmac_key: &[u8; 32],
) -> Vec<u8> {
    let mut rng = rand::rng();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    let details = wa::AdvDeviceIdentity {
        raw_id: Some(rng.random()),
        timestamp: Some(now),
        key_index: Some(key_index),
        account_type: None,
        device_type: None,
    }
    .encode_to_vec();
    let mut msg = Vec::with_capacity(2 + details.len() + 32);
    msg.extend_from_slice(ADV_PREFIX_ACCOUNT_SIGNATURE);
    msg.extend_from_slice(&details);
    msg.extend_from_slice(companion_identity);
    let account_signature = phone_identity
        .private_key()
        .calculate_signature(&msg, &mut rng)
        .expect("sign device identity");
    let signed = wa::AdvSignedDeviceIdentity {
        details: Some(details),
        account_signature_key: Some(phone_identity.public_key().public_key_bytes().to_vec()),
        account_signature: Some(account_signature.to_vec()),
        device_signature: None,
    }
    .encode_to_vec();
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(hmac_key).expect("hmac key");
    mac.update(&signed);
    wa::AdvSignedDeviceIdentityHmac {
        details: Some(signed),
        hmac: Some(mac.finalize().into_bytes().to_vec()),
        account_type: None,
    }
    .encode_to_vec()
}

/// `<iq xmlns="md"><pair-success>…</pair-success></iq>`.
pub(crate) fn pair_success_iq(
    id: &str,
    device_identity: Vec<u8>,
    key_index: u32,
    device_jid: &str,
    device_lid: &str,
    lid_migrated: bool,
) -> Node {
    // `ClientPairingProps { isChatDbLidMigrated = 1 }`: the phone tells a new companion that the
    // account's 1:1 chats are on LIDs (whatsapp-rust 0.7 persists it at pairing).
    let client_props = vec![0x08, u8::from(lid_migrated)];
    NodeBuilder::new("iq")
        .attrs([
            ("from", SERVER_JID),
            ("type", "set"),
            ("id", id),
            ("xmlns", "md"),
        ])
        .children([NodeBuilder::new("pair-success")
            .children([
                NodeBuilder::new("device-identity")
                    .attr("key-index", key_index.to_string())
                    .bytes(device_identity)
                    .build(),
                NodeBuilder::new("client-props").bytes(client_props).build(),
                NodeBuilder::new("platform").attr("name", "android").build(),
                NodeBuilder::new("device")
                    .attr("jid", device_jid)
                    .attr("lid", device_lid)
                    .build(),
            ])
            .build()])
        .build()
}

/// The ADV secret, the 4th field of a linking QR code (the server never sees it otherwise).
pub(crate) fn adv_secret_of(qr: &str) -> Option<[u8; 32]> {
    use base64::Engine as _;
    let field = qr.split(',').nth(3)?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(field)
        .ok()?;
    bytes.try_into().ok()
}

/// The `pair-success` IQ the phone `phone` sends to link the companion whose keys are
/// `bundle`, its device identity signed with the phone's identity key and HMAC'd with
/// `hmac_key`; the pairing is pending until the client answers `pair-device-sign`.
pub(crate) async fn pair_success(
    shared: &Shared,
    phone: &str,
    bundle: PeerBundle,
    hmac_key: &[u8; 32],
) -> Node {
    let identity = {
        let mut phones = shared.phones.lock().await;
        phones
            .entry(phone.to_string())
            .or_insert_with(SimDevice::new)
            .identity()
            .clone()
    };
    let key_index = 1;
    let device_identity = signed_device_identity(&identity, &bundle.identity, key_index, hmac_key);
    let (id, device) = {
        let mut st = shared.state();
        let device = st.accounts.get(phone).map_or(2, |a| a.device + 1);
        let id = st.next_id("pair-");
        st.pending_pairs.insert(
            id.clone(),
            PendingPair {
                phone: phone.to_string(),
                device,
                bundle,
            },
        );
        (id, device)
    };
    let lid = lid_for(phone);
    let lid_migrated = shared.state().privacy.lid_migrated;
    pair_success_iq(
        &id,
        device_identity,
        key_index,
        &format!("{phone}:{device}@s.whatsapp.net"),
        &format!("{lid}:{device}@lid"),
        lid_migrated,
    )
}
