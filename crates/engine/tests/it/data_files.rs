//! The relay's own files: it starts only in a data directory that is the user's and that
//! nobody else can write into, and only on a database that is its own and readable.

use std::os::unix::fs::PermissionsExt;

use relay_engine::store::StoreError;
use relay_engine::{Engine, EngineError};

use crate::helpers::*;

#[tokio::test]
async fn the_relay_does_not_start_in_a_data_directory_anyone_can_write_into() {
    let app = world(&[]).await;
    std::fs::set_permissions(app.dir.path(), std::fs::Permissions::from_mode(0o1777))
        .expect("chmod");
    let settings = settings_for(&app.dir, &app.camionback, &app.cloud, &app.overrides);

    let err = Engine::start(settings).await.err().expect("refused");
    let text = err.to_string();
    assert!(
        text.contains(&app.dir.path().display().to_string())
            && text.contains("modifiable par tous")
            && text.contains("1777"),
        "{text}"
    );
    assert_eq!(
        text.matches(&app.dir.path().display().to_string()).count(),
        2,
        "the directory named once, and once in the chmod hint: {text}"
    );
    let mode = std::fs::metadata(app.dir.path())
        .expect("dir")
        .permissions()
        .mode();
    assert_eq!(mode & 0o7777, 0o1777, "left as it was");
    assert_eq!(
        std::fs::read_dir(app.dir.path()).expect("dir").count(),
        0,
        "no lock, no database created"
    );
    std::fs::set_permissions(app.dir.path(), std::fs::Permissions::from_mode(0o700))
        .expect("chmod back");
}

#[tokio::test]
async fn the_relay_does_not_adopt_another_program_s_database() {
    let app = world(&[]).await;
    let path = app.dir.path().join("relay.db");
    {
        use sqlx::{ConnectOptions, Connection};
        let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .connect()
            .await
            .expect("sqlite");
        sqlx::raw_sql("CREATE TABLE stock (article TEXT, quantite INTEGER)")
            .execute(&mut conn)
            .await
            .expect("create");
        conn.close().await.expect("close");
    }
    let before = std::fs::read(&path).expect("read");
    let settings = settings_for(&app.dir, &app.camionback, &app.cloud, &app.overrides);

    let err = Engine::start(settings).await.err().expect("refused");
    assert!(
        matches!(err, EngineError::Store(StoreError::Foreign { .. })),
        "{err}"
    );
    assert!(err.to_string().contains("stock"), "{err}");
    assert_eq!(std::fs::read(&path).expect("read"), before);
}
