//! Editing the settings as staff do from the Paramètres screen: every refused value is named
//! and nothing is written; a saved edit keeps the rest of the file, stays owner-only, says when
//! an environment variable wins; and the relay restarted with it sends the new message while
//! losing nothing it had queued.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use relay_domain::DeliveryStatus;
use relay_engine::Engine;
use relay_engine::config::edit::{self, Change, EditError, Origin, SettingsEdit};
use relay_engine::config::{CONFIG_FILE, ChannelKind, TEMPLATE_FILE};
use secrecy::ExposeSecret;

use crate::helpers::*;

/// A config file as staff may have written it by hand, comments included.
const HAND_WRITTEN: &str = "# Relais du dépôt de Casablanca\n\
    camionback_api_url = \"https://api.camionback.test\"\n\
    # jeton donné par l'équipe CamionBack\n\
    CAMIONBACK_API_TOKEN = \"cb-secret-1\"\n\
    relay_throttle_ms = 1500\n\
    WHATSAPP_PHONE_NUMBER_ID = 106540352242922\n";

struct Dir {
    dir: tempfile::TempDir,
    env: HashMap<String, String>,
}

impl Dir {
    fn with_config(config: &str, env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(CONFIG_FILE), config).expect("write config");
        let mut vars: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        vars.insert("RELAY_DATA_DIR".into(), dir.path().display().to_string());
        Self { dir, env: vars }
    }

    fn env(&self) -> impl Fn(&str) -> Option<String> + '_ {
        |key| self.env.get(key).cloned()
    }

    fn file(&self, name: &str) -> Option<String> {
        std::fs::read_to_string(self.dir.path().join(name)).ok()
    }

    fn save(&self, edit: &SettingsEdit) -> Result<edit::Saved, EditError> {
        edit::save(self.env(), edit)
    }

    fn load(&self) -> relay_engine::Settings {
        relay_engine::Settings::load(self.env()).expect("saved settings load")
    }
}

fn set(changes: &[(&str, &str)]) -> SettingsEdit {
    SettingsEdit {
        changes: changes
            .iter()
            .map(|(k, v)| (k.to_string(), Change::Set(v.to_string())))
            .collect(),
        template: None,
    }
}

/// The refused fields and their messages, for assertions.
fn refused(result: Result<edit::Saved, EditError>) -> HashMap<String, String> {
    match result {
        Err(EditError::Invalid(errors)) => {
            errors.into_iter().map(|e| (e.field, e.message)).collect()
        }
        other => panic!("expected refused fields, got {other:?}"),
    }
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).expect("file").permissions().mode() & 0o777
}

#[test]
fn a_bad_url_is_refused_next_to_its_field_and_nothing_is_written() {
    let dir = Dir::with_config(HAND_WRITTEN, &[]);
    let mut edit = set(&[
        ("CAMIONBACK_API_URL", "camionback.com/api"),
        ("RELAY_THROTTLE_MS", "800"),
    ]);
    edit.template = Some("Nouvelle commande {{reference}}".into());

    let errors = refused(dir.save(&edit));

    assert_eq!(errors.len(), 1, "{errors:?}");
    let message = &errors["CAMIONBACK_API_URL"];
    assert!(
        message.contains("camionback.com/api") && message.contains("n'est pas une URL"),
        "{message}"
    );
    assert_eq!(dir.file(CONFIG_FILE).as_deref(), Some(HAND_WRITTEN));
    assert_eq!(
        dir.file(TEMPLATE_FILE),
        None,
        "the valid template waits too"
    );

    let errors = refused(dir.save(&set(&[("CAMIONBACK_API_URL", "ftp://camionback.com")])));
    assert!(
        errors["CAMIONBACK_API_URL"].contains("http(s)"),
        "{errors:?}"
    );
    assert_eq!(dir.file(CONFIG_FILE).as_deref(), Some(HAND_WRITTEN));
}

#[test]
fn an_unknown_placeholder_is_named_and_the_template_file_is_unchanged() {
    let dir = Dir::with_config(HAND_WRITTEN, &[]);
    std::fs::write(
        dir.dir.path().join(TEMPLATE_FILE),
        "Commande {{reference}}\n",
    )
    .expect("write");
    let mut edit = set(&[("RELAY_THROTTLE_MS", "900")]);
    edit.template = Some("Départ {{ville_depart}} vers {{ville}}".into());

    let errors = refused(dir.save(&edit));

    assert!(
        errors[edit::TEMPLATE_FIELD].contains("{{ville}}"),
        "{errors:?}"
    );
    assert_eq!(
        dir.file(TEMPLATE_FILE).as_deref(),
        Some("Commande {{reference}}\n")
    );
    assert_eq!(dir.file(CONFIG_FILE).as_deref(), Some(HAND_WRITTEN));
}

