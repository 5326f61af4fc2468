//! Files that hold personal data or secrets are readable by their owner only, and live in
//! directories nobody else can write into.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

#[cfg(unix)]
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};

/// Creates `dir` (and its missing parents) owner-only (0700), or checks the existing one.
///
/// An existing directory is never chmodded: it may be shared on purpose, and changing it
/// behind the user's back hides the problem. Instead the relay refuses a directory it does
/// not own, or one every user can write into (`0777`, `1777`): anyone could drop a
/// `template.txt` there and make CamionBack's number send their text, or swap `relay.db`.
/// A missing directory is only created inside one that nobody but its owner or root can
/// write into (a sticky `/tmp` is fine: nobody can rename what we create there).
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    match fs::metadata(dir) {
        Ok(meta) => check_own_dir(dir, &meta),
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            let mut ancestor = dir.parent();
            while let Some(candidate) = ancestor {
                let candidate = if candidate.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    candidate
                };
                match fs::metadata(candidate) {
                    Ok(meta) => {
                        check_parent_dir(candidate, &meta)?;
                        break;
                    }
                    Err(err) if err.kind() == io::ErrorKind::NotFound => {
                        ancestor = candidate.parent();
                    }
                    Err(err) => return Err(err),
                }
            }
            let mut builder = fs::DirBuilder::new();
            builder.recursive(true);
            #[cfg(unix)]
            builder.mode(0o700);
            builder.create(dir)
        }
        Err(err) => Err(err),
    }
}

#[cfg(unix)]
fn current_uid() -> u32 {
    // SAFETY: geteuid has no preconditions, cannot fail and touches no memory of ours.
    unsafe { libc::geteuid() }
}

/// What is wrong with a directory the relay would use, in the words staff read.
#[cfg(unix)]
fn judge_own_dir(dir: &Path, mode: u32, owner: u32, me: u32) -> Result<(), String> {
    let dir = dir.display();
    if owner != me {
        return Err(format!(
            "le dossier {dir} appartient à un autre utilisateur (uid {owner}, le relais tourne sous l'uid {me}) : choisissez un dossier à vous (RELAY_DATA_DIR)"
        ));
    }
    if mode & 0o002 != 0 {
        return Err(format!(
            "le dossier {dir} est modifiable par tous les utilisateurs (droits {:04o}) : n'importe qui pourrait y déposer un modèle de message ou remplacer la base. Choisissez un dossier à vous (RELAY_DATA_DIR) ou retirez ce droit (chmod o-w {dir}) ; le relais ne change pas les droits d'un dossier qu'il n'a pas créé",
            mode & 0o7777
        ));
    }
    Ok(())
}

/// Whether the relay may create its own directory inside this one.
#[cfg(unix)]
fn judge_parent_dir(mode: u32, owner: u32, me: u32) -> Result<(), String> {
    let sticky = mode & 0o1000 != 0;
    let writable_by_all = mode & 0o002 != 0;
    if owner == me && !writable_by_all {
        return Ok(());
    }
    if owner == 0 && (!writable_by_all || sticky) {
        return Ok(());
    }
    if owner != me && owner != 0 {
        return Err(format!(
            "il appartient à un autre utilisateur (uid {owner}, le relais tourne sous l'uid {me})"
        ));
    }
    Err(format!(
        "il est modifiable par tous les utilisateurs (droits {:04o}) : un autre pourrait remplacer ce que le relais y crée",
        mode & 0o7777
    ))
}

fn check_own_dir(dir: &Path, meta: &fs::Metadata) -> io::Result<()> {
    if !meta.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} existe mais n'est pas un dossier", dir.display()),
        ));
    }
    #[cfg(unix)]
    judge_own_dir(dir, meta.mode(), meta.uid(), current_uid())
        .map_err(|message| io::Error::new(io::ErrorKind::PermissionDenied, message))?;
    Ok(())
}

fn check_parent_dir(parent: &Path, meta: &fs::Metadata) -> io::Result<()> {
    if !meta.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} existe mais n'est pas un dossier", parent.display()),
        ));
    }
    #[cfg(unix)]
    judge_parent_dir(meta.mode(), meta.uid(), current_uid()).map_err(|reason| {
        io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "le relais ne crée pas son dossier dans {} : {reason}",
                parent.display()
            ),
        )
    })?;
    Ok(())
}

/// Creates `path` if missing, and makes it owner-only whether it was new or not. Its
/// directory is created, or checked, by [`create_private_dir`]: an owner-only file in a
/// directory anyone can write into protects nothing.
pub fn create_private_file(path: &Path) -> io::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_private_dir(parent)?;
    }
    let mut options = OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    options.mode(0o600);
    options.open(path)?;
    restrict(path)
}

/// Makes an existing file owner-only (a config file written by hand with a loose umask).
pub fn restrict(path: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        let mode = fs::metadata(path)?.permissions().mode();
        if mode & 0o077 != 0 {
            fs::set_permissions(path, fs::Permissions::from_mode(0o600))?;
        }
    }
    Ok(())
}

