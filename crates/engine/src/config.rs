//! Settings: defaults in code, then `config.toml` in the data directory, then environment
//! variables. Every value is checked here, once, with an error that names the setting and
//! where it came from; secrets are wrapped so no `Debug` or log can print them.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use relay_domain::{MessageTemplate, TemplateError};
use secrecy::SecretString;
use url::Url;

pub mod edit;
pub mod table;

pub const CONFIG_FILE: &str = "config.toml";
pub const TEMPLATE_FILE: &str = "template.txt";
pub const DATABASE_FILE: &str = "relay.db";
pub const WHATSAPP_SESSION_FILE: &str = "whatsapp-session.db";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("aucun dossier de données par défaut sur ce système : définissez RELAY_DATA_DIR")]
    NoDataDir,
    #[error("{path} : {source}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} n'est pas un fichier TOML valide : {message}")]
    Toml { path: PathBuf, message: String },
    #[error("{path} : réglage inconnu « {key} » (réglages connus : {known})", known = table::file_keys_list())]
    UnknownKey { path: PathBuf, key: String },
    #[error("{key} ({origin}) : {reason}")]
    Invalid {
        key: &'static str,
        origin: String,
        reason: String,
    },
    #[error("modèle de message {path} : {source}")]
    Template {
        path: PathBuf,
        source: TemplateError,
    },
}

/// Which WhatsApp account connection sends the messages (in the domain: deliveries remember
/// it, and error codes are explained per channel).
pub use relay_domain::ChannelKind;

#[derive(Debug, Clone)]
pub struct CamionBackSettings {
    pub api_url: Option<Url>,
    pub api_token: Option<SecretString>,
    /// 0 disables polling.
    pub poll_interval: Duration,
    pub backfill: Duration,
    pub carrier_sync_interval: Duration,
    /// How often an order with deliveries queued is checked at the API (still open?); 0
    /// disables it.
    pub order_check_interval: Duration,
}

#[derive(Debug, Clone)]
pub struct WebhookSettings {
    pub addr: SocketAddr,
    pub secret: Option<SecretString>,
    /// Timeouts and connection cap of the server (`server`'s constants; not read from the
    /// environment).
    pub limits: crate::server::ServerLimits,
}