#[test]
fn a_template_that_could_exceed_one_whatsapp_message_is_refused_and_nothing_is_written() {
    let dir = Dir::with_config(HAND_WRITTEN, &[]);
    let mut edit = set(&[("RELAY_THROTTLE_MS", "900")]);
    // Each goods description may hold 200 characters: 15 of them cannot fit in 4,096.
    edit.template = Some("📦 {{type_colis}}\n".repeat(15));

    let errors = refused(dir.save(&edit));

    let message = &errors[edit::TEMPLATE_FIELD];
    assert!(message.contains("4096"), "{message}");
    assert_eq!(dir.file(TEMPLATE_FILE), None, "no template written");
    assert_eq!(dir.file(CONFIG_FILE).as_deref(), Some(HAND_WRITTEN));
}

#[test]
fn the_cloud_api_channel_without_its_token_is_refused() {
    let dir = Dir::with_config(HAND_WRITTEN, &[]);

    let errors = refused(dir.save(&set(&[("RELAY_CHANNEL", "cloud-api")])));

    assert_eq!(
        errors.get("WHATSAPP_TOKEN").map(String::as_str),
        Some("obligatoire avec le canal cloud-api"),
        "{errors:?}"
    );
    assert_eq!(dir.file(CONFIG_FILE).as_deref(), Some(HAND_WRITTEN));

    // With neither the token nor the number id, both fields say so.
    let dir = Dir::with_config("", &[]);
    let errors = refused(dir.save(&set(&[("RELAY_CHANNEL", "cloud-api")])));
    assert!(errors.contains_key("WHATSAPP_TOKEN"), "{errors:?}");
    assert!(
        errors.contains_key("WHATSAPP_PHONE_NUMBER_ID"),
        "{errors:?}"
    );
    assert_eq!(dir.file(CONFIG_FILE).as_deref(), Some(""));
}

#[test]
fn the_twilio_channel_is_checked_before_saving_each_missing_field_named() {
    let dir = Dir::with_config("", &[]);
    let errors = refused(dir.save(&set(&[("RELAY_CHANNEL", "twilio")])));
    for key in ["TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_FROM"] {
        assert!(errors.contains_key(key), "{key}: {errors:?}");
    }
    let errors = refused(dir.save(&set(&[
        ("RELAY_CHANNEL", "twilio"),
        ("TWILIO_ACCOUNT_SID", "AC123"),
        ("TWILIO_AUTH_TOKEN", "token"),
        ("TWILIO_FROM", "whatsapp:bonjour"),
    ])));
    assert!(
        errors["TWILIO_FROM"].contains("whatsapp:+212"),
        "{errors:?}"
    );
    let errors = refused(dir.save(&set(&[
        ("RELAY_CHANNEL", "twilio"),
        ("TWILIO_ACCOUNT_SID", "AC123"),
        ("TWILIO_AUTH_TOKEN", "token"),
        ("TWILIO_FROM", "+212664373534"),
        ("TWILIO_API_KEY_SID", "SK123"),
    ])));
    assert!(errors.contains_key("TWILIO_API_KEY_SECRET"), "{errors:?}");
    assert_eq!(
        dir.file(CONFIG_FILE).as_deref(),
        Some(""),
        "nothing written"
    );
}

#[test]
fn throttle_and_jitter_stay_within_bounds_and_addresses_must_parse() {
    let dir = Dir::with_config(HAND_WRITTEN, &[]);
    let errors = refused(dir.save(&set(&[
        ("RELAY_THROTTLE_MS", "10"),
        ("RELAY_JITTER_MS", "vite"),
        ("RELAY_WEBHOOK_ADDR", "localhost"),
        ("RELAY_SEND_TIMEOUT_SECS", "86400"),
    ])));
    assert!(
        errors["RELAY_THROTTLE_MS"].contains("entre 100 ms"),
        "{errors:?}"
    );
    // A claimed send is waited for by "Quitter" and by a restart: a day is not a timeout.
    assert!(
        errors["RELAY_SEND_TIMEOUT_SECS"].contains("entre 1 s et 300 s"),
        "{errors:?}"
    );
    assert!(errors["RELAY_JITTER_MS"].contains("vite"), "{errors:?}");
    assert!(
        errors["RELAY_WEBHOOK_ADDR"].contains("IP:port"),
        "{errors:?}"
    );
    assert_eq!(dir.file(CONFIG_FILE).as_deref(), Some(HAND_WRITTEN));
}

