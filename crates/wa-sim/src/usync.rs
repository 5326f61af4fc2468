//! The server's directory: usync queries (is a number on WhatsApp, its devices, its LID) and
//! pre-key bundle fetches, for the numbers given to `WaSim::set_registered` and the account's
//! own companion. Both answer under the address the client asked with (phone number or LID).

use wa_rs_binary::builder::NodeBuilder;
use wa_rs_binary::jid::Jid;
use wa_rs_binary::node::Node;

use crate::conn::{attr, bytes_of};
use crate::privacy::phone_of;
use crate::signal::SimDevice;
use crate::{Shared, lid_for};

pub(crate) async fn prekey_bundles(shared: &Shared, key: &Node) -> Vec<Node> {
    let registered = shared.state().registered.clone();
    let mut phones = shared.phones.lock().await;
    let mut users = Vec::new();
    for user in key.get_children_by_tag("user") {
        let Some(jid_attr) = attr(user, "jid") else {
            continue;
        };
        let jid: Option<Jid> = jid_attr.parse().ok();
        match jid {
            Some(jid) if jid.device == 0 && registered.contains(&phone_of(&jid)) => {
                let dev = phones.entry(phone_of(&jid)).or_insert_with(SimDevice::new);
                users.push(dev.bundle_node(&jid_attr));
            }
            _ => users.push(
                NodeBuilder::new("user")
                    .attr("jid", jid_attr)
                    .children([NodeBuilder::new("error")
                        .attr("code", "404")
                        .attr("text", "item-not-found")
                        .build()])
                    .build(),
            ),
        }
    }
    users
}

pub(crate) fn usync(shared: &Shared, own: Option<(String, u32)>, iq: &Node) -> Option<Node> {
    let usync = iq.get_optional_child("usync")?;
    let query = usync.get_optional_child("query")?;
    let list = usync.get_optional_child("list")?;
    let wants_devices = query.get_optional_child("devices").is_some();
    let (registered, own) = {
        let st = shared.state();
        let own = own.filter(|(phone, _)| st.accounts.contains_key(phone));
        (st.registered.clone(), own)
    };
    let mut users = Vec::new();
    let wants_lid = query.get_optional_child("lid").is_some();
    for user in list.get_children_by_tag("user") {
        let asked = attr(user, "jid").and_then(|j| j.parse::<Jid>().ok());
        let phone: String = match &asked {
            Some(jid) => phone_of(jid),
            None => match bytes_of(user.get_optional_child("contact")) {
                Some(b) => String::from_utf8_lossy(b)
                    .chars()
                    .filter(char::is_ascii_digit)
                    .collect(),
                None => continue,
            },
        };
        // Answered under the address asked (a LID query gets its LID back).
        let jid = match &asked {
            Some(j) if j.server == "lid" => format!("{}@lid", j.user),
            _ => format!("{phone}@s.whatsapp.net"),
        };
        let mut children = Vec::new();
        if wants_devices {
            let devices: Vec<Node> = match &own {
                Some((own_phone, own_device)) if *own_phone == phone => vec![
                    NodeBuilder::new("device")
                        .attr("id", own_device.to_string())
                        .attr("key-index", "1")
                        .build(),
                ],
                _ if registered.contains(&phone) => {
                    vec![NodeBuilder::new("device").attr("id", "0").build()]
                }
                _ => Vec::new(),
            };
            let mut dl = NodeBuilder::new("device-list").attr("hash", "2:sim");
            if !devices.is_empty() {
                dl = dl.children(devices);
            }
            children.push(NodeBuilder::new("devices").children([dl.build()]).build());
        }
        if query.get_optional_child("contact").is_some() {
            let kind = if registered.contains(&phone) {
                "in"
            } else {
                "out"
            };
            children.push(NodeBuilder::new("contact").attr("type", kind).build());
        }
        // The real server gives every account a LID and says it when asked.
        if wants_lid && (registered.contains(&phone) || own.as_ref().is_some_and(|o| o.0 == phone))
        {
            children.push(
                NodeBuilder::new("lid")
                    .attr("val", format!("{}@lid", lid_for(&phone)))
                    .build(),
            );
        }
        let mut b = NodeBuilder::new("user").attr("jid", jid);
        if !children.is_empty() {
            b = b.children(children);
        }
        users.push(b.build());
    }
    let mut attrs: Vec<(String, String)> = Vec::new();
    for key in ["sid", "mode", "context", "index", "last"] {
        if let Some(v) = attr(usync, key) {
            attrs.push((key.to_string(), v));
        }
    }
    Some(
        NodeBuilder::new("usync")
            .attrs(attrs)
            .children([NodeBuilder::new("list").children(users).build()])
            .build(),
    )
}
