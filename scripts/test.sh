#!/usr/bin/env bash
# Every test of the project, as the README gives it and CI runs it, on a fresh Debian machine
# with the Rust toolchain, node and python: system packages for the desktop app, formatting,
# lints, licences and sources of the dependencies, unused dependencies, the Rust tests (engine
# against fakes and the WhatsApp Web simulator, its tidy checks, CLI processes, desktop
# commands), the front-end unit tests, and the end-to-end test of the real window.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TERM_COLOR=never
# Debug info is not needed to run tests and halves the target directory.
export CARGO_PROFILE_DEV_DEBUG=false
log=$(mktemp)
trap 'rm -f "$log"' EXIT

echo "== system packages (scripts/desktop-deps.sh)"
bash scripts/desktop-deps.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy (workspace lints: clippy::all, no unwrap/expect outside tests)"
cargo clippy --workspace --all-targets --locked -- -D warnings

# Tools from crates.io, built once per machine and skipped when present (each takes minutes to
# build; see README, Tests).
export PATH="$HOME/.cargo/bin:$PATH"
install_tool() {
  if ! command -v "$1" >/dev/null 2>&1; then
    echo "== cargo install --locked $1 --version $2"
    cargo install --locked "$1" --version "$2"
  fi
}
install_tool cargo-deny 0.20.2
install_tool cargo-machete 0.9.2

# Advisories are not checked here: their database is a git repository on GitHub, which the
# build machines cannot reach (deny.toml).
echo "== cargo deny check licenses bans sources"
cargo deny --locked check licenses bans sources

echo "== cargo machete (no unused dependency)"
cargo machete

echo "== cargo test --workspace --locked"
# relay-wa-certificate runs alone: every other test build links the simulator, whose default
# feature switches the client's certificate-chain signature check off.
cargo test --workspace --locked --exclude relay-wa-certificate 2>&1 | tee -a "$log"
echo "== cargo test -p relay-wa-certificate (a build without the simulator's feature)"
cargo test -p relay-wa-certificate --locked 2>&1 | tee -a "$log"

echo "== node --test ui/tests/"
node --test ui/tests/ 2>&1 | tee -a "$log"

echo "== end-to-end: the desktop window under Xvfb (tests/e2e/run.sh)"
bash tests/e2e/run.sh 2>&1 | tee -a "$log"

# One closing line for everything: cargo prints one per test binary, node its own, the e2e its own.
awk '
  /^test result:/ { for (i = 1; i <= NF; i++) { if ($i == "passed;") p += $(i-1); if ($i == "failed;") f += $(i-1) } }
  /^# pass / { p += $3 }
  /^# fail / { f += $3 }
  /^e2e: [0-9]+ vérifications réussies/ { p += $2 }
  END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
