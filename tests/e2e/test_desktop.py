#!/usr/bin/env python3
"""End-to-end test of the desktop app in its real webview (WebKitGTK), through tauri-driver
and WebKitWebDriver, with the engine on the Cloud API channel pointed at loopback fakes.

The app polls the fake CamionBack API, broadcasts order CMD-2025-123 to the fake's carriers
through the fake Cloud API (two numbers refused), and the test drives the window: the history
shows the order's rows, the relaunch dialog counts the carriers who did not get it, the
relaunch sends to exactly them, and no secret reaches the page. At the end an order being
broadcast is filled at CamionBack: the window says "Commande pourvue — N envois évités" and asks
before relaunching it.

Run through tests/e2e/run.sh (it builds the binary and provides Xvfb and a D-Bus session).
Standard library only. `--screenshots DIR` also saves full-screen captures (ImageMagick
`import -window root`) of each screen, with a tray (trayer) and a notification server (dunst).
"""

import argparse
import base64
import csv
import http.client
import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request

import fakes as fake_services
import harness

ORDER_ID = 123
REFERENCE = "CMD-2025-123"
SECOND_REFERENCE = "CMD-2025-124"



class WebDriverError(Exception):
    pass


class Session:
    """The few WebDriver calls the test needs, over plain HTTP."""

    def __init__(self, base, application):
        self.base = base
        caps = {"capabilities": {"alwaysMatch": {
            "browserName": "wry",
            "tauri:options": {"application": application},
        }}}
        self.id = self.request("POST", "/session", caps)["sessionId"]

    def request(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        for attempt in range(4):
            req = urllib.request.Request(self.base + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(req, timeout=60) as resp:
                    return json.loads(resp.read() or b"{}").get("value")
            except urllib.error.HTTPError as err:
                raise WebDriverError(f"{method} {path}: {err.code} {err.read()[:500]!r}") from None
            except (http.client.RemoteDisconnected, ConnectionResetError) as err:
                # tauri-driver now and then reuses a connection to WebKitWebDriver that the
                # latter already closed ("client error (SendRequest)" in its log): the request
                # never reached the webview, so sending it again is safe.
                if attempt == 3:
                    raise WebDriverError(f"{method} {path}: {err}") from None
                time.sleep(0.2)

    def cmd(self, method, path, body=None):
        return self.request(method, f"/session/{self.id}{path}", body)

    def script(self, source, *args):
        return self.cmd("POST", "/execute/sync", {"script": source, "args": list(args)})

    def find(self, css):
        found = self.cmd("POST", "/elements", {"using": "css selector", "value": css})
        return [next(iter(e.values())) for e in found]

    def click(self, css):
        elements = self.find(css)
        if not elements:
            raise WebDriverError(f"nothing matches {css}")
        self.cmd("POST", f"/element/{elements[0]}/click", {})

    def text(self, css):
        elements = self.find(css)
        if not elements:
            return None
        return self.cmd("GET", f"/element/{elements[0]}/text")

    def source(self):
        return self.cmd("GET", "/source")

    def close(self):
        try:
            self.request("DELETE", f"/session/{self.id}")
        except Exception:
            pass


def wait_for(what, check, timeout=30.0, every=0.25):
    """Polls `check()` until it returns a truthy value; fails with `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except (WebDriverError, OSError) as err:
            last = err
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s waiting for {what} (last: {last!r})")


class Checks:
    def __init__(self):
        self.passed = []

    def ok(self, name):
        self.passed.append(name)
        print(f"  ✔ {name}", flush=True)


def capture(directory, name, display_wait=0.6):
    if not directory:
        return
    time.sleep(display_wait)
    path = os.path.join(directory, f"{name}.png")
    subprocess.run(["import", "-window", "root", path], check=True)
    print(f"  📸 {path}", flush=True)


def statuses(session):
    return session.script(
        "return [...document.querySelectorAll('tr.delivery')].map(r => r.dataset.status);"
    )

def history_rows(session):
    """The delivery rows the grid shows: id, status, the text of each cell, and the error cell's
    tooltip (the provider's own words when the cell explains the code in French)."""
    return session.script(
        "return [...document.querySelectorAll('tr.delivery')].map(r => "
        "({id: r.dataset.id, status: r.dataset.status, cells: [...r.cells].map(c => c.textContent), "
        "error_title: r.querySelector('td.error-cell')?.title ?? ''}));")


def set_filters(session, **values):
    """Types the history filters (status, order, text, from, to) as staff would, then « Filtrer »."""
    session.script(
        "const form = document.querySelector('#history-filters'); form.reset();"
        "for (const [name, value] of Object.entries(arguments[0])) form.elements[name].value = value;"
        "document.querySelector('#filter-apply').click();", values)


def rows_once(session, check, what, timeout=10):
    return wait_for(what, lambda: (lambda rows: rows if check(rows) else None)(history_rows(session)),
                    timeout=timeout)


def check_history_filters(session, checks, fakes):
    # A second order, so the order filter has something to leave out.
    before = len(history_rows(session))
    fakes.add_order(fake_services.order(ORDER_ID + 1, SECOND_REFERENCE, route=1))

    def settled():
        set_filters(session)
        time.sleep(0.3)
        rows = history_rows(session)
        return rows if len(rows) > before and not any(
            r["status"] in ("queued", "sending") for r in rows) else None
    everything = wait_for(f"{SECOND_REFERENCE} polled and broadcast", settled, timeout=60)
    total = len(everything)
    first = [r["id"] for r in everything if r["cells"][3] == REFERENCE]
    second = [r["id"] for r in everything if r["cells"][3] == SECOND_REFERENCE]
    assert first and second and len(first) + len(second) == total, everything

    failed = [r["id"] for r in everything if r["status"] == "failed"]
    assert failed, "the fake refuses two numbers: failed rows exist"
    set_filters(session, status="failed")
    rows_once(session, lambda rows: sorted(r["id"] for r in rows) == sorted(failed),
              f"only the {len(failed)} failed rows")
    # Meta's 131026 reads in French with what to do; Meta's own words stay in the tooltip.
    cells = session.script(
        "return [...document.querySelectorAll('tr.delivery td.error-cell')]"
        ".map(c => ({text: c.textContent, title: c.title}));")
    assert cells and all(c["text"].startswith("WhatsApp n'a pas pu remettre le message")
                         and "Vérifiez le numéro" in c["text"]
                         and "undeliverable" not in c["text"] for c in cells), cells
    assert all("Message undeliverable" in c["title"] and "(131026)" in c["title"] for c in cells), cells

    name = everything[0]["cells"][1]
    named = [r["id"] for r in everything if name.lower() in r["cells"][1].lower()]
    set_filters(session, text=name.upper())
    rows_once(session, lambda rows: sorted(r["id"] for r in rows) == sorted(named),
              f"the rows of « {name} » (search ignores case)")

    set_filters(session, order=REFERENCE)
    rows_once(session, lambda rows: sorted(r["id"] for r in rows) == sorted(first),
              f"only the {len(first)} rows of {REFERENCE}")
    set_filters(session, order=str(ORDER_ID + 1))
    rows_once(session, lambda rows: sorted(r["id"] for r in rows) == sorted(second),
              f"only the {len(second)} rows of order {ORDER_ID + 1} (by id)")
    set_filters(session, order="CMD-INCONNUE")
    wait_for("an unknown order refused", lambda: "inconnue" in (session.text("#history-error") or ""))

    today = time.strftime("%d/%m/%Y")
    yesterday = time.strftime("%d/%m/%Y", time.localtime(time.time() - 86400))
    set_filters(session, **{"from": today, "to": today})
    rows_once(session, lambda rows: len(rows) == total, "today's rows")
    set_filters(session, **{"from": yesterday, "to": yesterday})
    wait_for("nothing yesterday", lambda: "Aucun envoi" in (session.text("#history-rows") or ""))
    set_filters(session)
    rows_once(session, lambda rows: len(rows) == total, "every row again")
    checks.ok(f"filtres : statut ({len(failed)} échecs, erreur 131026 expliquée en français), recherche « {name} » ({len(named)}), "
              f"commande ({len(first)} + {len(second)}), plage de dates (aujourd'hui {total}, hier 0)")
    return everything


def check_history_sort(session, checks):
    def sorted_by(header, direction):
        return session.script(
            f"return document.querySelector('button.sort[data-sort={header}]').parentElement"
            f".getAttribute('aria-sort') === '{direction}';")

    session.click("button.sort[data-sort=carrier]")
    wait_for("sorted by carrier", lambda: sorted_by("carrier", "ascending"))
    names = [r["cells"][1].lower() for r in history_rows(session)]
    assert names == sorted(names), names
    assert not session.find("tr.group"), "rows of a carrier sort are not grouped by order"
    session.click("button.sort[data-sort=carrier]")
    wait_for("sorted by carrier, Z first", lambda: sorted_by("carrier", "descending"))
    names = [r["cells"][1].lower() for r in history_rows(session)]
    assert names == sorted(names, reverse=True), names

    session.click("button.sort[data-sort=status]")
    wait_for("sorted by status", lambda: sorted_by("status", "ascending"))
    codes = [r["status"] for r in history_rows(session)]
    assert codes == sorted(codes), codes

    session.click("button.sort[data-sort=date]")
    wait_for("newest first again", lambda: sorted_by("date", "descending") and session.find("tr.group"))
    checks.ok("tri : transporteur A→Z puis Z→A, statut, retour à la date (plus récents d'abord)")


def check_history_export(session, checks, downloads):
    set_filters(session, status="failed")
    shown = rows_once(session, lambda rows: rows and all(r["status"] == "failed" for r in rows),
                      "the failed rows before export")
    session.click("#history-export")
    path = wait_for("the export confirmation", lambda: session.script(
        "const r = document.querySelector('#history-export-result');"
        "return r.hidden ? null : r.dataset.path;"), timeout=15)
    assert os.path.dirname(path) == downloads, (path, downloads)
    assert re.fullmatch(r"historique-\d{8}-\d{4}\.csv", os.path.basename(path)), path
    with open(path, encoding="utf-8") as f:
        text = f.read()
    assert text.startswith("\ufeff"), "a BOM, for Excel"
    records = list(csv.reader(io.StringIO(text[1:], newline=""), delimiter=";"))
    assert records[0] == ["Date d'envoi", "Transporteur", "Numéro", "Référence commande", "Statut",
                          "Tentatives", "Erreur", "Code erreur"], records[0]
    exported = sorted((r[1], r[2], r[3]) for r in records[1:])
    expected = sorted((r["cells"][1], r["cells"][2], r["cells"][3]) for r in shown)
    assert exported == expected, (exported, expected)
    assert all(r[4] == "Échec" for r in records[1:]), records
    assert all(re.fullmatch(r"\d{2}/\d{2}/\d{4} \d{2}:\d{2}", r[0]) for r in records[1:]), records
    set_filters(session)
    checks.ok(f"« Exporter CSV » (statut échec) écrit {os.path.basename(path)} : "
              f"exactement les {len(records) - 1} lignes filtrées")


# --- Paramètres: editing, validation, preview, applying (issue 4) ---

NEW_TEMPLATE = "Commande {{reference}} : {{ville_depart}} → {{ville_arrivee}}, {{prix}} MAD"


def set_field(session, css, value):
    """Types into a field as the page sees it (value, then an `input` event)."""
    session.script(
        "const el = document.querySelector(arguments[0]); el.value = arguments[1];"
        "el.dispatchEvent(new Event('input', {bubbles: true}));", css, value)


def read(path):
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except FileNotFoundError:
        return None


def check_settings_bad_url(session, checks, data_dir, screenshots):
    """A URL without scheme is refused next to its field; config.toml is not touched."""
    config = os.path.join(data_dir, "config.toml")
    before = read(config)
    note = session.text("dd[data-key=CAMIONBACK_API_URL] .origin") or ""
    assert "variable d'environnement" in note and "n'aura pas d'effet" in note, note
    set_field(session, "#field-CAMIONBACK_API_URL", "camionback.com/api")
    session.click("#settings-save")
    error = wait_for("the URL error next to its field",
                     lambda: session.text("#error-CAMIONBACK_API_URL"), timeout=10)
    assert "camionback.com/api" in error and "n'est pas une URL" in error, error
    status = session.text("#settings-message") or ""
    assert "rien n'a été enregistré" in status, status
    assert read(config) == before, "a refused edit changed config.toml"
    assert read(os.path.join(data_dir, "template.txt")) is None
    checks.ok(f"Paramètres : URL invalide refusée à côté du champ (« {error[:60]}… »), config.toml inchangé")
    capture(screenshots, "parametres-erreur")
    session.click("#settings-reset")


def check_settings_edit_applies(session, checks, fakes, data_dir, eligible, screenshots):
    """Throttle + template changed: the preview follows typing, the save is applied (the relay
    restarts), and the next order reaches carriers with exactly the new text."""
    set_field(session, "#template-input", "Commande {{reference}} : {{trajet}}")
    wait_for("the unknown placeholder error", lambda: "{{trajet}}" in (session.text("#error-template") or ""),
             timeout=10)
    set_field(session, "#template-input", NEW_TEMPLATE)
    # The preview uses the newest order: the second one, which came by polling.
    expected_preview = f"Commande {SECOND_REFERENCE} : Tanger → Agadir, 4 500 MAD"
    wait_for("the preview of the new template",
             lambda: session.text("#template-preview") == expected_preview, timeout=10)
    assert not session.text("#error-template"), session.text("#error-template")
    checks.ok(f"Paramètres : l'aperçu suit la saisie (« {expected_preview} »), variable inconnue signalée")

    set_field(session, "#field-RELAY_THROTTLE_MS", "300")
    started = time.monotonic()
    session.click("#settings-save")
    message = wait_for("the saved-and-applied message", lambda: (
        lambda t: t if t and "appliqués" in t else None)(session.text("#settings-message")), timeout=60)
    config = read(os.path.join(data_dir, "config.toml")) or ""
    assert "RELAY_THROTTLE_MS = 300" in config, config
    assert read(os.path.join(data_dir, "template.txt")) == NEW_TEMPLATE + "\n"
    assert oct(os.stat(os.path.join(data_dir, "config.toml")).st_mode & 0o777) == "0o600"
    assert session.script("return document.querySelector('#field-RELAY_THROTTLE_MS').value;") == "300"
    applied_in = time.monotonic() - started
    checks.ok(f"Paramètres : enregistré et appliqué en {applied_in:.1f} s, redémarrage compris (« {message} »)")
    capture(screenshots, "parametres-enregistre")

    already = len(fakes.sent_messages())
    fakes.add_order(fake_services.order(ORDER_ID + 2, "CMD-2025-125", route=2))
    wait_for("the next order sent with the new template",
             lambda: len(fakes.sent_messages()) >= already + eligible + 2, timeout=60)
    texts = {m["text"]["body"] for m in fakes.sent_messages()[already:]}
    assert texts == {"Commande CMD-2025-125 : Rabat → Fès, 4 500 MAD"}, texts
    checks.ok("la commande suivante part avec le nouveau modèle (texte exact reçu par l'API Cloud factice)")


# --- Paramètres: start at login ---

def check_autostart(session, checks, home):
    """The "Démarrage" box writes the session's autostart entry (hidden start), and removes it."""
    entry = os.path.join(home, ".config", "autostart", "CamionBack Relay.desktop")
    assert not os.path.exists(entry)
    box = "#autostart-toggle"
    wait_for("the autostart box", lambda: session.script(
        "const b = document.querySelector(arguments[0]); return b && !b.disabled && !b.checked;", box),
        timeout=10)
    session.click(box)
    text = wait_for("the autostart entry", lambda: read(entry), timeout=10)
    assert "--au-demarrage" in text and "camionback-relay-desktop" in text, text
    session.click(box)
    wait_for("the autostart entry removed", lambda: not os.path.exists(entry), timeout=10)
    checks.ok("Paramètres : « Lancer à l'ouverture de session » écrit puis retire l'entrée de démarrage (--au-demarrage)")


# --- Tableau de bord: pause / resume (engine-level, every channel) ---

def check_dashboard_pause(session, checks, fakes, eligible, screenshots):
    """Paused from the dashboard, a new order is queued but nothing leaves until "Reprendre"."""
    session.click("#pause-toggle")
    wait_for("the paused notice", lambda: "Envois en pause" in (session.text("#dashboard-body") or ""),
             timeout=10)
    assert "Reprendre" in session.text("#pause-toggle"), session.text("#pause-toggle")
    already = len(fakes.sent_messages())
    fakes.add_order(fake_services.order(ORDER_ID + 3, "CMD-2025-126", route=3))
    queued = wait_for("the new order queued while paused", lambda: (
        lambda n: n if n and n >= eligible + 2 else None)(int(session.text("#queue-depth") or 0)), timeout=60)
    capture(screenshots, "tableau-de-bord-pause")
    time.sleep(1.5)
    assert len(fakes.sent_messages()) == already, "a message left while paused"
    checks.ok(f"Tableau de bord : en pause, la commande suivante reste en file ({queued} messages), rien n'est envoyé")

    session.click("#pause-toggle")
    wait_for("sending resumed", lambda: len(fakes.sent_messages()) >= already + eligible + 2, timeout=60)
    assert "Mettre en pause" in session.text("#pause-toggle"), session.text("#pause-toggle")
    checks.ok("Tableau de bord : « Reprendre les envois » envoie la file")


# --- Commande pourvue: CamionBack closes an order being broadcast ---

def check_closed_order(session, checks, fakes, eligible):
    """Paused with an order queued, CamionBack's API says it is filled: the relay skips its
    queue, nothing of it leaves after "Reprendre", the dashboard and the history say
    "Commande pourvue — N envois évités", and the relaunch dialog asks before forcing it."""
    reference = "CMD-2025-127"
    session.click("#nav-dashboard")
    session.click("#pause-toggle")
    wait_for("the paused notice", lambda: "Envois en pause" in (session.text("#dashboard-body") or ""),
             timeout=10)
    already = len(fakes.sent_messages())
    fakes.add_order(fake_services.order(ORDER_ID + 4, reference, route=4))
    wait_for(f"{reference} queued while paused", lambda: (
        lambda n: n if n and n >= eligible + 2 else None)(int(session.text("#queue-depth") or 0)), timeout=60)
    fakes.set_statut(ORDER_ID + 4, "attribuee")
    avoided = eligible + 2
    headline = f"Commande pourvue — {avoided} envois évités"
    wait_for("the dashboard's closed order", lambda: headline in (session.text("#dashboard-body") or ""),
             timeout=30)
    assert reference in session.text("#dashboard-body")
    checks.ok(f"Tableau de bord : « {headline} » pour {reference} fermée chez CamionBack")

    session.click("#pause-toggle")
    wait_for("sending resumed", lambda: "Mettre en pause" in (session.text("#pause-toggle") or ""), timeout=10)
    session.click("#nav-history")
    set_filters(session, order=reference)
    header = wait_for(f"the header of {reference}", lambda: (
        lambda t: t if t and reference in t and headline in t else None)(session.text("tr.group")), timeout=20)
    rows = statuses(session)
    assert rows and all(s in ("skipped", "invalid_number") for s in rows), rows
    assert len(fakes.sent_messages()) == already, "a message of the closed order left"
    checks.ok(f"Historique : « {header.strip()[:80]}… », {rows.count('skipped')} envois ignorés, aucun parti")

    session.click("button.relaunch")
    wait_for("the relaunch dialog", lambda: session.script(
        "return document.querySelector('#relaunch-dialog').open;"), timeout=10)
    assert not session.script("return document.querySelector('#relaunch-closed').hidden;")
    assert session.text("#relaunch-closed-headline") == headline, session.text("#relaunch-closed-headline")
    assert session.script("return document.querySelector('#relaunch-confirm').disabled;"), \
        "a closed order can be relaunched without confirming"
    session.click("#relaunch-force")
    wait_for("the confirm button enabled", lambda: not session.script(
        "return document.querySelector('#relaunch-confirm').disabled;"), timeout=5)
    session.click("#relaunch-confirm")
    wait_for("the forced relaunch sent", lambda: len(fakes.sent_messages()) >= already + eligible, timeout=60)
    checks.ok("Relance d'une commande pourvue : demandée confirmation (« Relancer quand même »), puis envoyée")


def run(args, work):
    checks = Checks()
    fakes, server = fake_services.start(carriers=args.carriers, failing=2, delay=args.send_delay)
    fakes.add_order(fake_services.order(ORDER_ID, REFERENCE))
    fake_url = f"http://127.0.0.1:{server.server_address[1]}"

    env = harness.cloud_api_env(
        work,
        fake_url,
        # The autostart entry goes to $HOME/.config/autostart: the test's own home.
        HOME=os.path.join(work, "home"),
        # Orders being broadcast are checked at the fake API every second (still open?).
        CAMIONBACK_ORDER_CHECK_SECS="1",
    )
    # The throttle comes from config.toml, as staff would set it, so the settings screen can
    # change it (a value from the environment would win over the file).
    data_dir = env["RELAY_DATA_DIR"]
    os.makedirs(data_dir, mode=0o700, exist_ok=True)
    os.makedirs(env["HOME"], exist_ok=True)
    with open(os.path.join(data_dir, "config.toml"), "w") as f:
        f.write(f"# écrit par test_desktop.py\nRELAY_THROTTLE_MS = {args.throttle_ms}\n")
    # "Exporter CSV" writes into the XDG download folder: one of the test's own.
    downloads = os.path.join(work, "Téléchargements")
    os.makedirs(downloads, exist_ok=True)
    os.makedirs(env["XDG_CONFIG_HOME"], exist_ok=True)
    with open(os.path.join(env["XDG_CONFIG_HOME"], "user-dirs.dirs"), "w") as f:
        f.write(f'XDG_DOWNLOAD_DIR="{downloads}"\n')
    helpers = harness.screenshot_helpers(args.screenshots, work, env)
    driver = harness.Driver(args, work, env)
    session = None
    try:
        driver.wait_ready(wait_for)
        started = time.monotonic()
        session = Session(driver.url, os.path.abspath(args.binary))
        wait_for("the window's navigation", lambda: session.find("#nav-history"), timeout=30)
        title = session.cmd("GET", "/title")
        assert title == "CamionBack Relay", title
        checks.ok(f"la fenêtre s'ouvre ({time.monotonic() - started:.1f} s), titre « {title} »")

        # The engine starts, polls the fake API, and the broadcast starts.
        wait_for("the engine running", lambda: session.script(
            "return document.querySelector('#engine-banner').hidden;"), timeout=30)
        checks.ok("le moteur démarre (bandeau « démarrage » disparu)")
        if args.screenshots:
            wait_for("a broadcast in progress", lambda: session.find(".broadcast"), timeout=30)
            capture(args.screenshots, "tableau-de-bord-envoi", display_wait=2.5)

        session.click("#nav-history")
        # The fake lists one blocked, one pending and one unusable number; two of the others
        # are refused by the fake Cloud API: `eligible` is how many get the order.
        eligible = args.carriers - 5
        expected_rows = eligible + 3  # + the two refused numbers + the unusable number
        wait_for(f"{expected_rows} history rows for {REFERENCE}",
                 lambda: len(statuses(session)) == expected_rows, timeout=30)
        first_look = statuses(session)
        live_shown = session.script("return !document.querySelector('#history-live').hidden;")
        header = session.text("tr.group")
        assert REFERENCE in header and "Casablanca → Marrakech" in header, header
        checks.ok(f"l'historique montre les {expected_rows} envois de {REFERENCE}")

        final = wait_for("the broadcast to finish", lambda: (
            lambda s: s if not any(x in ("queued", "sending") for x in s) else None)(statuses(session)),
            timeout=60 + args.carriers * args.throttle_ms / 1000)
        counts = {s: final.count(s) for s in set(final)}
        assert counts == {"sent": eligible, "failed": 2, "invalid_number": 1}, counts
        # The page was never reloaded by the test: the final statuses came from live updates.
        assert any(s in ("queued", "sending") for s in first_look), f"broadcast over too soon: {first_look}"
        assert live_shown, "the « en direct » mark was not shown while sending"
        checks.ok(f"mises à jour en direct (« en direct » affiché) jusqu'aux statuts finaux : {counts}")
        capture(args.screenshots, "historique")

        messages = fakes.sent_messages()
        assert len(messages) == eligible + 2, len(messages)
        assert "Nouvelle commande disponible sur CamionBack" in messages[0]["text"]["body"]
        checks.ok(f"l'API Cloud factice a reçu {len(messages)} messages, au bon modèle")

        session.click("button.relaunch")
        wait_for("the relaunch dialog", lambda: session.script(
            "return document.querySelector('#relaunch-dialog').open;"), timeout=10)
        missing = session.text("#relaunch-count-missing")
        everyone = session.text("#relaunch-count-all")
        sentence = session.text("#relaunch-sentence")
        assert missing == "(2 transporteurs)", missing
        assert everyone == f"({eligible + 2} transporteurs)", everyone
        assert sentence == f"2 transporteurs vont recevoir la commande {REFERENCE}.", sentence
        assert session.script("return document.querySelector('input[value=missing]').checked;")
        # Nobody is in doubt (no interrupted or uncertain send): no box to include them.
        assert session.script("return document.querySelector('#relaunch-doubtful').hidden;")
        checks.ok(f"le dialogue de relance compte {missing[1:-1]} (par défaut) sur {everyone[1:-1]}")
        capture(args.screenshots, "relance")

        session.click("#relaunch-confirm")
        wait_for("the relaunch batch in the history", lambda: "relance n°1" in (session.text("tr.group") or ""),
                 timeout=15)
        wait_for("the relaunch to be sent", lambda: len(fakes.sent_messages()) == eligible + 4, timeout=20)
        resent = {m["to"] for m in fakes.sent_messages()[eligible + 2:]}
        assert resent == fakes.failing, (resent, fakes.failing)
        checks.ok("la relance n'envoie qu'aux 2 transporteurs qui ne l'avaient pas reçue")
        wait_for("the relaunch rows settled", lambda: not any(
            s in ("queued", "sending") for s in statuses(session)), timeout=20)

        check_history_filters(session, checks, fakes)
        check_history_sort(session, checks)
        check_history_export(session, checks, downloads)

        session.click("#nav-carriers")
        wait_for("the carrier rows", lambda: len(session.find("#carriers-rows tr")) == args.carriers, timeout=10)
        labels = session.script(
            "return [...document.querySelectorAll('#carriers-rows .badge')].map(b => b.textContent);")
        assert labels.count("bloqué") == 1 and labels.count("en attente") == 1, labels
        checks.ok(f"l'écran Transporteurs liste les {args.carriers} transporteurs et leur statut")
        capture(args.screenshots, "transporteurs")

        session.click("#nav-settings")
        wait_for("the settings", lambda: session.find("#template-preview"), timeout=10)
        token_shown = session.text("dd[data-key=WHATSAPP_TOKEN] .secret-state")
        assert token_shown == "🔒 défini (masqué)", token_shown
        page = session.source()
        for secret in (fake_services.WHATSAPP_TOKEN, fake_services.CAMIONBACK_TOKEN):
            assert secret not in page, "a secret reached the webview"
        checks.ok("Paramètres : secrets masqués, absents de la page")
        capture(args.screenshots, "parametres")
        if args.screenshots:
            session.script("document.querySelector('#template-preview').scrollIntoView();")
            capture(args.screenshots, "parametres-message")
        check_settings_bad_url(session, checks, data_dir, args.screenshots)
        check_settings_edit_applies(session, checks, fakes, data_dir, eligible, args.screenshots)
        check_autostart(session, checks, env["HOME"])
        page = session.source()
        for secret in (fake_services.WHATSAPP_TOKEN, fake_services.CAMIONBACK_TOKEN):
            assert secret not in page, "a secret reached the webview after saving"

        session.click("#nav-whatsapp")
        wait_for("the WhatsApp screen", lambda: "API Cloud" in (session.text("#wa-status") or ""), timeout=10)
        checks.ok("Connexion WhatsApp : indique le canal API Cloud")
        capture(args.screenshots, "connexion-whatsapp-cloud-api")

        session.click("#nav-dashboard")
        wait_for("the dashboard", lambda: session.find("#no-broadcast") and session.find(".count"), timeout=10)
        capture(args.screenshots, "tableau-de-bord")
        checks.ok("Tableau de bord : aucun envoi en cours, compteurs du jour")
        check_dashboard_pause(session, checks, fakes, eligible, args.screenshots)
        check_closed_order(session, checks, fakes, eligible)
    except BaseException:
        # What the window showed when it failed, for the report.
        if session:
            try:
                with open(os.path.join(work, "page.html"), "w") as f:
                    f.write(session.source() or "")
                png = session.cmd("GET", "/screenshot")
                with open(os.path.join(work, "window.png"), "wb") as f:
                    f.write(base64.b64decode(png))
            except Exception:
                pass
        raise
    finally:
        if session:
            session.close()
        driver.stop()
        for helper in helpers:
            helper.terminate()
        server.shutdown()
    return checks


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", required=True)
    parser.add_argument("--tauri-driver", default=shutil.which("tauri-driver") or "tauri-driver")
    parser.add_argument("--native-driver", default="/usr/bin/WebKitWebDriver")
    parser.add_argument("--screenshots", default=None)
    parser.add_argument("--carriers", type=int, default=12)
    parser.add_argument("--throttle-ms", type=int, default=500)
    parser.add_argument("--send-delay", type=float, default=0.0)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    return harness.run_main(args, run, prefix="relay-e2e-")


if __name__ == "__main__":
    sys.exit(main())
