//! `relay-wa-sim`: the loopback WhatsApp Web simulator as a process, for tests that are not
//! written in Rust (the desktop end-to-end test drives it from Python). It starts the
//! simulator on 127.0.0.1, prints `url ws://127.0.0.1:PORT/ws/chat`, then obeys one command per
//! line on stdin and answers each with exactly one line on stdout: `ok …`, a JSON value, or
//! `error: …`. End of input stops it. With `--broken-cert-chain` its certificate chain certifies
//! another key than the server's (`CertChain::LeafKeyMismatch`): every client refuses it.
//!
//! ```text
//! status                  {"connected":…,"logged_in":…,"linked_phone":…,"connections":…}
//! scan PHONE              the phone PHONE scans the QR shown (error if no unlinked client)
//! rotate                  a fresh pair-device IQ: the client shows a new QR at once
//! register PHONE…         these numbers are on WhatsApp (replaces the previous set)
//! qr_refs N               refs in the next pair-device IQ
//! drop | silent | remove_device | replace
//! ban CODE SECS           temporary ban
//! received                every text the carriers' phones decrypted, as a JSON array
//! wait_received N SECS    waits for N texts, then as `received` (error on timeout)
//! wait_login SECS         waits for a logged-in client
//! tokens on|off           first messages to cold contacts need a privacy token (on at start)
//! warm PHONE | cold PHONE the contact wrote to the account (no token needed) / never did
//! lid_migrated on|off     the account's 1:1 chats are on LIDs (read at the client's next login)
//! nack PHONE CODE|off     refuse messages to PHONE with `<ack error=CODE>` / accept them again
//! nacked                  every refused message, as a JSON array of {"id":…,"code":…}
//! timelock off | timelock until SECS   the reach-out time lock: inactive / active until then
//! quit
//! ```

use std::time::Duration;

use anyhow::Context;
use relay_wa_sim::{CertChain, ReachoutTimelock, ReceivedText, WaSim};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // `--broken-cert-chain`: a chain every client refuses, even one that skips the signatures.
    let chain = if std::env::args().any(|a| a == "--broken-cert-chain") {
        CertChain::LeafKeyMismatch
    } else {
        CertChain::TestRootSigned
    };
    let sim = WaSim::start_with_cert_chain(chain).await;
    let mut out = tokio::io::stdout();
    say(&mut out, &format!("url {}", sim.url())).await?;
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await.context("lecture de stdin")? {
        let words: Vec<&str> = line.split_whitespace().collect();
        let Some((&command, rest)) = words.split_first() else {
            continue;
        };
        if command == "quit" {
            say(&mut out, "ok").await?;
            break;
        }
        let answer = obey(&sim, command, rest).await;
        say(&mut out, &answer).await?;
    }
    Ok(())
}

async fn say(out: &mut tokio::io::Stdout, line: &str) -> anyhow::Result<()> {
    out.write_all(format!("{line}\n").as_bytes())
        .await
        .context("écriture sur stdout")?;
    out.flush().await.context("écriture sur stdout")
}

