//! The server side of WhatsApp's Noise XX handshake, and the framed AES-GCM transport after it.
//!
//! Mirror of `wa-rs-noise/src/handshake.rs` (client side):
//!
//! ```text
//! client -> server   "WA" 6 3 | len24 | HandshakeMessage{client_hello{ephemeral}}
//! server -> client   len24 | HandshakeMessage{server_hello{ephemeral, static*, payload*=CertChain}}
//! client -> server   len24 | HandshakeMessage{client_finish{static*, payload*=ClientPayload}}
//! ```
//!
//! Both sides start from `NOISE_START_PATTERN` with `WA_CONN_HEADER` as prologue. After the
//! handshake, every frame is `len24 | AES-256-GCM(counter IV, no AAD)` over
//! `wa_rs_binary::marshal(node)` (a 0 flag byte, then the binary node), one counter per direction
//! starting at 0. The client's `finish()` gives (write, read); the server uses them crossed.

use anyhow::{Context, anyhow, bail};
use prost::Message as _;
use wa_rs_binary::consts::{NOISE_START_PATTERN, WA_CONN_HEADER};
use wa_rs_binary::node::Node;
use wa_rs_core::framing::{FrameDecoder, encode_frame};
use wa_rs_core::libsignal::protocol::{KeyPair, PrivateKey};
use wa_rs_core::noise::{NoiseCipher, NoiseHandshake};
use wa_rs_proto::whatsapp::cert_chain::{NoiseCertificate, noise_certificate};
use wa_rs_proto::whatsapp::{self as wa, CertChain, HandshakeMessage};

/// whatsapp-rust 0.7's `NOISE_PATTERN_XXFALLBACK` (longer than 32 bytes, so hashed at init).
const XX_FALLBACK_PATTERN: &str = "Noise_XXfallback_25519_AESGCM_SHA256";

/// The private half of the simulator's test root key (XEdDSA over Curve25519), a constant so
/// every simulator signs with the same root and a test can name it. Not WhatsApp's: a client that
/// verifies the chain against WhatsApp's root key (`wacore_noise::WA_CERT_PUB_KEY`) refuses it.
const TEST_ROOT_PRIVATE: [u8; 32] = *b"relay-wa-sim test root key #0001";

/// The public half of [`TEST_ROOT_PRIVATE`].
pub(crate) fn test_root_public_key() -> [u8; 32] {
    test_root()
        .public_key
        .public_key_bytes()
        .try_into()
        .expect("a Curve25519 public key is 32 bytes")
}

fn test_root() -> KeyPair {
    let private = PrivateKey::deserialize(&TEST_ROOT_PRIVATE).expect("32-byte test root key");
    let public = private.public_key().expect("test root public key");
    KeyPair::new(public, private)
}

/// The server's long-term Noise key and the certificate chain that vouches for it.
///
/// The real server's chain is `root (WhatsApp's key, built into clients) → intermediate (serial
/// N, issuer serial 0, its own key) → leaf (issuer serial N, key = the server's Noise static
/// key)`, each certificate's `details` XEdDSA-signed by its issuer. The simulator builds the same
/// shape with its own test root ([`test_root_public_key`]): the intermediate is really signed by
/// the test root and the leaf by the intermediate, so only the root differs from WhatsApp's.
///
/// What each client checks: wa-rs 0.2.0 only the structure (intermediate issuer serial 0 and a
/// 32-byte key, leaf issuer serial = intermediate serial, leaf key = static key); whatsapp-rust
/// 0.7 the structure and both signatures against WhatsApp's root, so it refuses this chain unless
/// built with `danger-skip-cert-chain-verify` (which skips the signatures only, never the
/// structure). [`crate::CertChain::LeafKeyMismatch`] breaks the structure so that even such a
/// build refuses it.
pub(crate) struct ServerIdentity {
    static_kp: KeyPair,
    cert_chain: Vec<u8>,
}

impl ServerIdentity {
    pub(crate) fn generate(kind: crate::CertChain) -> Self {
        let mut rng = rand::rng();
        let static_kp = KeyPair::generate(&mut rng);
        let root = test_root();
        let intermediate = KeyPair::generate(&mut rng);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock after 1970")
            .as_secs();

        let intermediate_details = noise_certificate::Details {
            serial: Some(1),
            issuer_serial: Some(0),
            key: Some(intermediate.public_key.public_key_bytes().to_vec()),
            not_before: Some(now - 3600),
            not_after: Some(now + 365 * 86_400),
        }
        .encode_to_vec();
        let leaf_key = match kind {
            crate::CertChain::TestRootSigned => static_kp.public_key.public_key_bytes().to_vec(),
            // Some other key than the one the server proves it holds in the handshake.
            crate::CertChain::LeafKeyMismatch => KeyPair::generate(&mut rng)
                .public_key
                .public_key_bytes()
                .to_vec(),
        };
        let leaf_details = noise_certificate::Details {
            serial: Some(2),
            issuer_serial: Some(1),
            key: Some(leaf_key),
            not_before: Some(now - 3600),
            not_after: Some(now + 30 * 86_400),
        }
        .encode_to_vec();
        let intermediate_sig = root
            .private_key
            .calculate_signature(&intermediate_details, &mut rng)
            .expect("sign intermediate certificate");
        let leaf_sig = intermediate
            .private_key
            .calculate_signature(&leaf_details, &mut rng)
            .expect("sign leaf certificate");

        let cert_chain = CertChain {
            leaf: Some(NoiseCertificate {
                details: Some(leaf_details),
                signature: Some(leaf_sig.to_vec()),
            }),
            intermediate: Some(NoiseCertificate {
                details: Some(intermediate_details),
                signature: Some(intermediate_sig.to_vec()),
            }),
        }
        .encode_to_vec();

        Self {
            static_kp,
            cert_chain,
        }
    }
}

