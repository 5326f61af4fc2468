//! One client connection: websocket upgrade, handshake, then the stanza loop.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use futures_util::{SinkExt, StreamExt};
use prost::Message as _;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_websockets::{Message, ServerBuilder, WebSocketStream};
use wa_rs_binary::builder::NodeBuilder;
use wa_rs_binary::jid::{Jid, SERVER_JID};
use wa_rs_binary::node::{Node, NodeContent};
use wa_rs_core::framing::FrameDecoder;
use wa_rs_proto::whatsapp as wa;

use crate::handshake::{FrameCipher, ServerHandshake, Step};
use crate::pair_code::{self, LinkCodeRequest};
use crate::privacy::phone_of;
use crate::signal::PeerBundle;
use crate::{
    Account, Cmd, CompanionDevice, ConnHandle, PairCodeRequest, ReceivedText, Session, Shared,
    lid_for, now_secs, unpad,
};

type Ws = WebSocketStream<TcpStream>;

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(20);

pub(crate) async fn serve(shared: Arc<Shared>, tcp: TcpStream) {
    if let Err(e) = serve_inner(&shared, tcp).await {
        log::debug!(target: "WaSim", "connection ended: {e:#}");
    }
}

pub(crate) fn ban_failure(code: u32, expire_secs: u64) -> Node {
    NodeBuilder::new("failure")
        .attr("reason", "402")
        .attr("code", code.to_string())
        .attr("expire", expire_secs.to_string())
        .build()
}

fn iq_error(id: &str, code: u16, text: &str) -> Node {
    NodeBuilder::new("iq")
        .attrs([("from", SERVER_JID), ("id", id), ("type", "error")])
        .children([NodeBuilder::new("error")
            .attr("code", code.to_string())
            .attr("text", text)
            .build()])
        .build()
}

/// whatsapp-rust 0.7's `fetch_reachout_timelock` document id (`wacore::iq::mex_operations`).
const REACHOUT_TIMELOCK_DOC: &str = "23983697327930364";

/// The JSON the reach-out time-lock MEX query is answered with.
fn reachout_json(lock: &crate::ReachoutTimelock) -> Vec<u8> {
    let mut fields = vec![format!("\"is_active\":{}", lock.is_active)];
    if let Some(ends) = lock.ends_at {
        fields.push(format!("\"time_enforcement_ends\":\"{ends}\""));
    }
    if let Some(kind) = &lock.enforcement_type {
        fields.push(format!("\"enforcement_type\":\"{kind}\""));
    }
    format!(
        "{{\"data\":{{\"xwa2_fetch_account_reachout_timelock\":{{{}}}}}}}",
        fields.join(",")
    )
    .into_bytes()
}

pub(crate) fn bytes_of(node: Option<&Node>) -> Option<&[u8]> {
    match node?.content.as_ref()? {
        NodeContent::Bytes(b) => Some(b),
        NodeContent::String(s) => Some(s.as_bytes()),
        NodeContent::Nodes(_) => None,
    }
}

pub(crate) fn attr(node: &Node, key: &str) -> Option<String> {
    node.attrs.get(key).map(|v| v.to_string_value())
}

fn session_of(payload: &wa::ClientPayload) -> anyhow::Result<Session> {
    if let Some(username) = payload.username {
        return Ok(Session::Login {
            phone: username.to_string(),
            device: payload.device.unwrap_or(0),
        });
    }
    let reg = payload
        .device_pairing_data
        .as_ref()
        .ok_or_else(|| anyhow!("client payload has neither username nor pairing data"))?;
    let fixed = |v: &Option<Vec<u8>>, name: &str| -> anyhow::Result<[u8; 32]> {
        v.as_deref()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| anyhow!("pairing data: bad {name}"))
    };
    let props = reg
        .device_props
        .as_deref()
        .and_then(|b| wa::DeviceProps::decode(b).ok())
        .unwrap_or_default();
    let device = CompanionDevice {
        os: props.os,
        platform: props.platform_type.map(|p| {
            wa::device_props::PlatformType::try_from(p)
                .map_or_else(|_| p.to_string(), |t| t.as_str_name().to_string())
        }),
    };
    let regid = reg.e_regid.as_deref().unwrap_or_default();
    let skey_id = reg.e_skey_id.as_deref().unwrap_or_default();
    Ok(Session::Registration {
        bundle: PeerBundle {
            registration_id: regid.iter().fold(0, |a, b| (a << 8) | u32::from(*b)),
            identity: fixed(&reg.e_ident, "identity")?,
            signed_id: skey_id.iter().fold(0, |a, b| (a << 8) | u32::from(*b)),
            signed_public: fixed(&reg.e_skey_val, "signed pre-key")?,
            signed_signature: reg.e_skey_sig.clone().unwrap_or_default(),
            prekeys: Vec::new(),
        },
        device,
    })
}