#[derive(Debug, Clone)]
pub struct DispatchSettings {
    pub channel: ChannelKind,
    pub throttle: Duration,
    pub jitter: Duration,
    pub send_timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct CloudApiSettings {
    pub api_url: Url,
    pub api_version: String,
    pub phone_number_id: Option<String>,
    pub token: Option<SecretString>,
    pub template: Option<String>,
    pub template_lang: String,
    pub verify_token: Option<SecretString>,
    pub app_secret: Option<SecretString>,
    /// The index of the approved template's quick-reply button that gets the payload
    /// `INTERESSE:<order id>` (`WHATSAPP_TEMPLATE_INTEREST_BUTTON`).
    pub interest_button: Option<u32>,
}

/// Carriers' replies: what counts as interest, which order a reply is about, and their
/// forward to CamionBack.
#[derive(Debug, Clone)]
pub struct ReplySettings {
    /// `RELAY_INTEREST_WORDS` as given (comma-separated; at least one word).
    pub interest_words: String,
    /// A reply naming no order is about the last order sent to that carrier this recently.
    pub window: Duration,
    /// `RELAY_FORWARD_REPLIES`.
    pub forward: bool,
    /// The first wait after a failed forward (then doubling up to an hour): not a setting staff
    /// change (no key reads it); tests shorten it.
    pub forward_first_retry: Duration,
}

/// The Twilio channel (Twilio's WhatsApp API).
#[derive(Debug, Clone)]
pub struct TwilioSettings {
    pub api_url: Url,
    pub account_sid: Option<String>,
    /// Authenticates sends unless an API key is given, and always signs Twilio's callbacks.
    pub auth_token: Option<SecretString>,
    pub api_key_sid: Option<String>,
    pub api_key_secret: Option<SecretString>,
    /// `whatsapp:+212…` (a bare number is prefixed when the channel is built).
    pub from: Option<String>,
    pub messaging_service_sid: Option<String>,
    /// An approved Content template: sent with `ContentVariables` instead of `Body`.
    pub content_sid: Option<String>,
}

#[derive(Debug, Clone)]
pub struct WhatsAppWebConfig {
    pub url: String,
    /// `2.3000.1234` pins the WhatsApp Web version (tests, diagnostics); unset, it is
    /// discovered online at each connect.
    pub version: Option<(u32, u32, u32)>,
    pub typing: bool,
    pub watchdog_every: Duration,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub data_dir: PathBuf,
    pub log_filter: String,
    pub camionback: CamionBackSettings,
    pub webhook: WebhookSettings,
    pub dispatch: DispatchSettings,
    pub order_link_base: String,
    pub template: MessageTemplate,
    pub cloud_api: CloudApiSettings,
    pub whatsapp_web: WhatsAppWebConfig,
    pub twilio: TwilioSettings,
    /// The relay's public base URL (`RELAY_PUBLIC_URL`): where Twilio posts its callbacks,
    /// and the URL their signatures are computed over.
    pub public_url: Option<Url>,
    /// A `sent` delivery with no delivery receipt after this long is shown as unconfirmed.
    pub unconfirmed_after: Duration,
    pub replies: ReplySettings,
    /// How the database is opened: not a setting staff change (no key reads it); tests and
    /// benches shorten the busy timeout or slide a failing disk under it.
    pub store: crate::store::StoreOptions,
}

impl Settings {
    /// Loads the settings from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::load(|key| std::env::var(key).ok())
    }

    /// Loads the settings with `env` standing for the environment (tests pass a map).
    pub fn load(env: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let data_dir = data_dir_from(&env)?;
        let mut raw = read_config_file(&data_dir.join(CONFIG_FILE))?;
        overlay_env(&mut raw, &env);
        let template = read_template(&data_dir.join(TEMPLATE_FILE))?;
        Self::build(data_dir, raw, template)
    }

