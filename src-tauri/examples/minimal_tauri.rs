//! The floor the desktop app's memory is compared with (issue 4, ../shared/DESKTOP.md): a
//! Tauri window showing one static page and nothing else, same Tauri build, same window size.
//! Built and measured by `scripts/bench-desktop.sh` next to the app, on the same machine at the
//! same time, because PSS moves by tens of megabytes with what else runs.

fn main() -> std::process::ExitCode {
    match tauri::Builder::default().run(tauri::generate_context!(
        "../tests/bench/minimal-tauri/tauri.conf.json"
    )) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("erreur : la fenêtre Tauri minimale ne démarre pas : {err}");
            std::process::ExitCode::FAILURE
        }
    }
}
