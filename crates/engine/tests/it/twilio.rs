//! The Twilio channel against a fake Twilio on 127.0.0.1: what a send carries, how Twilio's
//! errors end deliveries, signed status callbacks that move them forward only, and carriers'
//! messages (text, button, quoted reply, STOP) stored with the other channels' replies.

use std::time::Duration;

use relay_domain::{ChannelKind, DeliveryStatus, error_help};
use relay_engine::store::Attribution;
use relay_test_support::signing::twilio_signature;
use relay_test_support::twilio::{self as fake, FakeTwilio, Reply};

use crate::helpers::*;

/// The relay as Twilio sees it: behind a proxy, on its public address.
const PUBLIC_URL: &str = "https://relay.camionback.test";
const STATUS: &str = "/webhooks/twilio/status";
const INCOMING: &str = "/webhooks/twilio/incoming";

struct World {
    app: TestApp,
    twilio: FakeTwilio,
}

async fn twilio_world(extra: &[(&str, &str)]) -> World {
    let twilio = FakeTwilio::start().await;
    let url = twilio.url();
    let mut overrides = vec![
        ("RELAY_CHANNEL", "twilio"),
        ("TWILIO_API_URL", url.as_str()),
        ("TWILIO_ACCOUNT_SID", fake::ACCOUNT_SID),
        ("TWILIO_AUTH_TOKEN", fake::AUTH_TOKEN),
        ("TWILIO_FROM", "+212664373534"),
        ("RELAY_PUBLIC_URL", PUBLIC_URL),
    ];
    overrides.extend_from_slice(extra);
    let app = world(&overrides).await;
    add_usual_carriers(&app.camionback);
    World {
        app: app.start().await,
        twilio,
    }
}

impl World {
    /// Posts `params` to `path_and_query` of the relay, signed as Twilio signs a callback it
    /// sends to `RELAY_PUBLIC_URL` (with `token`, or unsigned).
    async fn post_signed(
        &self,
        path_and_query: &str,
        params: &[(&str, &str)],
        token: Option<&str>,
    ) -> reqwest::Response {
        let mut request = self
            .app
            .http
            .post(self.app.url(path_and_query))
            .form(params);
        if let Some(token) = token {
            let signature =
                twilio_signature(token, &format!("{PUBLIC_URL}{path_and_query}"), params);
            request = request.header("X-Twilio-Signature", signature);
        }
        request.send().await.expect("twilio callback")
    }

    /// A status callback as Twilio posts it for `sid` to the URL the send asked for.
    async fn status_callback(
        &self,
        callback: &str,
        sid: &str,
        status: &str,
        token: Option<&str>,
    ) -> reqwest::Response {
        let path = callback
            .strip_prefix(PUBLIC_URL)
            .expect("the callback is on the public URL");
        let mut params = vec![
            ("AccountSid", fake::ACCOUNT_SID),
            ("ApiVersion", "2010-04-01"),
            ("ChannelPrefix", "whatsapp"),
            ("From", fake::FROM),
            ("MessageSid", sid),
            ("MessageStatus", status),
            ("SmsSid", sid),
            ("SmsStatus", status),
            ("To", "whatsapp:+212612345601"),
        ];
        if status == "undelivered" || status == "failed" {
            params.push(("ErrorCode", "63024"));
        }
        self.post_signed(path, &params, token).await
    }

    fn sent_to(&self, to: &str) -> fake::Received {
        self.twilio
            .received()
            .into_iter()
            .find(|r| r.field("To") == Some(to) && r.sid.is_some())
            .expect("a message taken by Twilio")
    }
}

