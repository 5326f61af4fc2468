//! The files the relay keeps: a data directory it does not own or anyone can write into, a
//! `relay.db` that is another program's or is damaged — each refused once, in plain words,
//! touching nothing; and the log files it writes are owner-only.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use sqlx::{ConnectOptions, Connection};

use crate::helpers::*;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .expect("exists")
        .permissions()
        .mode()
        & 0o7777
}

#[tokio::test]
async fn a_data_directory_anyone_can_write_into_is_refused_and_left_as_it_is() {
    let world = World::new(Duration::ZERO).await;
    std::fs::set_permissions(world.data_dir(), std::fs::Permissions::from_mode(0o1777))
        .expect("chmod");

    for args in [&["serve"][..], &["history"][..]] {
        let output = world.command(args, &[]).output().expect("runs");
        let said = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?} must refuse: {said}");
        assert!(
            said.contains("modifiable par tous") && said.contains("RELAY_DATA_DIR"),
            "{args:?}: {said}"
        );
        assert_eq!(
            said.matches("modifiable par tous").count(),
            1,
            "said once: {said}"
        );
    }
    assert_eq!(
        mode(world.data_dir()),
        0o1777,
        "the relay does not chmod a directory it did not create"
    );
    let left: Vec<_> = std::fs::read_dir(world.data_dir()).expect("dir").collect();
    assert!(left.is_empty(), "nothing created in it: {left:?}");

    std::fs::set_permissions(world.data_dir(), std::fs::Permissions::from_mode(0o700))
        .expect("chmod back");
}

#[tokio::test]
async fn another_program_s_database_as_relay_db_is_refused_naming_the_file() {
    let world = World::new(Duration::ZERO).await;
    let path = world.data_dir().join("relay.db");
    let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&path)
        .create_if_missing(true)
        .connect()
        .await
        .expect("sqlite");
    sqlx::raw_sql("CREATE TABLE factures (id INTEGER PRIMARY KEY, montant REAL)")
        .execute(&mut conn)
        .await
        .expect("create");
    conn.close().await.expect("close");
    let before = std::fs::read(&path).expect("read");

    let output = world.run(&["history"]);
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        said.contains(&path.display().to_string())
            && said.contains("n'est pas une base de CamionBack Relay")
            && said.contains("factures"),
        "{said}"
    );
    assert_eq!(
        std::fs::read(&path).expect("read"),
        before,
        "not adopted, not migrated"
    );
}

#[tokio::test]
async fn a_truncated_relay_db_says_what_to_do_once_and_is_kept() {
    let world = World::new(Duration::ZERO).await;
    assert!(
        world.run(&["history"]).status.success(),
        "creates the database"
    );
    let path = world.data_dir().join("relay.db");
    // Everything into the main file first (the CLI leaves its pages in the WAL), as a copy
    // of the database cut short would be.
    let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&path)
        .connect()
        .await
        .expect("sqlite");
    sqlx::raw_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&mut conn)
        .await
        .expect("checkpoint");
    conn.close().await.expect("close");
    let full = std::fs::metadata(&path).expect("db").len();
    assert!(full > 8192, "a database of several pages: {full}");
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .and_then(|file| file.set_len(full / 2))
        .expect("truncate");

    for args in [&["history"][..], &["serve"][..]] {
        let output = world.command(args, &[]).output().expect("runs");
        let said = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?}: {said}");
        assert!(
            said.contains("sauvegarde")
                && said.contains("mettez-le de côté")
                && said.contains("ne supprime jamais"),
            "{args:?}: a recovery hint: {said}"
        );
        assert_eq!(
            said.matches("malformed").count(),
            1,
            "{args:?}: SQLite's words once, not three times: {said}"
        );
        assert_eq!(said.lines().count(), 1, "one line: {said}");
    }
    assert_eq!(std::fs::metadata(&path).expect("kept").len(), full / 2);
}

#[tokio::test]
async fn log_files_are_owner_only() {
    let world = World::new(Duration::ZERO).await;
    let relay = world.serve(&[]).await;
    let output = relay.terminate();
    assert!(output.status.success());

    let logs = world.data_dir().join("logs");
    assert_eq!(mode(&logs), 0o700);
    let files: Vec<_> = std::fs::read_dir(&logs)
        .expect("logs")
        .map(|entry| entry.expect("entry").path())
        .collect();
    assert!(!files.is_empty(), "serve wrote its log");
    for file in files {
        let name = file.file_name().map(|n| n.to_string_lossy().into_owned());
        assert!(
            name.as_deref()
                .is_some_and(|n| n.starts_with("relay.") && n.ends_with(".log")),
            "{file:?}"
        );
        assert_eq!(mode(&file), 0o600, "{} is owner-only", file.display());
    }
}
