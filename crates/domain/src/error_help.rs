//! What a provider's error code means for the person reading the history, in French, and what
//! they can do about it. One table for every channel: the history grid, the CSV export and
//! `history --json` all read it, so a code is explained once and the same way everywhere.
//!
//! A code only means something with the provider that gave it (WhatsApp Web's 400 is not an
//! HTTP 400 of the Cloud API), so the table is keyed by channel and code. A code the table does
//! not know keeps the provider's own text.
//!
//! Sources: Meta's "WhatsApp Cloud API error codes" reference, Twilio's error dictionary
//! (twilio.com/docs/api/errors/<code>), and for WhatsApp Web the nack codes of the message
//! acknowledgement as the WhatsApp Web clients (wa-rs, whatsmeow, Baileys) see them.

use crate::ChannelKind;
use crate::ChannelKind::{CloudApi, Twilio, WhatsappWeb};

/// Why a message did not go, and what to do about it: each one short sentence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorHelp {
    pub explanation: &'static str,
    pub action: &'static str,
}

impl ErrorHelp {
    /// Both sentences on one line: the history's "Erreur" column and the CSV's.
    pub fn text(&self) -> String {
        format!("{} {}", self.explanation, self.action)
    }
}

/// One row of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownError {
    pub channel: ChannelKind,
    /// As the relay stores it (`deliveries.error_code`): the provider's number in decimal.
    pub code: &'static str,
    pub help: ErrorHelp,
}

/// The help for `code` from `channel`, when the table knows it.
pub fn error_help(channel: ChannelKind, code: &str) -> Option<&'static ErrorHelp> {
    let code = code.trim();
    KNOWN_ERRORS
        .iter()
        .find(|known| known.channel == channel && known.code == code)
        .map(|known| &known.help)
}

const fn known(
    channel: ChannelKind,
    code: &'static str,
    explanation: &'static str,
    action: &'static str,
) -> KnownError {
    KnownError {
        channel,
        code,
        help: ErrorHelp {
            explanation,
            action,
        },
    }
}