#[tokio::test]
async fn an_order_goes_out_as_a_signed_form_with_basic_auth_and_asks_for_its_status() {
    let w = twilio_world(&[]).await;
    w.app.post_order(order(1)).await;
    let rows = w.app.wait_for_broadcast(1).await;
    assert_eq!(rows.len(), 3);
    assert!(rows.iter().all(|r| status_of(r) == DeliveryStatus::Sent));

    let sent = w.sent_to("whatsapp:+212612345601");
    assert_eq!(
        sent.auth,
        Some((fake::ACCOUNT_SID.into(), fake::AUTH_TOKEN.into()))
    );
    assert_eq!(
        sent.field("From"),
        Some(fake::FROM),
        "a bare +212… is prefixed"
    );
    assert!(
        sent.field("Body")
            .unwrap_or_default()
            .contains("Nouvelle commande")
    );
    assert_eq!(sent.field("ContentSid"), None);
    let row = rows.iter().find(|r| r.carrier_id == 1).expect("row");
    assert_eq!(row.message_id, sent.sid, "the 201's sid is the message id");
    let callback = sent.field("StatusCallback").expect("a status callback");
    assert_eq!(
        callback,
        format!("{PUBLIC_URL}/webhooks/twilio/status?delivery={}", row.id)
    );
}

#[tokio::test]
async fn with_a_content_template_the_order_s_values_go_as_its_variables() {
    let w = twilio_world(&[
        ("TWILIO_CONTENT_SID", "HXb5b62575e6e4ff6129ad7c8efe1f983e"),
        ("TWILIO_MESSAGING_SERVICE_SID", "MGtest"),
    ])
    .await;
    w.app.post_order(order(1)).await;
    w.app.wait_for_broadcast(1).await;
    let sent = w.sent_to("whatsapp:+212612345601");
    assert_eq!(
        sent.field("ContentSid"),
        Some("HXb5b62575e6e4ff6129ad7c8efe1f983e")
    );
    assert_eq!(sent.field("Body"), None);
    assert_eq!(sent.field("MessagingServiceSid"), Some("MGtest"));
    assert_eq!(sent.field("From"), None, "the service chooses the number");
    let variables: serde_json::Value =
        serde_json::from_str(sent.field("ContentVariables").expect("variables")).expect("json");
    let keys: Vec<&str> = variables
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["1", "2", "3", "4", "5", "6"]);
    assert!(
        variables["6"].as_str().unwrap_or_default().ends_with("/1"),
        "the order's link: {variables}"
    );
}

#[tokio::test]
async fn twilio_s_refusals_end_each_delivery_as_its_code_says() {
    let twilio = FakeTwilio::start().await;
    twilio.script(
        "whatsapp:+212612345601",
        vec![Reply::error(400, 21211, "Invalid 'To' Phone Number")],
    );
    twilio.script(
        "whatsapp:+212612345602",
        vec![Reply::error(
            400,
            21610,
            "Attempt to send to unsubscribed recipient",
        )],
    );
    twilio.script(
        "whatsapp:+212612345603",
        vec![Reply::error(
            400,
            63016,
            "Failed to send freeform message because you are outside the allowed window",
        )],
    );
    let w = started_over(twilio).await;
    w.app.post_order(order(1)).await;
    let rows = w.app.wait_for_broadcast(1).await;
    let row = |carrier: i64| rows.iter().find(|r| r.carrier_id == carrier).expect("row");
    assert_eq!(status_of(row(1)), DeliveryStatus::InvalidNumber);
    assert_eq!(status_of(row(2)), DeliveryStatus::Skipped);
    assert_eq!(status_of(row(3)), DeliveryStatus::Failed);
    let why = row(3).error.as_deref().unwrap_or_default();
    assert!(why.contains("TWILIO_CONTENT_SID"), "{why}");
    // The history explains each code in French, as Twilio's.
    for (carrier, code) in [(1, "21211"), (2, "21610"), (3, "63016")] {
        assert_eq!(row(carrier).channel, Some(ChannelKind::Twilio));
        assert_eq!(row(carrier).error_code.as_deref(), Some(code));
        assert_eq!(
            row(carrier).error_help(),
            error_help(ChannelKind::Twilio, code),
            "{code}"
        );
    }
    assert!(
        row(3).error_text().contains("TWILIO_CONTENT_SID")
            && !row(3).error_text().contains("freeform"),
        "{}",
        row(3).error_text()
    );
    assert_eq!(w.twilio.received().len(), 3, "no refusal is retried");

    // The carrier who unsubscribed at Twilio is opted out: the next order skips them.
    w.app.post_order(order(2)).await;
    let rows = w.app.wait_for_broadcast(2).await;
    let second = rows.iter().find(|r| r.carrier_id == 2).expect("row");
    assert_eq!(status_of(second), DeliveryStatus::Skipped);
    assert_eq!(
        w.twilio.received().len(),
        5,
        "only carriers 1 and 3 are tried again"
    );
}

