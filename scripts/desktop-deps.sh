#!/usr/bin/env bash
# System packages of the desktop app (Debian 12), as measured in ../shared/DESKTOP.md:
# the first list builds `relay-desktop` (WebKitGTK, GTK, AppIndicator for the tray), the second
# runs it under a virtual X server for screenshots and the WebDriver end-to-end test.
# Idempotent: packages already installed are skipped by apt. Run as root (or with sudo).
set -euo pipefail

BUILD_PACKAGES=(
  libwebkit2gtk-4.1-dev libgtk-3-dev libsoup-3.0-dev libayatana-appindicator3-dev
  librsvg2-dev libxdo-dev build-essential pkg-config
)
# fonts-noto-color-emoji: the UI uses a few emojis (📤 of the specification); desktops ship it,
# a bare Xvfb machine does not.
# No dbus-x11: it starts session buses that outlive the run; runs use `dbus-run-session`.
# x11-utils: xwininfo, which the tray test uses to check that the icon sits in trayer's panel.
UI_TEST_PACKAGES=(
  xvfb xauth dbus webkit2gtk-driver xdotool x11-utils imagemagick dunst trayer fonts-noto-color-emoji
)

missing=()
for package in "${BUILD_PACKAGES[@]}" "${UI_TEST_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
    || missing+=("$package")
done
if [ "${#missing[@]}" -eq 0 ]; then
  echo "desktop-deps: every package is already installed"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update
$SUDO apt-get install -y --no-install-recommends "${missing[@]}"
