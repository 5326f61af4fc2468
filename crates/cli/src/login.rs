//! `camionback-relay login`: links CamionBack's WhatsApp account once, by QR code in the
//! terminal or by pairing code, then exits. The session is kept; `serve` reuses it.

use std::io::{IsTerminal, Write};

use anyhow::{Context, Result, bail};
use chrono::Utc;
use qrcode::QrCode;
use qrcode::render::unicode::Dense1x2;
use relay_domain::PhoneNumber;
use relay_engine::Settings;
use relay_engine::channel::whatsapp_web::{Command, ConnectionState, WhatsAppWeb};
use relay_engine::ops::WhatsAppLink;

pub async fn login(settings: Settings, phone: Option<String>) -> Result<()> {
    // Checked before anything is created or any connection opened.
    let phone = phone.as_deref().map(account_number).transpose()?;
    // The session file is the running relay's: the link holds the data directory's lock.
    let link = WhatsAppLink::open(&settings).await?;
    let outcome = follow(link.whatsapp(), phone).await;
    link.close().await;
    outcome
}

/// The account's number, whichever way it is typed.
fn account_number(raw: &str) -> Result<PhoneNumber> {
    match PhoneNumber::parse(raw) {
        Ok(number) => Ok(number),
        Err(err) => bail!(
            "--phone : {err}. Donnez le numéro du compte WhatsApp de CamionBack avec l'indicatif du pays, par exemple 212664373534 ou +212 664 37 35 34"
        ),
    }
}

async fn follow(whatsapp: &WhatsAppWeb, phone: Option<PhoneNumber>) -> Result<()> {
    let mut states = whatsapp.state();
    let mut asked_pair_code = false;
    loop {
        let state = states.borrow_and_update().clone();
        match &state {
            ConnectionState::Connected { phone } | ConnectionState::Restricted { phone, .. } => {
                if state.is_restricted() {
                    println!("⚠ {}", state.describe());
                }
                println!(
                    "✅ WhatsApp relié (+{phone}). La session est enregistrée : lancez « camionback-relay serve »."
                );
                return Ok(());
            }
            ConnectionState::Unlinked | ConnectionState::Qr { .. }
                if phone.is_some() && !asked_pair_code =>
            {
                asked_pair_code = true;
                if let Some(phone) = &phone {
                    println!("Demande d'un code d'appairage pour {phone}…");
                    whatsapp.pair_with_phone(phone).await?;
                }
            }
            ConnectionState::Qr { code, expires_at } if phone.is_none() => {
                draw_qr(code, *expires_at)?
            }
            ConnectionState::PairCode { code } => {
                println!("\n{}\n\n    {code}\n", state.describe());
            }
            // The linking socket closes when its round of QR codes ends, and a pairing code
            // asked on it ends with it.
            ConnectionState::QrExpired => {
                let (expired, again) = if phone.is_some() {
                    (
                        "le code d'appairage a expiré sans être saisi",
                        "un nouveau code",
                    )
                } else {
                    (
                        "les QR codes ont expiré sans être scannés",
                        "de nouveaux QR codes",
                    )
                };
                println!("{expired}.");
                if !std::io::stdin().is_terminal() {
                    bail!("{expired} : relancez « camionback-relay login »");
                }
                print!("Appuyez sur Entrée pour obtenir {again} (Ctrl+C pour abandonner)… ");
                std::io::stdout().flush()?;
                let mut line = String::new();
                tokio::task::spawn_blocking(move || std::io::stdin().read_line(&mut line))
                    .await??;
                asked_pair_code = false;
                whatsapp.command(Command::NewQr);
            }
            ConnectionState::LoggedOut
            | ConnectionState::Replaced
            | ConnectionState::Locked { .. }
            | ConnectionState::Banned { .. } => {
                bail!("{}", state.describe());
            }
            other => println!("{}", other.describe()),
        }
        tokio::select! {
            changed = states.changed() => changed.context("la connexion WhatsApp s'est arrêtée")?,
            _ = tokio::signal::ctrl_c() => bail!("liaison abandonnée"),
        }
    }
}

/// While `serve` runs unlinked: the QR code in the terminal when there is one, else a hint in
/// the log. `login` cannot run beside `serve` (they would share the session file).
pub async fn explain_while_serving(mut states: tokio::sync::watch::Receiver<ConnectionState>) {
    let interactive = std::io::stdout().is_terminal();
    loop {
        let state = states.borrow_and_update().clone();
        match &state {
            ConnectionState::Qr { code, expires_at } if interactive => {
                let _ = draw_qr(code, *expires_at);
            }
            ConnectionState::Unlinked | ConnectionState::QrExpired | ConnectionState::LoggedOut => {
                tracing::warn!(
                    "WhatsApp non relié : arrêtez serve, lancez « camionback-relay login », puis relancez serve"
                );
            }
            _ => {}
        }
        if states.changed().await.is_err() {
            return;
        }
    }
}

fn draw_qr(code: &str, expires_at: chrono::DateTime<Utc>) -> Result<()> {
    let qr = QrCode::new(code.as_bytes()).context("QR code impossible à dessiner")?;
    let image = qr
        .render::<Dense1x2>()
        .dark_color(Dense1x2::Light)
        .light_color(Dense1x2::Dark)
        .quiet_zone(true)
        .build();
    let left = (expires_at - Utc::now()).num_seconds().max(0);
    // Clear the screen so each rotation replaces the previous code.
    print!("\x1b[2J\x1b[H");
    println!("{image}");
    println!(
        "Scannez ce QR code : WhatsApp > Appareils connectés > Connecter un appareil ({left} s restantes)"
    );
    std::io::stdout().flush()?;
    Ok(())
}