/// A relay over the fake `twilio` (scripted before the relay starts).
async fn started_over(twilio: FakeTwilio) -> World {
    let url = twilio.url();
    let app = world(&[
        ("RELAY_CHANNEL", "twilio"),
        ("TWILIO_API_URL", url.as_str()),
        ("TWILIO_ACCOUNT_SID", fake::ACCOUNT_SID),
        ("TWILIO_AUTH_TOKEN", fake::AUTH_TOKEN),
        ("TWILIO_FROM", fake::FROM),
        ("RELAY_PUBLIC_URL", PUBLIC_URL),
    ])
    .await;
    add_usual_carriers(&app.camionback);
    World {
        app: app.start().await,
        twilio,
    }
}

#[tokio::test]
async fn a_rate_limit_is_retried_after_the_wait_twilio_asks_for() {
    let twilio = FakeTwilio::start().await;
    twilio.script(
        "whatsapp:+212612345601",
        vec![Reply::Http {
            status: 429,
            retry_after: Some(1),
        }],
    );
    let w = started_over(twilio).await;
    w.app.post_order(order(1)).await;
    let rows = w.app.wait_for_broadcast(1).await;
    assert!(rows.iter().all(|r| status_of(r) == DeliveryStatus::Sent));
    let to_first: Vec<_> = w
        .twilio
        .received()
        .into_iter()
        .filter(|r| r.field("To") == Some("whatsapp:+212612345601"))
        .collect();
    assert_eq!(to_first.len(), 2, "refused once, then taken");
    let row = rows.iter().find(|r| r.carrier_id == 1).expect("row");
    assert_eq!(row.attempts, 2);
}

