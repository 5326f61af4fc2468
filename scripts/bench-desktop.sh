#!/usr/bin/env bash
# Benchmarks of the desktop app (figures, not tests; not part of scripts/test.sh): builds the
# release binary — with `tauri/custom-protocol`, as `tauri build` does for the .deb — then runs
# tests/bench/desktop.py under a virtual X server and a private D-Bus session.
#
#   scripts/bench-desktop.sh                              # launch, broadcast, history
#   scripts/bench-desktop.sh --only idle --duration 3600  # memory over an hour idle
#   scripts/bench-desktop.sh --only launch --runs 11
#
# Needs the packages of scripts/desktop-deps.sh and `tauri-driver` (installed here if absent).
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TERM_COLOR=never
echo "== build (release): the app, and the minimal Tauri app its memory is compared with"
cargo build --release -p relay-desktop --features tauri/custom-protocol \
  --bin camionback-relay-desktop --example minimal_tauri
binary="$(pwd)/target/release/camionback-relay-desktop"

if ! command -v tauri-driver >/dev/null 2>&1; then
  echo "== cargo install tauri-driver --locked"
  cargo install tauri-driver --locked
fi
export PATH="$HOME/.cargo/bin:$PATH"

for tool in xvfb-run dbus-run-session xdotool /usr/bin/WebKitWebDriver; do
  command -v "$tool" >/dev/null 2>&1 || { echo "missing $tool: run scripts/desktop-deps.sh" >&2; exit 1; }
done

echo "== benchmarks (Xvfb 1280x800)"
exec xvfb-run -a -s "-screen 0 1280x800x24" dbus-run-session -- \
  python3 tests/bench/desktop.py --binary "$binary" "$@"
