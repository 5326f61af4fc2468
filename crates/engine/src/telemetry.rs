//! Logs: to the console and to one file per day in the data directory. Call sites mask phone
//! numbers and never format a secret (secrets are `SecretString`, whose `Debug` redacts).

use std::fs::File;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Installs the global subscriber. Keep the guard alive: dropping it flushes the file.
///
/// `log_dir` is the `logs` folder of the data directory: the data directory is checked (and
/// created) first with the relay's rules, so one the relay refuses gets no log folder either.
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
            let checked = |path: &Path| {
                crate::fs::create_private_dir(path).map_err(|err| {
                    let said = err.to_string();
                    let shown = path.display().to_string();
                    if said.contains(&shown) {
                        err
                    } else {
                        std::io::Error::new(err.kind(), format!("{shown} : {said}"))
                    }
                })
            };
            if let Some(data_dir) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                checked(data_dir)?;
            }
            checked(dir)?;
            let (writer, guard) =
                tracing_appender::non_blocking(DailyFile::new(dir.to_path_buf(), || {
                    chrono::Utc::now().date_naive()
                }));
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

/// `relay.YYYY-MM-DD.log` in `dir`, a new file each day (UTC), each created owner-only
/// (0600): logs name carriers and orders. tracing-appender's rolling files cannot be given a
/// mode, so this is the one writer the non-blocking worker thread feeds.
pub struct DailyFile<F> {
    dir: PathBuf,
    today: F,
    current: Option<(NaiveDate, File)>,
}

impl<F: Fn() -> NaiveDate> DailyFile<F> {
    pub fn new(dir: PathBuf, today: F) -> Self {
        Self {
            dir,
            today,
            current: None,
        }
    }

    pub fn path_for(dir: &Path, day: NaiveDate) -> PathBuf {
        dir.join(format!("relay.{}.log", day.format("%Y-%m-%d")))
    }

    fn file(&mut self) -> std::io::Result<&mut File> {
        let day = (self.today)();
        if self.current.as_ref().is_none_or(|(open, _)| *open != day) {
            let path = Self::path_for(&self.dir, day);
            crate::fs::create_private_file(&path)?;
            let file = std::fs::OpenOptions::new().append(true).open(&path)?;
            self.current = Some((day, file));
        }
        match &mut self.current {
            Some((_, file)) => Ok(file),
            None => Err(std::io::Error::other("journal non ouvert")),
        }
    }
}

impl<F: Fn() -> NaiveDate> Write for DailyFile<F> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.file()?.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match &mut self.current {
            Some((_, file)) => file.flush(),
            None => Ok(()),
        }
    }
}

#[cfg(all(test, unix))]
mod tests {
    use std::cell::Cell;
    use std::os::unix::fs::PermissionsExt;
    use std::rc::Rc;

    use super::*;

    #[test]
    fn each_day_gets_its_own_owner_only_log_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let day = Rc::new(Cell::new(
            NaiveDate::from_ymd_opt(2026, 12, 3).expect("date"),
        ));
        let clock = Rc::clone(&day);
        let mut file = DailyFile::new(dir.path().to_path_buf(), move || clock.get());
        file.write_all(b"premier jour\n").expect("write");
        day.set(NaiveDate::from_ymd_opt(2026, 12, 4).expect("date"));
        file.write_all(b"second jour\n").expect("write");
        file.flush().expect("flush");

        for (name, text) in [
            ("relay.2026-12-03.log", "premier jour\n"),
            ("relay.2026-12-04.log", "second jour\n"),
        ] {
            let path = dir.path().join(name);
            assert_eq!(std::fs::read_to_string(&path).expect("log file"), text);
            let mode = std::fs::metadata(&path).expect("file").permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{name} is owner-only");
        }
    }

    #[test]
    fn a_log_file_left_readable_by_an_older_version_is_made_owner_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let day = NaiveDate::from_ymd_opt(2026, 12, 3).expect("date");
        let path = DailyFile::<fn() -> NaiveDate>::path_for(dir.path(), day);
        std::fs::write(&path, "ancien\n").expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let mut file = DailyFile::new(dir.path().to_path_buf(), move || day);
        file.write_all(b"nouveau\n").expect("write");
        assert_eq!(
            std::fs::read_to_string(&path).expect("read"),
            "ancien\nnouveau\n",
            "appended, not replaced"
        );
        let mode = std::fs::metadata(&path).expect("file").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
