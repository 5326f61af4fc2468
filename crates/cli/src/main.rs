//! `camionback-relay`: the relay without a window, for servers and for staff who prefer a
//! terminal. Every command goes through the same engine as the desktop app.

mod login;
mod output;

use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use relay_engine::export::{CsvStyle, write_history_csv};
use relay_engine::ops::{HistoryQuery, OpsError, OrderKey};
use relay_engine::store::{RelaunchMode, ReplyFilter};
use relay_engine::{Engine, EngineError, Ops, Settings, clock::now_ms};
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(
    name = "camionback-relay",
    version,
    about = "Diffuse chaque nouvelle commande CamionBack aux transporteurs validés par WhatsApp"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Lance le relais : webhooks, interrogation de l'API, envois (Ctrl+C pour arrêter).
    Serve,
    /// Affiche l'historique des envois, du plus récent au plus ancien.
    History {
        /// Id ou référence de la commande (ex. 123 ou CMD-2025-123).
        #[arg(long)]
        order: Option<String>,
        /// Statut : queued, sending, sent, delivered, read, failed, invalid_number,
        /// not_on_whatsapp, skipped, interrupted, uncertain.
        #[arg(long)]
        status: Option<String>,
        /// Nombre de lignes au plus.
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Sortie JSON.
        #[arg(long, conflicts_with = "csv")]
        json: bool,
        /// Toutes les lignes du filtre en CSV pour Excel (UTF-8 avec BOM, « ; »), comme
        /// « Exporter CSV » de l'application ; --limit est alors ignoré.
        #[arg(long)]
        csv: bool,
    },
    /// Renvoie une commande aux transporteurs validés qui ne l'ont pas reçue (ou à tous).
    /// Ceux dont l'envoi est en doute (interrompu ou incertain : ils l'ont peut-être reçue)
    /// sont laissés de côté, sauf avec --include-doubtful.
    Relaunch {
        /// Id ou référence de la commande.
        order: String,
        /// Inclure aussi les transporteurs en doute (envoi interrompu ou incertain), au risque
        /// d'un second exemplaire.
        #[arg(long, conflicts_with = "all")]
        include_doubtful: bool,
        /// Renvoyer à tous les transporteurs validés, même ceux qui l'ont déjà reçue.
        #[arg(long)]
        all: bool,
        /// Relancer même une commande que CamionBack dit pourvue (ou fermée).
        #[arg(long)]
        force: bool,
    },
    /// Relie le compte WhatsApp de CamionBack (QR code dans le terminal, ou code d'appairage).
    Login {
        /// Numéro du compte (ex. 212664373534) : lier par code d'appairage au lieu du QR code.
        #[arg(long)]
        phone: Option<String>,
    },
    /// Affiche les dernières commandes et leurs compteurs d'envois (envoyés, remis, lus,
    /// échoués...).
    Orders {
        #[arg(long, default_value_t = 20)]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
    /// Affiche les messages reçus des transporteurs (WhatsApp Web, API Cloud, Twilio), la
    /// commande dont chacun parle, l'intérêt et la transmission à CamionBack.
    Replies {
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Seulement les réponses à cette commande (identifiant ou référence).
        #[arg(long)]
        order: Option<String>,
        /// Seulement les réponses « intéressé ».
        #[arg(long)]
        interested: bool,
        #[arg(long)]
        json: bool,
    },
    /// Transporteurs : synchronisation et liste.
    Carriers {
        #[command(subcommand)]
        command: CarriersCommand,
    },
    /// Met les envois en pause (l'envoi en cours se termine), y compris pour le relais déjà
    /// lancé ; la pause survit aux redémarrages.
    Pause,
    /// Reprend les envois mis en pause.
    Resume,
}

#[derive(Subcommand)]
enum CarriersCommand {
    /// Synchronise la liste depuis l'API CamionBack.
    Sync,
    /// Affiche la liste synchronisée.
    List {
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("erreur : démarrage impossible : {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("erreur : {}", output::error_text(&err));
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<()> {
    // First thing: from here on a SIGTERM during start-up stops `serve` cleanly instead of
    // killing it wherever it is.
    let stop = match cli.command {
        Command::Serve => Some(stop_on_signal()?),
        _ => None,
    };
    let settings = Settings::from_env().context("configuration invalide")?;
    match cli.command {
        Command::Serve => serve(settings, stop.unwrap_or_default()).await,
        Command::History {
            order,
            status,
            limit,
            json,
            csv,
        } => {
            let _logs = relay_engine::telemetry::init("warn", None);
            let format = match (json, csv) {
                (true, _) => HistoryFormat::Json,
                (_, true) => HistoryFormat::Csv,
                _ => HistoryFormat::Text,
            };
            history(settings, order, status, limit, format).await
        }
        Command::Relaunch {
            order,
            include_doubtful,
            all,
            force,
        } => {
            let _logs = relay_engine::telemetry::init("warn", None);
            let mode = match (all, include_doubtful) {
                (true, _) => RelaunchMode::All,
                (false, true) => RelaunchMode::MissingAndDoubtful,
                (false, false) => RelaunchMode::Missing,
            };
            relaunch(settings, &order, mode, force).await
        }
        Command::Login { phone } => {
            let _logs = relay_engine::telemetry::init("warn", None);
            login::login(settings, phone).await
        }
        Command::Orders { limit, json } => {
            let _logs = relay_engine::telemetry::init("warn", None);
            let rows = Ops::open(&settings)
                .await?
                .store()
                .order_counters(limit)
                .await?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&output::orders_json(&rows))?
                );
            } else {
                output::print_orders(&rows);
            }
            Ok(())
        }
        Command::Replies {
            limit,
            order,
            interested,
            json,
        } => {
            let _logs = relay_engine::telemetry::init("warn", None);
            let ops = Ops::open(&settings).await?;
            let order_id = match order {
                Some(key) => Some(ops.find_order(&key).await?.order.id.0),
                None => None,
            };
            let filter = ReplyFilter {
                order_id,
                interested_only: interested,
            };
            let rows = ops.store().replies_matching(filter, limit).await?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&output::replies_json(&rows))?
                );
            } else {
                output::print_replies(&rows);
            }
            Ok(())
        }
        Command::Carriers { command } => {
            let _logs = relay_engine::telemetry::init("warn", None);
            carriers(settings, command).await
        }
        Command::Pause => {
            let _logs = relay_engine::telemetry::init("warn", None);
            if Ops::open(&settings).await?.pause_sending().await? {
                println!(
                    "Envois en pause : l'envoi en cours se termine, rien d'autre ne part avant `camionback-relay resume`."
                );
            } else {
                println!("Les envois étaient déjà en pause.");
            }
            Ok(())
        }
        Command::Resume => {
            let _logs = relay_engine::telemetry::init("warn", None);
            if Ops::open(&settings).await?.resume_sending().await? {
                println!("Envois repris : le relais en cours d'exécution reprend dans la seconde.");
            } else {
                println!("Les envois n'étaient pas en pause.");
            }
            Ok(())
        }
    }
}

