//! Tauri's build step, pointed at the configuration at the repository root (see
//! ../shared/DESKTOP.md: the Tauri CLI is only needed for bundling). The app's commands get
//! generated `allow-*` permissions so the capability grants exactly the ones the UI calls.

fn main() {
    // The front end and the migrations are embedded: new files there must trigger a rebuild.
    println!("cargo:rerun-if-changed=../ui");
    println!("cargo:rerun-if-changed=../icons");
    println!("cargo:rerun-if-changed=../migrations");
    let manifest = tauri_build::AppManifest::new().commands(&[
        "app_info",
        "overview",
        "whatsapp_state",
        "whatsapp_new_qr",
        "whatsapp_unlink",
        "whatsapp_pair_with_phone",
        "history_page",
        "history_export_csv",
        "relaunch_preview",
        "relaunch_order",
        "list_carriers",
        "sync_carriers",
        "settings_view",
        "preview_message",
        "save_settings",
        "open_folder",
        "set_paused",
        "autostart_state",
        "set_autostart",
    ]);
    let attributes = tauri_build::Attributes::new()
        .config_path("../tauri.conf.json")
        .app_manifest(manifest);
    if let Err(err) = tauri_build::try_build(attributes) {
        panic!("tauri-build: {err:#}");
    }
}
