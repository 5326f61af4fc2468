//! Makes `crates/engine/tests/fixtures/wa-rs-0.2-session.db`: a session as wa-rs 0.2.0 leaves it
//! after linking against the simulator (issue 9 item 2: existing sessions survive the upgrade).

use std::path::PathBuf;

use relay_wa_sim::WaSim;

use crate::common::{init_log, linked_bot};

/// The phone the fixture is linked to; the upgrade test logs in with it.
const PHONE: &str = "212600000042";

/// Run by hand, only with wa-rs 0.2.0 still in the build:
/// `cargo test -p relay-wa-sim --test it fixture -- --ignored`. It links a fresh wa-rs 0.2.0 bot,
/// stops it, checkpoints the WAL and copies the single-file database into the engine's fixtures.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "writes the committed fixture; run by hand with wa-rs 0.2.0"]
async fn make_wa_rs_0_2_session_fixture() {
    init_log();
    let sim = WaSim::start().await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("session.db");
    let bot = linked_bot(&sim, &db, PHONE).await;
    assert_eq!(bot.client.get_pn().await.expect("pn stored").user, PHONE);
    bot.stop().await;
    assert!(sim.is_logged_in() || sim.connections() >= 2);

    let out = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../engine/tests/fixtures/wa-rs-0.2-session.db");
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    let _ = std::fs::remove_file(&out);
    // `VACUUM INTO` writes one self-contained file (the WAL folded in) from a live database.
    let status = std::process::Command::new("sqlite3")
        .arg(&db)
        .arg(format!("VACUUM INTO '{}'", out.display()))
        .status()
        .expect("sqlite3 CLI");
    assert!(status.success());
    println!("fixture written to {}", out.display());
}