    /// Checks every value of `raw` (file and environment merged) into settings.
    fn build(data_dir: PathBuf, raw: Raw, template: MessageTemplate) -> Result<Self, ConfigError> {
        let values = Values(raw);
        let settings = Self {
            log_filter: values.text("RELAY_LOG")?.unwrap_or_default(),
            camionback: CamionBackSettings {
                api_url: values.url("CAMIONBACK_API_URL")?,
                api_token: values.secret("CAMIONBACK_API_TOKEN"),
                poll_interval: Duration::from_secs(values.number("CAMIONBACK_POLL_SECS")?),
                order_check_interval: Duration::from_secs(
                    values.number("CAMIONBACK_ORDER_CHECK_SECS")?,
                ),
                backfill: Duration::from_secs(60 * values.number("CAMIONBACK_BACKFILL_MINUTES")?),
                carrier_sync_interval: Duration::from_secs(
                    values.number("CAMIONBACK_CARRIER_SYNC_SECS")?.max(1),
                ),
            },
            webhook: WebhookSettings {
                addr: values.parse(
                    "RELAY_WEBHOOK_ADDR",
                    "adresse IP:port attendue (ex. 127.0.0.1:8787)",
                )?,
                secret: values.secret("RELAY_WEBHOOK_SECRET"),
                limits: crate::server::ServerLimits::default(),
            },
            dispatch: DispatchSettings {
                channel: values.channel()?,
                throttle: Duration::from_millis(values.number("RELAY_THROTTLE_MS")?),
                jitter: Duration::from_millis(values.number("RELAY_JITTER_MS")?),
                send_timeout: Duration::from_secs(values.number("RELAY_SEND_TIMEOUT_SECS")?.max(1)),
            },
            order_link_base: values.url_or_default("ORDER_LINK_BASE")?.into(),
            template,
            cloud_api: CloudApiSettings {
                api_url: values.url_or_default("WHATSAPP_API_URL")?,
                api_version: values.text("WHATSAPP_API_VERSION")?.unwrap_or_default(),
                phone_number_id: values.text("WHATSAPP_PHONE_NUMBER_ID")?,
                token: values.secret("WHATSAPP_TOKEN"),
                template: values.text("WHATSAPP_TEMPLATE")?,
                template_lang: values.text("WHATSAPP_TEMPLATE_LANG")?.unwrap_or_default(),
                verify_token: values.secret("WHATSAPP_VERIFY_TOKEN"),
                app_secret: values.secret("WHATSAPP_APP_SECRET"),
                interest_button: values.optional_index("WHATSAPP_TEMPLATE_INTEREST_BUTTON")?,
            },
            whatsapp_web: WhatsAppWebConfig {
                url: values.ws_url("WHATSAPP_WEB_URL")?,
                version: values.version("WHATSAPP_WEB_VERSION")?,
                typing: values.flag("RELAY_TYPING")?,
                watchdog_every: Duration::from_secs(
                    values.number("WHATSAPP_WEB_WATCHDOG_SECS")?.max(1),
                ),
            },
            twilio: TwilioSettings {
                api_url: values.url_or_default("TWILIO_API_URL")?,
                account_sid: values.text("TWILIO_ACCOUNT_SID")?,
                auth_token: values.secret("TWILIO_AUTH_TOKEN"),
                api_key_sid: values.text("TWILIO_API_KEY_SID")?,
                api_key_secret: values.secret("TWILIO_API_KEY_SECRET"),
                from: values.text("TWILIO_FROM")?,
                messaging_service_sid: values.text("TWILIO_MESSAGING_SERVICE_SID")?,
                content_sid: values.text("TWILIO_CONTENT_SID")?,
            },
            public_url: values.url("RELAY_PUBLIC_URL")?,
            unconfirmed_after: Duration::from_secs(
                3600 * values.number("RELAY_UNCONFIRMED_HOURS")?,
            ),
            replies: ReplySettings {
                interest_words: values.words("RELAY_INTEREST_WORDS")?,
                window: Duration::from_secs(
                    3600 * values.hours_up_to_a_year("RELAY_REPLY_WINDOW_HOURS")?,
                ),
                forward: values.flag("RELAY_FORWARD_REPLIES")?,
                forward_first_retry: crate::replies::forward::FIRST_RETRY_DELAY,
            },
            store: crate::store::StoreOptions::default(),
            data_dir,
        };
        // The template with the link it will carry: no accepted order may render a message
        // WhatsApp would refuse.
        settings
            .template
            .check_fits(&settings.order_link_base)
            .map_err(|source| ConfigError::Template {
                path: settings.data_dir.join(TEMPLATE_FILE),
                source,
            })?;
        Ok(settings)
    }

    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join(DATABASE_FILE)
    }

    pub fn whatsapp_session_path(&self) -> PathBuf {
        self.data_dir.join(WHATSAPP_SESSION_FILE)
    }

    pub fn log_dir(&self) -> PathBuf {
        self.data_dir.join("logs")
    }
}

/// `RELAY_DATA_DIR`, else the OS data directory.
fn data_dir_from(env: &impl Fn(&str) -> Option<String>) -> Result<PathBuf, ConfigError> {
    match env("RELAY_DATA_DIR").filter(|v| !v.trim().is_empty()) {
        Some(dir) => Ok(PathBuf::from(dir)),
        None => Ok(dirs::data_dir()
            .ok_or(ConfigError::NoDataDir)?
            .join("camionback-relay")),
    }
}