async fn handshake(
    shared: &Shared,
    ws: &mut Ws,
) -> anyhow::Result<(FrameCipher, Session, Vec<u8>)> {
    let mut hs = ServerHandshake::new();
    loop {
        let msg = tokio::time::timeout(HANDSHAKE_TIMEOUT, ws.next())
            .await
            .context("handshake timeout")?
            .ok_or_else(|| anyhow!("closed during handshake"))??;
        if msg.is_close() {
            anyhow::bail!("closed during handshake");
        }
        if !msg.is_binary() {
            continue;
        }
        match hs.feed(&msg.into_payload(), &shared.identity)? {
            Step::Pending => {}
            Step::Reply(bytes) => ws.send(Message::binary(bytes)).await?,
            Step::Done(est, leftover) => {
                let session = session_of(&est.payload)?;
                return Ok((est.cipher, session, leftover));
            }
        }
    }
}

struct Conn<'a> {
    shared: &'a Shared,
    id: u64,
    ws: Ws,
    cipher: FrameCipher,
    session: Session,
}

/// What handling one client stanza asks for.
#[derive(Default)]
struct Reply {
    /// Wait this long before sending (stops reading meanwhile).
    delay: Option<Duration>,
    nodes: Vec<Node>,
    close: bool,
}

impl Reply {
    fn one(node: Node) -> Self {
        Self {
            delay: None,
            nodes: vec![node],
            close: false,
        }
    }
}

async fn serve_inner(shared: &Arc<Shared>, tcp: TcpStream) -> anyhow::Result<()> {
    let (_request, mut ws) = ServerBuilder::new().accept(tcp).await?;
    let (cipher, session, leftover) = handshake(shared, &mut ws).await?;

    let (tx, mut rx) = mpsc::unbounded_channel();
    let id = {
        let mut st = shared.state();
        st.connections += 1;
        if let Session::Registration { device, .. } = &session {
            st.registrations.push(device.clone());
        }
        st.next_id += 1;
        let id = st.next_id;
        st.current = Some(ConnHandle {
            id,
            tx,
            session: session.clone(),
            logged_in: false,
        });
        id
    };
    shared.bump();
    log::debug!(target: "WaSim", "connection {id} established");

    let mut conn = Conn {
        shared,
        id,
        ws,
        cipher,
        session,
    };
    let result = conn.run(&mut rx, &leftover).await;

    {
        let mut st = shared.state();
        if st.current.as_ref().is_some_and(|c| c.id == id) {
            st.current = None;
        }
    }
    shared.bump();
    log::debug!(target: "WaSim", "connection {id} closed");
    result
}

