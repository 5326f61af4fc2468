//! Changing the settings from an interface (the desktop's Paramètres screen): an edit is checked
//! as the complete configuration it would produce — with the loader's own rules, the bounds
//! staff may choose, and the chosen channel's requirements — and only then written, atomically,
//! to `config.toml` (and `template.txt`), owner-only, keeping every other key and comment.
//! Also where each setting comes from, and the message preview staff see while typing.

use std::collections::BTreeMap;
use std::path::Path;

use relay_domain::{MessageTemplate, Order, OrderFields, OrderId, TemplateFields};

use super::table::{self, SettingKind};
use super::{
    CONFIG_FILE, ChannelKind, ConfigError, Raw, Settings, TEMPLATE_FILE, data_dir_from, env_origin,
    overlay_env, parse_config, read_config_text, read_template,
};
use crate::channel::cloud_api::{CloudApi, CloudApiConfigError};
use crate::channel::twilio::{Twilio, TwilioConfigError};
use crate::store::{Store, StoreError};

/// The field name errors use for the message template (it is not an environment variable).
pub const TEMPLATE_FIELD: &str = "template";

/// What an edit does to one setting in `config.toml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Writes the value; a blank one is the same as [`Change::Clear`].
    Set(String),
    /// Removes the key from the file: back to the default, or unset.
    Clear,
}

/// The changes staff asked for. Settings not named keep their value.
#[derive(Debug, Clone, Default)]
pub struct SettingsEdit {
    /// By setting name, in any case, as the file takes them.
    pub changes: BTreeMap<String, Change>,
    /// The new message template; `None` keeps the current one.
    pub template: Option<String>,
}

/// A refused value, for the field that holds it: a setting name or [`TEMPLATE_FIELD`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum EditError {
    #[error("réglages refusés, rien n'a été enregistré : {}", list(.0))]
    Invalid(Vec<FieldError>),
    /// The file as it is cannot be edited safely (it must be fixed by hand first).
    #[error(transparent)]
    Current(#[from] ConfigError),
    #[error("{path} : écriture impossible, rien n'a été modifié ({source})")]
    Write {
        path: String,
        source: std::io::Error,
    },
}

fn list(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(|e| format!("{} : {}", e.field, e.message))
        .collect::<Vec<_>>()
        .join(" ; ")
}

/// A saved edit: the settings the relay should now run with.
#[derive(Debug)]
pub struct Saved {
    pub settings: Settings,
    /// Changed settings that an environment variable overrides: written, but without effect
    /// while that variable is set.
    pub overridden: Vec<&'static str>,
}

/// Where a setting's effective value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Default,
    File,
    Env,
}

/// Where each setting comes from right now (the file as it is on disk, then `env`).
pub fn origins(
    env: impl Fn(&str) -> Option<String>,
) -> Result<BTreeMap<&'static str, Origin>, ConfigError> {
    let data_dir = data_dir_from(&env)?;
    let path = data_dir.join(CONFIG_FILE);
    let in_file = match read_config_text(&path)? {
        Some(text) => parse_config(&path, &text)?,
        None => Raw::new(),
    };
    Ok(table::file_settings()
        .map(|spec| spec.key)
        .map(|key| {
            let origin = if env(key).is_some() {
                Origin::Env
            } else if in_file.contains_key(key) {
                Origin::File
            } else {
                Origin::Default
            };
            (key, origin)
        })
        .collect())
}