fn overlay_env(raw: &mut Raw, env: &impl Fn(&str) -> Option<String>) {
    for key in table::file_settings().map(|s| s.key) {
        if let Some(value) = env(key) {
            raw.insert(key, (value, env_origin(key)));
        }
    }
}

fn env_origin(key: &str) -> String {
    format!("variable d'environnement {key}")
}

type Raw = BTreeMap<&'static str, (String, String)>;

/// The file's text, or `None` when there is no file yet.
fn read_config_text(path: &Path) -> Result<Option<String>, ConfigError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(ConfigError::File {
            path: path.to_path_buf(),
            source,
        }),
    }
}

fn read_config_file(path: &Path) -> Result<Raw, ConfigError> {
    let Some(text) = read_config_text(path)? else {
        return Ok(Raw::new());
    };
    // The file holds tokens: whoever wrote it, it stays readable by its owner only.
    crate::fs::restrict(path).map_err(|source| ConfigError::File {
        path: path.to_path_buf(),
        source,
    })?;
    parse_config(path, &text)
}

fn parse_config(path: &Path, text: &str) -> Result<Raw, ConfigError> {
    let document: toml::Table = text
        .parse()
        .map_err(|err: toml::de::Error| ConfigError::Toml {
            path: path.to_path_buf(),
            message: err.message().to_string(),
        })?;
    let mut raw = Raw::new();
    for (name, value) in document {
        let key = table::file_key(&name).ok_or_else(|| ConfigError::UnknownKey {
            path: path.to_path_buf(),
            key: name.clone(),
        })?;
        // Tokens and phone-number ids are often all digits: take numbers as their text.
        let value = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Float(f) => f.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            other => {
                return Err(ConfigError::Invalid {
                    key,
                    origin: path.display().to_string(),
                    reason: format!("valeur simple attendue, pas {}", other.type_str()),
                });
            }
        };
        raw.insert(key, (value, path.display().to_string()));
    }
    Ok(raw)
}

fn read_template(path: &Path) -> Result<MessageTemplate, ConfigError> {
    match std::fs::read_to_string(path) {
        Ok(text) => MessageTemplate::parse(&text).map_err(|source| ConfigError::Template {
            path: path.to_path_buf(),
            source,
        }),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(MessageTemplate::default()),
        Err(source) => Err(ConfigError::File {
            path: path.to_path_buf(),
            source,
        }),
    }
}

struct Values(Raw);

impl Values {
    /// A set, non-blank value with where it came from.
    fn get(&self, key: &'static str) -> Option<(&str, &str)> {
        self.0
            .get(key)
            .map(|(value, origin)| (value.trim(), origin.as_str()))
            .filter(|(value, _)| !value.is_empty())
    }

    /// The value given, else the table's default (checked the same way).
    fn get_or_default(&self, key: &'static str) -> Option<(&str, &str)> {
        self.get(key)
            .or_else(|| table::default_value(key).map(|value| (value, "défaut")))
    }

    fn invalid(&self, key: &'static str, origin: &str, reason: String) -> ConfigError {
        ConfigError::Invalid {
            key,
            origin: origin.to_string(),
            reason,
        }
    }

    fn text(&self, key: &'static str) -> Result<Option<String>, ConfigError> {
        Ok(self.get_or_default(key).map(|(v, _)| v.to_string()))
    }

    fn secret(&self, key: &'static str) -> Option<SecretString> {
        self.get(key)
            .map(|(v, _)| SecretString::from(v.to_string()))
    }

    /// A whole number; a setting the table gives no default is 0 when unset.
    fn number(&self, key: &'static str) -> Result<u64, ConfigError> {
        match self.get_or_default(key) {
            None => Ok(0),
            Some((value, origin)) => value.parse().map_err(|_| {
                self.invalid(
                    key,
                    origin,
                    format!("« {value} » n'est pas un nombre entier positif"),
                )
            }),
        }
    }

