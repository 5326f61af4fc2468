#!/usr/bin/env python3
"""End-to-end test of the desktop app in its real webview on the Twilio channel (issue 13),
through tauri-driver and WebKitWebDriver, against the loopback fakes of fakes.py (CamionBack API
for the carriers, Twilio's Messages API for the sends).

A signed order webhook reaches the relay; the window's dashboard follows the broadcast's
progress; fake Twilio receives one form per carrier (Basic auth, From, Body, a StatusCallback
naming the delivery) and refuses two numbers (21211 → invalid number, 63016 → failed, saying to
set TWILIO_CONTENT_SID); the history shows the order's rows with those statuses. Then the test
posts status callbacks as Twilio would, signed with X-Twilio-Signature over the callback URL:
delivered, delivered then read, undelivered with an ErrorCode, a late `delivered` after `read`,
and one with a bad signature (403, nothing moves). The window shows each row's new status, the
dashboard's counts of the day follow, and the auth token never reaches the page.

Run through tests/e2e/run.sh (it builds the binary and provides Xvfb and a D-Bus session).
Standard library only. `--screenshots DIR` also saves full-screen captures.
"""

import argparse
import base64
import hashlib
import hmac
import json
import os
import re
import shutil
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import fakes as fake_services
import harness
from test_desktop import Checks, Session, capture, history_rows, set_filters, wait_for

ORDER_ID = 223
REFERENCE = "CMD-2025-223"
WEBHOOK_SECRET = "whsec-e2e-twilio-5150"
STATUS_PATH = "/webhooks/twilio/status"
SECRETS = (fake_services.TWILIO_AUTH_TOKEN, fake_services.CAMIONBACK_TOKEN, WEBHOOK_SECRET)


def to_of(carrier):
    """The `To` the relay sends a carrier's message to: whatsapp:+212… (from 06…)."""
    return "whatsapp:+212" + carrier["telephone"][1:]


def post(url, data, headers):
    req = urllib.request.Request(url, data=data, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=15) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def post_order_webhook(relay_url, order):
    """CamionBack's order webhook, signed as README says (HMAC-SHA256 of "<ts>.<body>")."""
    body = json.dumps({"event": "order.created", "order": order}).encode()
    timestamp = str(int(time.time()))
    signature = hmac.new(WEBHOOK_SECRET.encode(), timestamp.encode() + b"." + body,
                         hashlib.sha256).hexdigest()
    return post(f"{relay_url}/webhooks/orders", body, {
        "Content-Type": "application/json",
        "X-CamionBack-Timestamp": timestamp,
        "X-CamionBack-Signature": f"sha256={signature}",
    })


def status_callback(send, status, error_code=None, token=fake_services.TWILIO_AUTH_TOKEN):
    """Posts Twilio's status callback for `send` to the StatusCallback URL it asked for, signed
    with `token` over that URL and every parameter, as Twilio does. Returns the HTTP status."""
    fields = dict(send["form"])
    url = fields["StatusCallback"]
    params = [
        ("AccountSid", fake_services.TWILIO_ACCOUNT_SID),
        ("ApiVersion", "2010-04-01"),
        ("ChannelPrefix", "whatsapp"),
        ("From", fake_services.TWILIO_FROM),
        ("MessageSid", send["sid"]),
        ("MessageStatus", status),
        ("SmsSid", send["sid"]),
        ("SmsStatus", status),
        ("To", fields["To"]),
    ]
    if error_code:
        params.append(("ErrorCode", str(error_code)))
    signature = fake_services.twilio_signature(token, url, params)
    code, _ = post(url, urllib.parse.urlencode(params).encode(), {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Twilio-Signature": signature,
    })
    return code


def delivery_of(send):
    """The delivery id the StatusCallback URL names (`?delivery=<id>`)."""
    query = urllib.parse.urlparse(dict(send["form"])["StatusCallback"]).query
    return urllib.parse.parse_qs(query)["delivery"][0]


def assert_no_secret(session, where):
    page = session.source() or ""
    for secret in SECRETS:
        assert secret not in page, f"a secret reached the webview ({where})"


def progress(session):
    """The dashboard's broadcast line for the order: (done, total), or None."""
    text = session.script(
        "const b = document.querySelector(`.broadcast[data-order='${arguments[0]}'] .broadcast-count`);"
        "return b ? b.textContent : null;", str(ORDER_ID))
    match = re.fullmatch(r"(\d+) / (\d+)", text or "")
    return (int(match[1]), int(match[2])) if match else None


