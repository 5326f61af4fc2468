//! The server's side of app-state sync (syncd) for the one record the simulator holds: the
//! account's `nct_salt_sync` setting (WhatsApp: in `regular_high`; here in `critical_block`, see
//! [`NCT_SALT_COLLECTION`]).
//!
//! The real server stores every collection as encrypted mutations the account's devices wrote;
//! the phone writes `nct_salt_sync` (`SyncActionValue.nctSaltSyncAction.salt`, field 80) and a
//! companion reads it back. whatsapp-rust 0.7 takes its `nct_salt` from there
//! (`client/app_state.rs`, `dispatch_app_state_mutation`) or from a history sync, which the relay
//! skips. The simulator plays the phone and the server at once: once the phone shared its
//! app-state key ([`crate::WaSim::share_app_state_key`]), a sync of that collection from version 0
//! is answered with one patch (version 1) holding that mutation, encrypted and MAC'd as WhatsApp
//! Web does (AES-256-CBC value, HMAC-SHA256 index, HMAC-SHA512 value MAC, LTHash snapshot MAC,
//! patch MAC; `wa_rs_core::appstate` has the same primitives as 0.7's `wacore-appstate`).
//!
//! Not modelled: snapshots (external blobs), other collections' records, patches the client
//! sends (accepted and dropped), conflicts (409), `has_more_patches`.

use prost::Message as _;
use wa_rs_core::appstate::hash::{HashState, generate_content_mac, generate_patch_mac};
use wa_rs_core::appstate::keys::expand_app_state_keys;
use wa_rs_core::libsignal::crypto::aes_256_cbc_encrypt_into;
use wa_rs_proto::whatsapp as wa;

/// The collection the simulator serves `nct_salt_sync` in. WhatsApp keeps it in `regular_high`,
/// which whatsapp-rust 0.7 syncs in the background right after `Connected`: a test's first send
/// would race the salt (seen: 463 on the first message of a freshly linked client). Served in
/// `critical_block`, which 0.7 syncs before `Connected`, the salt is there once `Connected` is;
/// the client applies `nct_salt_sync` from any collection.
pub(crate) const NCT_SALT_COLLECTION: &str = "critical_block";

/// `SyncActionValue { timestamp, nctSaltSyncAction { salt } }`, encoded by hand: wa-rs-proto
/// 0.2 predates field 80.
fn nct_salt_action_value(salt: &[u8], timestamp_ms: i64) -> Vec<u8> {
    use prost::encoding::{WireType, encode_key, encode_varint};
    let mut inner = Vec::new();
    prost::encoding::bytes::encode(1, &salt.to_vec(), &mut inner);
    let mut value = Vec::new();
    prost::encoding::int64::encode(1, &timestamp_ms, &mut value);
    encode_key(80, WireType::LengthDelimited, &mut value);
    encode_varint(inner.len() as u64, &mut value);
    value.extend_from_slice(&inner);
    value
}

/// `SyncActionValue { timestamp, pushNameSetting { name } }`: the account's name, which the phone
/// writes at linking. Without it whatsapp-rust 0.7 treats every later login as a fresh link and
/// waits 10 s for a key share before `Connected`.
fn push_name_action_value(name: &str, timestamp_ms: i64) -> Vec<u8> {
    use prost::encoding::{WireType, encode_key, encode_varint};
    let mut inner = Vec::new();
    prost::encoding::string::encode(1, &name.to_string(), &mut inner);
    let mut value = Vec::new();
    prost::encoding::int64::encode(1, &timestamp_ms, &mut value);
    encode_key(7, WireType::LengthDelimited, &mut value);
    encode_varint(inner.len() as u64, &mut value);
    value.extend_from_slice(&inner);
    value
}

/// The push name the simulated phone gives its account.
pub(crate) const PUSH_NAME: &str = "CamionBack";