    /// A number of hours, a year at most (more is a typo, and would overflow as seconds).
    fn hours_up_to_a_year(&self, key: &'static str) -> Result<u64, ConfigError> {
        let hours = self.number(key)?;
        if hours > 8_760 {
            let origin = self.get_or_default(key).map_or("défaut", |(_, o)| o);
            return Err(self.invalid(key, origin, format!("« {hours} » : au plus 8760 h (un an)")));
        }
        Ok(hours)
    }

    /// A button index (0 to 9, as Meta numbers a template's buttons), or none when unset.
    fn optional_index(&self, key: &'static str) -> Result<Option<u32>, ConfigError> {
        let Some((value, origin)) = self.get_or_default(key) else {
            return Ok(None);
        };
        match value.parse::<u32>() {
            Ok(index) if index <= 9 => Ok(Some(index)),
            _ => Err(self.invalid(
                key,
                origin,
                format!("« {value} » : numéro de bouton de 0 à 9 attendu"),
            )),
        }
    }

    /// A comma-separated list of words, at least one.
    fn words(&self, key: &'static str) -> Result<String, ConfigError> {
        let Some((value, origin)) = self.get_or_default(key) else {
            return Ok(String::new());
        };
        if crate::replies::parse_words(value).is_empty() {
            return Err(self.invalid(
                key,
                origin,
                format!("« {value} » : au moins un mot attendu (séparés par des virgules)"),
            ));
        }
        Ok(value.to_string())
    }

    fn parse<T: std::str::FromStr>(
        &self,
        key: &'static str,
        expected: &str,
    ) -> Result<T, ConfigError> {
        let (value, origin) = self.get_or_default(key).unwrap_or(("", "défaut"));
        value
            .parse()
            .map_err(|_| self.invalid(key, origin, format!("« {value} » : {expected}")))
    }

    fn url(&self, key: &'static str) -> Result<Option<Url>, ConfigError> {
        self.get(key)
            .map(|(value, origin)| self.check_url(key, value, origin))
            .transpose()
    }

    fn url_or_default(&self, key: &'static str) -> Result<Url, ConfigError> {
        let (value, origin) = self.get_or_default(key).unwrap_or(("", "défaut"));
        self.check_url(key, value, origin)
    }

