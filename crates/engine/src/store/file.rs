//! Whose database file this is: the relay only ever writes into a database it created (or an
//! empty file), and says what to do with one that is damaged or belongs to something else.

use std::path::Path;

use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection, SqliteConnection, SqlitePool};

use super::{MIGRATOR, StoreError};

/// `PRAGMA application_id` of the relay's databases ("CBRl"): the SQLite header field meant
/// for telling an application's files apart. Databases created before it was set are
/// recognised by their sqlx migration history.
pub(super) const APPLICATION_ID: i32 = 0x4342_526C;

/// Refuses a database that already holds data and is not the relay's. Runs on a plain
/// connection of its own before the pool (which switches the file to WAL) and before any
/// migration, so a refused file is left exactly as it was.
pub(super) async fn check_is_ours(path: &Path) -> Result<(), StoreError> {
    let mut probe = SqliteConnectOptions::new().filename(path).connect().await?;
    let verdict = judge(&mut probe, path).await;
    // Closing only ends the probe; the verdict is what matters.
    let _ = probe.close().await;
    verdict
}

async fn judge(conn: &mut SqliteConnection, path: &Path) -> Result<(), StoreError> {
    let application_id: i32 = sqlx::query_scalar("PRAGMA application_id")
        .fetch_one(&mut *conn)
        .await?;
    if application_id == APPLICATION_ID {
        return Ok(());
    }
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'
         ORDER BY name",
    )
    .fetch_all(&mut *conn)
    .await?;
    let foreign = |what: String| StoreError::Foreign {
        path: path.display().to_string(),
        what,
    };
    if application_id != 0 {
        return Err(foreign(format!(
            "marquée par une autre application (application_id {application_id:#x})"
        )));
    }
    let has_history = tables.iter().any(|t| t == "_sqlx_migrations");
    let first_applied: Option<i64> = if has_history {
        sqlx::query_scalar("SELECT MIN(version) FROM _sqlx_migrations WHERE success = 1")
            .fetch_one(&mut *conn)
            .await?
    } else {
        None
    };
    let our_first = MIGRATOR.iter().next().map(|m| m.version);
    let only_an_empty_history = tables.len() == 1 && has_history && first_applied.is_none();
    if tables.is_empty()
        || only_an_empty_history
        || (first_applied.is_some() && first_applied == our_first)
    {
        return Ok(());
    }
    let mut listed: Vec<&str> = tables.iter().map(String::as_str).take(5).collect();
    if tables.len() > 5 {
        listed.push("…");
    }
    Err(foreign(format!(
        "elle contient d'autres tables : {}",
        listed.join(", ")
    )))
}

/// Marks a database the relay has just migrated as its own.
pub(super) async fn mark_as_ours(pool: &SqlitePool) -> Result<(), StoreError> {
    let current: i32 = sqlx::query_scalar("PRAGMA application_id")
        .fetch_one(pool)
        .await?;
    if current != APPLICATION_ID {
        // A constant: nothing from outside reaches the statement.
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "PRAGMA application_id = {APPLICATION_ID}"
        )))
        .execute(pool)
        .await?;
    }
    Ok(())
}

/// SQLite's own verdict that the file is damaged (`SQLITE_CORRUPT`) or no database at all
/// (`SQLITE_NOTADB`), with its words.
pub(super) fn damage(err: &sqlx::Error) -> Option<String> {
    let sqlx::Error::Database(db) = err else {
        return None;
    };
    let code: i32 = db.code()?.parse().ok()?;
    // Extended codes (SQLITE_CORRUPT_INDEX = 779...) carry the primary one in the low byte.
    matches!(code & 0xff, 11 | 26).then(|| db.message().to_string())
}

