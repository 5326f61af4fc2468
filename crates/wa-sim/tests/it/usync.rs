//! Number checks: the usync contact query answered from the registered set.

use std::collections::HashMap;
use std::time::Duration;

use relay_wa_sim::WaSim;
use wa_rs_core::iq::spec::IqSpec;
use wa_rs_core::iq::usync::IsOnWhatsAppSpec;

use crate::common::{init_log, linked_bot};

/// The usync contact query is answered from `set_registered`: one `<user jid=…>` per number,
/// `<contact type="in"/>` for registered ones, `type="out"` for the others. The `jid` attribute
/// is a JID value on the wire, as from the real server — which wa-rs 0.2.0's own
/// `contacts().is_on_whatsapp()` cannot read (it asks for a string attribute), so it returns an
/// empty list for every query. Reading the same answer with `optional_jid` works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn number_checks_follow_the_registered_set() {
    init_log();
    let sim = WaSim::start().await;
    let dir = tempfile::tempdir().unwrap();
    let bot = linked_bot(&sim, &dir.path().join("s.db"), "212600000003").await;
    sim.set_registered(&["212611111111", "+212 622-222-222"]);
    let phones = ["212611111111", "212622222222", "212633333333"];

    // wa-rs 0.2.0 as is: nothing.
    let results = tokio::time::timeout(
        Duration::from_secs(5),
        bot.client.contacts().is_on_whatsapp(&phones),
    )
    .await
    .expect("answered")
    .expect("usync ok");
    assert!(results.is_empty(), "wa-rs 0.2.0 reads no jid: {results:?}");

    // The same request, the answer read with optional_jid.
    let check = |phones: Vec<String>| {
        let client = bot.client.clone();
        async move {
            let spec = IsOnWhatsAppSpec::new(phones, "sid-1");
            let node = client.send_iq(spec.build_iq()).await.expect("usync ok");
            let list = node
                .get_optional_child("usync")
                .and_then(|u| u.get_optional_child("list"))
                .expect("<usync><list>");
            list.get_children_by_tag("user")
                .map(|u| {
                    let jid = u.attrs().optional_jid("jid").expect("jid");
                    assert_eq!(jid.server, "s.whatsapp.net");
                    let kind = u
                        .get_optional_child("contact")
                        .and_then(|c| c.attrs().optional_string("type").map(str::to_string));
                    (jid.user, kind.as_deref() == Some("in"))
                })
                .collect::<HashMap<String, bool>>()
        }
    };
    let by_number = check(phones.iter().map(|p| p.to_string()).collect()).await;
    assert_eq!(by_number.len(), 3, "{by_number:?}");
    assert!(by_number["212611111111"]);
    assert!(by_number["212622222222"]);
    assert!(!by_number["212633333333"]);

    // The set can change at any time.
    sim.set_registered(&[]);
    let by_number = check(vec!["212611111111".into()]).await;
    assert!(!by_number["212611111111"]);
    bot.stop().await;
}
