//! The WhatsApp screen: the connection's state, a new QR code, a pairing code, "Déconnecter".

use crate::commands::Shared;
use crate::error::UiError;
use crate::relay::Relay;
use crate::views::WhatsAppView;

#[tauri::command]
pub async fn whatsapp_state(relay: Shared<'_>) -> Result<WhatsAppView, UiError> {
    let channel = relay.settings()?.dispatch.channel;
    match relay.handles().await {
        Ok(handles) => Ok(match handles.whatsapp {
            Some(whatsapp) => WhatsAppView::of(&whatsapp.state().borrow()),
            None => WhatsAppView::not_used(channel),
        }),
        // Before the engine runs there is no connection to describe yet.
        Err(err) if err.code == "starting" => Ok(WhatsAppView::starting(channel)),
        Err(err) => Err(err),
    }
}

async fn whatsapp(
    relay: &Relay,
) -> Result<relay_engine::channel::whatsapp_web::WhatsAppWeb, UiError> {
    relay.handles().await?.whatsapp.ok_or_else(|| {
        UiError::new(
            "not_whatsapp_web",
            "le relais n'envoie pas par WhatsApp Web (canal cloud-api ou twilio) : aucune connexion à relier ici",
        )
    })
}

/// "Déconnecter": WhatsApp removes this device from the account; a new QR code follows.
#[tauri::command]
pub async fn whatsapp_unlink(relay: Shared<'_>) -> Result<(), UiError> {
    whatsapp(&relay)
        .await?
        .unlink()
        .await
        .map_err(|err| UiError::new("unlink", err.to_string()))
}

#[tauri::command]
pub async fn whatsapp_new_qr(relay: Shared<'_>) -> Result<(), UiError> {
    whatsapp(&relay)
        .await?
        .command(relay_engine::channel::whatsapp_web::Command::NewQr);
    Ok(())
}

/// The account number as staff type it (`+212 664 37 35 34`, `212664373534`, `0664373534`).
pub fn pairing_phone(raw: &str) -> Result<relay_domain::PhoneNumber, UiError> {
    relay_domain::PhoneNumber::parse(raw).map_err(|err| {
        UiError::invalid(format!(
            "{err} : numéro du compte attendu avec l'indicatif du pays (ex. 212664373534)"
        ))
    })
}

/// Asks WhatsApp for a pairing code; a refusal (no linking connection, too many requests)
/// comes back to the window instead of only reaching the log.
#[tauri::command]
pub async fn whatsapp_pair_with_phone(relay: Shared<'_>, phone: String) -> Result<(), UiError> {
    let phone = pairing_phone(&phone)?;
    whatsapp(&relay)
        .await?
        .pair_with_phone(&phone)
        .await
        .map_err(|err| UiError::new("pair_code", err.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairing_numbers_keep_digits_and_refuse_the_rest() {
        assert_eq!(
            pairing_phone("+212 664-373-534").expect("valid").digits(),
            "212664373534"
        );
        assert_eq!(pairing_phone("abc").unwrap_err().code, "invalid");
        assert_eq!(pairing_phone("0612").unwrap_err().code, "invalid");
    }
}