#[test]
fn a_saved_edit_keeps_the_other_keys_and_comments_and_stays_owner_only() {
    let dir = Dir::with_config(HAND_WRITTEN, &[]);
    let mut edit = set(&[
        ("RELAY_THROTTLE_MS", "2500"),
        ("RELAY_JITTER_MS", "400"),
        ("RELAY_WEBHOOK_SECRET", "whsec-nouveau"),
    ]);
    edit.template = Some("Commande {{reference}} : {{ville_depart}} → {{ville_arrivee}}".into());

    let saved = dir.save(&edit).expect("a valid edit is saved");

    let text = dir.file(CONFIG_FILE).expect("config written");
    assert!(text.contains("# Relais du dépôt de Casablanca"), "{text}");
    assert!(
        text.contains("# jeton donné par l'équipe CamionBack"),
        "{text}"
    );
    assert!(
        text.contains("relay_throttle_ms = 2500"),
        "hand spelling kept: {text}"
    );
    assert!(!text.contains("1500"), "{text}");
    assert!(
        text.contains("CAMIONBACK_API_TOKEN = \"cb-secret-1\""),
        "{text}"
    );
    assert_eq!(mode(&dir.dir.path().join(CONFIG_FILE)), 0o600);
    assert_eq!(mode(&dir.dir.path().join(TEMPLATE_FILE)), 0o600);

    // What the next start loads is what the edit said, and what `save` returned.
    let loaded = dir.load();
    assert_eq!(loaded.dispatch.throttle, Duration::from_millis(2500));
    assert_eq!(loaded.dispatch.jitter, Duration::from_millis(400));
    assert_eq!(
        loaded
            .webhook
            .secret
            .as_ref()
            .map(|s| s.expose_secret().to_string()),
        Some("whsec-nouveau".into())
    );
    assert_eq!(
        loaded
            .camionback
            .api_token
            .as_ref()
            .map(|s| s.expose_secret().to_string()),
        Some("cb-secret-1".into()),
        "a secret not in the edit keeps its value"
    );
    assert_eq!(
        loaded.template.text(),
        "Commande {{reference}} : {{ville_depart}} → {{ville_arrivee}}"
    );
    assert_eq!(saved.settings.dispatch.throttle, loaded.dispatch.throttle);
    assert!(saved.overridden.is_empty());
    // No temporary file is left next to it.
    let names: Vec<String> = std::fs::read_dir(dir.dir.path())
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.ends_with(".tmp")), "{names:?}");
}

#[test]
fn clearing_a_secret_removes_it_and_clearing_a_number_restores_its_default() {
    let dir = Dir::with_config(HAND_WRITTEN, &[]);
    let mut edit = SettingsEdit::default();
    edit.changes
        .insert("CAMIONBACK_API_TOKEN".into(), Change::Clear);
    edit.changes
        .insert("RELAY_THROTTLE_MS".into(), Change::Set("  ".into()));

    dir.save(&edit).expect("saved");

    let text = dir.file(CONFIG_FILE).expect("config");
    assert!(!text.contains("cb-secret-1"), "{text}");
    let loaded = dir.load();
    assert!(loaded.camionback.api_token.is_none());
    assert_eq!(loaded.dispatch.throttle, Duration::from_millis(1000));
    assert!(text.contains("camionback_api_url"), "{text}");
}