/// Where the server is in the handshake, fed with raw websocket bytes.
pub(crate) struct ServerHandshake {
    buffer: Vec<u8>,
    header_seen: bool,
    decoder: FrameDecoder,
    noise: Option<NoiseHandshake>,
    ephemeral: KeyPair,
}

/// What a completed handshake yields.
pub(crate) struct Established {
    pub cipher: FrameCipher,
    pub payload: wa::ClientPayload,
}

pub(crate) enum Step {
    /// Need more bytes.
    Pending,
    /// Send these bytes (the server hello) and keep feeding.
    Reply(Vec<u8>),
    /// Done; any bytes after the client finish are returned for the transport decoder.
    Done(Box<Established>, Vec<u8>),
}

impl ServerHandshake {
    pub(crate) fn new() -> Self {
        Self {
            buffer: Vec::new(),
            header_seen: false,
            decoder: FrameDecoder::new(),
            noise: None,
            ephemeral: KeyPair::generate(&mut rand::rng()),
        }
    }

    pub(crate) fn feed(&mut self, data: &[u8], id: &ServerIdentity) -> anyhow::Result<Step> {
        if !self.header_seen {
            self.buffer.extend_from_slice(data);
            let mut start = 0;
            // Optional edge-routing pre-intro: "ED" 0 1 | len24 | routing data.
            if self.buffer.starts_with(b"ED\x00\x01") {
                if self.buffer.len() < 7 {
                    return Ok(Step::Pending);
                }
                let len = (usize::from(self.buffer[4]) << 16)
                    | (usize::from(self.buffer[5]) << 8)
                    | usize::from(self.buffer[6]);
                start = 7 + len;
            }
            if self.buffer.len() < start + WA_CONN_HEADER.len() {
                return Ok(Step::Pending);
            }
            if self.buffer[start..start + WA_CONN_HEADER.len()] != WA_CONN_HEADER {
                bail!("bad connection header {:?}", &self.buffer[start..start + 4]);
            }
            self.header_seen = true;
            let rest = self.buffer.split_off(start + WA_CONN_HEADER.len());
            self.buffer.clear();
            self.decoder.feed(&rest);
        } else {
            self.decoder.feed(data);
        }

        let Some(frame) = self.decoder.decode_frame() else {
            return Ok(Step::Pending);
        };
        let msg = HandshakeMessage::decode(frame.as_ref()).context("handshake message")?;

        match self.noise.take() {
            None => {
                let hello = msg
                    .client_hello
                    .ok_or_else(|| anyhow!("expected client hello"))?;
                let client_eph = hello
                    .ephemeral
                    .ok_or_else(|| anyhow!("no client ephemeral"))?;
                // A client that cached this server's static key from an earlier connection
                // (whatsapp-rust 0.7) opens with Noise IK: its hello also carries its static
                // key and payload. The simulator always declines IK the way WhatsApp does when
                // its key rotated: an XX-shaped server hello under the XXfallback protocol
                // name, after which both sides run XX from the client's ephemeral onwards.
                let pattern = if hello.r#static.is_some() {
                    XX_FALLBACK_PATTERN
                } else {
                    NOISE_START_PATTERN
                };
                let mut noise = NoiseHandshake::new(pattern, &WA_CONN_HEADER)?;
                noise.authenticate(&client_eph);
                noise.authenticate(self.ephemeral.public_key.public_key_bytes());
                noise
                    .mix_shared_secret(&self.ephemeral.private_key.serialize()[..], &client_eph)?;
                let static_ct = noise.encrypt(id.static_kp.public_key.public_key_bytes())?;
                noise.mix_shared_secret(&id.static_kp.private_key.serialize()[..], &client_eph)?;
                let cert_ct = noise.encrypt(&id.cert_chain)?;
                let reply = HandshakeMessage {
                    server_hello: Some(wa::handshake_message::ServerHello {
                        ephemeral: Some(self.ephemeral.public_key.public_key_bytes().to_vec()),
                        r#static: Some(static_ct),
                        payload: Some(cert_ct),
                        extended_static: None,
                    }),
                    ..Default::default()
                }
                .encode_to_vec();
                self.noise = Some(noise);
                Ok(Step::Reply(encode_frame(&reply, None)?))
            }
            Some(mut noise) => {
                let finish = msg
                    .client_finish
                    .ok_or_else(|| anyhow!("expected client finish"))?;
                let static_ct = finish.r#static.ok_or_else(|| anyhow!("no client static"))?;
                let payload_ct = finish.payload.ok_or_else(|| anyhow!("no client payload"))?;
                let client_static: [u8; 32] = noise
                    .decrypt(&static_ct)?
                    .try_into()
                    .map_err(|_| anyhow!("client static key is not 32 bytes"))?;
                noise.mix_shared_secret(
                    &self.ephemeral.private_key.serialize()[..],
                    &client_static,
                )?;
                let payload = wa::ClientPayload::decode(noise.decrypt(&payload_ct)?.as_slice())
                    .context("client payload")?;
                let (client_to_server, server_to_client) = noise.finish()?;
                let mut leftover = Vec::new();
                while let Some(frame) = self.decoder.decode_frame() {
                    leftover.extend_from_slice(&encode_frame(&frame, None)?);
                }
                Ok(Step::Done(
                    Box::new(Established {
                        cipher: FrameCipher {
                            read: client_to_server,
                            read_counter: 0,
                            write: server_to_client,
                            write_counter: 0,
                        },
                        payload,
                    }),
                    leftover,
                ))
            }
        }
    }
}

