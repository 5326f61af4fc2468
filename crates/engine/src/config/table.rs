//! The one list of settings: for each, its name, kind, default, bounds, whether it is a secret,
//! which channel it belongs to, and the French label and hint the Paramètres form shows. The
//! loader (`config.rs`), the editor (`config::edit`), the desktop's form and the README check
//! (`tests/it/settings_table.rs`) all read it, so a new setting is one entry here plus the code
//! that uses its value.

use std::ops::RangeInclusive;

use secrecy::SecretString;

use super::{ChannelKind, Settings};

/// One setting.
#[derive(Debug, Clone)]
pub struct SettingSpec {
    /// The environment variable; `config.toml` takes the same name in any case.
    pub key: &'static str,
    pub kind: SettingKind,
    pub default: SettingDefault,
    /// Values staff may choose from the app, beyond what the loader accepts.
    pub bounds: Option<Bounds>,
    /// The channel the setting only matters for (`None`: every channel).
    pub channel: Option<ChannelKind>,
    /// Where it can be given: most settings also in `config.toml`.
    pub scope: Scope,
    /// The group of the Paramètres form that shows it (`None`: not on the form).
    pub group: Option<Group>,
    pub label: &'static str,
    pub hint: Option<&'static str>,
    /// The effective value as the form shows it: text, or only whether a secret is set.
    pub shown: fn(&Settings) -> Shown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettingKind {
    Text,
    /// A whole number; `unit` as the form writes it after the input.
    Number {
        unit: Option<&'static str>,
    },
    /// Never leaves the engine: an interface can set or clear it, never read it.
    Secret,
    Choice(&'static [&'static str]),
    /// `1` or `0` (also `true`/`false`, `oui`/`non`...).
    Flag,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettingDefault {
    /// The text the loader reads when the setting is not given, checked as a given one is.
    Value(&'static str),
    /// Unset until given.
    Unset,
    /// Worked out at start (the README says how); unset as far as the loader goes.
    Computed(&'static str),
}

impl SettingDefault {
    /// The start of the README's "default" cell for this setting.
    pub fn readme_text(self) -> String {
        match self {
            Self::Value(value) => format!("`{value}`"),
            Self::Unset => "none".into(),
            Self::Computed(text) => text.into(),
        }
    }
}

/// The range staff may choose from the app, and the words of the refusal.
#[derive(Debug, Clone)]
pub struct Bounds {
    pub range: RangeInclusive<u64>,
    /// What the value is, as the refusal names it ("le délai entre deux envois").
    pub what: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// `config.toml` or the environment.
    FileOrEnv,
    /// The environment only: read before the data directory is known (`RELAY_DATA_DIR`), or
    /// by something other than the engine (WebKitGTK).
    EnvOnly,
}

/// The groups of the Paramètres form, in the order it shows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    Sending,
    CamionBack,
    Webhook,
    CloudApi,
    WhatsAppWeb,
    Twilio,
}

impl Group {
    pub const ALL: [Group; 6] = [
        Group::Sending,
        Group::CamionBack,
        Group::Webhook,
        Group::CloudApi,
        Group::WhatsAppWeb,
        Group::Twilio,
    ];

    pub fn id(self) -> &'static str {
        match self {
            Self::Sending => "sending",
            Self::CamionBack => "camionback",
            Self::Webhook => "webhook",
            Self::CloudApi => "cloud-api",
            Self::WhatsAppWeb => "whatsapp-web",
            Self::Twilio => "twilio",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Self::Sending => "Envoi",
            Self::CamionBack => "API CamionBack",
            Self::Webhook => "Webhook des commandes",
            Self::CloudApi => "WhatsApp — API Cloud",
            Self::WhatsAppWeb => "WhatsApp Web",
            Self::Twilio => "Twilio",
        }
    }

    /// Shown only while this channel is chosen (`None`: always).
    pub fn channel(self) -> Option<ChannelKind> {
        match self {
            Self::CloudApi => Some(ChannelKind::CloudApi),
            Self::WhatsAppWeb => Some(ChannelKind::WhatsappWeb),
            Self::Twilio => Some(ChannelKind::Twilio),
            Self::Sending | Self::CamionBack | Self::Webhook => None,
        }
    }

    /// The settings of this group, in table order.
    pub fn settings(self) -> impl Iterator<Item = &'static SettingSpec> {
        SETTINGS.iter().filter(move |s| s.group == Some(self))
    }
}