def today_counts(session):
    """The dashboard's "Aujourd'hui" counts: {label: n}."""
    return session.script(
        "return Object.fromEntries([...document.querySelectorAll('.counts .count')].map(c => "
        "[c.querySelector('.count-label').textContent, Number(c.querySelector('.count-n').textContent)]));")


def run(args, work):
    checks = Checks()
    # The signing helper on Twilio's published example (docs "Webhooks security").
    assert fake_services.twilio_signature(
        "12345", "https://mycompany.com/myapp.php?foo=1&bar=2",
        [("CallSid", "CA1234567890ABCDE"), ("Caller", "+12349013030"), ("Digits", "1234"),
         ("From", "+12349013030"), ("To", "+18005551212")]) == "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
    fakes, server = fake_services.start(carriers=args.carriers, failing=0, delay=args.send_delay)
    # The first validated carrier's number is refused as invalid, the second outside the
    # 24-hour window (a Content template would be needed).
    refused_invalid, refused_window = fakes.carriers[0], fakes.carriers[1]
    fakes.twilio_refusals[to_of(refused_invalid)] = 21211
    fakes.twilio_refusals[to_of(refused_window)] = 63016
    fake_url = f"http://127.0.0.1:{server.server_address[1]}"
    relay_port = harness.free_port()
    relay_url = f"http://127.0.0.1:{relay_port}"

    env = harness.app_env(
        work,
        RELAY_CHANNEL="twilio",
        # A known port: Twilio's callbacks come to RELAY_PUBLIC_URL, which must be the relay.
        RELAY_WEBHOOK_ADDR=f"127.0.0.1:{relay_port}",
        RELAY_PUBLIC_URL=relay_url,
        RELAY_WEBHOOK_SECRET=WEBHOOK_SECRET,
        RELAY_THROTTLE_MS=str(args.throttle_ms),
        CAMIONBACK_API_URL=fake_url,
        CAMIONBACK_API_TOKEN=fake_services.CAMIONBACK_TOKEN,
        CAMIONBACK_POLL_SECS="1",
        TWILIO_API_URL=fake_url,
        TWILIO_ACCOUNT_SID=fake_services.TWILIO_ACCOUNT_SID,
        TWILIO_AUTH_TOKEN=fake_services.TWILIO_AUTH_TOKEN,
        # A bare number: the relay prefixes whatsapp:.
        TWILIO_FROM=fake_services.TWILIO_FROM.removeprefix("whatsapp:"),
        HOME=os.path.join(work, "home"),
    )
    os.makedirs(env["HOME"], exist_ok=True)
    helpers = harness.screenshot_helpers(args.screenshots, work, env)
    driver = harness.Driver(args, work, env)
    session = None
    try:
        driver.wait_ready(wait_for)
        started = time.monotonic()
        session = Session(driver.url, os.path.abspath(args.binary))
        wait_for("the window's navigation", lambda: session.find("#nav-dashboard"), timeout=30)
        wait_for("the engine running", lambda: session.script(
            "return document.querySelector('#engine-banner').hidden;"), timeout=30)
        # The relay listens where RELAY_PUBLIC_URL says.
        wait_for("the relay's webhook port", lambda: json.loads(
            urllib.request.urlopen(f"{relay_url}/healthz", timeout=2).read()).get("status") == "ok",
            timeout=15)
        checks.ok(f"la fenêtre s'ouvre et le moteur démarre sur le canal Twilio "
                  f"({time.monotonic() - started:.1f} s), webhooks sur {relay_url}")

        # --- the order webhook, then the dashboard's progress ---
        session.click("#nav-dashboard")
        wait_for("the dashboard", lambda: session.find("#no-broadcast"), timeout=10)
        code, body = post_order_webhook(relay_url, fake_services.order(ORDER_ID, REFERENCE))
        assert code == 202 and json.loads(body)["status"] == "accepted", (code, body)
        checks.ok(f"webhook de commande signé {REFERENCE} : 202 accepted")

        # 12 carriers: one blocked, one pending, one with an unusable number (recorded as
        # invalid without a send): `asked` are sent to Twilio, two of them refused.
        expected_rows = args.carriers - 2
        asked = args.carriers - 3
        first = wait_for("the broadcast on the dashboard", lambda: (
            lambda p: p if p and p[0] < p[1] else None)(progress(session)), timeout=30)
        assert first[1] == expected_rows, first
        capture(args.screenshots, "twilio-tableau-de-bord-envoi", display_wait=0.3)
        later = wait_for("the dashboard's progress moving", lambda: (
            lambda p: p if p is None or p[0] > first[0] else None)(progress(session)),
            timeout=30 + asked * args.throttle_ms / 1000)
        seen = f"{first[0]} / {first[1]}" + (f" puis {later[0]} / {later[1]}" if later else "")
        checks.ok(f"Tableau de bord : la diffusion de {REFERENCE} avance ({seen})")

        # --- what fake Twilio received ---
        sends = wait_for(f"{asked} sends at fake Twilio",
                         lambda: (lambda s: s if len(s) >= asked else None)(fakes.twilio_sends()),
                         timeout=30 + asked * args.throttle_ms / 1000)
        wait_for("the broadcast over on the dashboard", lambda: progress(session) is None
                 and session.find("#no-broadcast"), timeout=30)
        sends = fakes.twilio_sends()
        assert len(sends) == asked, f"{len(sends)} sends, none retried: {sends}"
        for send in sends:
            fields = dict(send["form"])
            assert send["auth"] == (fake_services.TWILIO_ACCOUNT_SID, fake_services.TWILIO_AUTH_TOKEN), send
            assert send["path"] == fake_services.TWILIO_MESSAGES_PATH, send
            assert fields["From"] == fake_services.TWILIO_FROM, fields
            assert fields["To"].startswith("whatsapp:+2126"), fields
            assert "Nouvelle commande disponible sur CamionBack" in fields["Body"], fields
            assert REFERENCE in fields["Body"] or "Casablanca" in fields["Body"], fields
            assert re.fullmatch(re.escape(relay_url + STATUS_PATH) + r"\?delivery=\d+",
                                fields["StatusCallback"]), fields
        accepted = [s for s in sends if s["sid"]]
        assert len(accepted) == asked - 2, accepted
        assert {dict(s["form"])["To"] for s in sends if not s["sid"]} == {
            to_of(refused_invalid), to_of(refused_window)}
        checks.ok(f"Twilio factice : {len(sends)} formulaires (auth Basic, From whatsapp:+212…, Body, "
                  f"StatusCallback ?delivery=<id>), {len(accepted)} acceptés, 2 refusés")

        # --- the history: the order's rows and their statuses ---
        session.click("#nav-history")

        def settled():
            set_filters(session)
            rows = history_rows(session)
            return rows if len(rows) == expected_rows and not any(
                r["status"] in ("queued", "sending") for r in rows) else None
        rows = wait_for(f"{expected_rows} settled rows of {REFERENCE}", settled, timeout=30)
        by_id = {r["id"]: r for r in rows}
        counts = {}
        for r in rows:
            counts[r["status"]] = counts.get(r["status"], 0) + 1
        assert counts == {"sent": asked - 2, "invalid_number": 2, "failed": 1}, counts
        assert all(r["cells"][3] == REFERENCE for r in rows), rows
        for send in accepted:
            row = by_id[delivery_of(send)]
            assert (row["status"], row["cells"][4]) == ("sent", "Envoyé"), row
        by_to = {dict(s["form"])["To"]: s for s in sends}
        invalid = by_id[delivery_of(by_to[to_of(refused_invalid)])]
        assert invalid["cells"][4] == "Numéro invalide", invalid
        window = by_id[delivery_of(by_to[to_of(refused_window)])]
        assert window["cells"][4] == "Échec" and "TWILIO_CONTENT_SID" in window["cells"][6], window
        header = session.text("tr.group") or ""
        assert REFERENCE in header and "Casablanca → Marrakech" in header, header
        checks.ok(f"Historique : {expected_rows} lignes de {REFERENCE} — {asked - 2} « Envoyé », "
                  f"2 « Numéro invalide » (21211 et numéro inutilisable), 1 « Échec » (63016, "
                  f"« {window['cells'][6][:60]}… »)")
        capture(args.screenshots, "twilio-historique-envoye")
        assert_no_secret(session, "history")

        # --- signed status callbacks, as Twilio posts them ---
        delivered, read, undelivered, forged = accepted[:4]
        expected = {delivery_of(delivered): ("delivered", "Distribué"),
                    delivery_of(read): ("read", "Lu"),
                    delivery_of(undelivered): ("failed", "Échec"),
                    delivery_of(forged): ("sent", "Envoyé")}
        for send, status, error in ((delivered, "sent", None), (delivered, "delivered", None),
                                    (read, "delivered", None), (read, "read", None),
                                    (undelivered, "undelivered", 63024)):
            code = status_callback(send, status, error)
            assert code == 200, (status, code)
        # A signature made with another token: refused, nothing changes.
        code = status_callback(forged, "read", token="not-the-auth-token")
        assert code == 403, code
        # Twilio's `delivered` arriving after `read`: never backwards.
        assert status_callback(read, "delivered") == 200

        # The dashboard's counts of the day follow on their own (it refreshes every 2 s).
        session.click("#nav-dashboard")
        want = {"Envoyé": asked - 5, "Distribué": 1, "Lu": 1, "Échec": 2, "Numéro invalide": 2}
        wait_for(f"the day's counts {want}", lambda: today_counts(session) == want, timeout=15)
        checks.ok(f"Tableau de bord : les comptes du jour suivent les rappels ({want})")
        capture(args.screenshots, "twilio-tableau-de-bord-statuts")

        # The history shows each row's new status (« Filtrer » reloads the page, as staff do).
        session.click("#nav-history")

        def moved():
            set_filters(session)
            shown = {r["id"]: r for r in history_rows(session)}
            return shown if all(
                i in shown and (shown[i]["status"], shown[i]["cells"][4]) == want_status
                for i, want_status in expected.items()) else None
        shown = wait_for("the rows' statuses moved by the callbacks", moved, timeout=15)
        error = shown[delivery_of(undelivered)]["cells"][6]
        # Twilio's 63024 explained in French; the callback's code stays in the tooltip.
        assert error.startswith("Destinataire WhatsApp invalide"), error
        assert "63024" in shown[delivery_of(undelivered)]["error_title"], shown[delivery_of(undelivered)]
        assert not shown[delivery_of(delivered)]["cells"][6].strip(), shown[delivery_of(delivered)]
        others = [r for i, r in shown.items() if i not in expected and r["status"] == "sent"]
        assert len(others) == asked - 6, others
        header = session.text("tr.group") or ""
        assert "1 remis" in header and "1 lu" in header, header
        checks.ok("Historique : rappels signés appliqués — « Distribué », « Lu » (un « delivered » "
                  f"tardif ne le fait pas reculer), « Échec » 63024 (« {error[:60]}… »); signature fausse → 403, "
                  "la ligne reste « Envoyé »")
        capture(args.screenshots, "twilio-historique-statuts")
        assert_no_secret(session, "history after callbacks")

        # Still on Historique, nobody clicking: a callback that comes later shows by itself.
        assert status_callback(delivered, "read") == 200

        def read_now():
            row = {r["id"]: r for r in history_rows(session)}.get(delivery_of(delivered))
            return row if row and row["status"] == "read" else None
        wait_for("the history following a later callback on its own", read_now, timeout=20)
        checks.ok("Historique : un rappel arrivé après la diffusion s'affiche sans recharger la page")

        # --- Paramètres: the auth token is write-only ---
        session.click("#nav-settings")
        state = wait_for("the Twilio auth token's state", lambda: session.text(
            "dd[data-key=TWILIO_AUTH_TOKEN] .secret-state"), timeout=10)
        assert state == "🔒 défini (masqué)", state
        assert_no_secret(session, "settings")
        checks.ok("Paramètres : TWILIO_AUTH_TOKEN « défini (masqué) », aucun secret dans la page")

        # --- Connexion WhatsApp: nothing to link, and it says Twilio sends ---
        session.click("#nav-whatsapp")
        status = wait_for("the WhatsApp screen naming Twilio",
                          lambda: (t := session.text("#wa-status") or "") and "Twilio" in t and t,
                          timeout=10)
        assert "API Cloud" not in status, status
        checks.ok(f"Connexion WhatsApp : « {status} », rien à relier")
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
    parser.add_argument("--throttle-ms", type=int, default=700)
    parser.add_argument("--send-delay", type=float, default=0.0)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    return harness.run_main(args, run, prefix="relay-e2e-twilio-", label="Twilio")


if __name__ == "__main__":
    sys.exit(main())
