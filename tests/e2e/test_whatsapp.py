#!/usr/bin/env python3
"""End-to-end test of linking WhatsApp Web in the real window: the app runs with
RELAY_CHANNEL=whatsapp-web against the loopback simulator (`relay-wa-sim`, crates/wa-sim), whose
simulated phones play CamionBack's phone and the carriers' phones.

The story: staff open the app, the "Connexion WhatsApp" screen shows a QR code with a
countdown; the server rotates the code and the screen shows the new one; the CamionBack phone
scans it and the screen shows the linked number; an order arrives by webhook and the carriers'
phones decrypt exactly the message of the spec; someone removes the relay from the phone's
"Appareils connectés" and the screen says a new QR code is needed, and shows one.

Run through tests/e2e/run.sh (it builds both binaries and provides Xvfb and a D-Bus session).
Standard library only; the WebDriver client and helpers are test_desktop.py's.
"""

import argparse
import base64
import hashlib
import hmac
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time
import urllib.request

import fakes as fake_services
import harness
from harness import free_port
from test_desktop import Checks, Session, capture, wait_for

ACCOUNT = "212664373534"
WEBHOOK_SECRET = "whsec-e2e-whatsapp-web"
ORDER_ID = 124
REFERENCE = "CMD-2025-124"
# The fake lists six carriers: the first three are validated with usable numbers, then one
# blocked, one pending, one with an unusable number.
CARRIERS = 6
ELIGIBLE = {"212612345600", "212612345601", "212612345602"}
# The spec's message for the order below (default template, ORDER_LINK_BASE by default), with
# the order's date put in by `expected_text`.
EXPECTED_TEXT = (
    "🚛 *Nouvelle commande disponible sur CamionBack !*\n"
    "\n"
    "📍 Ville de départ : Casablanca\n"
    "🎯 Ville d’arrivée : Marrakech\n"
    "🗓️ Date souhaitée : {date}\n"
    "💰 Prix proposé : 4 500 MAD\n"
    "📦 Type de marchandise : Palettes\n"
    "\n"
    "👉 Cliquez ici pour voir la commande :\n"
    f"🔗 https://camionback.com/commande/{ORDER_ID}\n"
    "\n"
    "Ne laissez pas votre camion revenir à vide !\n"
    "🌐 www.camionback.com"
)


class Simulator:
    """The `relay-wa-sim` process: one command per line in, one answer per line out."""

    def __init__(self, binary, log_path):
        self.log = open(log_path, "w")
        self.process = subprocess.Popen([binary], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=self.log, text=True, bufsize=1)
        first = self.process.stdout.readline().strip()
        if not first.startswith("url "):
            raise AssertionError(f"relay-wa-sim did not print its URL: {first!r}")
        self.url = first[4:]

    def ask(self, line):
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()
        answer = self.process.stdout.readline().strip()
        if answer.startswith("error:") or not answer:
            raise AssertionError(f"relay-wa-sim « {line} » : {answer or 'no answer'}")
        return answer

    def json(self, line):
        return json.loads(self.ask(line))

    def close(self):
        try:
            self.ask("quit")
            self.process.wait(5)
        except Exception:
            self.process.kill()
        self.log.close()