/// A setting's effective value as an interface may show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shown {
    Text(Option<String>),
    /// Whether a secret is set; never its value.
    Secret {
        set: bool,
    },
}

/// The table, in the form's order (then the settings the form does not show).
pub const SETTINGS: &[SettingSpec] = &[
    // Envoi
    SettingSpec {
        key: "RELAY_CHANNEL",
        kind: SettingKind::Choice(&["whatsapp-web", "cloud-api", "twilio"]),
        default: SettingDefault::Value("whatsapp-web"),
        bounds: None,
        channel: None,
        scope: Scope::FileOrEnv,
        group: Some(Group::Sending),
        label: "Canal",
        hint: None,
        shown: |s| text(s.dispatch.channel.as_str()),
    },
    SettingSpec {
        key: "RELAY_THROTTLE_MS",
        kind: SettingKind::Number { unit: Some("ms") },
        default: SettingDefault::Value("1000"),
        // Below 100 ms WhatsApp's ban heuristics see a robot; above an hour a broadcast takes
        // days.
        bounds: Some(Bounds {
            range: 100..=3_600_000,
            what: "le délai entre deux envois",
        }),
        channel: None,
        scope: Scope::FileOrEnv,
        group: Some(Group::Sending),
        label: "Délai entre deux envois",
        hint: Some("entre 100 ms et 1 h"),
        shown: |s| text(s.dispatch.throttle.as_millis()),
    },
    SettingSpec {
        key: "RELAY_JITTER_MS",
        kind: SettingKind::Number { unit: Some("ms") },
        default: SettingDefault::Value("0"),
        bounds: Some(Bounds {
            range: 0..=3_600_000,
            what: "la variation aléatoire",
        }),
        channel: None,
        scope: Scope::FileOrEnv,
        group: Some(Group::Sending),
        label: "Variation aléatoire ajoutée",
        hint: Some("jusqu'à 1 h ; rend le rythme moins régulier"),
        shown: |s| text(s.dispatch.jitter.as_millis()),
    },
    SettingSpec {
        key: "RELAY_SEND_TIMEOUT_SECS",
        kind: SettingKind::Number { unit: Some("s") },
        default: SettingDefault::Value("30"),
        // A claimed send is never cut short (not even by "Quitter"): its timeout bounds how
        // long a restart or a stop may wait for it.
        bounds: Some(Bounds {
            range: 1..=300,
            what: "le délai d'attente d'un envoi",
        }),
        channel: None,
        scope: Scope::FileOrEnv,
        group: Some(Group::Sending),
        label: "Délai maximal d'un envoi",
        hint: None,
        shown: |s| text(s.dispatch.send_timeout.as_secs()),
    },
    SettingSpec {
        key: "ORDER_LINK_BASE",
        kind: SettingKind::Text,
        default: SettingDefault::Value("https://camionback.com/commande/"),
        bounds: None,
        channel: None,
        scope: Scope::FileOrEnv,
        group: Some(Group::Sending),
        label: "Lien des commandes",
        hint: None,
        shown: |s| text(&s.order_link_base),
    },
    // API CamionBack
    SettingSpec {
        key: "CAMIONBACK_API_URL",
        kind: SettingKind::Text,
        default: SettingDefault::Unset,
        bounds: None,
        channel: None,
        scope: Scope::FileOrEnv,
        group: Some(Group::CamionBack),
        label: "Adresse de l'API",
        hint: Some("ex. https://camionback.com"),
        shown: |s| Shown::Text(s.camionback.api_url.as_ref().map(shown_url)),
    },
    SettingSpec {
        key: "CAMIONBACK_API_TOKEN",
        kind: SettingKind::Secret,
        default: SettingDefault::Unset,
        bounds: None,
        channel: None,
        scope: Scope::FileOrEnv,
        group: Some(Group::CamionBack),
        label: "Jeton de l'API",
        hint: None,
        shown: |s| secret(&s.camionback.api_token),
    },
    SettingSpec {
        key: "CAMIONBACK_POLL_SECS",
        kind: SettingKind::Number { unit: Some("s") },
        default: SettingDefault::Value("30"),
        bounds: None,
        channel: None,
        scope: Scope::FileOrEnv,
        group: Some(Group::CamionBack),
        label: "Interrogation des commandes",
        hint: Some("0 désactive l'interrogation"),
        shown: |s| text(s.camionback.poll_interval.as_secs()),
    },
    SettingSpec {
        key: "CAMIONBACK_ORDER_CHECK_SECS",
        kind: SettingKind::Number { unit: Some("s") },
        default: SettingDefault::Value("30"),
        bounds: None,
        channel: None,
        scope: Scope::FileOrEnv,
        group: Some(Group::CamionBack),
        label: "Vérification des commandes en cours",
        hint: Some(
            "tant qu'une commande a des envois en file, le relais demande à l'API si elle est encore ouverte ; 0 désactive",
        ),
        shown: |s| text(s.camionback.order_check_interval.as_secs()),
    },
    SettingSpec {
        key: "CAMIONBACK_CARRIER_SYNC_SECS",
        kind: SettingKind::Number { unit: Some("s") },
        default: SettingDefault::Value("300"),
        bounds: None,
        channel: None,
        scope: Scope::FileOrEnv,
        group: Some(Group::CamionBack),
        label: "Synchronisation des transporteurs",
        hint: None,
        shown: |s| text(s.camionback.carrier_sync_interval.as_secs()),
    },
    SettingSpec {
        key: "CAMIONBACK_BACKFILL_MINUTES",
        kind: SettingKind::Number { unit: Some("min") },
        default: SettingDefault::Value("10"),
        bounds: None,
        channel: None,
        scope: Scope::FileOrEnv,
        group: None,
        label: "Rattrapage au tout premier démarrage",
        hint: None,
        shown: |s| text(s.camionback.backfill.as_secs() / 60),
    },
    // Webhook des commandes
    SettingSpec {
        key: "RELAY_WEBHOOK_ADDR",
        kind: SettingKind::Text,
        default: SettingDefault::Value("127.0.0.1:8787"),
        bounds: None,
        channel: None,
        scope: Scope::FileOrEnv,
        group: Some(Group::Webhook),
        label: "Adresse d'écoute",
        hint: Some("IP:port, ex. 127.0.0.1:8787"),
        shown: |s| text(s.webhook.addr),
    },
    SettingSpec {
        key: "RELAY_WEBHOOK_SECRET",
        kind: SettingKind::Secret,
        default: SettingDefault::Unset,
        bounds: None,
        channel: None,
        scope: Scope::FileOrEnv,
        group: Some(Group::Webhook),
        label: "Secret de signature",
        hint: None,
        shown: |s| secret(&s.webhook.secret),
    },
    // WhatsApp — API Cloud
    SettingSpec {
        key: "WHATSAPP_PHONE_NUMBER_ID",
        kind: SettingKind::Text,
        default: SettingDefault::Unset,
        bounds: None,
        channel: Some(ChannelKind::CloudApi),
        scope: Scope::FileOrEnv,
        group: Some(Group::CloudApi),
        label: "Identifiant du numéro",
        hint: None,
        shown: |s| Shown::Text(s.cloud_api.phone_number_id.clone()),
    },
    SettingSpec {
        key: "WHATSAPP_TOKEN",
        kind: SettingKind::Secret,
        default: SettingDefault::Unset,
        bounds: None,
        channel: Some(ChannelKind::CloudApi),
        scope: Scope::FileOrEnv,
        group: Some(Group::CloudApi),
        label: "Jeton d'accès",
        hint: None,
        shown: |s| secret(&s.cloud_api.token),
    },
    SettingSpec {
        key: "WHATSAPP_API_URL",
        kind: SettingKind::Text,
        default: SettingDefault::Value("https://graph.facebook.com"),
        bounds: None,
        channel: Some(ChannelKind::CloudApi),
        scope: Scope::FileOrEnv,
        group: Some(Group::CloudApi),
        label: "API Cloud",
        hint: None,
        shown: |s| text(shown_url(&s.cloud_api.api_url)),
    },
    SettingSpec {
        key: "WHATSAPP_API_VERSION",
        kind: SettingKind::Text,
        default: SettingDefault::Value("v25.0"),
        bounds: None,
        channel: Some(ChannelKind::CloudApi),
        scope: Scope::FileOrEnv,
        group: Some(Group::CloudApi),
        label: "Version de l'API Cloud",
        hint: None,
        shown: |s| text(&s.cloud_api.api_version),
    },
    SettingSpec {
        key: "WHATSAPP_TEMPLATE",
        kind: SettingKind::Text,
        default: SettingDefault::Unset,
        bounds: None,
        channel: Some(ChannelKind::CloudApi),
        scope: Scope::FileOrEnv,
        group: Some(Group::CloudApi),
        label: "Modèle approuvé",
        hint: Some("vide : le message ci-dessous est envoyé en texte"),
        shown: |s| Shown::Text(s.cloud_api.template.clone()),
    },
    SettingSpec {
        key: "WHATSAPP_TEMPLATE_LANG",
        kind: SettingKind::Text,
        default: SettingDefault::Value("fr"),
        bounds: None,
        channel: Some(ChannelKind::CloudApi),
        scope: Scope::FileOrEnv,
        group: Some(Group::CloudApi),
        label: "Langue du modèle approuvé",
        hint: None,
        shown: |s| text(&s.cloud_api.template_lang),
    },
    SettingSpec {
        key: "WHATSAPP_VERIFY_TOKEN",
        kind: SettingKind::Secret,
        default: SettingDefault::Unset,
        bounds: None,
        channel: Some(ChannelKind::CloudApi),
        scope: Scope::FileOrEnv,
        group: Some(Group::CloudApi),
        label: "Jeton de vérification du webhook",
        hint: None,
        shown: |s| secret(&s.cloud_api.verify_token),
    },
    SettingSpec {
        key: "WHATSAPP_APP_SECRET",
        kind: SettingKind::Secret,
        default: SettingDefault::Unset,
        bounds: None,
        channel: Some(ChannelKind::CloudApi),
        scope: Scope::FileOrEnv,
        group: Some(Group::CloudApi),
        label: "Secret de l'application Meta",
        hint: None,
        shown: |s| secret(&s.cloud_api.app_secret),
    },
    // Twilio
    SettingSpec {
        key: "TWILIO_ACCOUNT_SID",
        kind: SettingKind::Text,
        default: SettingDefault::Unset,
        bounds: None,
        channel: Some(ChannelKind::Twilio),
        scope: Scope::FileOrEnv,
        group: Some(Group::Twilio),
        label: "Account SID",
        hint: Some("AC…, dans la console Twilio"),
        shown: |s| Shown::Text(s.twilio.account_sid.clone()),
    },
    SettingSpec {
        key: "TWILIO_AUTH_TOKEN",
        kind: SettingKind::Secret,
        default: SettingDefault::Unset,
        bounds: None,
        channel: Some(ChannelKind::Twilio),
        scope: Scope::FileOrEnv,
        group: Some(Group::Twilio),
        label: "Jeton d'authentification (Auth Token)",
        hint: Some("signe les rappels de Twilio ; authentifie les envois sans clé API"),
        shown: |s| secret(&s.twilio.auth_token),
    },
    SettingSpec {
        key: "TWILIO_API_KEY_SID",
        kind: SettingKind::Text,
        default: SettingDefault::Unset,
        bounds: None,
        channel: Some(ChannelKind::Twilio),
        scope: Scope::FileOrEnv,
        group: Some(Group::Twilio),
        label: "Clé API (SID)",
        hint: Some("SK… ; facultatif, avec son secret, à la place du jeton pour les envois"),
        shown: |s| Shown::Text(s.twilio.api_key_sid.clone()),
    },
    SettingSpec {
        key: "TWILIO_API_KEY_SECRET",
        kind: SettingKind::Secret,
        default: SettingDefault::Unset,
        bounds: None,
        channel: Some(ChannelKind::Twilio),
        scope: Scope::FileOrEnv,
        group: Some(Group::Twilio),
        label: "Secret de la clé API",
        hint: None,
        shown: |s| secret(&s.twilio.api_key_secret),
    },
    SettingSpec {
        key: "TWILIO_FROM",
        kind: SettingKind::Text,
        default: SettingDefault::Unset,
        bounds: None,
        channel: Some(ChannelKind::Twilio),
        scope: Scope::FileOrEnv,
        group: Some(Group::Twilio),
        label: "Numéro d'envoi",
        hint: Some("whatsapp:+212… (un +212… seul est complété)"),
        shown: |s| Shown::Text(s.twilio.from.clone()),
    },
    SettingSpec {
        key: "TWILIO_MESSAGING_SERVICE_SID",
        kind: SettingKind::Text,
        default: SettingDefault::Unset,
        bounds: None,
        channel: Some(ChannelKind::Twilio),
        scope: Scope::FileOrEnv,
        group: Some(Group::Twilio),
        label: "Service de messagerie (SID)",
        hint: Some("MG… ; à la place du numéro d'envoi"),
        shown: |s| Shown::Text(s.twilio.messaging_service_sid.clone()),
    },
    SettingSpec {
        key: "TWILIO_CONTENT_SID",
        kind: SettingKind::Text,
        default: SettingDefault::Unset,
        bounds: None,
        channel: Some(ChannelKind::Twilio),
        scope: Scope::FileOrEnv,
        group: Some(Group::Twilio),
        label: "Modèle de contenu approuvé (Content SID)",
        hint: Some(
            "HX… ; vide : le message ci-dessous est envoyé en texte (fenêtre de 24 h seulement)",
        ),
        shown: |s| Shown::Text(s.twilio.content_sid.clone()),
    },
    SettingSpec {
        key: "TWILIO_API_URL",
        kind: SettingKind::Text,
        default: SettingDefault::Value("https://api.twilio.com"),
        bounds: None,
        channel: Some(ChannelKind::Twilio),
        scope: Scope::FileOrEnv,
        group: Some(Group::Twilio),
        label: "API Twilio",
        hint: None,
        shown: |s| text(shown_url(&s.twilio.api_url)),
    },
    SettingSpec {
        key: "RELAY_PUBLIC_URL",
        kind: SettingKind::Text,
        default: SettingDefault::Unset,
        bounds: None,
        channel: Some(ChannelKind::Twilio),
        scope: Scope::FileOrEnv,
        group: Some(Group::Twilio),
        label: "Adresse publique du relais",
        hint: Some(
            "ex. https://relay.camionback.com : Twilio y envoie les statuts et les réponses",
        ),
        shown: |s| Shown::Text(s.public_url.as_ref().map(shown_url)),
    },
    // WhatsApp Web
    SettingSpec {
        key: "RELAY_TYPING",
        kind: SettingKind::Flag,
        default: SettingDefault::Value("0"),
        bounds: None,
        channel: Some(ChannelKind::WhatsappWeb),
        scope: Scope::FileOrEnv,
        group: Some(Group::WhatsAppWeb),
        label: "Afficher « en train d'écrire » avant chaque message",
        hint: Some("plus naturel, un peu plus lent"),
        shown: |s| text(if s.whatsapp_web.typing { "1" } else { "0" }),
    },
    SettingSpec {
        key: "WHATSAPP_WEB_URL",
        kind: SettingKind::Text,
        default: SettingDefault::Value("wss://web.whatsapp.com/ws/chat"),
        bounds: None,
        channel: Some(ChannelKind::WhatsappWeb),
        scope: Scope::FileOrEnv,
        group: Some(Group::WhatsAppWeb),
        label: "Serveur WhatsApp Web",
        hint: None,
        shown: |s| text(&s.whatsapp_web.url),
    },
    SettingSpec {
        key: "WHATSAPP_WEB_VERSION",
        kind: SettingKind::Text,
        default: SettingDefault::Computed("discovered online"),
        bounds: None,
        channel: Some(ChannelKind::WhatsappWeb),
        scope: Scope::FileOrEnv,
        group: None,
        label: "Version de WhatsApp Web",
        hint: Some("a.b.c ; vide : découverte en ligne"),
        shown: |s| {
            Shown::Text(
                s.whatsapp_web
                    .version
                    .map(|(a, b, c)| format!("{a}.{b}.{c}")),
            )
        },
    },
    SettingSpec {
        key: "WHATSAPP_WEB_WATCHDOG_SECS",
        kind: SettingKind::Number { unit: Some("s") },
        default: SettingDefault::Value("30"),
        bounds: None,
        channel: Some(ChannelKind::WhatsappWeb),
        scope: Scope::FileOrEnv,
        group: None,
        label: "Vérification de la connexion WhatsApp Web",
        hint: None,
        shown: |s| text(s.whatsapp_web.watchdog_every.as_secs()),
    },
    // Not on the form.
    SettingSpec {
        key: "RELAY_INTEREST_WORDS",
        kind: SettingKind::Text,
        default: SettingDefault::Value(
            "1,oui,ok,interesse,intéressé,dispo,disponible,wakha,نعم,مهتم",
        ),
        bounds: None,
        channel: None,
        scope: Scope::FileOrEnv,
        group: None,
        label: "Mots qui disent « intéressé »",
        hint: Some("séparés par des virgules ; comparés sans majuscules ni accents"),
        shown: |s| text(&s.replies.interest_words),
    },
    SettingSpec {
        key: "RELAY_REPLY_WINDOW_HOURS",
        kind: SettingKind::Number { unit: Some("h") },
        default: SettingDefault::Value("24"),
        bounds: None,
        channel: None,
        scope: Scope::FileOrEnv,
        group: None,
        label: "Une réponse vaut pour la dernière commande envoyée depuis",
        hint: None,
        shown: |s| text(s.replies.window.as_secs() / 3600),
    },
    SettingSpec {
        key: "RELAY_FORWARD_REPLIES",
        kind: SettingKind::Flag,
        default: SettingDefault::Value("1"),
        bounds: None,
        channel: None,
        scope: Scope::FileOrEnv,
        group: None,
        label: "Transmettre les réponses à CamionBack",
        hint: None,
        shown: |s| text(if s.replies.forward { "1" } else { "0" }),
    },
    SettingSpec {
        key: "WHATSAPP_TEMPLATE_INTEREST_BUTTON",
        kind: SettingKind::Number { unit: None },
        default: SettingDefault::Unset,
        bounds: Some(Bounds {
            range: 0..=9,
            what: "le numéro du bouton « intéressé »",
        }),
        channel: Some(ChannelKind::CloudApi),
        scope: Scope::FileOrEnv,
        group: None,
        label: "Bouton « intéressé » du modèle approuvé",
        hint: Some("numéro (à partir de 0) du bouton de réponse rapide ; vide : aucun"),
        shown: |s| Shown::Text(s.cloud_api.interest_button.map(|i| i.to_string())),
    },
    SettingSpec {
        key: "RELAY_UNCONFIRMED_HOURS",
        kind: SettingKind::Number { unit: Some("h") },
        default: SettingDefault::Value("24"),
        bounds: None,
        channel: None,
        scope: Scope::FileOrEnv,
        group: None,
        label: "Envoi non confirmé après",
        hint: None,
        shown: |s| text(s.unconfirmed_after.as_secs() / 3600),
    },
    SettingSpec {
        key: "RELAY_LOG",
        kind: SettingKind::Text,
        default: SettingDefault::Value("info"),
        bounds: None,
        channel: None,
        scope: Scope::FileOrEnv,
        group: None,
        label: "Niveau des journaux",
        hint: Some("debug, info, warn ou un filtre tracing"),
        shown: |s| text(&s.log_filter),
    },
    SettingSpec {
        key: "RELAY_DATA_DIR",
        kind: SettingKind::Text,
        default: SettingDefault::Computed("`~/.local/share/camionback-relay`"),
        bounds: None,
        channel: None,
        scope: Scope::EnvOnly,
        group: None,
        label: "Dossier des données",
        hint: None,
        shown: |s| text(s.data_dir.display()),
    },
    SettingSpec {
        key: "WEBKIT_DISABLE_COMPOSITING_MODE",
        kind: SettingKind::Flag,
        // Set by the desktop app at start when the user has not set it.
        default: SettingDefault::Value("1"),
        bounds: None,
        channel: None,
        scope: Scope::EnvOnly,
        group: None,
        label: "Fenêtre sans composition (WebKitGTK)",
        hint: None,
        shown: |_| Shown::Text(None),
    },
];