impl Conn<'_> {
    async fn send(&mut self, nodes: &[Node]) -> anyhow::Result<()> {
        for node in nodes {
            log::debug!(target: "WaSim", "conn {} --> {}", self.id, node.tag);
            let frame = self.cipher.seal(node)?;
            self.ws.send(Message::binary(frame)).await?;
        }
        Ok(())
    }

    /// Websocket close frame, then waits (briefly) for the client to close its side, so the
    /// last stanzas are not lost to a TCP reset.
    async fn close_gracefully(&mut self) {
        let _ = self.ws.close().await;
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            while let Some(Ok(_)) = self.ws.next().await {}
        })
        .await;
    }

    async fn run(
        &mut self,
        rx: &mut mpsc::UnboundedReceiver<Cmd>,
        leftover: &[u8],
    ) -> anyhow::Result<()> {
        let opening = self.opening().await;
        self.send(&opening.nodes).await?;
        if opening.close {
            self.close_gracefully().await;
            return Ok(());
        }

        let mut decoder = FrameDecoder::new();
        decoder.feed(leftover);
        let mut silent = false;
        loop {
            // Frames may already be buffered (left over from the handshake, or several in
            // one websocket message).
            while !silent && let Some(frame) = decoder.decode_frame() {
                let node = self.cipher.open(&frame)?;
                log::debug!(target: "WaSim", "conn {} <-- {}", self.id, node.tag);
                self.shared.state().log.push((Instant::now(), node.clone()));
                let reply = self.handle(node).await;
                self.shared.bump();
                if let Some(delay) = reply.delay {
                    tokio::time::sleep(delay).await;
                }
                self.send(&reply.nodes).await?;
                if reply.close {
                    self.close_gracefully().await;
                    return Ok(());
                }
            }
            tokio::select! {
                msg = self.ws.next() => match msg {
                    Some(Ok(m)) if m.is_binary() => {
                        if !silent {
                            decoder.feed(&m.into_payload());
                        }
                    }
                    Some(Ok(m)) if m.is_close() => {
                        // Answer the client's close frame, as a websocket server should.
                        let _ = self.ws.close().await;
                        return Ok(());
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Err(e.into()),
                    None => return Ok(()),
                },
                cmd = rx.recv() => match cmd {
                    Some(Cmd::Send(nodes, done)) => {
                        if !silent {
                            self.send(&nodes).await?;
                        }
                        let _ = done.send(());
                    }
                    Some(Cmd::SendAndClose(nodes, done)) => {
                        if !silent {
                            self.send(&nodes).await?;
                            self.close_gracefully().await;
                        }
                        let _ = done.send(());
                        return Ok(());
                    }
                    Some(Cmd::Drop(done)) => {
                        let _ = done.send(());
                        return Ok(());
                    }
                    Some(Cmd::Silent(done)) => {
                        silent = true;
                        let _ = done.send(());
                    }
                    None => return Ok(()),
                },
            }
        }
    }

    /// What the server says first: `pair-device` to an unlinked client, `<success>` (or a
    /// failure) to a login.
    async fn opening(&mut self) -> Reply {
        match self.session.clone() {
            Session::Registration { .. } => {
                let (refs, id) = {
                    let mut st = self.shared.state();
                    (st.qr_refs, st.next_id("pd-"))
                };
                Reply::one(crate::pairing::pair_device_iq(&id, refs))
            }
            Session::Login { phone, device } => {
                let mut st = self.shared.state();
                if st.removed.contains(&(phone.clone(), device)) {
                    return Reply {
                        delay: None,
                        nodes: vec![NodeBuilder::new("failure").attr("reason", "401").build()],
                        close: true,
                    };
                }
                if let Some((code, until)) = st.ban {
                    let now = Instant::now();
                    if until > now {
                        return Reply {
                            delay: None,
                            nodes: vec![ban_failure(code, (until - now).as_secs().max(1))],
                            close: true,
                        };
                    }
                    st.ban = None;
                }
                st.accounts.entry(phone.clone()).or_insert_with(|| Account {
                    phone: phone.clone(),
                    device,
                });
                let lid = format!("{}:{device}@lid", lid_for(&phone));
                if let Some(c) = st.current.as_mut().filter(|c| c.id == self.id) {
                    c.logged_in = true;
                }
                let mut nodes = vec![
                    NodeBuilder::new("success")
                        .attr("t", now_secs().to_string())
                        .attr("props", "1")
                        .attr("lid", lid)
                        .attr("location", "sim")
                        .attr("creation", now_secs().to_string())
                        .build(),
                ];
                // Stanzas queued while the client was away, then the end of offline delivery.
                // The real server sends that marker after the client's `<active/>` IQ, but
                // wa-rs 0.2.0 can miss it there (a lost wake-up between its flag check and its
                // 5 s wait, `Connected` then comes 5 s late); sent now, the flag is already set.
                let queued = st.unacked.len();
                nodes.extend(st.unacked.iter().cloned());
                nodes.push(
                    NodeBuilder::new("ib")
                        .children([NodeBuilder::new("offline")
                            .attr("count", queued.to_string())
                            .build()])
                        .build(),
                );
                Reply {
                    delay: None,
                    nodes,
                    close: false,
                }
            }
        }
    }

    fn own(&self) -> Option<(String, u32)> {
        match &self.session {
            Session::Login { phone, device } => Some((phone.clone(), *device)),
            Session::Registration { .. } => None,
        }
    }

    async fn handle(&mut self, node: Node) -> Reply {
        match node.tag.as_str() {
            "iq" => self.handle_iq(&node).await,
            "message" => self.handle_message(&node).await,
            "ack" => {
                let class = attr(&node, "class").unwrap_or_default();
                let id = attr(&node, "id");
                let typ = attr(&node, "type");
                // An ack that names no `type` (whatsapp-rust 0.7 acking a `type="protocol"`
                // message) still confirms the stanza with that id.
                self.shared.state().unacked.retain(|n| {
                    !(n.tag == class
                        && attr(n, "id") == id
                        && (typ.is_none() || attr(n, "type") == typ))
                });
                Reply::default()
            }
            // whatsapp-rust 0.7 confirms a 1:1 message with its `<receipt>` (delivery, or
            // `peer_msg`/`sender` for the account's own phone), not an `<ack>`, as WhatsApp Web
            // does: the server stops redelivering it then.
            "receipt" => {
                let mut ids: Vec<String> = attr(&node, "id").into_iter().collect();
                if let Some(list) = node.get_optional_child("list") {
                    ids.extend(
                        list.get_children_by_tag("item")
                            .filter_map(|i| attr(i, "id")),
                    );
                }
                self.shared.state().unacked.retain(|n| {
                    n.tag != "message" || !attr(n, "id").is_some_and(|id| ids.contains(&id))
                });
                Reply::default()
            }
            _ => Reply::default(),
        }
    }

    async fn handle_iq(&mut self, node: &Node) -> Reply {
        let id = attr(node, "id").unwrap_or_default();
        let typ = attr(node, "type").unwrap_or_default();
        if typ == "result" || typ == "error" {
            if let Some(sign) = node.get_optional_child("pair-device-sign") {
                return self.finish_pairing(&id, sign);
            }
            return Reply::default();
        }
        let xmlns = attr(node, "xmlns").unwrap_or_default();
        let children = node.children().unwrap_or_default();
        let first = children.first().map(|c| c.tag.as_str()).unwrap_or_default();
        let result = |content: Vec<Node>| {
            let b = NodeBuilder::new("iq").attrs([
                ("from", SERVER_JID),
                ("id", id.as_str()),
                ("type", "result"),
            ]);
            if content.is_empty() {
                b.build()
            } else {
                b.children(content).build()
            }
        };
        match (xmlns.as_str(), first) {
            ("encrypt", "count") => {
                let count = self
                    .own()
                    .and_then(|k| {
                        self.shared
                            .state()
                            .companions
                            .get(&k)
                            .map(|b| b.prekeys.len())
                    })
                    .unwrap_or(0);
                Reply::one(result(vec![
                    NodeBuilder::new("count")
                        .attr("value", count.to_string())
                        .build(),
                ]))
            }
            ("encrypt", "key") => {
                let users = crate::usync::prekey_bundles(self.shared, &children[0]).await;
                Reply::one(result(vec![
                    NodeBuilder::new("list").children(users).build(),
                ]))
            }
            ("encrypt", "registration") => {
                self.store_upload(node);
                let mut nodes = vec![result(Vec::new())];
                // Right after a linking the phone shares its app-state key, encrypted from the
                // pre-keys the companion has just uploaded (see `WaSim::set_auto_key_share`).
                let due = self.own().filter(|own| {
                    let mut st = self.shared.state();
                    st.auto_key_share && st.key_share_due.remove(own)
                });
                if due.is_some() {
                    let (_, share) = crate::phone::app_state_key_share(self.shared, false).await;
                    self.shared.state().unacked.extend(share.iter().cloned());
                    nodes.extend(share);
                }
                Reply {
                    delay: None,
                    nodes,
                    close: false,
                }
            }
            ("usync", _) => {
                let usync = crate::usync::usync(self.shared, self.own(), node);
                Reply::one(result(usync.into_iter().collect()))
            }
            ("abt", "props") => {
                let migrated = self.shared.state().privacy.lid_migrated;
                Reply::one(result(vec![crate::privacy::ab_props(migrated)]))
            }
            ("privacy", _) => Reply::one(result(vec![NodeBuilder::new("privacy").build()])),
            // App state: the account has no chats, contacts or settings to sync, so every
            // collection asked for is answered at the version asked, with no patches — except
            // `critical_block` (WhatsApp: `regular_high`, see `appstate.rs`) from version 0 once the phone shared its app-state key: one patch
            // with the account's `nct_salt_sync` (see `appstate.rs`). whatsapp-rust 0.7
            // announces `Connected` only once the critical collections have synced; wa-rs 0.2.0
            // reads the same answer.
            ("w:sync:app:state", "sync") => {
                let (key, salt) = {
                    let st = self.shared.state();
                    (st.app_state_key.clone(), st.privacy.nct_salt.clone())
                };
                let collections: Vec<Node> = children[0]
                    .children()
                    .unwrap_or_default()
                    .iter()
                    .filter(|c| c.tag == "collection")
                    .map(|c| {
                        let name = attr(c, "name").unwrap_or_default();
                        let version = attr(c, "version").unwrap_or_else(|| "0".into());
                        match &key {
                            Some((key_id, key_data))
                                if name == crate::appstate::NCT_SALT_COLLECTION
                                    && version == "0" =>
                            {
                                let patch =
                                    crate::appstate::nct_salt_patch(key_id, key_data, &salt);
                                self.shared.state().privacy.salt_served += 1;
                                NodeBuilder::new("collection")
                                    .attr("name", name)
                                    .attr("version", "1")
                                    .children([NodeBuilder::new("patches")
                                        .children([NodeBuilder::new("patch").bytes(patch).build()])
                                        .build()])
                                    .build()
                            }
                            _ => {
                                if name == crate::appstate::NCT_SALT_COLLECTION && version == "0" {
                                    self.shared.state().privacy.salt_owed = true;
                                }
                                NodeBuilder::new("collection")
                                    .attr("name", name)
                                    .attr("version", version)
                                    .build()
                            }
                        }
                    })
                    .collect();
                Reply::one(result(vec![
                    NodeBuilder::new("sync").children(collections).build(),
                ]))
            }
            ("w:mex", "query")
                if attr(&children[0], "query_id").as_deref() == Some(REACHOUT_TIMELOCK_DOC) =>
            {
                let lock = self.shared.state().reachout.clone();
                Reply::one(result(vec![
                    NodeBuilder::new("result")
                        .bytes(reachout_json(&lock))
                        .build(),
                ]))
            }
            ("md", "link_code_companion_reg") => self.link_code(&id, &children[0]).await,
            // The companion's own "Log out": the device leaves the account at once.
            ("md", "remove-companion-device") => {
                let jid = attr(&children[0], "jid").unwrap_or_default();
                let own = self.own();
                let mut st = self.shared.state();
                st.unlinked.push(jid);
                if let Some(own) = own {
                    st.removed.insert(own);
                }
                Reply::one(result(Vec::new()))
            }
            _ => Reply::one(result(Vec::new())),
        }
    }

    /// `companion_hello` (a companion asks for a pairing code) or `companion_finish` (its key
    /// bundle, after the phone typed a code). See `pair_code.rs`.
    async fn link_code(&mut self, id: &str, reg: &Node) -> Reply {
        let result = NodeBuilder::new("iq")
            .attrs([("from", SERVER_JID), ("id", id), ("type", "result")])
            .build();
        let Session::Registration { bundle, .. } = self.session.clone() else {
            return Reply::one(iq_error(id, 400, "bad-request"));
        };
        let text = |tag: &str| {
            bytes_of(reg.get_optional_child(tag))
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default()
        };
        let phone = attr(reg, "jid")
            .and_then(|j| j.parse::<Jid>().ok())
            .map(|j| j.user)
            .unwrap_or_default();
        match attr(reg, "stage").as_deref() {
            Some("companion_hello") => {
                let display = text("companion_platform_display");
                let wrapped = bytes_of(
                    reg.get_optional_child("link_code_pairing_wrapped_companion_ephemeral_pub"),
                )
                .unwrap_or_default()
                .to_vec();
                let mut st = self.shared.state();
                let checked = pair_code::check_hello(&phone, &display)
                    .and_then(|()| (wrapped.len() == 80).then_some(()).ok_or("bad-request"))
                    .map_err(|text| (400, text))
                    .and_then(|()| {
                        if st.refuse_pair_codes {
                            Err((429, "rate-overlimit"))
                        } else {
                            Ok(())
                        }
                    });
                st.pair_code_requests.push(PairCodeRequest {
                    phone: phone.clone(),
                    platform_id: text("companion_platform_id"),
                    platform_display: display,
                    accepted: checked.is_ok(),
                });
                if let Err((code, text)) = checked {
                    return Reply::one(iq_error(id, code, text));
                }
                let pairing_ref = pair_code::pairing_ref();
                st.link_code = Some(LinkCodeRequest {
                    pairing_ref: pairing_ref.clone(),
                    phone,
                    wrapped_companion_ephemeral: wrapped,
                    primary: None,
                });
                Reply::one(pair_code::hello_result(id, &pairing_ref))
            }
            Some("companion_finish") => {
                let pairing_ref = text("link_code_pairing_ref");
                let request = self
                    .shared
                    .state()
                    .link_code
                    .clone()
                    .filter(|r| r.pairing_ref == pairing_ref && r.phone == phone);
                let Some((request, primary)) =
                    request.and_then(|r| r.primary.clone().map(|p| (r, p)))
                else {
                    return Reply::one(iq_error(id, 404, "item-not-found"));
                };
                let wrapped =
                    bytes_of(reg.get_optional_child("link_code_pairing_wrapped_key_bundle"))
                        .unwrap_or_default();
                let identity = bytes_of(reg.get_optional_child("companion_identity_public"))
                    .unwrap_or_default();
                let finished = pair_code::open_bundle(&primary, wrapped, identity)
                    .filter(|f| f.companion_identity == bundle.identity);
                let Some(finished) = finished else {
                    log::debug!(target: "WaSim", "companion_finish does not open: wrong code");
                    self.shared
                        .state()
                        .link_code_results
                        .insert(request.pairing_ref, false);
                    return Reply::one(result);
                };
                let success = crate::pairing::pair_success(
                    self.shared,
                    &request.phone,
                    bundle,
                    &finished.adv_secret,
                )
                .await;
                let mut st = self.shared.state();
                st.link_code = None;
                st.link_code_results.insert(request.pairing_ref, true);
                Reply {
                    delay: None,
                    nodes: vec![result, success],
                    close: false,
                }
            }
            _ => Reply::one(iq_error(id, 400, "bad-request")),
        }
    }

    fn finish_pairing(&mut self, id: &str, _sign: &Node) -> Reply {
        let mut st = self.shared.state();
        let Some(pending) = st.pending_pairs.remove(id) else {
            return Reply::default();
        };
        st.accounts.insert(
            pending.phone.clone(),
            Account {
                phone: pending.phone.clone(),
                device: pending.device,
            },
        );
        st.removed.remove(&(pending.phone.clone(), pending.device));
        st.key_share_due
            .insert((pending.phone.clone(), pending.device));
        st.companions
            .insert((pending.phone, pending.device), pending.bundle);
        // wa-rs marks the disconnect as expected only after it has sent `pair-device-sign`
        // (in a spawned task): a 515 sent back at once can race that flag into the next
        // connection, which then drops once more. The real server is not that fast either.
        Reply {
            delay: Some(Duration::from_millis(200)),
            nodes: vec![NodeBuilder::new("stream:error").attr("code", "515").build()],
            close: true,
        }
    }

    fn store_upload(&mut self, node: &Node) {
        let Some(key) = self.own() else { return };
        let int = |b: &[u8]| b.iter().fold(0u32, |a, x| (a << 8) | u32::from(*x));
        let fixed = |b: Option<&[u8]>| -> Option<[u8; 32]> { b?.try_into().ok() };
        let Some(identity) = fixed(bytes_of(node.get_optional_child("identity"))) else {
            return;
        };
        let Some(skey) = node.get_optional_child("skey") else {
            return;
        };
        let Some(signed_public) = fixed(bytes_of(skey.get_optional_child("value"))) else {
            return;
        };
        let prekeys = node
            .get_optional_child("list")
            .map(|l| {
                l.get_children_by_tag("key")
                    .filter_map(|k| {
                        let id = int(bytes_of(k.get_optional_child("id"))?);
                        Some((id, fixed(bytes_of(k.get_optional_child("value")))?))
                    })
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        let bundle = PeerBundle {
            registration_id: int(
                bytes_of(node.get_optional_child("registration")).unwrap_or_default()
            ),
            identity,
            signed_id: int(bytes_of(skey.get_optional_child("id")).unwrap_or_default()),
            signed_public,
            signed_signature: bytes_of(skey.get_optional_child("signature"))
                .unwrap_or_default()
                .to_vec(),
            prekeys,
        };
        self.shared.state().companions.insert(key, bundle);
    }

    async fn handle_message(&mut self, node: &Node) -> Reply {
        let id = attr(node, "id").unwrap_or_default();
        let to = attr(node, "to").unwrap_or_default();
        let Some((own_phone, own_device)) = self.own() else {
            return Reply::default();
        };
        let sender = Jid::pn_device(own_phone, own_device as u16);
        let mut encs: Vec<(Jid, String, Vec<u8>)> = Vec::new();
        if let Some(parts) = node.get_optional_child("participants") {
            for p in parts.get_children_by_tag("to") {
                let Some(jid) = attr(p, "jid").and_then(|j| j.parse::<Jid>().ok()) else {
                    continue;
                };
                for enc in p.get_children_by_tag("enc") {
                    if let Some(b) = bytes_of(Some(enc)) {
                        encs.push((
                            jid.clone(),
                            attr(enc, "type").unwrap_or_default(),
                            b.to_vec(),
                        ));
                    }
                }
            }
        }
        if let Ok(jid) = to.parse::<Jid>() {
            for enc in node.get_children_by_tag("enc") {
                if let Some(b) = bytes_of(Some(enc)) {
                    encs.push((
                        jid.clone(),
                        attr(enc, "type").unwrap_or_default(),
                        b.to_vec(),
                    ));
                }
            }
        }

        let nack = to.parse::<Jid>().ok().and_then(|jid| {
            let mut st = self.shared.state();
            st.nack_to
                .get(&phone_of(&jid))
                .copied()
                .or_else(|| crate::privacy::check_message(&mut st, node, &id, &jid))
        });
        if let Some(code) = nack {
            self.shared.state().nacked.push((id.clone(), code));
            let mut ack = NodeBuilder::new("ack")
                .attr("class", "message")
                .attr("id", id.as_str())
                .attr("error", code.to_string())
                .attr("t", now_secs().to_string());
            if !to.is_empty() {
                ack = ack.attr("from", to);
            }
            return Reply::one(ack.build());
        }
        let mut texts = Vec::new();
        {
            let mut phones = self.shared.phones.lock().await;
            for (jid, enc_type, ct) in encs {
                let Some(dev) = phones.get_mut(&phone_of(&jid)).filter(|_| jid.device == 0) else {
                    continue;
                };
                match dev.decrypt(&sender, &enc_type, &ct).await {
                    Ok(plain) => {
                        let msg = unpad(&plain).and_then(|p| wa::Message::decode(p).ok());
                        let text = msg.and_then(|m| {
                            m.conversation
                                .or_else(|| m.extended_text_message.and_then(|e| e.text))
                        });
                        if let Some(text) = text {
                            texts.push((phone_of(&jid), text));
                        }
                    }
                    Err(e) => {
                        log::warn!(target: "WaSim", "cannot decrypt {enc_type} for {jid}: {e:#}");
                    }
                }
            }
        }
        {
            let mut st = self.shared.state();
            for (to, text) in texts {
                if st.seen_ids.insert(format!("{to}/{id}")) {
                    st.received.push(ReceivedText {
                        to,
                        text,
                        message_id: id.clone(),
                        at: Instant::now(),
                    });
                }
            }
        }
        let mut ack = NodeBuilder::new("ack")
            .attr("class", "message")
            .attr("id", id.as_str())
            .attr("t", now_secs().to_string());
        if !to.is_empty() {
            ack = ack.attr("from", to);
        }
        Reply::one(ack.build())
    }
}
