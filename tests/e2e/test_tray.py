#!/usr/bin/env python3
"""End-to-end test of the tray icon, under Xvfb with a system tray (trayer, which embeds XEmbed
icons) and xdotool, the app on the Cloud API channel against the loopback fakes.

The story: the relay starts and its icon is in the tray (green); an order arrives and the icon
turns blue while it is sent; staff close the window: it goes away, the icon stays and every
carrier still gets the order; the menu's "Ouvrir" brings the window back; the menu's pause
entry turns the icon orange and holds the next order (queued, nothing sent), the same entry
(now "Reprendre") sends it; during the next broadcast the menu's "Quitter" stops the app, after
recording the send in flight: nothing is left "sending", and every message the fake received is
recorded as sent. Started again as the session's autostart entry does (`--au-demarrage`), the
app is in the tray without ever showing its window, and "Ouvrir" shows it. Staff move and resize
the window and close it; launching the app a second time brings the first one's window back and
the second process leaves; after "Quitter", the next start opens the window where it was left,
at the size it was left.

The app is started directly (no WebDriver: the test watches the X server and the process).
The menu is a GTK popup: the test clicks the icon, then moves with the keyboard (Down = first
entry, "Ouvrir"; Down Down = the pause entry; Up = last entry, "Quitter").

Run through tests/e2e/run.sh. Standard library only (+ xdotool, trayer).
"""

import argparse
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time

import fakes as fake_services
import x11
import harness
from test_desktop import Checks, wait_for

TITLE = "CamionBack Relay"
CARRIERS = 30
ELIGIBLE = CARRIERS - 3  # the fake lists one blocked, one pending, one unusable number
THROTTLE_MS = 300
ICON_CLASS = "tray-icon tray app relay"  # tray-icon's window class for the icon id "relay"
SIDEBAR_RGB = (0x10, 0x23, 0x1E)
MOVED = (40, 30, 1000, 680)  # x, y, width, height the test gives the window (default 1180×760)  # ui/styles.css .sidebar: the first screen is painted


def main_window():
    found = x11.search("--onlyvisible", "--name", f"^{TITLE}$")
    return found[0] if found else None


def parent(window):
    out = subprocess.run(["xwininfo", "-id", str(window), "-tree"], capture_output=True, text=True).stdout
    for line in out.splitlines():
        if "Parent window id:" in line:
            return int(line.split()[3], 16), line
    return None, ""


def in_panel(icon):
    """Whether `icon` is embedded in trayer's panel (through the socket trayer made for it)."""
    window = icon
    for _ in range(4):
        window, line = parent(window)
        if window is None:
            return False
        if '"panel"' in line:
            return True
    return False


def icon_tone(display, icon):
    """'green' (idle), 'blue' (sending), 'orange' (paused), or None: the dominant colour of the
    icon's pixels (icons/tray-*.png)."""
    _, _, width, height = x11.geometry(icon)
    pixels = display.pixels(icon, 0, 0, width or 24, height or 24)
    if not pixels:
        return None
    counts = {
        "green": sum(1 for r, g, b in pixels if g > b + 15 and g > r + 40),
        "blue": sum(1 for r, g, b in pixels if b > g + 40 and b > r + 60),
        "orange": sum(1 for r, g, b in pixels if r > g + 40 and g > b + 60),
    }
    tone = max(counts, key=counts.get)
    return tone if counts[tone] >= len(pixels) // 8 else None


def sent_for(fakes, order_id):
    return sum(1 for m in fakes.sent_messages() if f"/commande/{order_id}\n" in m["text"]["body"])


def queued_for(data_dir, order_id):
    db = sqlite3.connect(os.path.join(data_dir, "relay.db"))
    try:
        return db.execute("SELECT COUNT(*) FROM deliveries WHERE order_id = ? AND status = 'queued'",
                          (order_id,)).fetchone()[0]
    finally:
        db.close()


def open_menu(display, icon):
    """Clicks the icon; returns the menu's popup window."""
    before = x11.visible_windows()
    x11.xdotool("mousemove", "--window", str(icon), "12", "12", "click", "1")

    def popup():
        for window in x11.visible_windows() - before:
            _, _, _, height = x11.geometry(window)
            if height and height > 30:
                return window
        return None
    return wait_for("the tray menu", popup, timeout=10)


def choose(display, icon, keys, what):
    menu = open_menu(display, icon)
    for key in keys.split():
        x11.xdotool("key", key)
        time.sleep(0.2)
    x11.xdotool("key", "Return")
    wait_for(f"the menu to close after « {what} »", lambda: menu not in x11.visible_windows(), timeout=10)