    fn check_url(&self, key: &'static str, value: &str, origin: &str) -> Result<Url, ConfigError> {
        let url = Url::parse(value).map_err(|err| {
            let why = match err {
                url::ParseError::RelativeUrlWithoutBase => "il manque http:// ou https://",
                url::ParseError::EmptyHost => "il manque le nom du serveur",
                url::ParseError::InvalidPort => "port invalide",
                url::ParseError::InvalidIpv4Address | url::ParseError::InvalidIpv6Address => {
                    "adresse IP invalide"
                }
                url::ParseError::InvalidDomainCharacter | url::ParseError::IdnaError => {
                    "nom de serveur invalide"
                }
                _ => "adresse mal formée",
            };
            self.invalid(
                key,
                origin,
                format!("« {value} » n'est pas une URL ({why})"),
            )
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(self.invalid(key, origin, format!("« {value} » : URL http(s) attendue")));
        }
        Ok(url)
    }

    fn ws_url(&self, key: &'static str) -> Result<String, ConfigError> {
        let (value, origin) = self.get_or_default(key).unwrap_or(("", "défaut"));
        match Url::parse(value) {
            Ok(url) if matches!(url.scheme(), "ws" | "wss") => Ok(value.to_string()),
            _ => Err(self.invalid(
                key,
                origin,
                format!("« {value} » : URL ws:// ou wss:// attendue"),
            )),
        }
    }

    fn version(&self, key: &'static str) -> Result<Option<(u32, u32, u32)>, ConfigError> {
        let Some((value, origin)) = self.get(key) else {
            return Ok(None);
        };
        let parts: Vec<u32> = value.split('.').filter_map(|p| p.parse().ok()).collect();
        match parts.as_slice() {
            [a, b, c] if value.split('.').count() == 3 => Ok(Some((*a, *b, *c))),
            _ => Err(self.invalid(key, origin, format!("« {value} » : version a.b.c attendue"))),
        }
    }

    fn flag(&self, key: &'static str) -> Result<bool, ConfigError> {
        match self
            .get_or_default(key)
            .map(|(v, o)| (v.to_ascii_lowercase(), o))
        {
            None => Ok(false),
            Some((v, _)) if matches!(v.as_str(), "1" | "true" | "oui" | "yes" | "on") => Ok(true),
            Some((v, _)) if matches!(v.as_str(), "0" | "false" | "non" | "no" | "off") => Ok(false),
            Some((v, origin)) => {
                Err(self.invalid(key, origin, format!("« {v} » : 1 ou 0 attendu")))
            }
        }
    }

    fn channel(&self) -> Result<ChannelKind, ConfigError> {
        let Some((value, origin)) = self.get_or_default("RELAY_CHANNEL") else {
            return Ok(ChannelKind::WhatsappWeb);
        };
        match value.to_ascii_lowercase().as_str() {
            "cloud-api" | "cloud_api" | "cloudapi" => Ok(ChannelKind::CloudApi),
            "whatsapp-web" | "whatsapp_web" => Ok(ChannelKind::WhatsappWeb),
            "twilio" => Ok(ChannelKind::Twilio),
            _ => Err(self.invalid(
                "RELAY_CHANNEL",
                origin,
                format!("« {value} » : cloud-api, whatsapp-web ou twilio attendu"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;
    use std::collections::HashMap;

    fn load(dir: &Path, vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let mut env: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        env.insert("RELAY_DATA_DIR".into(), dir.display().to_string());
        Settings::load(|key| env.get(key).cloned())
    }

    #[test]
    fn defaults_apply_when_nothing_is_set() {
        let dir = tempfile::tempdir().expect("tempdir");
        let settings = load(dir.path(), &[]).expect("defaults are valid");
        assert_eq!(settings.webhook.addr.to_string(), "127.0.0.1:8787");
        assert_eq!(settings.dispatch.throttle, Duration::from_millis(1000));
        assert_eq!(settings.camionback.poll_interval, Duration::from_secs(30));
        assert_eq!(
            settings.camionback.order_check_interval,
            Duration::from_secs(30)
        );
        assert_eq!(settings.order_link_base, "https://camionback.com/commande/");
        assert_eq!(settings.cloud_api.api_version, "v25.0");
        assert_eq!(settings.dispatch.channel, ChannelKind::WhatsappWeb);
        assert_eq!(settings.whatsapp_web.url, "wss://web.whatsapp.com/ws/chat");
        assert!(settings.webhook.secret.is_none());
    }

    #[test]
    fn the_environment_overrides_the_file_and_numeric_secrets_stay_text() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join(CONFIG_FILE),
            "relay_throttle_ms = 250\nWHATSAPP_PHONE_NUMBER_ID = 106540352242922\nwhatsapp_token = \"abc\"\n",
        )
        .expect("write config");
        let settings = load(dir.path(), &[("WHATSAPP_TOKEN", "12345")]).expect("valid");
        assert_eq!(settings.dispatch.throttle, Duration::from_millis(250));
        assert_eq!(
            settings.cloud_api.phone_number_id.as_deref(),
            Some("106540352242922")
        );
        let token = settings.cloud_api.token.expect("token set");
        assert_eq!(token.expose_secret(), "12345");
        assert!(!format!("{token:?}").contains("12345"), "Debug must redact");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(CONFIG_FILE))
                .expect("config exists")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "config file holds secrets");
        }
    }

    #[test]
    fn a_bad_value_names_the_setting_and_its_origin() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = load(dir.path(), &[("RELAY_THROTTLE_MS", "vite")]).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("RELAY_THROTTLE_MS"), "{text}");
        assert!(text.contains("vite"), "{text}");