/// Checks `edit` as the whole configuration it leads to and, only if every value holds,
/// writes it. On any error nothing is written and every refused field is named.
pub fn save(env: impl Fn(&str) -> Option<String>, edit: &SettingsEdit) -> Result<Saved, EditError> {
    let data_dir = data_dir_from(&env)?;
    let config_path = data_dir.join(CONFIG_FILE);
    let template_path = data_dir.join(TEMPLATE_FILE);
    let current = read_config_text(&config_path)?.unwrap_or_default();
    // The file must already be one the relay accepts: an edit never builds on a broken file.
    parse_config(&config_path, &current)?;
    let mut document: toml_edit::Document = current
        .parse()
        // `message()`, not the Display: that one quotes the offending line, which may
        // hold a token, and this error reaches the window.
        .map_err(|err: toml_edit::TomlError| ConfigError::Toml {
            path: config_path.clone(),
            message: err.message().to_string(),
        })?;

    let mut errors = Vec::new();
    let mut changed = Vec::new();
    for (name, change) in &edit.changes {
        let Some(key) = table::file_key(name) else {
            errors.push(FieldError {
                field: name.clone(),
                message: "réglage inconnu".into(),
            });
            continue;
        };
        changed.push(key);
        let value = match change {
            Change::Set(value) if !value.trim().is_empty() => Some(value.trim()),
            _ => None,
        };
        if let Some(value) = value
            && let Err(message) = check_alone(&data_dir, key, value)
        {
            errors.push(FieldError {
                field: key.into(),
                message,
            });
            continue;
        }
        write_key(document.as_table_mut(), key, value);
    }
    let template = match &edit.template {
        Some(text) => match MessageTemplate::parse(text) {
            Ok(template) => Some(template),
            Err(err) => {
                errors.push(FieldError {
                    field: TEMPLATE_FIELD.into(),
                    message: err.to_string(),
                });
                None
            }
        },
        None => None,
    };
    if !errors.is_empty() {
        return Err(EditError::Invalid(errors));
    }

    // The whole configuration as the next start will load it: new file, then environment.
    let new_text = document.to_string();
    let mut raw = parse_config(&config_path, &new_text)?;
    overlay_env(&mut raw, &env);
    let template_to_run = match &template {
        Some(template) => template.clone(),
        None => read_template(&template_path)?,
    };
    let settings = match Settings::build(data_dir.clone(), raw, template_to_run) {
        Ok(settings) => settings,
        Err(ConfigError::Invalid {
            key,
            origin,
            reason,
        }) => {
            return Err(EditError::Invalid(vec![FieldError {
                field: key.into(),
                message: format!("{reason} ({origin})"),
            }]));
        }
        // The template alone parsed; with the order link it could exceed WhatsApp's limit.
        Err(ConfigError::Template { source, .. }) => {
            return Err(EditError::Invalid(vec![FieldError {
                field: TEMPLATE_FIELD.into(),
                message: source.to_string(),
            }]));
        }
        Err(err) => return Err(err.into()),
    };
    let errors = requirements(&settings, &env);
    if !errors.is_empty() {
        return Err(EditError::Invalid(errors));
    }

    let write = |path: &Path, bytes: &[u8]| {
        crate::fs::write_private_atomic(path, bytes).map_err(|source| EditError::Write {
            path: path.display().to_string(),
            source,
        })
    };
    // Two files, each replaced atomically; if the second cannot be written, the first is put
    // back, so a refused save never leaves half an edit on disk.
    let previous_template = match std::fs::read(&template_path) {
        Ok(bytes) => Some(bytes),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => None,
        Err(source) => {
            return Err(EditError::Write {
                path: template_path.display().to_string(),
                source,
            });
        }
    };
    if let Some(template) = &template {
        let mut text = template.text();
        text.push('\n');
        write(&template_path, text.as_bytes())?;
    }
    if (new_text != current || (!config_path.exists() && !changed.is_empty()))
        && let Err(err) = write(&config_path, new_text.as_bytes())
    {
        if template.is_some() {
            let _ = match &previous_template {
                Some(bytes) => crate::fs::write_private_atomic(&template_path, bytes),
                None => std::fs::remove_file(&template_path),
            };
        }
        return Err(err);
    }
    let overridden = changed
        .into_iter()
        .filter(|key| env(key).is_some())
        .collect();
    Ok(Saved {
        settings,
        overridden,
    })
}

/// The loader's own check of one value, alone over the defaults: the form and the file can
/// never disagree on what is valid. Then the bounds staff may choose from the app.
fn check_alone(data_dir: &Path, key: &'static str, value: &str) -> Result<(), String> {
    let mut raw = Raw::new();
    raw.insert(key, (value.to_string(), String::new()));
    match Settings::build(data_dir.to_path_buf(), raw, MessageTemplate::default()) {
        Ok(_) => {}
        Err(ConfigError::Invalid { reason, .. }) => return Err(reason),
        Err(err) => return Err(err.to_string()),
    }
    let Some(spec) = table::spec(key) else {
        return Ok(());
    };
    if let Some(bounds) = &spec.bounds
        && let Ok(amount) = value.parse::<u64>()
        && !bounds.range.contains(&amount)
    {
        let unit = match spec.kind {
            SettingKind::Number { unit: Some(unit) } => format!(" {unit}"),
            _ => String::new(),
        };
        return Err(format!(
            "{} doit être entre {}{unit} et {}{unit}",
            bounds.what,
            bounds.range.start(),
            bounds.range.end()
        ));
    }
    Ok(())
}