/// Every code the relay explains.
pub const KNOWN_ERRORS: &[KnownError] = &[
    // Meta's WhatsApp Cloud API.
    known(
        CloudApi,
        "131026",
        "WhatsApp n'a pas pu remettre le message : ce numéro n'a pas WhatsApp, ou le transporteur n'a pas accepté les dernières conditions de WhatsApp, ou son application est trop ancienne.",
        "Vérifiez le numéro avec le transporteur et demandez-lui de mettre WhatsApp à jour, puis relancez la commande.",
    ),
    known(
        CloudApi,
        "131047",
        "Le transporteur n'a pas écrit au numéro CamionBack depuis plus de 24 heures : WhatsApp n'accepte alors qu'un modèle approuvé par Meta.",
        "Choisissez un modèle approuvé (WHATSAPP_TEMPLATE) dans Paramètres, puis relancez la commande.",
    ),
    known(
        CloudApi,
        "131048",
        "WhatsApp limite les envois du numéro CamionBack : trop de destinataires ont bloqué ou signalé ses messages.",
        "Le relais réessaie plus tard ; n'écrivez qu'aux transporteurs qui attendent les commandes et surveillez la qualité du numéro dans le WhatsApp Manager.",
    ),
    known(
        CloudApi,
        "131049",
        "Meta a choisi de ne pas remettre ce message : ce transporteur a déjà reçu beaucoup de messages marketing d'entreprises.",
        "Ne relancez pas tout de suite ; réessayez dans quelques jours ou utilisez un modèle de catégorie « utility ».",
    ),
    known(
        CloudApi,
        "131050",
        "Le transporteur a demandé à ne plus recevoir les messages marketing de CamionBack.",
        "Ne lui renvoyez pas ce modèle : utilisez un modèle de catégorie « utility » ou contactez-le autrement.",
    ),
    known(
        CloudApi,
        "131051",
        "WhatsApp ne prend pas en charge ce type de message.",
        "Vérifiez le modèle de message dans Paramètres ; si l'erreur continue, signalez-la à l'équipe technique.",
    ),
    known(
        CloudApi,
        "131056",
        "Trop de messages envoyés au même transporteur en peu de temps.",
        "Rien à faire : le relais réessaie automatiquement un peu plus tard.",
    ),
    known(
        CloudApi,
        "130429",
        "Le débit maximal de l'API WhatsApp Cloud est atteint pour le numéro CamionBack.",
        "Rien à faire : le relais ralentit et réessaie automatiquement.",
    ),
    known(
        CloudApi,
        "130472",
        "Ce transporteur fait partie d'une expérience de Meta qui bloque les messages marketing.",
        "Relancer ne servira à rien : demandez-lui par un autre moyen d'écrire au numéro CamionBack, ou utilisez un modèle de catégorie « utility ».",
    ),
    known(
        CloudApi,
        "132000",
        "Le nombre de valeurs envoyées ne correspond pas aux paramètres du modèle approuvé.",
        "Choisissez dans Paramètres un modèle dont le corps a exactement les six paramètres que le relais remplit.",
    ),
    known(
        CloudApi,
        "132001",
        "Meta ne connaît pas ce modèle dans cette langue.",
        "Vérifiez le nom (WHATSAPP_TEMPLATE) et la langue (WHATSAPP_TEMPLATE_LANG) du modèle dans Paramètres.",
    ),
    known(
        CloudApi,
        "132015",
        "Meta a mis ce modèle en pause : sa qualité est jugée faible (trop de blocages ou de signalements).",
        "Modifiez le modèle dans le WhatsApp Manager ou choisissez-en un autre, puis relancez la commande.",
    ),
    known(
        CloudApi,
        "132016",
        "Meta a désactivé ce modèle : sa qualité est restée faible.",
        "Créez un nouveau modèle, faites-le approuver, choisissez-le dans Paramètres, puis relancez la commande.",
    ),
    known(
        CloudApi,
        "190",
        "Le jeton d'accès à l'API WhatsApp Cloud est expiré ou invalide.",
        "Créez un jeton permanent (utilisateur système) dans Meta Business et saisissez-le dans Paramètres (WHATSAPP_TOKEN).",
    ),
    known(
        CloudApi,
        "100",
        "L'API WhatsApp Cloud refuse un paramètre de l'envoi (numéro mal formé, identifiant ou champ invalide).",
        "Vérifiez le numéro du transporteur et WHATSAPP_PHONE_NUMBER_ID ; si tout est juste, signalez l'erreur à l'équipe technique.",
    ),
    // Twilio's WhatsApp API.
    known(
        Twilio,
        "20003",
        "Twilio refuse les identifiants du compte.",
        "Vérifiez TWILIO_ACCOUNT_SID et le jeton (ou la clé API) dans Paramètres ; les envois reprennent ensuite d'eux-mêmes.",
    ),
    known(
        Twilio,
        "20429",
        "Trop de requêtes envoyées à Twilio en même temps.",
        "Rien à faire : le relais ralentit et réessaie automatiquement.",
    ),
    known(
        Twilio,
        "21211",
        "Twilio juge le numéro du transporteur invalide.",
        "Corrigez le numéro du transporteur dans CamionBack ; il sera pris en compte à la prochaine synchronisation.",
    ),
    known(
        Twilio,
        "21408",
        "Le compte Twilio n'a pas l'autorisation d'envoyer vers le pays de ce numéro.",
        "Autorisez ce pays dans la console Twilio (Messaging > Settings > Geo permissions), puis relancez la commande.",
    ),
    known(
        Twilio,
        "21610",
        "Le transporteur s'est désinscrit (STOP) : Twilio ne lui transmet plus de messages.",
        "Plus rien ne lui est envoyé ; pour recevoir à nouveau les commandes, il doit écrire START au numéro CamionBack.",
    ),
    known(
        Twilio,
        "21614",
        "Ce numéro n'est pas un numéro mobile.",
        "Demandez au transporteur un numéro mobile avec WhatsApp et corrigez-le dans CamionBack.",
    ),
    known(
        Twilio,
        "63003",
        "WhatsApp ne trouve pas ce destinataire : le numéro n'a pas WhatsApp ou n'est pas joignable.",
        "Vérifiez le numéro avec le transporteur, puis relancez la commande.",
    ),
    known(
        Twilio,
        "63014",
        "Le transporteur a bloqué le numéro CamionBack dans WhatsApp.",
        "N'insistez pas : contactez-le par un autre moyen s'il doit recevoir les commandes.",
    ),
    known(
        Twilio,
        "63016",
        "Le transporteur n'a pas écrit au numéro CamionBack depuis plus de 24 heures : WhatsApp n'accepte alors qu'un modèle approuvé.",
        "Définissez TWILIO_CONTENT_SID (un modèle approuvé) dans Paramètres, puis relancez la commande.",
    ),
    known(
        Twilio,
        "63017",
        "Le débit maximal du compte Twilio est dépassé.",
        "Rien à faire : le relais réessaie automatiquement.",
    ),
    known(
        Twilio,
        "63018",
        "La limite d'envoi de WhatsApp est atteinte pour le numéro CamionBack (débit ou nombre de conversations par jour).",
        "Le relais réessaie automatiquement ; si cela dure, vérifiez la limite de messagerie du numéro dans le WhatsApp Manager.",
    ),
    known(
        Twilio,
        "63024",
        "Destinataire WhatsApp invalide : ce numéro n'a pas WhatsApp, ou le transporteur n'a pas accepté les conditions de WhatsApp, ou son application est trop ancienne.",
        "Vérifiez le numéro avec le transporteur et demandez-lui de mettre WhatsApp à jour, puis relancez la commande.",
    ),
    known(
        Twilio,
        "63032",
        "Ce transporteur fait partie d'une expérience de Meta qui bloque les messages marketing.",
        "Le relais réessaie ; si l'échec reste, demandez-lui par un autre moyen d'écrire au numéro CamionBack.",
    ),
    known(
        Twilio,
        "63038",
        "Le compte Twilio a atteint sa limite de messages sur 24 heures.",
        "Le relais réessaie plus tard ; demandez au support Twilio de relever la limite si elle gêne.",
    ),
    // WhatsApp Web: the error of the server's acknowledgement of a message.
    known(
        WhatsappWeb,
        "463",
        "WhatsApp a refusé ce premier message à ce contact : le compte est limité dans ses prises de contact avec des inconnus (jeton de confidentialité manquant).",
        "Demandez au transporteur d'écrire d'abord au numéro CamionBack, puis relancez la commande ; si cela touche beaucoup de transporteurs, passez à l'API WhatsApp Cloud.",
    ),
    known(
        WhatsappWeb,
        "479",
        "WhatsApp a refusé le message : les clés de chiffrement ou la liste des appareils du contact n'étaient plus à jour.",
        "Relancez la commande plus tard ; si l'erreur se répète, reliez à nouveau le téléphone (Connexion WhatsApp).",
    ),
    known(
        WhatsappWeb,
        "400",
        "WhatsApp a refusé le message comme mal adressé.",
        "Vérifiez le numéro du transporteur ; si tous les envois échouent ainsi, reliez à nouveau le téléphone (Connexion WhatsApp).",
    ),
];

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    const META: [&str; 15] = [
        "131026", "131047", "131048", "131049", "131050", "131051", "131056", "130429", "130472",
        "132000", "132001", "132015", "132016", "190", "100",
    ];
    const TWILIO: [&str; 14] = [
        "20003", "20429", "21211", "21408", "21610", "21614", "63003", "63014", "63016", "63017",
        "63018", "63024", "63032", "63038",
    ];
    const WHATSAPP_WEB: [&str; 3] = ["463", "479", "400"];

    #[test]
    fn every_code_the_relay_knows_is_explained_for_its_channel() {
        for (channel, codes) in [
            (CloudApi, &META[..]),
            (Twilio, &TWILIO[..]),
            (WhatsappWeb, &WHATSAPP_WEB[..]),
        ] {
            for code in codes {
                assert!(
                    error_help(channel, code).is_some(),
                    "{channel} {code} has no help"
                );
            }
        }
    }

    #[test]
    fn a_code_means_something_only_with_its_channel() {
        // WhatsApp Web's 400 is a nack; a Cloud API "400" is a bare HTTP status.
        assert!(error_help(WhatsappWeb, "400").is_some());
        assert_eq!(error_help(CloudApi, "400"), None);
        assert_eq!(error_help(Twilio, "131026"), None);
        assert_eq!(error_help(WhatsappWeb, "131026"), None);
        assert_eq!(error_help(CloudApi, "999999"), None, "unknown code");
        assert_eq!(
            error_help(CloudApi, " 131026 "),
            error_help(CloudApi, "131026"),
            "a stored code with spaces around"
        );
    }

    #[test]
    fn each_channel_and_code_has_one_entry() {
        let mut seen = HashSet::new();
        for known in KNOWN_ERRORS {
            assert!(
                seen.insert((known.channel, known.code)),
                "{} {} twice",
                known.channel,
                known.code
            );
            assert!(
                known.code.chars().all(|c| c.is_ascii_digit()),
                "{}",
                known.code
            );
        }
    }

    #[test]
    fn the_cloud_api_and_twilio_codes_do_not_overlap() {
        // Rows stored before deliveries remembered their channel are read with either table
        // (only those two channels stored codes then): that is only sound while they are apart.
        for known in KNOWN_ERRORS.iter().filter(|k| k.channel == CloudApi) {
            assert_eq!(error_help(Twilio, known.code), None, "{}", known.code);
        }
    }

    #[test]
    fn the_texts_are_short_french_sentences() {
        for known in KNOWN_ERRORS {
            for sentence in [known.help.explanation, known.help.action] {
                assert!(
                    sentence.ends_with('.'),
                    "{} {}: « {sentence} »",
                    known.channel,
                    known.code
                );
                assert!(
                    sentence.chars().count() <= 200,
                    "{} {} too long: « {sentence} »",
                    known.channel,
                    known.code
                );
                for english in ["undeliverable", "rate limit", "template", "message was"] {
                    assert!(
                        !sentence.contains(english),
                        "{} {}: « {sentence} »",
                        known.channel,
                        known.code
                    );
                }
            }
        }
        assert_eq!(
            error_help(Twilio, "63016").map(ErrorHelp::text).as_deref(),
            Some(
                "Le transporteur n'a pas écrit au numéro CamionBack depuis plus de 24 heures : WhatsApp n'accepte alors qu'un modèle approuvé. Définissez TWILIO_CONTENT_SID (un modèle approuvé) dans Paramètres, puis relancez la commande."
            )
        );
    }
}