        let err = load(dir.path(), &[("CAMIONBACK_API_URL", "ftp://x")]).unwrap_err();
        assert!(err.to_string().contains("CAMIONBACK_API_URL"), "{err}");

        std::fs::write(dir.path().join(CONFIG_FILE), "relay_throtle_ms = 5\n").expect("write");
        let err = load(dir.path(), &[]).unwrap_err();
        assert!(err.to_string().contains("relay_throtle_ms"), "{err}");

        std::fs::write(dir.path().join(CONFIG_FILE), "this is = not toml =").expect("write");
        assert!(matches!(
            load(dir.path(), &[]),
            Err(ConfigError::Toml { .. })
        ));
    }

    #[test]
    fn reply_settings_are_checked_and_named_when_wrong() {
        let dir = tempfile::tempdir().expect("tempdir");
        let settings = load(
            dir.path(),
            &[
                ("RELAY_INTEREST_WORDS", "partant, OK"),
                ("RELAY_REPLY_WINDOW_HOURS", "48"),
                ("RELAY_FORWARD_REPLIES", "0"),
                ("WHATSAPP_TEMPLATE_INTEREST_BUTTON", "2"),
            ],
        )
        .expect("valid");
        assert_eq!(settings.replies.interest_words, "partant, OK");
        assert_eq!(settings.replies.window, Duration::from_secs(48 * 3600));
        assert!(!settings.replies.forward);
        assert_eq!(settings.cloud_api.interest_button, Some(2));
        let defaults = load(dir.path(), &[]).expect("defaults");
        assert!(defaults.replies.forward);
        assert_eq!(defaults.cloud_api.interest_button, None);
        for (key, value, said) in [
            ("RELAY_INTEREST_WORDS", " , ,", "au moins un mot"),
            ("RELAY_REPLY_WINDOW_HOURS", "un jour", "nombre entier"),
            ("RELAY_REPLY_WINDOW_HOURS", "100000", "un an"),
            ("RELAY_FORWARD_REPLIES", "peut-être", "1 ou 0"),
            ("WHATSAPP_TEMPLATE_INTEREST_BUTTON", "10", "de 0 à 9"),
            ("WHATSAPP_TEMPLATE_INTEREST_BUTTON", "premier", "de 0 à 9"),
        ] {
            let err = load(dir.path(), &[(key, value)]).unwrap_err().to_string();
            assert!(
                err.contains(key) && err.contains(said),
                "{key}={value}: {err}"
            );
        }
    }

    #[test]
    fn a_template_file_with_an_unknown_placeholder_stops_start_up() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(TEMPLATE_FILE), "Trajet {{depart}}").expect("write");
        let err = load(dir.path(), &[]).unwrap_err();
        assert!(err.to_string().contains("{{depart}}"), "{err}");
    }

    #[test]
    fn a_template_that_could_exceed_whatsapp_s_limit_stops_start_up() {
        let dir = tempfile::tempdir().expect("tempdir");
        // 30 goods descriptions of 200 characters: far more than one message can hold.
        std::fs::write(
            dir.path().join(TEMPLATE_FILE),
            "{{type_colis}}\n".repeat(30),
        )
        .expect("write");
        let err = load(dir.path(), &[]).unwrap_err();
        assert!(
            matches!(
                &err,
                ConfigError::Template {
                    source: TemplateError::TooLong { .. },
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("template.txt"), "{err}");
        std::fs::remove_file(dir.path().join(TEMPLATE_FILE)).expect("remove");
        let long_link = format!("https://camionback.com/{}/", "x".repeat(4_000));
        assert!(
            matches!(
                load(dir.path(), &[("ORDER_LINK_BASE", &long_link)]),
                Err(ConfigError::Template { .. })
            ),
            "the default template with a 4,000-character link base"
        );
    }
}