def run(args, work):
    checks = Checks()
    fakes, server = fake_services.start(carriers=CARRIERS, failing=0)
    fake_url = f"http://127.0.0.1:{server.server_address[1]}"
    data_dir = os.path.join(work, "data")
    env = harness.cloud_api_env(
        work,
        fake_url,
        RELAY_DATA_DIR=data_dir,
        RELAY_THROTTLE_MS=str(THROTTLE_MS),
        RELAY_JITTER_MS="0",
    )
    tray = harness.trayer(env)
    display = x11.Display()
    app_log = open(os.path.join(work, "app.log"), "w")
    app = None
    try:
        wait_for("trayer's panel", lambda: x11.search("--name", "^panel$"), timeout=10)
        app = subprocess.Popen([os.path.abspath(args.binary)], env=env, stdout=app_log, stderr=subprocess.STDOUT)

        icon = wait_for("the tray icon", lambda: next(iter(x11.search("--onlyvisible", "--class", ICON_CLASS)), None),
                        timeout=30)
        assert in_panel(icon), "the icon is embedded in the tray's panel"
        window = wait_for("the window's first screen", lambda: (lambda w: w if w and display.rgb(w, 5, 500) == SIDEBAR_RGB
                                                                 else None)(main_window()), timeout=30)
        wait_for("the idle icon", lambda: icon_tone(display, icon) == "green", timeout=30)
        checks.ok("l'icône est dans la zone de notification (trayer), verte au repos")

        fakes.add_order(fake_services.order(201, "CMD-2025-201"))
        wait_for("the broadcast to start", lambda: sent_for(fakes, 201) >= 1, timeout=30)
        wait_for("the sending icon", lambda: icon_tone(display, icon) == "blue", timeout=10)
        checks.ok("l'icône passe au bleu pendant l'envoi")

        display.ask_to_close(window)
        wait_for("the window to hide", lambda: main_window() is None, timeout=10)
        at_close = sent_for(fakes, 201)
        assert app.poll() is None, "closing the window does not stop the app"
        assert at_close < ELIGIBLE, f"the broadcast was over before the window closed ({at_close})"
        assert x11.search("--onlyvisible", "--class", ICON_CLASS) == [icon], "the icon stays"
        wait_for(f"all {ELIGIBLE} carriers", lambda: sent_for(fakes, 201) == ELIGIBLE,
                 timeout=30 + ELIGIBLE * THROTTLE_MS / 1000)
        checks.ok(f"fenêtre fermée : elle disparaît, l'icône reste, l'envoi continue ({at_close} → {ELIGIBLE} envoyés)")
        wait_for("the idle icon again", lambda: icon_tone(display, icon) == "green", timeout=15)

        choose(display, icon, "Down", "Ouvrir")
        wait_for("the window back", main_window, timeout=10)
        checks.ok("menu « Ouvrir » : la fenêtre revient")

        # Pause from the tray: the next order is queued and waits; the same entry resumes it.
        choose(display, icon, "Down Down", "Mettre en pause")
        wait_for("the paused icon", lambda: icon_tone(display, icon) == "orange", timeout=10)
        fakes.add_order(fake_services.order(202, "CMD-2025-202", route=2))
        wait_for("order 202 queued", lambda: queued_for(data_dir, 202) == ELIGIBLE, timeout=30)
        time.sleep(10 * THROTTLE_MS / 1000)
        assert sent_for(fakes, 202) == 0, f"{sent_for(fakes, 202)} sent while paused"
        assert icon_tone(display, icon) == "orange", "the icon stays orange while paused"
        checks.ok(f"menu « Mettre en pause » : icône orange, la commande suivante attend "
                  f"({ELIGIBLE} en file, aucun envoyé)")
        choose(display, icon, "Down Down", "Reprendre les envois")
        wait_for(f"all {ELIGIBLE} carriers of 202", lambda: sent_for(fakes, 202) == ELIGIBLE,
                 timeout=30 + ELIGIBLE * THROTTLE_MS / 1000)
        wait_for("the idle icon after the resumed broadcast", lambda: icon_tone(display, icon) == "green", timeout=15)
        checks.ok(f"menu « Reprendre les envois » : la commande part ({ELIGIBLE} envoyés), l'icône redevient verte")

        fakes.add_order(fake_services.order(203, "CMD-2025-203", route=1))
        wait_for("the next broadcast", lambda: sent_for(fakes, 203) >= 3, timeout=30)
        choose(display, icon, "Up", "Quitter")
        code = app.wait(30)
        assert code == 0, f"the app exited with {code}"
        assert x11.search("--onlyvisible", "--class", ICON_CLASS) == [], "the icon is gone"
        received = sent_for(fakes, 203)
        db = sqlite3.connect(os.path.join(data_dir, "relay.db"))
        rows = dict(db.execute("SELECT status, COUNT(*) FROM deliveries WHERE order_id = 203 GROUP BY status"))
        db.close()
        assert rows.get("sending", 0) == 0 and rows.get("interrupted", 0) == 0, rows
        assert rows.get("sent", 0) == received, (rows, received)
        assert received < ELIGIBLE, f"Quitter came after the end of the broadcast ({received})"
        checks.ok(f"menu « Quitter » : l'application s'arrête (code 0) après l'envoi en cours "
                  f"({received} envoyés et enregistrés, {rows.get('queued', 0)} en file, aucun en cours)")

        # Started with the session (the autostart entry's argument): tray only, no window ever
        # mapped — watched from the spawn on, every 20 ms; it sends what was left queued.
        app = subprocess.Popen([os.path.abspath(args.binary), "--au-demarrage"], env=env,
                               stdout=app_log, stderr=subprocess.STDOUT)
        shown = []

        def hidden_until(done):
            if main_window() is not None:
                shown.append(time.monotonic())
            return done()
        icon = wait_for("the tray icon (started at login)", lambda: hidden_until(
            lambda: next(iter(x11.search("--onlyvisible", "--class", ICON_CLASS)), None)), timeout=30, every=0.02)
        wait_for("the rest of order 203", lambda: hidden_until(lambda: sent_for(fakes, 203) == ELIGIBLE),
                 timeout=30 + ELIGIBLE * THROTTLE_MS / 1000, every=0.02)
        assert not shown, "the window was shown when started at login"
        checks.ok(f"lancée avec --au-demarrage : icône seule, aucune fenêtre, l'envoi reprend "
                  f"({sent_for(fakes, 203)} envoyés pour CMD-2025-203)")
        choose(display, icon, "Down", "Ouvrir")
        window = wait_for("the window shown from the tray", main_window, timeout=10)
        checks.ok("puis menu « Ouvrir » : la fenêtre s'affiche")

        # Moved and resized (no window manager here: the X requests apply as asked), then closed.
        x11.xdotool("windowsize", str(window), str(MOVED[2]), str(MOVED[3]))
        x11.xdotool("windowmove", str(window), str(MOVED[0]), str(MOVED[1]))
        wait_for("the new geometry", lambda: x11.geometry(window) == MOVED, timeout=10)
        display.ask_to_close(window)
        wait_for("the window to hide", lambda: main_window() is None, timeout=10)

        # A second launch: the running app shows its window, the newcomer leaves.
        second = subprocess.Popen([os.path.abspath(args.binary)], env=env, stdout=app_log, stderr=subprocess.STDOUT)
        try:
            code = second.wait(20)
        except subprocess.TimeoutExpired:
            second.kill()
            raise AssertionError("the second launch is still running: two relays on one data directory")
        wait_for("the first window back", main_window, timeout=10)
        assert app.poll() is None, "the first app still runs"
        assert len(x11.search("--onlyvisible", "--class", ICON_CLASS)) == 1, "one tray icon"
        checks.ok(f"deuxième lancement : il s'arrête (code {code}) et la fenêtre de la première "
                  f"instance revient, une seule icône")

        choose(display, icon, "Up", "Quitter")
        assert app.wait(30) == 0
        app = subprocess.Popen([os.path.abspath(args.binary)], env=env, stdout=app_log, stderr=subprocess.STDOUT)
        window = wait_for("the window at the next start", main_window, timeout=30)
        wait_for("the remembered geometry", lambda: x11.geometry(window) == MOVED, timeout=10)
        checks.ok(f"fenêtre déplacée et redimensionnée, puis Quitter : au lancement suivant elle "
                  f"revient à {MOVED[0]},{MOVED[1]} en {MOVED[2]}×{MOVED[3]}")
    finally:
        if app and app.poll() is None:
            app.send_signal(signal.SIGTERM)
            try:
                app.wait(30)
            except subprocess.TimeoutExpired:
                app.kill()
        app_log.close()
        tray.terminate()
        server.shutdown()
    return checks


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", required=True)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    # run.sh passes test_desktop.py's options to every e2e file; the others are not ours.
    args, _ = parser.parse_known_args()
    for tool in ("trayer", "xdotool", "xwininfo"):
        if not shutil.which(tool):
            print(f"e2e: ÉCHEC (barre système) : {tool} manquant, lancez scripts/desktop-deps.sh", file=sys.stderr)
            return 1
    return harness.run_main(args, run, prefix="relay-e2e-tray-", label="barre système",
                            logs=("app.log",))


if __name__ == "__main__":
    sys.exit(main())
