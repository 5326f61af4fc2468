//! The simulated phones' Signal state: one identity, signed pre-key and one-time pre-keys per
//! device, all in memory, driven by `wa-rs-libsignal` (the same code the client uses).

use std::collections::HashMap;

use async_trait::async_trait;
use rand::TryRngCore;
use wa_rs_binary::builder::NodeBuilder;
use wa_rs_binary::jid::Jid;
use wa_rs_binary::node::Node;
use wa_rs_core::libsignal::protocol::{
    CiphertextMessage, GenericSignedPreKey, IdentityChange, IdentityKey, IdentityKeyPair,
    IdentityKeyStore, KeyPair, PreKeyBundle, PreKeyId, PreKeyRecord, PreKeySignalMessage,
    PreKeyStore, ProtocolAddress, PublicKey, SessionRecord, SessionStore, SignalMessage,
    SignalProtocolError, SignedPreKeyId, SignedPreKeyRecord, SignedPreKeyStore, Timestamp,
    UsePQRatchet, message_decrypt_prekey, message_decrypt_signal, message_encrypt,
    process_prekey_bundle,
};
use wa_rs_core::types::jid::JidExt;

type SignalResult<T> = Result<T, SignalProtocolError>;

const SIGNED_PRE_KEY_ID: u32 = 1;

fn os_rng() -> rand::rngs::ThreadRng {
    rand::rng()
}

struct Identities {
    pair: IdentityKeyPair,
    registration_id: u32,
    known: HashMap<String, IdentityKey>,
}

#[async_trait]
impl IdentityKeyStore for Identities {
    async fn get_identity_key_pair(&self) -> SignalResult<IdentityKeyPair> {
        Ok(self.pair.clone())
    }

    async fn get_local_registration_id(&self) -> SignalResult<u32> {
        Ok(self.registration_id)
    }

    async fn save_identity(
        &mut self,
        address: &ProtocolAddress,
        identity: &IdentityKey,
    ) -> SignalResult<IdentityChange> {
        let old = self.known.insert(address.to_string(), *identity);
        Ok(IdentityChange::from_changed(
            old.is_some_and(|o| o != *identity),
        ))
    }

    async fn is_trusted_identity(
        &self,
        _address: &ProtocolAddress,
        _identity: &IdentityKey,
        _direction: wa_rs_core::libsignal::protocol::Direction,
    ) -> SignalResult<bool> {
        Ok(true)
    }

    async fn get_identity(&self, address: &ProtocolAddress) -> SignalResult<Option<IdentityKey>> {
        Ok(self.known.get(&address.to_string()).copied())
    }
}

#[derive(Default)]
struct PreKeys(HashMap<u32, PreKeyRecord>);

#[async_trait]
impl PreKeyStore for PreKeys {
    async fn get_pre_key(&self, prekey_id: PreKeyId) -> SignalResult<PreKeyRecord> {
        self.0
            .get(&u32::from(prekey_id))
            .cloned()
            .ok_or(SignalProtocolError::InvalidPreKeyId)
    }

    async fn save_pre_key(
        &mut self,
        prekey_id: PreKeyId,
        record: &PreKeyRecord,
    ) -> SignalResult<()> {
        self.0.insert(prekey_id.into(), record.clone());
        Ok(())
    }

    async fn remove_pre_key(&mut self, prekey_id: PreKeyId) -> SignalResult<()> {
        self.0.remove(&u32::from(prekey_id));
        Ok(())
    }
}

struct SignedPreKeys(SignedPreKeyRecord);

#[async_trait]
impl SignedPreKeyStore for SignedPreKeys {
    async fn get_signed_pre_key(&self, id: SignedPreKeyId) -> SignalResult<SignedPreKeyRecord> {
        if u32::from(id) == SIGNED_PRE_KEY_ID {
            Ok(self.0.clone())
        } else {
            Err(SignalProtocolError::InvalidSignedPreKeyId)
        }
    }

    async fn save_signed_pre_key(
        &mut self,
        _id: SignedPreKeyId,
        record: &SignedPreKeyRecord,
    ) -> SignalResult<()> {
        self.0 = record.clone();
        Ok(())
    }
}

#[derive(Default)]
struct Sessions(HashMap<String, SessionRecord>);

#[async_trait]
impl SessionStore for Sessions {
    async fn load_session(&self, address: &ProtocolAddress) -> SignalResult<Option<SessionRecord>> {
        Ok(self.0.get(&address.to_string()).cloned())
    }

    async fn store_session(
        &mut self,
        address: &ProtocolAddress,
        record: &SessionRecord,
    ) -> SignalResult<()> {
        self.0.insert(address.to_string(), record.clone());
        Ok(())
    }
}

/// One simulated WhatsApp device (a carrier's phone, device 0).
pub(crate) struct SimDevice {
    identities: Identities,
    signed: SignedPreKeys,
    signed_public: PublicKey,
    signed_signature: Vec<u8>,
    prekeys: PreKeys,
    next_prekey_id: u32,
    sessions: Sessions,
}

/// The other side's keys, as uploaded by the client (for encrypting to it).
#[derive(Clone)]
pub(crate) struct PeerBundle {
    pub registration_id: u32,
    pub identity: [u8; 32],
    pub signed_id: u32,
    pub signed_public: [u8; 32],
    pub signed_signature: Vec<u8>,
    pub prekeys: Vec<(u32, [u8; 32])>,
}

