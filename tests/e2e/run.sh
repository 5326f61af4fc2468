#!/usr/bin/env bash
# End-to-end tests of the desktop app in the real webview: builds the debug binaries, then runs
# test_desktop.py (Cloud API channel), test_twilio.py (Twilio channel: signed status callbacks),
# test_whatsapp.py (WhatsApp Web linking against the loopback simulator `relay-wa-sim`) and
# test_tray.py (the tray icon and its menu, with trayer), each under a virtual X server and a
# private D-Bus session.
# The fakes of the CamionBack API, the Cloud API and Twilio run inside the tests (tests/e2e/fakes.py).
#
#   tests/e2e/run.sh                          # the checks
#   tests/e2e/run.sh --screenshots docs/screenshots   # the checks, plus full-screen captures
#
# Needs the packages of scripts/desktop-deps.sh and `tauri-driver` (installed here if absent).
set -euo pipefail
cd "$(dirname "$0")/../.."
started=$(date +%s)

export CARGO_TERM_COLOR=never
# Debug info is not needed to run the app and halves the target directory.
export CARGO_PROFILE_DEV_DEBUG=false

echo "== build (debug)"
cargo build -p relay-desktop -p relay-wa-sim
binary="$(pwd)/target/debug/camionback-relay-desktop"
sim="$(pwd)/target/debug/relay-wa-sim"

if ! command -v tauri-driver >/dev/null 2>&1; then
  echo "== cargo install tauri-driver --locked"
  cargo install tauri-driver --locked
fi
export PATH="$HOME/.cargo/bin:$PATH"

for tool in xvfb-run dbus-run-session xdotool xwininfo trayer /usr/bin/WebKitWebDriver; do
  command -v "$tool" >/dev/null 2>&1 || { echo "missing $tool: run scripts/desktop-deps.sh" >&2; exit 1; }
done

echo "== e2e (Xvfb 1280x800, tauri-driver, WebKitWebDriver)"
tests_started=$(date +%s)
status=0
xvfb-run -a -s "-screen 0 1280x800x24" dbus-run-session -- \
  python3 tests/e2e/test_desktop.py --binary "$binary" "$@" || status=$?
# The Twilio channel: an order webhook, the dashboard's progress, signed status callbacks.
xvfb-run -a -s "-screen 0 1280x800x24" dbus-run-session -- \
  python3 tests/e2e/test_twilio.py --binary "$binary" "$@" || status=$?
# Linking WhatsApp Web by QR code against the loopback simulator (crates/wa-sim).
xvfb-run -a -s "-screen 0 1280x800x24" dbus-run-session -- \
  python3 tests/e2e/test_whatsapp.py --binary "$binary" --sim "$sim" "$@" || status=$?
# The tray icon and its menu, with a system tray (trayer) driven by xdotool.
xvfb-run -a -s "-screen 0 1280x800x24" dbus-run-session -- \
  python3 tests/e2e/test_tray.py --binary "$binary" "$@" || status=$?
finished=$(date +%s)
echo "e2e: checks $((finished - tests_started)) s, whole run (build included) $((finished - started)) s"
exit "$status"