/// The encrypted transport after the handshake.
pub(crate) struct FrameCipher {
    read: NoiseCipher,
    read_counter: u32,
    write: NoiseCipher,
    write_counter: u32,
}

impl FrameCipher {
    /// One node, marshalled, encrypted and framed, ready for the websocket.
    pub(crate) fn seal(&mut self, node: &Node) -> anyhow::Result<Vec<u8>> {
        let plain = wa_rs_binary::marshal(node)?;
        let ct = self
            .write
            .encrypt_with_counter(self.write_counter, &plain)?;
        self.write_counter = self.write_counter.wrapping_add(1);
        encode_frame(&ct, None)
    }

    /// One frame (without its length prefix) from the client, back to a node.
    pub(crate) fn open(&mut self, frame: &[u8]) -> anyhow::Result<Node> {
        let plain = self.read.decrypt_with_counter(self.read_counter, frame)?;
        self.read_counter = self.read_counter.wrapping_add(1);
        let unpacked = wa_rs_binary::util::unpack(&plain)?;
        Ok(wa_rs_binary::marshal::unmarshal_ref(unpacked.as_ref())?.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wa_rs_core::libsignal::protocol::PublicKey;

    fn details(cert: &NoiseCertificate) -> noise_certificate::Details {
        noise_certificate::Details::decode(cert.details.as_deref().expect("details"))
            .expect("certificate details")
    }

    /// The checks whatsapp-rust 0.7 makes (`wacore-noise`, `verify_server_cert`), with the test
    /// root in place of WhatsApp's: whether the chain vouches for `static_key`.
    fn verifies(chain: &[u8], root: &[u8; 32], static_key: &[u8]) -> bool {
        let chain = CertChain::decode(chain).expect("CertChain");
        let (Some(intermediate), Some(leaf)) = (chain.intermediate, chain.leaf) else {
            return false;
        };
        let (i, l) = (details(&intermediate), details(&leaf));
        let signed = |key: &[u8], cert: &NoiseCertificate| {
            PublicKey::from_djb_public_key_bytes(key).is_ok_and(|k| {
                k.verify_signature(
                    cert.details.as_deref().unwrap_or_default(),
                    cert.signature.as_deref().unwrap_or_default(),
                )
            })
        };
        i.issuer_serial == Some(0)
            && signed(root, &intermediate)
            && l.issuer_serial == i.serial
            && l.key.as_deref() == Some(static_key)
            && signed(i.key.as_deref().unwrap_or_default(), &leaf)
    }

    #[test]
    fn the_chain_is_really_signed_by_the_test_root_and_only_by_it() {
        let id = ServerIdentity::generate(crate::CertChain::TestRootSigned);
        let static_key = id.static_kp.public_key.public_key_bytes().to_vec();
        assert!(verifies(
            &id.cert_chain,
            &test_root_public_key(),
            &static_key
        ));
        let other_root: [u8; 32] = KeyPair::generate(&mut rand::rng())
            .public_key
            .public_key_bytes()
            .try_into()
            .expect("32 bytes");
        assert!(!verifies(&id.cert_chain, &other_root, &static_key));
    }

    #[test]
    fn the_broken_chain_certifies_another_key_than_the_servers() {
        let id = ServerIdentity::generate(crate::CertChain::LeafKeyMismatch);
        let static_key = id.static_kp.public_key.public_key_bytes().to_vec();
        assert!(!verifies(
            &id.cert_chain,
            &test_root_public_key(),
            &static_key
        ));
    }
}