#[test]
fn a_setting_an_environment_variable_overrides_is_reported_as_such() {
    let dir = Dir::with_config(HAND_WRITTEN, &[("RELAY_THROTTLE_MS", "300")]);
    let origins = edit::origins(dir.env()).expect("origins");
    assert_eq!(origins["RELAY_THROTTLE_MS"], Origin::Env);
    assert_eq!(origins["CAMIONBACK_API_URL"], Origin::File);
    assert_eq!(origins["RELAY_JITTER_MS"], Origin::Default);

    let saved = dir
        .save(&set(&[
            ("RELAY_THROTTLE_MS", "2000"),
            ("RELAY_JITTER_MS", "100"),
        ]))
        .expect("saved");

    assert_eq!(saved.overridden, vec!["RELAY_THROTTLE_MS"]);
    assert_eq!(
        saved.settings.dispatch.throttle,
        Duration::from_millis(300),
        "the environment still wins"
    );
    assert!(dir.file(CONFIG_FILE).expect("config").contains("2000"));

    // A bad environment value is blamed on the variable, and nothing is written.
    let dir = Dir::with_config("", &[("CAMIONBACK_API_URL", "pas-une-url")]);
    let errors = refused(dir.save(&set(&[("RELAY_THROTTLE_MS", "2000")])));
    assert!(
        errors["CAMIONBACK_API_URL"].contains("variable d'environnement"),
        "{errors:?}"
    );
    assert_eq!(dir.file(CONFIG_FILE).as_deref(), Some(""));
}

#[tokio::test]
async fn the_preview_is_the_message_of_the_newest_order_or_of_a_placeholder() {
    let app = spawn_app().await;
    let template = "Commande {{reference}} : {{ville_depart}} → {{ville_arrivee}}, {{prix}} MAD";

    app.camionback
        .add_carrier(1, "Transports Atlas", "0612345601", "valide");
    let before = edit::preview(Some(app.store()), template, "https://x.test/c/")
        .await
        .expect("preview");
    assert!(before.placeholder);
    assert_eq!(
        before.text,
        "Commande CMD-2025-123 : Casablanca → Marrakech, 4 500 MAD"
    );

    app.post_order(order(77)).await;
    app.wait_for_broadcast(77).await;
    let after = edit::preview(Some(app.store()), template, "https://x.test/c/")
        .await
        .expect("preview");
    assert!(!after.placeholder);
    assert_eq!(after.reference, "CMD-2025-77");
    assert!(
        after.text.starts_with("Commande CMD-2025-77 : "),
        "{}",
        after.text
    );

    let err = edit::preview(Some(app.store()), "Trajet {{trajet}}", "https://x.test/c/")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("{{trajet}}"), "{err}");
}

#[tokio::test]
async fn after_a_saved_edit_the_restarted_relay_sends_the_new_message_and_loses_nothing() {
    let app = world(&[("RELAY_THROTTLE_MS", "300")]).await;
    for id in 1..=6 {
        app.camionback
            .add_carrier(id, &format!("T{id}"), &format!("06123456{id:02}"), "valide");
    }
    let env = env_for(&app.dir, &app.camionback, &app.cloud, &app.overrides);
    let mut app = app.start().await;
    app.post_order(order(5)).await;
    eventually(Duration::from_secs(10), || async {
        (!app.cloud.received().is_empty()).then_some(())
    })
    .await;

    let template = "Commande {{reference}} : {{ville_depart}} → {{ville_arrivee}}";
    let saved = edit::save(
        |key| env.get(key).cloned(),
        &SettingsEdit {
            template: Some(template.into()),
            ..SettingsEdit::default()
        },
    )
    .expect("saved");
    assert_eq!(saved.settings.dispatch.channel, ChannelKind::CloudApi);
    // What the desktop app does after saving: stop (the send in flight finishes), start again.
    app.stop().await;
    app.engine = Some(Engine::start(saved.settings).await.expect("restarts"));
    let rows = app.wait_for_broadcast(5).await;

    assert!(
        rows.iter().all(|r| r.status == DeliveryStatus::Sent),
        "nothing queued was lost: {:?}",
        rows.iter().map(|r| &r.status).collect::<Vec<_>>()
    );
    let received = app.cloud.received();
    let mut recipients: Vec<&str> = received.iter().map(|r| r.to.as_str()).collect();
    recipients.sort();
    recipients.dedup();
    assert_eq!(
        (received.len(), recipients.len()),
        (6, 6),
        "each carrier got the order exactly once"
    );
    let texts: Vec<&str> = received.iter().filter_map(|r| r.text()).collect();
    assert!(
        texts[0].starts_with("🚛 *Nouvelle commande disponible"),
        "{}",
        texts[0]
    );
    assert_eq!(
        texts.last().copied(),
        Some("Commande CMD-2025-5 : Casablanca → Marrakech"),
        "the new template after the restart"
    );
}