/// What the chosen channel needs to start, named on the field to fill in.
fn requirements(settings: &Settings, env: &impl Fn(&str) -> Option<String>) -> Vec<FieldError> {
    let field = |key: &str, message: String| FieldError {
        field: key.into(),
        message,
    };
    let mut errors = Vec::new();
    match settings.dispatch.channel {
        ChannelKind::WhatsappWeb => {}
        ChannelKind::Twilio => {
            // The channel's own constructor, so the form checks exactly what start-up checks.
            let built = Twilio::new(
                &settings.twilio,
                settings.public_url.as_ref(),
                settings.dispatch.send_timeout,
            );
            match built {
                Ok(_) => {}
                Err(TwilioConfigError::Missing(key)) => {
                    errors.push(field(key, "obligatoire avec le canal twilio".into()))
                }
                Err(err @ TwilioConfigError::NoSender) => {
                    errors.push(field("TWILIO_FROM", err.to_string()))
                }
                Err(err @ TwilioConfigError::HalfApiKey) => {
                    errors.push(field("TWILIO_API_KEY_SECRET", err.to_string()))
                }
                Err(err @ TwilioConfigError::BadFrom(_)) => {
                    errors.push(field("TWILIO_FROM", err.to_string()))
                }
                Err(TwilioConfigError::Url(err)) => errors.push(field(
                    "TWILIO_API_URL",
                    format!("adresse de l'API Twilio inutilisable ({err})"),
                )),
                Err(err @ TwilioConfigError::Http(_)) => {
                    errors.push(field("RELAY_CHANNEL", err.to_string()))
                }
            }
            // Missing keys are reported one at a time by the constructor: name each.
            let twilio = &settings.twilio;
            if twilio.account_sid.is_none() && twilio.auth_token.is_none() {
                errors.push(field(
                    "TWILIO_AUTH_TOKEN",
                    "obligatoire avec le canal twilio".into(),
                ));
            }
            if (twilio.account_sid.is_none() || twilio.auth_token.is_none())
                && twilio.from.is_none()
                && twilio.messaging_service_sid.is_none()
            {
                errors.push(field(
                    "TWILIO_FROM",
                    TwilioConfigError::NoSender.to_string(),
                ));
            }
        }
        ChannelKind::CloudApi => {
            // The channel's own constructor, so the form checks exactly what start-up checks.
            match CloudApi::new(&settings.cloud_api, settings.dispatch.send_timeout) {
                Ok(_) => {}
                Err(CloudApiConfigError::Missing(key)) => {
                    errors.push(field(key, "obligatoire avec le canal cloud-api".into()))
                }
                Err(CloudApiConfigError::Url(err)) => errors.push(field(
                    "WHATSAPP_API_URL",
                    format!("adresse de l'API Cloud inutilisable ({err})"),
                )),
                Err(err @ CloudApiConfigError::Http(_)) => {
                    errors.push(field("RELAY_CHANNEL", err.to_string()))
                }
            }
            // Missing keys are reported one at a time by the constructor: name both.
            if settings.cloud_api.token.is_none() && settings.cloud_api.phone_number_id.is_none() {
                errors.push(field(
                    "WHATSAPP_TOKEN",
                    "obligatoire avec le canal cloud-api".into(),
                ));
            }
        }
    }
    for error in &mut errors {
        if let Some(key) = table::file_key(&error.field)
            && env(key).is_some()
        {
            error.message = format!("{} ({})", error.message, env_origin(key));
        }
    }
    errors
}

/// Sets (or removes, for `None`) `key` in the file, whatever case the file spells it in,
/// keeping the comment above it.
fn write_key(table: &mut toml_edit::Table, key: &str, value: Option<&str>) {
    let spellings: Vec<String> = table
        .iter()
        .map(|(name, _)| name.to_string())
        .filter(|name| name.eq_ignore_ascii_case(key))
        .collect();
    let Some(value) = value else {
        for name in spellings {
            table.remove(&name);
        }
        return;
    };
    let item = match value.parse::<i64>() {
        Ok(number)
            if table::spec(key)
                .is_some_and(|spec| matches!(spec.kind, SettingKind::Number { .. })) =>
        {
            toml_edit::value(number)
        }
        _ => toml_edit::value(value),
    };
    let mut spellings = spellings.into_iter();
    match spellings.next() {
        Some(name) => {
            if let Some(slot) = table.get_mut(&name) {
                *slot = item;
            }
            for duplicate in spellings {
                table.remove(&duplicate);
            }
        }
        None => {
            table.insert(key, item);
        }
    }
}

/// The message preview: exactly what the dispatcher would send for `order`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessagePreview {
    pub text: String,
    pub reference: String,
    /// No order has arrived yet: the preview uses [`placeholder_order`].
    pub placeholder: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum PreviewError {
    #[error(transparent)]
    Template(#[from] relay_domain::TemplateError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Placeholder(#[from] relay_domain::OrderError),
}

/// Renders `template_text` with the newest order of `store` (or [`placeholder_order`]) through
/// the dispatcher's own rendering.
pub async fn preview(
    store: Option<&Store>,
    template_text: &str,
    link_base: &str,
) -> Result<MessagePreview, PreviewError> {
    let template = MessageTemplate::parse(template_text)?;
    let newest = match store {
        Some(store) => match store.last_order().await? {
            Some(last) => store.get_order(OrderId(last.id)).await?.map(|s| s.order),
            None => None,
        },
        None => None,
    };
    let placeholder = newest.is_none();
    let order = match newest {
        Some(order) => order,
        None => placeholder_order()?,
    };
    Ok(MessagePreview {
        text: template.render(&TemplateFields::of(&order, link_base)),
        reference: order.reference,
        placeholder,
    })
}

/// The order a preview uses before any real one has arrived.
pub fn placeholder_order() -> Result<Order, relay_domain::OrderError> {
    Order::restore(OrderFields::example())
}