#[tokio::test]
async fn a_refused_auth_token_pauses_the_account_without_failing_anything() {
    let twilio = FakeTwilio::start().await;
    twilio.accept_only(fake::ACCOUNT_SID, "the-token-twilio-has-now");
    let w = started_over(twilio).await;
    w.app.post_order(order(1)).await;
    eventually(Duration::from_secs(5), || async {
        w.app
            .metrics()
            .await
            .lines()
            .any(|line| line == "relay_sending_paused 1")
            .then_some(())
    })
    .await;
    assert_eq!(
        w.twilio.received().len(),
        1,
        "paused after the first refusal"
    );
    let rows = w.app.deliveries_of(1).await;
    assert!(
        rows.iter()
            .all(|r| status_of(r) == DeliveryStatus::Queued && r.attempts == 0),
        "{:?}",
        rows.iter()
            .map(|r| (&r.status, r.attempts))
            .collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn an_api_key_sends_in_place_of_the_auth_token() {
    let twilio = FakeTwilio::start().await;
    twilio.accept_only("SKtestkey", "key-secret");
    let url = twilio.url();
    let app = world(&[
        ("RELAY_CHANNEL", "twilio"),
        ("TWILIO_API_URL", url.as_str()),
        ("TWILIO_ACCOUNT_SID", fake::ACCOUNT_SID),
        ("TWILIO_AUTH_TOKEN", fake::AUTH_TOKEN),
        ("TWILIO_API_KEY_SID", "SKtestkey"),
        ("TWILIO_API_KEY_SECRET", "key-secret"),
        ("TWILIO_FROM", fake::FROM),
    ])
    .await;
    add_usual_carriers(&app.camionback);
    let w = World {
        app: app.start().await,
        twilio,
    };
    w.app.post_order(order(1)).await;
    let rows = w.app.wait_for_broadcast(1).await;
    assert!(rows.iter().all(|r| status_of(r) == DeliveryStatus::Sent));
    let sent = w.sent_to("whatsapp:+212612345601");
    assert_eq!(
        sent.field("StatusCallback"),
        None,
        "without RELAY_PUBLIC_URL no callback is asked for"
    );
}

#[tokio::test]
async fn signed_status_callbacks_move_a_delivery_forward_only() {
    let w = twilio_world(&[]).await;
    w.app.post_order(order(1)).await;
    w.app.wait_for_broadcast(1).await;
    let sent = w.sent_to("whatsapp:+212612345601");
    let sid = sent.sid.clone().expect("sid");
    let callback = sent.field("StatusCallback").expect("callback").to_string();
    let token = Some(fake::AUTH_TOKEN);

    for status in ["sent", "delivered", "read"] {
        let answer = w.status_callback(&callback, &sid, status, token).await;
        assert_eq!(answer.status(), 200, "{status}");
    }
    // Late and out of order: never backwards.
    for status in ["delivered", "sent", "queued", "undelivered"] {
        let answer = w.status_callback(&callback, &sid, status, token).await;
        assert_eq!(answer.status(), 200, "{status}");
    }
    let row = w
        .app
        .deliveries_of(1)
        .await
        .into_iter()
        .find(|r| r.carrier_id == 1)
        .expect("row");
    assert_eq!(status_of(&row), DeliveryStatus::Read);
}

#[tokio::test]
async fn an_undelivered_callback_fails_the_delivery_with_twilio_s_code() {
    let w = twilio_world(&[]).await;
    w.app.post_order(order(1)).await;
    w.app.wait_for_broadcast(1).await;
    let sent = w.sent_to("whatsapp:+212612345601");
    let callback = sent.field("StatusCallback").expect("callback").to_string();
    let answer = w
        .status_callback(
            &callback,
            sent.sid.as_deref().expect("sid"),
            "undelivered",
            Some(fake::AUTH_TOKEN),
        )
        .await;
    assert_eq!(answer.status(), 200);
    let row = w
        .app
        .deliveries_of(1)
        .await
        .into_iter()
        .find(|r| r.carrier_id == 1)
        .expect("row");
    assert_eq!(status_of(&row), DeliveryStatus::Failed);
    assert!(row.error.as_deref().unwrap_or_default().contains("63024"));
    assert_eq!(
        row.error_code.as_deref(),
        Some("63024"),
        "the callback's ErrorCode"
    );
    let invalid = error_help(ChannelKind::Twilio, "63024").expect("63024 explained");
    assert_eq!(row.error_text(), invalid.text());
}

#[tokio::test]
async fn an_unsigned_or_badly_signed_callback_is_refused_and_changes_nothing() {
    let w = twilio_world(&[]).await;
    w.app.post_order(order(1)).await;
    w.app.wait_for_broadcast(1).await;
    let sent = w.sent_to("whatsapp:+212612345601");
    let sid = sent.sid.clone().expect("sid");
    let callback = sent.field("StatusCallback").expect("callback").to_string();

    let unsigned = w.status_callback(&callback, &sid, "read", None).await;
    assert_eq!(unsigned.status(), 403);
    let forged = w
        .status_callback(&callback, &sid, "read", Some("not-the-auth-token"))
        .await;
    assert_eq!(forged.status(), 403);
    // Signed for another delivery's URL: the query is signed too.
    let path = callback.strip_prefix(PUBLIC_URL).expect("public");
    let params = [("MessageSid", sid.as_str()), ("MessageStatus", "read")];
    let signature = twilio_signature(
        fake::AUTH_TOKEN,
        &format!("{PUBLIC_URL}{STATUS}?delivery=999"),
        &params,
    );
    let moved = w
        .app
        .http
        .post(w.app.url(path))
        .header("X-Twilio-Signature", signature)
        .form(&params)
        .send()
        .await
        .expect("post");
    assert_eq!(moved.status(), 403);
    let inbound = w
        .post_signed(
            INCOMING,
            &[
                ("MessageSid", "SMin"),
                ("From", "whatsapp:+212612345601"),
                ("Body", "STOP"),
            ],
            Some("not-the-auth-token"),
        )
        .await;
    assert_eq!(inbound.status(), 403);

    let rows = w.app.deliveries_of(1).await;
    assert!(rows.iter().all(|r| status_of(r) == DeliveryStatus::Sent));
    assert!(w.app.store().replies(10).await.expect("replies").is_empty());
}

#[tokio::test]
async fn a_callback_that_overtakes_the_send_answer_is_applied_when_the_sid_is_stored() {
    let w = twilio_world(&[]).await;
    // The fake numbers its sids from 1: the first message will carry this one.
    let first = format!("SM{:032}", 1);
    let early = w
        .post_signed(
            STATUS,
            &[
                ("MessageSid", &first),
                ("MessageStatus", "delivered"),
                ("To", "whatsapp:+212612345601"),
            ],
            Some(fake::AUTH_TOKEN),
        )
        .await;
    assert_eq!(early.status(), 200);

    w.app.post_order(order(1)).await;
    eventually(Duration::from_secs(5), || async {
        let rows = w.app.deliveries_of(1).await;
        rows.iter()
            .any(|r| {
                r.message_id.as_deref() == Some(first.as_str())
                    && status_of(r) == DeliveryStatus::Delivered
            })
            .then_some(())
    })
    .await;
}

#[tokio::test]
async fn carriers_messages_are_stored_once_and_stop_opts_them_out() {
    let w = twilio_world(&[]).await;
    let token = Some(fake::AUTH_TOKEN);
    let text = w
        .post_signed(
            INCOMING,
            &[
                ("MessageSid", "SMreply1"),
                ("From", "whatsapp:+212612345601"),
                ("To", fake::FROM),
                ("Body", "Je suis disponible pour ce trajet"),
                ("ProfileName", "Atlas"),
                ("NumMedia", "0"),
            ],
            token,
        )
        .await;
    assert_eq!(text.status(), 200);
    assert_eq!(
        text.headers()["content-type"].to_str().expect("type"),
        "text/xml"
    );
    assert!(text.text().await.expect("body").ends_with("<Response/>"));

    // A quoted reply to a broadcast, redelivered by Twilio: stored once.
    let quoted = [
        ("MessageSid", "SMreply2"),
        ("From", "whatsapp:+212612345602"),
        ("Body", "Intéressé"),
        (
            "OriginalRepliedMessageSid",
            "SM00000000000000000000000000000001",
        ),
    ];
    for _ in 0..2 {
        assert_eq!(w.post_signed(INCOMING, &quoted, token).await.status(), 200);
    }
    // A quick-reply button that says STOP.
    let button = w
        .post_signed(
            INCOMING,
            &[
                ("MessageSid", "SMreply3"),
                ("From", "whatsapp:+212612345603"),
                ("Body", "Ne plus recevoir"),
                ("ButtonText", "Ne plus recevoir"),
                ("ButtonPayload", "STOP"),
            ],
            token,
        )
        .await;
    assert_eq!(button.status(), 200);
    let stop = w
        .post_signed(
            INCOMING,
            &[
                ("MessageSid", "SMreply4"),
                ("From", "whatsapp:+212612345601"),
                ("Body", "Stop"),
            ],
            token,
        )
        .await;
    assert_eq!(stop.status(), 200);
    let told = stop.text().await.expect("body");
    assert!(
        told.contains("<Message>C'est noté : vous ne recevrez plus"),
        "Twilio sends the carrier the confirmation: {told}"
    );
    // Told once: a STOP from someone already opted out gets no second confirmation.
    let again = w
        .post_signed(
            INCOMING,
            &[
                ("MessageSid", "SMreply5"),
                ("From", "whatsapp:+212612345601"),
                ("Body", "STOP"),
            ],
            token,
        )
        .await;
    assert!(again.text().await.expect("body").ends_with("<Response/>"));

    let replies = w.app.store().replies(10).await.expect("replies");
    assert_eq!(replies.len(), 5, "{replies:?}");
    let of = |sid_text: &str| replies.iter().find(|r| r.text == sid_text).expect("reply");
    assert_eq!(of("Je suis disponible pour ce trajet").carrier_id, Some(1));
    assert!(!of("Intéressé").opt_out);
    assert!(
        of("Ne plus recevoir").opt_out,
        "the button's payload is STOP"
    );
    assert!(of("Stop").opt_out);

    // Opted-out carriers get no more broadcasts.
    w.app.post_order(order(2)).await;
    let rows = w.app.wait_for_broadcast(2).await;
    let to = |carrier: i64| status_of(rows.iter().find(|r| r.carrier_id == carrier).expect("row"));
    assert_eq!(to(2), DeliveryStatus::Sent);
    assert_ne!(to(1), DeliveryStatus::Sent);
    assert_ne!(to(3), DeliveryStatus::Sent);
}

#[tokio::test]
async fn an_order_s_counters_follow_twilio_s_callbacks() {
    let twilio = FakeTwilio::start().await;
    twilio.script(
        "whatsapp:+212612345603",
        vec![Reply::error(400, 21211, "Invalid 'To' Phone Number")],
    );
    let w = started_over(twilio).await;
    w.app.post_order(order(1)).await;
    w.app.wait_for_broadcast(1).await;
    let token = Some(fake::AUTH_TOKEN);
    let first = w.sent_to("whatsapp:+212612345601");
    let second = w.sent_to("whatsapp:+212612345602");
    for (sent, status) in [(&first, "delivered"), (&second, "read")] {
        let callback = sent.field("StatusCallback").expect("callback");
        let sid = sent.sid.as_deref().expect("sid");
        assert_eq!(
            w.status_callback(callback, sid, status, token)
                .await
                .status(),
            200
        );
    }
    let counters = w.app.store().order_counters(10).await.expect("counters");
    assert_eq!(counters.len(), 1);
    let c = &counters[0];
    assert_eq!(c.order_reference, "CMD-2025-1");
    assert_eq!(
        (
            c.total,
            c.pending,
            c.sent,
            c.delivered,
            c.read,
            c.invalid_number
        ),
        (3, 0, 0, 1, 1, 1)
    );
}

#[tokio::test]
async fn an_unreadable_answer_is_in_doubt_never_resent_and_its_callback_settles_it() {
    let twilio = FakeTwilio::start().await;
    twilio.script("whatsapp:+212612345601", vec![Reply::AcceptGarbled]);
    let w = started_over(twilio).await;
    w.app.post_order(order(1)).await;
    let rows = w.app.wait_for_broadcast(1).await;
    let row = rows.iter().find(|r| r.carrier_id == 1).expect("row");
    assert_eq!(status_of(row), DeliveryStatus::Uncertain);
    assert_eq!(row.message_id, None);
    let taken: Vec<_> = w
        .twilio
        .received()
        .into_iter()
        .filter(|r| r.field("To") == Some("whatsapp:+212612345601"))
        .collect();
    assert_eq!(taken.len(), 1, "never resent");

    // Twilio did take it: its callback, to the URL that names the delivery, settles it.
    let callback = taken[0].field("StatusCallback").expect("callback");
    let sid = taken[0].sid.as_deref().expect("the fake's sid");
    let answer = w
        .status_callback(callback, sid, "delivered", Some(fake::AUTH_TOKEN))
        .await;
    assert_eq!(answer.status(), 200);
    let row = w
        .app
        .deliveries_of(1)
        .await
        .into_iter()
        .find(|r| r.carrier_id == 1)
        .expect("row");
    assert_eq!(status_of(&row), DeliveryStatus::Delivered);
    assert_eq!(row.message_id.as_deref(), Some(sid), "the sid is stored");
}

#[tokio::test]
async fn a_timeout_after_the_request_was_written_is_in_doubt_and_never_resent() {
    let twilio = FakeTwilio::start().await;
    twilio.script(
        "whatsapp:+212612345601",
        vec![Reply::AcceptLate(Duration::from_secs(30))],
    );
    let url = twilio.url();
    let app = world(&[
        ("RELAY_CHANNEL", "twilio"),
        ("TWILIO_API_URL", url.as_str()),
        ("TWILIO_ACCOUNT_SID", fake::ACCOUNT_SID),
        ("TWILIO_AUTH_TOKEN", fake::AUTH_TOKEN),
        ("TWILIO_FROM", fake::FROM),
        ("RELAY_PUBLIC_URL", PUBLIC_URL),
        ("RELAY_SEND_TIMEOUT_SECS", "1"),
    ])
    .await;
    add_usual_carriers(&app.camionback);
    let w = World {
        app: app.start().await,
        twilio,
    };
    w.app.post_order(order(1)).await;
    let rows = w.app.wait_for_broadcast(1).await;
    let row = rows.iter().find(|r| r.carrier_id == 1).expect("row");
    assert_eq!(status_of(row), DeliveryStatus::Uncertain, "{:?}", row.error);
    let to_first = w
        .twilio
        .received()
        .into_iter()
        .filter(|r| r.field("To") == Some("whatsapp:+212612345601"))
        .count();
    assert_eq!(to_first, 1, "never resent");
    assert!(
        rows.iter()
            .filter(|r| r.carrier_id != 1)
            .all(|r| status_of(r) == DeliveryStatus::Sent)
    );
}

#[tokio::test]
async fn a_reply_that_quotes_a_broadcast_is_about_that_order() {
    let w = twilio_world(&[]).await;
    let token = Some(fake::AUTH_TOKEN);
    w.app.post_order(order(7)).await;
    let rows = w.app.wait_for_broadcast(7).await;
    let broadcast = rows
        .iter()
        .find(|r| r.carrier_id == 2)
        .and_then(|r| r.message_id.clone())
        .expect("carrier 2 was sent the order");

    for (sid, quoted) in [
        ("SMquote1", broadcast.as_str()),
        // Quoting a message that is not one of our broadcasts says nothing of an order: the
        // reply is about the last order sent to that carrier (within the window).
        ("SMquote2", "SMsomethingelse"),
    ] {
        let answer = w
            .post_signed(
                INCOMING,
                &[
                    ("MessageSid", sid),
                    ("From", "whatsapp:+212612345602"),
                    ("Body", "Intéressé"),
                    ("OriginalRepliedMessageSid", quoted),
                ],
                token,
            )
            .await;
        assert_eq!(answer.status(), 200);
    }

    let replies = w.app.store().replies(10).await.expect("replies");
    assert_eq!(replies.len(), 2, "{replies:?}");
    let (other, about_order) = (&replies[0], &replies[1]);
    assert_eq!(about_order.order_id, Some(7));
    assert_eq!(about_order.order_reference.as_deref(), Some("CMD-2025-7"));
    assert_eq!(about_order.carrier_id, Some(2));
    assert_eq!(about_order.attributed_by, Some(Attribution::Quote));
    assert_eq!(about_order.channel.as_deref(), Some("twilio"));
    assert!(about_order.interested, "« Intéressé » is an interest word");
    assert_eq!(other.order_id, Some(7));
    assert_eq!(other.attributed_by, Some(Attribution::Window));

    // Both are about order 7: each is posted to CamionBack once, with Twilio's sid as its key.
    let posts = eventually(Duration::from_secs(10), || async {
        let posts = w.app.camionback.accepted_replies();
        (posts.len() == 2).then_some(posts)
    })
    .await;
    for (post, sid) in posts.iter().zip(["SMquote1", "SMquote2"]) {
        assert_eq!(post.order_id, 7);
        assert_eq!(post.idempotency_key.as_deref(), Some(sid));
        assert_eq!(post.body["canal"], serde_json::json!("twilio"));
        assert_eq!(post.body["transporteur_id"], serde_json::json!(2));
    }
}