async fn obey(sim: &WaSim, command: &str, args: &[&str]) -> String {
    match (command, args) {
        ("status", []) => format!(
            r#"{{"connected":{},"logged_in":{},"linked_phone":{},"connections":{},"companion_unlinks":{}}}"#,
            sim.is_connected(),
            sim.is_logged_in(),
            sim.linked_phone()
                .map_or_else(|| "null".to_string(), |p| json_string(&p)),
            sim.connections(),
            sim.companion_unlinks().len()
        ),
        ("scan", [phone]) => {
            if sim.try_scan_qr(phone).await {
                "ok".into()
            } else {
                "error: aucun client non relié n'est connecté".into()
            }
        }
        // The QR code's ADV secret (base64), as the e2e test reads it from the session file:
        // whatsapp-rust 0.7 checks the phone's HMAC made with it.
        ("scan", [phone, secret]) => {
            use base64::Engine as _;
            let secret = base64::engine::general_purpose::STANDARD
                .decode(secret)
                .ok()
                .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok());
            match secret {
                Some(secret) if sim.scan_qr_with_secret(phone, &secret).await => "ok".into(),
                Some(_) => "error: aucun client non relié n'est connecté".into(),
                None => "error: secret ADV illisible (base64 de 32 octets attendu)".into(),
            }
        }
        ("rotate", []) => {
            if sim.rotate_qr().await {
                "ok".into()
            } else {
                "error: aucun client non relié n'est connecté".into()
            }
        }
        ("register", phones) => {
            sim.set_registered(phones);
            format!("ok {}", phones.len())
        }
        ("qr_refs", [n]) => match n.parse() {
            Ok(n) => {
                sim.set_qr_refs(n);
                "ok".into()
            }
            Err(_) => format!("error: nombre attendu, pas « {n} »"),
        },
        ("drop", []) => {
            sim.drop_connection().await;
            "ok".into()
        }
        ("silent", []) => {
            sim.go_silent().await;
            "ok".into()
        }
        ("remove_device", []) => {
            sim.remove_device().await;
            "ok".into()
        }
        ("replace", []) => {
            sim.replace_session().await;
            "ok".into()
        }
        ("ban", [code, secs]) => match (code.parse(), secs.parse()) {
            (Ok(code), Ok(secs)) => {
                sim.ban(code, secs).await;
                "ok".into()
            }
            _ => "error: ban CODE SECS, deux nombres".into(),
        },
        ("received", []) => received_json(&sim.received()),
        ("wait_received", [count, secs]) => match (count.parse(), secs.parse()) {
            (Ok(count), Ok(secs)) => {
                match sim
                    .wait_for_received(count, Duration::from_secs_f64(secs))
                    .await
                {
                    Some(texts) => received_json(&texts),
                    None => format!(
                        "error: {} message(s) reçus sur {count} attendus",
                        sim.received().len()
                    ),
                }
            }
            _ => "error: wait_received N SECS, deux nombres".into(),
        },
        ("wait_login", [secs]) => match secs.parse() {
            Ok(secs) => {
                if sim.wait_for_login(Duration::from_secs_f64(secs)).await {
                    "ok".into()
                } else {
                    "error: aucun client connecté et identifié".into()
                }
            }
            Err(_) => "error: wait_login SECS, un nombre".into(),
        },
        ("tokens", [switch]) => match on_off(switch) {
            Some(on) => {
                sim.require_privacy_tokens(on);
                "ok".into()
            }
            None => "error: tokens on|off".into(),
        },
        ("warm", [phone]) => {
            sim.set_contact_warm(phone);
            "ok".into()
        }
        ("cold", [phone]) => {
            sim.set_contact_cold(phone);
            "ok".into()
        }
        ("lid_migrated", [switch]) => match on_off(switch) {
            Some(on) => {
                sim.set_lid_migrated(on);
                "ok".into()
            }
            None => "error: lid_migrated on|off".into(),
        },
        ("nack", [phone, code]) => match (*code, code.parse()) {
            ("off", _) => {
                sim.nack_messages_to(phone, None);
                "ok".into()
            }
            (_, Ok(code)) => {
                sim.nack_messages_to(phone, Some(code));
                "ok".into()
            }
            _ => "error: nack PHONE CODE|off".into(),
        },
        ("nacked", []) => {
            let items: Vec<String> = sim
                .nacked()
                .iter()
                .map(|(id, code)| format!(r#"{{"id":{},"code":{code}}}"#, json_string(id)))
                .collect();
            format!("[{}]", items.join(","))
        }
        ("timelock", ["off"]) => {
            sim.set_reachout_timelock(ReachoutTimelock::default());
            "ok".into()
        }
        ("timelock", ["until", secs]) => match secs.parse() {
            Ok(ends) => {
                sim.set_reachout_timelock(ReachoutTimelock {
                    is_active: true,
                    ends_at: Some(ends),
                    enforcement_type: Some("REACHOUT_TIMELOCK".into()),
                });
                "ok".into()
            }
            Err(_) => "error: timelock until SECS (secondes Unix)".into(),
        },
        _ => format!("error: commande inconnue ou arguments incorrects : {command} {args:?}"),
    }
}

fn on_off(word: &str) -> Option<bool> {
    match word {
        "on" => Some(true),
        "off" => Some(false),
        _ => None,
    }
}

fn received_json(texts: &[ReceivedText]) -> String {
    let items: Vec<String> = texts
        .iter()
        .map(|t| {
            format!(
                r#"{{"to":{},"text":{},"message_id":{}}}"#,
                json_string(&t.to),
                json_string(&t.text),
                json_string(&t.message_id)
            )
        })
        .collect();
    format!("[{}]", items.join(","))
}

/// A JSON string literal: the texts are French and carry newlines, quotes and emojis.
fn json_string(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::json_string;

    #[test]
    fn a_message_with_quotes_and_newlines_stays_one_json_line() {
        let text = "Nouvelle commande \"CMD-1\"\nCasablanca → Marrakech\t🚚\u{1}";
        let encoded = json_string(text);
        assert!(!encoded.contains('\n'));
        assert_eq!(
            encoded,
            "\"Nouvelle commande \\\"CMD-1\\\"\\nCasablanca → Marrakech\\t🚚\\u0001\""
        );
    }
}
