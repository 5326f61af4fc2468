//! "Is this number on WhatsApp?", asked the way wa-rs asks it, read more carefully.
//!
//! wa-rs 0.2.0's `contacts().is_on_whatsapp()` reads each answer's `jid` attribute as a string,
//! but the binary protocol carries it as a JID value, so against a server that encodes it that
//! way (as the real one does) it answers nothing for every number. The request is wa-rs's own;
//! only the reading of the answer differs.

use std::sync::atomic::{AtomicU64, Ordering};

use wa_rs_binary::node::Node;
use wa_rs_core::iq::spec::IqSpec;
use wa_rs_core::iq::usync::IsOnWhatsAppSpec;
use wa_rs_core::request::InfoQuery;

static NEXT_SID: AtomicU64 = AtomicU64::new(1);

pub(super) struct NumberCheck {
    inner: IsOnWhatsAppSpec,
}

impl NumberCheck {
    /// `phones`: digits with country code, no `+`.
    pub(super) fn new(phones: Vec<String>) -> Self {
        let sid = format!("relay-{}", NEXT_SID.fetch_add(1, Ordering::Relaxed));
        Self {
            inner: IsOnWhatsAppSpec::new(phones, sid),
        }
    }
}

impl IqSpec for NumberCheck {
    /// (digits, registered) for each number WhatsApp answered about.
    type Response = Vec<(String, bool)>;

    fn build_iq(&self) -> InfoQuery<'static> {
        self.inner.build_iq()
    }

    fn parse_response(&self, response: &Node) -> Result<Self::Response, anyhow::Error> {
        let list = response
            .get_optional_child("usync")
            .and_then(|usync| usync.get_optional_child("list"))
            .ok_or_else(|| anyhow::anyhow!("réponse usync sans <list>"))?;
        Ok(list
            .get_children_by_tag("user")
            .filter_map(|user| {
                let jid = user.attrs().optional_jid("jid")?;
                let registered = user
                    .get_optional_child("contact")
                    .is_some_and(|contact| contact.attrs().optional_string("type") == Some("in"));
                Some((jid.user.clone(), registered))
            })
            .collect())
    }
}