impl SimDevice {
    pub(crate) fn new() -> Self {
        let mut rng = os_rng();
        let pair = IdentityKeyPair::generate(&mut rng);
        let signed_kp = KeyPair::generate(&mut rng);
        let signed_public = signed_kp.public_key;
        let signature = pair
            .private_key()
            .calculate_signature(&signed_public.serialize(), &mut rng)
            .expect("sign pre-key")
            .to_vec();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock after 1970")
            .as_millis() as u64;
        let record = SignedPreKeyRecord::new(
            SIGNED_PRE_KEY_ID.into(),
            Timestamp::from_epoch_millis(now),
            &signed_kp,
            &signature,
        );
        Self {
            identities: Identities {
                pair,
                registration_id: rand::random_range(1..16_380),
                known: HashMap::new(),
            },
            signed: SignedPreKeys(record),
            signed_public,
            signed_signature: signature,
            prekeys: PreKeys::default(),
            next_prekey_id: 1,
            sessions: Sessions::default(),
        }
    }

    /// The identity key pair (the primary phone's one signs the companion's ADV identity).
    pub(crate) fn identity(&self) -> &IdentityKeyPair {
        &self.identities.pair
    }

    /// A `<user>` node of a pre-key fetch answer, with a fresh one-time pre-key.
    pub(crate) fn bundle_node(&mut self, jid_attr: &str) -> Node {
        let id = self.next_prekey_id;
        self.next_prekey_id += 1;
        let kp = KeyPair::generate(&mut os_rng());
        self.prekeys.0.insert(id, PreKeyRecord::new(id.into(), &kp));
        NodeBuilder::new("user")
            .attr("jid", jid_attr)
            .children([
                NodeBuilder::new("registration")
                    .bytes(self.identities.registration_id.to_be_bytes().to_vec())
                    .build(),
                NodeBuilder::new("type").bytes(vec![5u8]).build(),
                NodeBuilder::new("identity")
                    .bytes(
                        self.identities
                            .pair
                            .public_key()
                            .public_key_bytes()
                            .to_vec(),
                    )
                    .build(),
                NodeBuilder::new("skey")
                    .children([
                        NodeBuilder::new("id")
                            .bytes(SIGNED_PRE_KEY_ID.to_be_bytes()[1..].to_vec())
                            .build(),
                        NodeBuilder::new("value")
                            .bytes(self.signed_public.public_key_bytes().to_vec())
                            .build(),
                        NodeBuilder::new("signature")
                            .bytes(self.signed_signature.clone())
                            .build(),
                    ])
                    .build(),
                NodeBuilder::new("key")
                    .children([
                        NodeBuilder::new("id")
                            .bytes(id.to_be_bytes()[1..].to_vec())
                            .build(),
                        NodeBuilder::new("value")
                            .bytes(kp.public_key.public_key_bytes().to_vec())
                            .build(),
                    ])
                    .build(),
            ])
            .build()
    }

    /// Decrypts a `pkmsg` or `msg` from `sender`.
    pub(crate) async fn decrypt(
        &mut self,
        sender: &Jid,
        enc_type: &str,
        ciphertext: &[u8],
    ) -> anyhow::Result<Vec<u8>> {
        let address = sender.to_protocol_address();
        let mut rng = rand::rngs::OsRng.unwrap_err();
        let plain = match enc_type {
            "pkmsg" => {
                let msg = PreKeySignalMessage::try_from(ciphertext)?;
                message_decrypt_prekey(
                    &msg,
                    &address,
                    &mut self.sessions,
                    &mut self.identities,
                    &mut self.prekeys,
                    &self.signed,
                    &mut rng,
                    UsePQRatchet::No,
                )
                .await?
            }
            "msg" => {
                let msg = SignalMessage::try_from(ciphertext)?;
                message_decrypt_signal(
                    &msg,
                    &address,
                    &mut self.sessions,
                    &mut self.identities,
                    &mut rng,
                )
                .await?
            }
            other => anyhow::bail!("unsupported enc type {other}"),
        };
        Ok(plain)
    }

    /// Encrypts to `peer` (the companion), starting a session from its bundle if none exists.
    /// Returns the `enc` type (`pkmsg` or `msg`) and the ciphertext.
    pub(crate) async fn encrypt(
        &mut self,
        peer: &Jid,
        bundle: Option<&PeerBundle>,
        plaintext: &[u8],
    ) -> anyhow::Result<(&'static str, Vec<u8>)> {
        let address = peer.to_protocol_address();
        if self.sessions.load_session(&address).await?.is_none() {
            let b = bundle.ok_or_else(|| {
                anyhow::anyhow!("no session with {peer} and no pre-keys uploaded by it")
            })?;
            let prekey = b
                .prekeys
                .first()
                .map(|(id, key)| -> anyhow::Result<_> {
                    Ok((
                        PreKeyId::from(*id),
                        PublicKey::from_djb_public_key_bytes(key)?,
                    ))
                })
                .transpose()?;
            let bundle = PreKeyBundle::new(
                b.registration_id,
                u32::from(peer.device).into(),
                prekey,
                b.signed_id.into(),
                PublicKey::from_djb_public_key_bytes(&b.signed_public)?,
                b.signed_signature.clone(),
                IdentityKey::new(PublicKey::from_djb_public_key_bytes(&b.identity)?),
            )?;
            let mut rng = rand::rngs::OsRng.unwrap_err();
            process_prekey_bundle(
                &address,
                &mut self.sessions,
                &mut self.identities,
                &bundle,
                &mut rng,
                UsePQRatchet::No,
            )
            .await?;
        }
        match message_encrypt(
            plaintext,
            &address,
            &mut self.sessions,
            &mut self.identities,
        )
        .await?
        {
            CiphertextMessage::PreKeySignalMessage(m) => Ok(("pkmsg", m.serialized().to_vec())),
            CiphertextMessage::SignalMessage(m) => Ok(("msg", m.serialized().to_vec())),
            _ => anyhow::bail!("unexpected ciphertext type"),
        }
    }
}
