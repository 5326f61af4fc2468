//! Errors a person can act on: a failure the provider gives a known code for reads in French in
//! the history and the CSV (what happened, what to do), whether it came in the send's answer
//! or in a status report; the provider's own text and code stay on the row.

use std::time::Duration;

use chrono::Utc;
use relay_domain::{ChannelKind, DeliveryStatus, error_help};
use relay_engine::export::{CsvStyle, write_history_csv};
use relay_engine::store::{HistoryFilter, HistoryRow};
use relay_test_support::Reply;
use serde_json::json;

use crate::helpers::*;
use crate::history::parse_csv;

fn row(rows: &[HistoryRow], carrier: i64) -> &HistoryRow {
    rows.iter().find(|r| r.carrier_id == carrier).expect("row")
}

async fn csv_of(app: &TestApp) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let style = CsvStyle {
        time_zone: Utc,
        unconfirmed_after: Duration::ZERO,
        now_ms: Utc::now().timestamp_millis(),
    };
    write_history_csv(app.store(), &HistoryFilter::default(), &style, &mut out)
        .await
        .expect("export");
    let text = String::from_utf8(out).expect("UTF-8");
    parse_csv(text.trim_start_matches('\u{feff}'))
}

fn failed_status(message_id: &str, code: i64, title: &str) -> serde_json::Value {
    json!({
        "object": "whatsapp_business_account",
        "entry": [{ "id": "WABA", "changes": [{ "field": "messages", "value": {
            "messaging_product": "whatsapp",
            "statuses": [{
                "id": message_id, "status": "failed", "timestamp": "1700000000",
                "recipient_id": "212612345602",
                "errors": [{ "code": code, "title": title, "message": title }],
            }],
        } }] }]
    })
}

#[tokio::test]
async fn a_cloud_api_failure_reads_in_french_in_the_history_and_the_csv() {
    let app = spawn_app().await;
    add_usual_carriers(&app.camionback);
    // Atlas: refused in the send's answer with a code the relay explains. Souss: refused with
    // a code it does not know.
    app.cloud.script(
        "212612345601",
        vec![Reply::meta(400, 131026, "Message undeliverable")],
    );
    app.cloud.script(
        "212612345603",
        vec![Reply::meta(400, 135000, "Generic user error")],
    );
    app.post_order(order(1)).await;
    let rows = app.wait_for_broadcast(1).await;

    // Rif: taken by Meta, then reported failed by the status webhook.
    let rif = row(&rows, 2);
    assert_eq!(status_of(rif), DeliveryStatus::Sent);
    let message_id = rif.message_id.clone().expect("message id");
    let answer = app
        .post_status_notification(&failed_status(
            &message_id,
            131049,
            "This message was not delivered to maintain healthy ecosystem engagement.",
        ))
        .await;
    assert_eq!(answer.status(), 200);
    let rows = app.deliveries_of(1).await;

    let undeliverable = error_help(ChannelKind::CloudApi, "131026").expect("131026 explained");
    let atlas = row(&rows, 1);
    assert_eq!(status_of(atlas), DeliveryStatus::Failed);
    assert_eq!(atlas.channel, Some(ChannelKind::CloudApi));
    assert_eq!(atlas.error_help(), Some(undeliverable));
    assert_eq!(atlas.error_text(), undeliverable.text());
    assert!(
        atlas
            .error_text()
            .starts_with("WhatsApp n'a pas pu remettre le message"),
        "{}",
        atlas.error_text()
    );
    // The provider's words stay on the row.
    assert_eq!(atlas.error_code.as_deref(), Some("131026"));
    assert!(
        atlas
            .error
            .as_deref()
            .unwrap_or("")
            .contains("Message undeliverable")
    );

    let healthy = error_help(ChannelKind::CloudApi, "131049").expect("131049 explained");
    let rif = row(&rows, 2);
    assert_eq!(status_of(rif), DeliveryStatus::Failed);
    assert_eq!(
        rif.error_code.as_deref(),
        Some("131049"),
        "a reported failure keeps its code"
    );
    assert_eq!(rif.error_help(), Some(healthy));

    let souss = row(&rows, 3);
    assert_eq!(status_of(souss), DeliveryStatus::Failed);
    assert_eq!(souss.error_help(), None, "an unknown code");
    assert_eq!(
        souss.error_text(),
        "135000 : Generic user error (Generic user error) (135000)",
        "an unknown code keeps the provider's text"
    );

    let csv = csv_of(&app).await;
    assert_eq!(csv[0][6..], ["Erreur", "Code erreur"]);
    let line_of = |carrier: &str| {
        csv.iter()
            .find(|r| r[1] == carrier)
            .unwrap_or_else(|| panic!("no CSV line for {carrier}: {csv:?}"))
    };
    assert_eq!(
        line_of("Transports Atlas")[6..],
        [undeliverable.text(), "131026".into()]
    );
    assert_eq!(
        line_of("Rif Logistique")[6..],
        [healthy.text(), "131049".into()]
    );
    assert_eq!(
        line_of("Souss Fret")[6..],
        [
            "135000 : Generic user error (Generic user error) (135000)".to_string(),
            "135000".into()
        ]
    );
    assert!(
        csv.iter().all(|r| !r[6].contains("undeliverable")),
        "no provider English where the relay explains the code: {csv:?}"
    );
}

#[tokio::test]
async fn a_failure_report_that_overtakes_the_send_answer_keeps_its_code() {
    let app = spawn_app().await;
    // The fake numbers its ids from wamid.TEST1: the first message will carry this id.
    let early = app
        .post_status_notification(&failed_status(
            "wamid.TEST1",
            131050,
            "User's marketing messages stopped",
        ))
        .await;
    assert_eq!(early.status(), 200);
    app.camionback
        .add_carrier(1, "Transports Atlas", "0612345601", "valide");
    app.post_order(order(1)).await;
    let rows = eventually(Duration::from_secs(5), || async {
        let rows = app.deliveries_of(1).await;
        (rows.len() == 1 && status_of(&rows[0]) == DeliveryStatus::Failed).then_some(rows)
    })
    .await;
    assert_eq!(rows[0].error_code.as_deref(), Some("131050"));
    assert_eq!(
        rows[0].error_help(),
        error_help(ChannelKind::CloudApi, "131050")
    );
}