/// The setting named `name` (environment spelling, or the file's in any case).
pub fn spec(name: &str) -> Option<&'static SettingSpec> {
    SETTINGS.iter().find(|s| s.key.eq_ignore_ascii_case(name))
}

/// The settings `config.toml` may hold (every one but those read from the environment only).
pub fn file_settings() -> impl Iterator<Item = &'static SettingSpec> {
    SETTINGS.iter().filter(|s| s.scope == Scope::FileOrEnv)
}

/// The `config.toml` setting named `name`, in any case.
pub fn file_key(name: &str) -> Option<&'static str> {
    file_settings()
        .find(|s| s.key.eq_ignore_ascii_case(name))
        .map(|s| s.key)
}

/// The names `config.toml` accepts, for an error that lists them.
pub fn file_keys_list() -> String {
    file_settings()
        .map(|s| s.key)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Settings whose value never leaves the engine.
pub fn secret_keys() -> impl Iterator<Item = &'static str> {
    SETTINGS
        .iter()
        .filter(|s| s.kind == SettingKind::Secret)
        .map(|s| s.key)
}

/// The default text the loader reads for `key` when it is not given.
pub(crate) fn default_value(key: &str) -> Option<&'static str> {
    match spec(key)?.default {
        SettingDefault::Value(value) => Some(value),
        SettingDefault::Unset | SettingDefault::Computed(_) => None,
    }
}