/// Replaces `path` with `contents` all at once, owner-only: written to a temporary file next to
/// it, flushed to disk, then renamed over it. A crash leaves the old file or the new one, never
/// half of one.
pub fn write_private_atomic(path: &Path, contents: &[u8]) -> io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    create_private_dir(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // Unique per call: two saves at once never write into each other's temporary file.
    let temp = dir.join(format!(".{name}.{:016x}.tmp", rand::random::<u64>()));
    let written = (|| {
        let mut options = OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        options.mode(0o600);
        let mut file = options.open(&temp)?;
        // A leftover temporary file from a crash may have other permissions.
        restrict(&temp)?;
        file.write_all(contents)?;
        file.sync_all()?;
        fs::rename(&temp, path)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&temp);
    }
    written?;
    #[cfg(unix)]
    if let Ok(dir) = fs::File::open(dir) {
        // The rename itself reaches the disk with the directory; failing here loses nothing
        // already written.
        let _ = dir.sync_all();
    }
    Ok(())
}

// Two attributes, not `cfg(all(test, unix))`: clippy only sees `cfg(test)` written alone.
#[cfg(test)]
#[cfg(unix)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).expect("exists").permissions().mode() & 0o7777
    }

    fn chmod(path: &Path, mode: u32) {
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
    }

    #[test]
    fn a_new_data_directory_and_its_missing_parents_are_owner_only() {
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join("a/b/camionback-relay");
        create_private_dir(&dir).expect("created");
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&root.path().join("a")), 0o700);
        create_private_dir(&dir).expect("an existing private directory is fine");
    }

    #[test]
    fn an_existing_directory_is_never_chmodded() {
        let root = tempfile::tempdir().expect("tempdir");
        chmod(root.path(), 0o750);
        create_private_dir(root.path()).expect("ours, not writable by others");
        assert_eq!(mode(root.path()), 0o750, "left as the user set it");
    }

    #[test]
    fn a_directory_every_user_can_write_into_is_refused_and_left_alone() {
        for loose in [0o777, 0o1777, 0o703] {
            let root = tempfile::tempdir().expect("tempdir");
            chmod(root.path(), loose);
            let err = create_private_dir(root.path()).expect_err("refused");
            assert_eq!(err.kind(), io::ErrorKind::PermissionDenied);
            assert!(
                err.to_string().contains("modifiable par tous")
                    && err.to_string().contains(&format!("{loose:04o}")),
                "{err}"
            );
            assert_eq!(mode(root.path()), loose, "not chmodded");
            if loose & 0o1000 == 0 {
                let child = root.path().join("logs");
                assert!(
                    create_private_dir(&child).is_err(),
                    "nor is anything created in it"
                );
                assert!(!child.exists());
            }
            chmod(root.path(), 0o700);
        }
    }

    #[test]
    fn a_directory_of_another_user_is_refused() {
        let root = tempfile::tempdir().expect("tempdir");
        // As root (CI), give the directory away; otherwise `/` already belongs to root.
        let theirs = if current_uid() == 0 {
            std::os::unix::fs::chown(root.path(), Some(65534), Some(65534)).expect("chown");
            root.path().to_path_buf()
        } else {
            Path::new("/").to_path_buf()
        };
        let err = create_private_dir(&theirs).expect_err("refused");
        assert!(err.to_string().contains("autre utilisateur"), "{err}");
    }

    #[test]
    fn the_system_temporary_directory_may_hold_a_new_data_directory() {
        let dir = std::env::temp_dir().join(format!("relay-fs-{:016x}", rand::random::<u64>()));
        let created = create_private_dir(&dir);
        let made_mode = created.as_ref().ok().map(|_| mode(&dir));
        let _ = fs::remove_dir(&dir);
        created.expect("a sticky root-owned /tmp is a safe parent");
        assert_eq!(made_mode, Some(0o700));
    }

    #[test]
    fn the_rules_in_full() {
        let (me, other) = (1000, 1001);
        let dir = Path::new("/srv/relais");
        assert!(judge_own_dir(dir, 0o700, me, me).is_ok());
        assert!(
            judge_own_dir(dir, 0o775, me, me).is_ok(),
            "group-writable: the user's choice"
        );
        assert!(judge_own_dir(dir, 0o1777, me, me).is_err_and(|e| e.contains("/srv/relais")));
        assert!(judge_own_dir(dir, 0o700, other, me).is_err_and(|e| e.contains("/srv/relais")));
        assert!(judge_parent_dir(0o755, me, me).is_ok());
        assert!(judge_parent_dir(0o755, 0, me).is_ok());
        assert!(judge_parent_dir(0o1777, 0, me).is_ok(), "/tmp");
        assert!(judge_parent_dir(0o777, 0, me).is_err(), "not sticky");
        assert!(judge_parent_dir(0o1777, me, me).is_err());
        assert!(judge_parent_dir(0o755, other, me).is_err());
    }
}