/// `SyncActionData { index, value, padding, version }`, `value` already encoded.
fn sync_action_data(index: &[u8], value: &[u8], version: i32) -> Vec<u8> {
    use prost::encoding::{WireType, encode_key, encode_varint};
    let mut out = Vec::new();
    prost::encoding::bytes::encode(1, &index.to_vec(), &mut out);
    encode_key(2, WireType::LengthDelimited, &mut out);
    encode_varint(value.len() as u64, &mut out);
    out.extend_from_slice(value);
    prost::encoding::bytes::encode(3, &Vec::new(), &mut out);
    prost::encoding::int32::encode(4, &version, &mut out);
    out
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> Vec<u8> {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).expect("HMAC takes any key");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// The encoded `SyncdPatch` (version 1, from an empty collection) that sets the account's
/// `nct_salt_sync` to `salt` and its push name ([`PUSH_NAME`]), under the app-state key
/// (`key_id`, `key_data`).
pub(crate) fn nct_salt_patch(key_id: &[u8], key_data: &[u8; 32], salt: &[u8]) -> Vec<u8> {
    let keys = expand_app_state_keys(key_data);
    let timestamp_ms = i64::try_from(crate::now_secs() * 1000).unwrap_or(i64::MAX);
    let mutations: Vec<wa::SyncdMutation> = [
        (
            &br#"["nct_salt_sync"]"#[..],
            nct_salt_action_value(salt, timestamp_ms),
        ),
        (
            &br#"["setting_pushName"]"#[..],
            push_name_action_value(PUSH_NAME, timestamp_ms),
        ),
    ]
    .into_iter()
    .map(|(index, value)| {
        let plain = sync_action_data(index, &value, 1);
        let iv: [u8; 16] = rand::random();
        let mut ciphertext = Vec::new();
        aes_256_cbc_encrypt_into(&plain, &keys.value_encryption, &iv, &mut ciphertext)
            .expect("AES-256-CBC with a 32-byte key");
        let mut value_blob = iv.to_vec();
        value_blob.extend_from_slice(&ciphertext);
        let value_mac = generate_content_mac(
            wa::syncd_mutation::SyncdOperation::Set,
            &value_blob,
            key_id,
            &keys.value_mac,
        );
        value_blob.extend_from_slice(&value_mac);
        wa::SyncdMutation {
            operation: Some(wa::syncd_mutation::SyncdOperation::Set as i32),
            record: Some(wa::SyncdRecord {
                index: Some(wa::SyncdIndex {
                    blob: Some(hmac_sha256(&keys.index, index)),
                }),
                value: Some(wa::SyncdValue {
                    blob: Some(value_blob),
                }),
                key_id: Some(wa::KeyId {
                    id: Some(key_id.to_vec()),
                }),
            }),
        }
    })
    .collect();
    let mut state = HashState::default();
    let (_, applied) = state.update_hash(&mutations, |_, _| Ok(None));
    applied.expect("SETs on an empty collection");
    state.version = 1;
    let mut patch = wa::SyncdPatch {
        version: Some(wa::SyncdVersion { version: Some(1) }),
        mutations,
        snapshot_mac: Some(state.generate_snapshot_mac(NCT_SALT_COLLECTION, &keys.snapshot_mac)),
        key_id: Some(wa::KeyId {
            id: Some(key_id.to_vec()),
        }),
        ..Default::default()
    };
    patch.patch_mac = Some(generate_patch_mac(
        &patch,
        NCT_SALT_COLLECTION,
        &keys.patch_mac,
        1,
    ));
    patch.encode_to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use wa_rs_core::appstate::processor::process_patch;
    use wa_rs_core::libsignal::crypto::aes_256_cbc_decrypt_into;

    /// The fields of `SyncActionData` / `SyncActionValue` this test reads (wa-rs-proto 0.2 has
    /// no field 80).
    #[derive(Clone, PartialEq, prost::Message)]
    struct Nct {
        #[prost(bytes = "vec", optional, tag = "1")]
        salt: Option<Vec<u8>>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    struct Value {
        #[prost(message, optional, tag = "80")]
        nct: Option<Nct>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    struct Data {
        #[prost(bytes = "vec", optional, tag = "1")]
        index: Option<Vec<u8>>,
        #[prost(message, optional, tag = "2")]
        value: Option<Value>,
    }

    #[test]
    fn a_client_holding_the_key_reads_the_salt_from_the_patch_with_every_mac_checked() {
        let key_id = [0, 0, 0, 1, 0, 1];
        let key_data = [7u8; 32];
        let salt = [42u8; 32];
        let patch = wa::SyncdPatch::decode(nct_salt_patch(&key_id, &key_data, &salt).as_slice())
            .expect("a SyncdPatch");
        let keys = expand_app_state_keys(&key_data);

        let mut state = HashState::default();
        let applied = process_patch(
            &patch,
            &mut state,
            |id| {
                assert_eq!(id, key_id);
                Ok(expand_app_state_keys(&key_data))
            },
            |_| Ok(None),
            true,
            NCT_SALT_COLLECTION,
        )
        .expect("index, value, snapshot and patch MACs verify");
        assert_eq!(applied.mutations.len(), 2);
        assert_eq!(applied.mutations[0].index, vec!["nct_salt_sync"]);
        assert_eq!(applied.mutations[1].index, vec!["setting_pushName"]);
        assert_eq!(applied.state.version, 1);

        let blob = patch.mutations[0]
            .record
            .as_ref()
            .and_then(|r| r.value.as_ref())
            .and_then(|v| v.blob.clone())
            .expect("a value blob");
        let mut plain = Vec::new();
        aes_256_cbc_decrypt_into(
            &blob[16..blob.len() - 32],
            &keys.value_encryption,
            &blob[..16],
            &mut plain,
        )
        .expect("decrypts");
        let data = Data::decode(plain.as_slice()).expect("SyncActionData");
        assert_eq!(data.index.as_deref(), Some(&br#"["nct_salt_sync"]"#[..]));
        assert_eq!(
            data.value.and_then(|v| v.nct).and_then(|n| n.salt),
            Some(salt.to_vec())
        );
    }

    #[test]
    fn another_key_does_not_open_the_patch() {
        let key_id = [0, 0, 0, 1, 0, 1];
        let patch =
            wa::SyncdPatch::decode(nct_salt_patch(&key_id, &[7u8; 32], &[1u8; 32]).as_slice())
                .expect("a SyncdPatch");
        let refused = process_patch(
            &patch,
            &mut HashState::default(),
            |_| Ok(expand_app_state_keys(&[8u8; 32])),
            |_| Ok(None),
            true,
            NCT_SALT_COLLECTION,
        );
        assert!(refused.is_err());
    }
}
