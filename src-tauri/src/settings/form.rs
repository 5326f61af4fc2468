//! The Paramètres form as the webview receives it, built from the engine's table of settings
//! (`relay_engine::config::table`): groups, labels, units, hints and choices come from there;
//! the values from the running settings, secrets only as "défini" or "non défini".

use std::collections::BTreeMap;

use relay_engine::Settings;
use relay_engine::config::edit::Origin;
use relay_engine::config::table::{Group, SettingKind, SettingSpec, Shown};
use serde::Serialize;

/// How the form draws a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldKind {
    Text,
    Number,
    Secret,
    Choice,
    Flag,
}

#[derive(Debug, Serialize)]
pub struct SettingField {
    pub key: &'static str,
    pub label: &'static str,
    pub kind: FieldKind,
    /// The effective value as the input starts with it. Always `None` for a secret.
    pub value: Option<String>,
    /// For a secret: whether one is set (shown as "défini (masqué)").
    pub set: bool,
    /// `default`, `file` (config.toml) or `env` (an environment variable wins).
    pub origin: &'static str,
    pub unit: Option<&'static str>,
    pub hint: Option<&'static str>,
    pub choices: Vec<&'static str>,
}

#[derive(Debug, Serialize)]
pub struct SettingGroup {
    pub id: &'static str,
    pub title: &'static str,
    /// Shown only while this channel is chosen (`None`: always).
    pub channel: Option<&'static str>,
    pub fields: Vec<SettingField>,
}

fn origin_name(origin: Origin) -> &'static str {
    match origin {
        Origin::Default => "default",
        Origin::File => "file",
        Origin::Env => "env",
    }
}

fn field(
    spec: &'static SettingSpec,
    settings: &Settings,
    origins: &BTreeMap<&'static str, Origin>,
) -> SettingField {
    let (kind, unit, choices) = match spec.kind {
        SettingKind::Text => (FieldKind::Text, None, Vec::new()),
        SettingKind::Number { unit } => (FieldKind::Number, unit, Vec::new()),
        SettingKind::Secret => (FieldKind::Secret, None, Vec::new()),
        SettingKind::Choice(choices) => (FieldKind::Choice, None, choices.to_vec()),
        SettingKind::Flag => (FieldKind::Flag, None, Vec::new()),
    };
    // A secret's value never reaches the webview, whatever its accessor returns.
    let (value, set) = match ((spec.shown)(settings), kind) {
        (Shown::Secret { set }, _) => (None, set),
        (Shown::Text(_), FieldKind::Secret) => (None, false),
        (Shown::Text(value), _) => (value, false),
    };
    SettingField {
        key: spec.key,
        label: spec.label,
        kind,
        value,
        set,
        origin: origin_name(origins.get(spec.key).copied().unwrap_or(Origin::Default)),
        unit,
        hint: spec.hint,
        choices,
    }
}

/// The form's groups and fields, from the running settings and where each one comes from.
pub fn groups(settings: &Settings, origins: &BTreeMap<&'static str, Origin>) -> Vec<SettingGroup> {
    Group::ALL
        .into_iter()
        .map(|group| SettingGroup {
            id: group.id(),
            title: group.title(),
            channel: group.channel().map(|channel| channel.as_str()),
            fields: group
                .settings()
                .map(|spec| field(spec, settings, origins))
                .collect(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use relay_engine::config::table;
    use secrecy::SecretString;

    fn settings_with_secrets() -> Settings {
        let dir = std::env::temp_dir().join("relay-desktop-settings-view-test");
        let env = |key: &str| match key {
            "RELAY_DATA_DIR" => Some(dir.display().to_string()),
            "RELAY_CHANNEL" => Some("cloud-api".into()),
            "WHATSAPP_PHONE_NUMBER_ID" => Some("106540352242922".into()),
            "CAMIONBACK_API_URL" => Some("https://relais:motdepasse@camionback.test/".into()),
            _ => None,
        };
        let mut settings = Settings::load(env).expect("valid settings");
        settings.cloud_api.token = Some(SecretString::from("meta-token-1234"));
        settings.webhook.secret = Some(SecretString::from("whsec-5678"));
        settings.twilio.auth_token = Some(SecretString::from("twilio-token-999"));
        settings.twilio.api_key_secret = Some(SecretString::from("twilio-key-secret"));
        settings
    }

    #[test]
    fn the_form_never_carries_a_secret_only_whether_it_is_set() {
        let settings = settings_with_secrets();
        let origins = BTreeMap::from([("RELAY_CHANNEL", Origin::Env)]);
        let json = serde_json::to_string(&groups(&settings, &origins)).expect("json");
        for secret in [
            "meta-token-1234",
            "whsec-5678",
            "motdepasse",
            "twilio-token-999",
            "twilio-key-secret",
        ] {
            assert!(!json.contains(secret), "{secret} reached the view: {json}");
        }
        let groups = groups(&settings, &origins);
        let field = |key: &str| {
            groups
                .iter()
                .flat_map(|g| &g.fields)
                .find(|f| f.key == key)
                .expect("field")
        };
        for key in table::secret_keys() {
            let secret = field(key);
            assert_eq!(
                (secret.kind, &secret.value),
                (FieldKind::Secret, &None),
                "{key}"
            );
        }
        let token = field("WHATSAPP_TOKEN");
        assert_eq!(
            (token.kind, token.set, &token.value),
            (FieldKind::Secret, true, &None)
        );
        assert!(!field("CAMIONBACK_API_TOKEN").set);
        // The Twilio section: its secrets shown only as set.
        assert!(field("TWILIO_AUTH_TOKEN").set);
        assert_eq!(field("TWILIO_AUTH_TOKEN").value, None);
        assert_eq!(field("RELAY_CHANNEL").origin, "env");
        assert_eq!(field("RELAY_CHANNEL").value.as_deref(), Some("cloud-api"));
        assert_eq!(
            field("CAMIONBACK_API_URL").value.as_deref(),
            Some("https://camionback.test/")
        );
    }
}