/// The start-up error for `err` met while opening `path`: a recovery hint when SQLite says
/// the file is damaged, the error as it is otherwise.
pub(super) fn opening(path: &Path, err: StoreError) -> StoreError {
    let reason = match &err {
        StoreError::Database(db) => damage(db),
        StoreError::Migration(
            sqlx::migrate::MigrateError::Execute(db)
            | sqlx::migrate::MigrateError::ExecuteMigration(db, _),
        ) => damage(db),
        _ => None,
    };
    match reason {
        Some(reason) => StoreError::Damaged {
            path: path.display().to_string(),
            reason,
        },
        None => err,
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::store::Store;

    async fn raw(path: &Path, statements: &str) {
        let mut conn = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .connect()
            .await
            .expect("raw connection");
        sqlx::raw_sql(sqlx::AssertSqlSafe(statements.to_string()))
            .execute(&mut conn)
            .await
            .expect("raw statements");
        conn.close().await.expect("close");
    }

    async fn application_id(path: &Path) -> i32 {
        let mut conn = SqliteConnectOptions::new()
            .filename(path)
            .connect()
            .await
            .expect("connection");
        sqlx::query_scalar("PRAGMA application_id")
            .fetch_one(&mut conn)
            .await
            .expect("pragma")
    }

    fn db_in(dir: &tempfile::TempDir) -> PathBuf {
        dir.path().join("relay.db")
    }

    #[tokio::test]
    async fn a_new_database_is_marked_as_the_relay_s() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = db_in(&dir);
        Store::open(&path).await.expect("opens").close().await;
        assert_eq!(application_id(&path).await, APPLICATION_ID);
        Store::open(&path).await.expect("opens again").close().await;
    }

    #[tokio::test]
    async fn a_database_of_an_earlier_version_is_recognised_by_its_migrations() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = db_in(&dir);
        Store::open(&path).await.expect("opens").close().await;
        raw(&path, "PRAGMA application_id = 0").await;

        Store::open(&path).await.expect("still ours").close().await;
        assert_eq!(
            application_id(&path).await,
            APPLICATION_ID,
            "and now marked"
        );
    }

    #[tokio::test]
    async fn another_program_s_database_is_refused_and_left_exactly_as_it_was() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = db_in(&dir);
        raw(
            &path,
            "CREATE TABLE clients (id INTEGER PRIMARY KEY, nom TEXT);
             INSERT INTO clients (nom) VALUES ('Atlas');",
        )
        .await;
        let before = std::fs::read(&path).expect("read");

        let err = Store::open(&path).await.expect_err("refused");
        let text = err.to_string();
        assert!(matches!(err, StoreError::Foreign { .. }), "{text}");
        assert!(
            text.contains(&path.display().to_string()) && text.contains("clients"),
            "names the file and what is in it: {text}"
        );
        assert_eq!(
            std::fs::read(&path).expect("read"),
            before,
            "not one byte changed"
        );
        assert!(
            !dir.path().join("relay.db-wal").exists(),
            "not switched to WAL"
        );

        let other = dir.path().join("other.db");
        raw(&other, "PRAGMA application_id = 4660").await;
        let err = Store::open(&other).await.expect_err("refused");
        assert!(err.to_string().contains("0x1234"), "{err}");
    }

    #[tokio::test]
    async fn a_truncated_or_garbage_file_is_refused_with_what_to_do() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = db_in(&dir);
        Store::open(&path).await.expect("opens").close().await;
        raw(
            &path,
            "CREATE TABLE filler (x BLOB);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300)
             INSERT INTO filler SELECT randomblob(1000) FROM n;
             PRAGMA wal_checkpoint(TRUNCATE);",
        )
        .await;
        let full = std::fs::metadata(&path).expect("file").len();
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .expect("open");
        file.set_len(full / 3).expect("truncate");
        drop(file);

        let err = Store::open(&path).await.expect_err("refused");
        let text = err.to_string();
        assert!(matches!(err, StoreError::Damaged { .. }), "{text}");
        assert!(
            text.contains(&path.display().to_string())
                && text.contains("sauvegarde")
                && text.contains("mettez-le de côté")
                && text.contains("ne supprime jamais"),
            "{text}"
        );
        assert_eq!(
            std::fs::metadata(&path).expect("still there").len(),
            full / 3,
            "the relay never deletes nor rewrites it"
        );

        let garbage = dir.path().join("garbage.db");
        std::fs::write(
            &garbage,
            "ceci n'est pas une base SQLite, mais un texte assez long pour avoir un en-tête",
        )
        .expect("write");
        let err = Store::open(&garbage).await.expect_err("refused");
        assert!(matches!(err, StoreError::Damaged { .. }), "{err}");
    }
}
