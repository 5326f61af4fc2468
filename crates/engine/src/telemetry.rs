//! Logs: to the console and to one file per day in the data directory. Call sites mask phone
//! numbers and never format a secret (secrets are `SecretString`, whose `Debug` redacts).

use std::io::IsTerminal;
use std::path::Path;

use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Installs the global subscriber. Keep the guard alive: dropping it flushes the file.
pub fn init(filter: &str, log_dir: Option<&Path>) -> std::io::Result<Option<WorkerGuard>> {
    // HTTP and SQL libraries are chatty at `info`; their warnings still show.
    let directives = if filter.contains('=') || filter.contains(',') {
        filter.to_string()
    } else {
        format!("warn,relay_engine={filter},camionback_relay={filter},relay_desktop={filter}")
    };
    let env_filter = EnvFilter::try_new(&directives).unwrap_or_else(|_| EnvFilter::new("info"));
    let console = tracing_subscriber::fmt::layer()
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let (file_layer, guard) = match log_dir {
        Some(dir) => {
            crate::fs::create_private_dir(dir)?;
            let appender = tracing_appender::rolling::Builder::new()
                .rotation(tracing_appender::rolling::Rotation::DAILY)
                .filename_prefix("relay")
                .filename_suffix("log")
                .build(dir)
                .map_err(std::io::Error::other)?;
            let (writer, guard) = tracing_appender::non_blocking(appender);
            let layer = tracing_subscriber::fmt::layer()
                .with_target(false)
                .with_ansi(false)
                .with_writer(writer);
            (Some(layer), Some(guard))
        }
        None => (None, None),
    };
    tracing_subscriber::registry()
        .with(env_filter)
        .with(console)
        .with(file_layer)
        .try_init()
        .map_err(std::io::Error::other)?;
    Ok(guard)
}