fn text(value: impl std::fmt::Display) -> Shown {
    Shown::Text(Some(value.to_string()))
}

fn secret(value: &Option<SecretString>) -> Shown {
    Shown::Secret {
        set: value.is_some(),
    }
}

/// A URL as shown: without any user name or password it may carry.
fn shown_url(url: &url::Url) -> String {
    let mut url = url.clone();
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(dir: &std::path::Path, given: Option<(&str, &str)>) -> Settings {
        let path = dir.display().to_string();
        Settings::load(|key| match given {
            _ if key == "RELAY_DATA_DIR" => Some(path.clone()),
            Some((name, value)) if name == key => Some(value.to_string()),
            _ => None,
        })
        .expect("the table's defaults are valid")
    }

    #[test]
    fn with_nothing_set_the_relay_runs_on_the_table_s_defaults() {
        let dir = tempfile::tempdir().expect("tempdir");
        let defaults = load(dir.path(), None);
        for spec in SETTINGS.iter().filter(|s| s.scope == Scope::FileOrEnv) {
            let shown = (spec.shown)(&defaults);
            match spec.default {
                // Unset: the same as giving that default by hand.
                SettingDefault::Value(value) => assert_eq!(
                    shown,
                    (spec.shown)(&load(dir.path(), Some((spec.key, value)))),
                    "{}",
                    spec.key
                ),
                SettingDefault::Unset | SettingDefault::Computed(_) => assert!(
                    matches!(shown, Shown::Text(None) | Shown::Secret { set: false }),
                    "{}: {shown:?}",
                    spec.key
                ),
            }
        }
    }

    #[test]
    fn each_setting_is_listed_once_with_what_its_kind_needs() {
        for (i, spec) in SETTINGS.iter().enumerate() {
            assert!(
                SETTINGS[i + 1..].iter().all(|other| other.key != spec.key),
                "{} twice",
                spec.key
            );
            assert_eq!(spec.key, spec.key.to_ascii_uppercase(), "{}", spec.key);
            if spec.kind == SettingKind::Secret {
                assert_eq!(spec.default, SettingDefault::Unset, "{}", spec.key);
                assert_eq!(spec.scope, Scope::FileOrEnv, "{}", spec.key);
            }
            if let Some(bounds) = &spec.bounds {
                assert!(
                    matches!(spec.kind, SettingKind::Number { .. }),
                    "{}: bounds on a number only",
                    spec.key
                );
                if let SettingDefault::Value(value) = spec.default {
                    let value: u64 = value.parse().expect("a number's default is a number");
                    assert!(bounds.range.contains(&value), "{}", spec.key);
                }
            }
            if let (Some(group), Some(channel)) = (spec.group, spec.channel) {
                assert_eq!(
                    group.channel(),
                    Some(channel),
                    "{}: shown with its channel",
                    spec.key
                );
            }
            assert!(!spec.label.is_empty(), "{}", spec.key);
        }
    }
}
