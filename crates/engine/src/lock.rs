//! One relay per data directory: two dispatchers on one database would each send the same
//! deliveries. An OS file lock, released by the OS even after `kill -9`.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "un autre relais CamionBack utilise déjà {0} (serveur ou application de bureau) : arrêtez-le d'abord"
    )]
    Held(PathBuf),
    #[error("verrou {path} : {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Held for the life of the engine; dropping it releases the lock.
#[derive(Debug)]
pub struct InstanceLock {
    _file: File,
}

impl InstanceLock {
    pub fn acquire(data_dir: &Path) -> Result<Self, LockError> {
        let path = data_dir.join("relay.lock");
        let io = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        crate::fs::create_private_file(&path).map_err(io)?;
        let mut file = OpenOptions::new().write(true).open(&path).map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Err(LockError::Held(data_dir.to_path_buf())),
            Err(TryLockError::Error(source)) => return Err(io(source)),
        }
        // Who holds it, for a person looking at the file.
        file.set_len(0).map_err(io)?;
        writeln!(file, "{}", std::process::id()).map_err(io)?;
        Ok(Self { _file: file })
    }
}