async fn serve(settings: Settings, stop: CancellationToken) -> Result<()> {
    let _logs = relay_engine::telemetry::init(&settings.log_filter, Some(&settings.log_dir()))
        .context("journal impossible à ouvrir")?;
    let engine = match Engine::start_unless_stopped(settings, stop.clone()).await {
        Ok(engine) => engine,
        // Stopped while starting: the engine closed what it had opened (and said so).
        Err(EngineError::Stopped) => return Ok(()),
        Err(err) => return Err(err.into()),
    };
    if let Some(whatsapp) = engine.whatsapp() {
        tokio::spawn(login::explain_while_serving(whatsapp.state()));
    }
    stop.cancelled().await;
    tracing::info!("arrêt demandé : fin de l'envoi en cours…");
    engine.shutdown().await;
    Ok(())
}

/// A token cancelled at the first SIGTERM or SIGINT (Ctrl+C). The handlers are installed
/// before it returns, so the signals' default action (killing the process) no longer applies.
#[cfg(unix)]
fn stop_on_signal() -> Result<CancellationToken> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate()).context("signal SIGTERM")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("signal SIGINT")?;
    let stop = CancellationToken::new();
    let cancel = stop.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
        cancel.cancel();
    });
    Ok(stop)
}

#[cfg(not(unix))]
fn stop_on_signal() -> Result<CancellationToken> {
    let stop = CancellationToken::new();
    let cancel = stop.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            cancel.cancel();
        }
    });
    Ok(stop)
}

enum HistoryFormat {
    Text,
    Json,
    Csv,
}

async fn history(
    settings: Settings,
    order: Option<String>,
    status: Option<String>,
    limit: u32,
    format: HistoryFormat,
) -> Result<()> {
    // A bad status or limit is refused before the database is opened (or created).
    let query = HistoryQuery {
        order,
        status,
        limit,
        ..HistoryQuery::default()
    }
    .check()?;
    if limit == 0 {
        bail!("--limit doit être au moins 1");
    }
    let ops = Ops::open(&settings).await?;
    let filter = ops.checked_history_filter(query).await?;
    let store = ops.store();
    if let HistoryFormat::Csv = format {
        let style = CsvStyle {
            time_zone: chrono::Local,
            unconfirmed_after: settings.unconfirmed_after,
            now_ms: now_ms(),
        };
        write_history_csv(store, &filter, &style, tokio::io::stdout())
            .await
            .context("export CSV")?;
        return Ok(());
    }
    let rows = store.history(&filter).await?;
    if let HistoryFormat::Json = format {
        let rows = output::history_json(&rows, settings.unconfirmed_after);
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        output::print_history(&rows, settings.unconfirmed_after);
        if rows
            .iter()
            .any(|r| output::unconfirmed(r, settings.unconfirmed_after))
        {
            println!(
                "« sent ? » : envoyé, mais aucun accusé de réception après {} h (non renvoyé).",
                settings.unconfirmed_after.as_secs() / 3600
            );
        }
    }
    Ok(())
}

async fn relaunch(settings: Settings, key: &str, mode: RelaunchMode, force: bool) -> Result<()> {
    let ops = Ops::open(&settings).await?;
    let order = ops.relaunchable(OrderKey::Typed(key)).await?;
    let relaunched = if force {
        ops.relaunch_forced(&order, mode, now_ms()).await?
    } else {
        match ops.relaunch(&order, mode, now_ms()).await {
            Err(err @ OpsError::OrderClosed { .. }) => {
                anyhow::bail!("{err} — `--force` pour la relancer quand même")
            }
            other => other?,
        }
    };
    if let Some(warning) = &relaunched.sync_warning {
        eprintln!("attention : {warning}");
    }
    println!("{}", relaunched.summary());
    if let Some(note) = relaunched.doubtful_note("`--include-doubtful` pour les inclure") {
        println!("{note}");
    }
    Ok(())
}

async fn carriers(settings: Settings, command: CarriersCommand) -> Result<()> {
    let ops = Ops::open(&settings).await?;
    match command {
        CarriersCommand::Sync => {
            let report = ops.sync_carriers().await?;
            println!(
                "{} transporteur(s) listé(s) par l'API, {} validé(s)",
                report.listed, report.eligible
            );
        }
        CarriersCommand::List { json } => {
            let rows = ops.store().list_carriers().await?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&output::carriers_json(&rows))?
                );
            } else {
                output::print_carriers(&rows);
            }
        }
    }
    Ok(())
}