def post_order(port, order):
    body = json.dumps({"event": "order.created", "order": order}).encode()
    timestamp = str(int(time.time()))
    signature = hmac.new(WEBHOOK_SECRET.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/webhooks/orders", data=body, method="POST",
        headers={"Content-Type": "application/json", "X-CamionBack-Timestamp": timestamp,
                 "X-CamionBack-Signature": f"sha256={signature}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status


def countdown(session):
    """Seconds left on the QR code as the screen says it, or None."""
    text = session.text("#wa-countdown") or ""
    found = re.search(r"expire dans (\d+) s", text)
    return int(found.group(1)) if found else None


def qr_markup(session):
    return session.script("const q = document.querySelector('#wa-qr svg'); return q ? q.outerHTML : null;")


def qr_secret(work):
    """The ADV secret of the QR code on screen, as the phone reads it off the code: here from
    the client's session file (whatsapp-rust checks the phone's HMAC made with it)."""
    con = sqlite3.connect(os.path.join(work, "data", "whatsapp-session.db"), timeout=5)
    try:
        (secret,) = con.execute("SELECT adv_secret_key FROM device LIMIT 1").fetchone()
    finally:
        con.close()
    return base64.b64encode(secret).decode()


def run(args, work):
    checks = Checks()
    fakes, server = fake_services.start(carriers=CARRIERS, failing=0)
    fake_url = f"http://127.0.0.1:{server.server_address[1]}"
    sim = Simulator(args.sim, os.path.join(work, "relay-wa-sim.log"))
    sim.ask("register " + " ".join(sorted(ELIGIBLE)))
    webhook_port = free_port()

    env = harness.app_env(
        work,
        RELAY_CHANNEL="whatsapp-web",
        WHATSAPP_WEB_URL=sim.url,
        # Pinned, or every connection first asks web.whatsapp.com for the current version.
        WHATSAPP_WEB_VERSION="2.3000.1023868176",
        RELAY_WEBHOOK_ADDR=f"127.0.0.1:{webhook_port}",
        RELAY_WEBHOOK_SECRET=WEBHOOK_SECRET,
        RELAY_THROTTLE_MS="200",
        CAMIONBACK_API_URL=fake_url,
        CAMIONBACK_API_TOKEN=fake_services.CAMIONBACK_TOKEN,
        CAMIONBACK_POLL_SECS="1",
    )
    helpers = harness.screenshot_helpers(args.screenshots, work, env)
    driver = harness.Driver(args, work, env)
    session = None
    try:
        driver.wait_ready(wait_for)
        session = Session(driver.url, os.path.abspath(args.binary))

        # With WhatsApp Web the app opens on the QR code.
        wait_for("the QR code", lambda: qr_markup(session), timeout=60)
        first_qr = qr_markup(session)
        status = session.text("#wa-status")
        assert status == "WhatsApp non relié", status
        assert session.script("return document.querySelector('#screen-whatsapp').hidden;") is False
        left = wait_for("the countdown", lambda: countdown(session), timeout=5)
        assert 0 < left <= 60, left
        # Three seconds down, so the rotation's reset (to 60 s) cannot be mistaken for a slow read.
        lower = wait_for("the countdown to tick", lambda: (lambda n: n if n is not None and n <= left - 3 else None)(
            countdown(session)), timeout=8)
        assert session.find("#wa-relink") == [], "a first QR code is not a relink"
        checks.ok(f"Connexion WhatsApp : QR code du simulateur et compte à rebours ({left} s → {lower} s)")
        capture(args.screenshots, "connexion-whatsapp-qr")

        # The server hands out new refs: the client shows the next code, valid 60 s again.
        sim.ask("rotate")
        wait_for("a new QR code", lambda: (lambda q: q and q != first_qr)(qr_markup(session)), timeout=15)
        after = wait_for("the new countdown", lambda: countdown(session), timeout=5)
        assert after > lower, (lower, after)
        checks.ok(f"rotation : nouveau QR code affiché, compte à rebours reparti ({lower} s → {after} s)")

        # CamionBack's phone scans it.
        sim.ask(f"scan {ACCOUNT} {qr_secret(work)}")
        wait_for("the linked number", lambda: session.text("#wa-status") == f"✅ Connecté (+{ACCOUNT})",
                 timeout=30)
        assert session.find("#wa-qr") == [], "the QR code is gone once linked"
        assert sim.json("status")["linked_phone"] == ACCOUNT
        checks.ok(f"le téléphone scanne : l'écran affiche « Connecté (+{ACCOUNT}) »")
        capture(args.screenshots, "connexion-whatsapp-connecte")

        # An order by webhook: every validated carrier's phone decrypts the spec's message.
        posted = fake_services.order(ORDER_ID, REFERENCE)
        assert post_order(webhook_port, posted) == 202
        received = sim.json(f"wait_received {len(ELIGIBLE)} 60")
        assert {r["to"] for r in received} == ELIGIBLE, received
        expected = EXPECTED_TEXT.replace("{date}", fake_services.french_date(posted))
        for message in received:
            assert message["text"] == expected, message["text"]
        time.sleep(1)
        assert len(sim.json("received")) == len(ELIGIBLE), "one message per carrier, no more"
        checks.ok(f"commande reçue par webhook : les {len(ELIGIBLE)} transporteurs validés reçoivent "
                  "exactement le message rendu, une fois")

        # Someone removes "CamionBack Relay" from the phone's linked devices.
        sim.ask("remove_device")
        wait_for("the relink notice and a new QR code",
                 lambda: session.find("#wa-relink") and qr_markup(session), timeout=30)
        notice = session.text("#wa-relink")
        assert "nouveau QR code est nécessaire" in notice, notice
        assert session.text("#wa-status") == "WhatsApp non relié"
        checks.ok("appareil retiré depuis le téléphone : l'écran demande un nouveau QR code et l'affiche")
        capture(args.screenshots, "connexion-whatsapp-deconnecte")

        # Linked again, then staff unlink it themselves with « Déconnecter » (asked twice).
        sim.ask(f"scan {ACCOUNT} {qr_secret(work)}")
        wait_for("linked again", lambda: session.text("#wa-status") == f"✅ Connecté (+{ACCOUNT})",
                 timeout=30)
        session.click("#wa-unlink")
        wait_for("the confirmation", lambda: session.find("#wa-unlink-confirm"), timeout=10)
        session.click("#wa-unlink-cancel")
        wait_for("cancelled", lambda: session.find("#wa-unlink"), timeout=10)
        assert sim.json("status")["companion_unlinks"] == 0, "cancel tells WhatsApp nothing"
        session.click("#wa-unlink")
        wait_for("the confirmation", lambda: session.find("#wa-unlink-confirm"), timeout=10)
        session.click("#wa-unlink-confirm")
        wait_for("a new QR code after « Déconnecter »", lambda: qr_markup(session), timeout=30)
        assert sim.json("status")["companion_unlinks"] == 1, "WhatsApp was told to remove the device"
        checks.ok("« Déconnecter » (après confirmation) retire l'appareil du compte et affiche un nouveau QR code")
    except BaseException:
        if session:
            try:
                with open(os.path.join(work, "page.html"), "w") as f:
                    f.write(session.source() or "")
            except Exception:
                pass
        raise
    finally:
        if session:
            session.close()
        driver.stop()
        for helper in helpers:
            helper.terminate()
        sim.close()
        server.shutdown()
    return checks


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", required=True)
    parser.add_argument("--sim", required=True, help="the relay-wa-sim binary")
    parser.add_argument("--tauri-driver", default=shutil.which("tauri-driver") or "tauri-driver")
    parser.add_argument("--native-driver", default="/usr/bin/WebKitWebDriver")
    parser.add_argument("--screenshots", default=None)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    # run.sh passes test_desktop.py's options to every e2e file; the others are not ours.
    args, _ = parser.parse_known_args()
    return harness.run_main(args, run, prefix="relay-e2e-wa-", label="WhatsApp Web",
                            logs=("tauri-driver.log", "relay-wa-sim.log"))


if __name__ == "__main__":
    sys.exit(main())
