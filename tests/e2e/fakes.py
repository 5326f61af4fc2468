"""Fakes of the HTTP services the relay calls, on one loopback port, standard library only:

- the CamionBack API: GET /api/orders (since_id / created_after) and GET /api/transporteurs,
  bearer token CAMIONBACK_TOKEN;
- the WhatsApp Cloud API: POST /<version>/<PHONE_NUMBER_ID>/messages, bearer token
  WHATSAPP_TOKEN; accepts every message except for the numbers told to fail, which get Meta's
  documented permanent error 131026;
- Twilio's Messages API: POST /2010-04-01/Accounts/<TWILIO_ACCOUNT_SID>/Messages.json,
  form-encoded, HTTP Basic auth TWILIO_ACCOUNT_SID:TWILIO_AUTH_TOKEN (else 401, code 20003);
  records every form, answers 201 {"sid": "SM…", "status": "queued"}, except for the recipients
  given a Twilio error code in `twilio_refusals` (`whatsapp:+212…` → 21211, 63016, …), which get
  Twilio's error body {code, message, more_info, status}.

Used by test_desktop.py and test_twilio.py in-process; `python3 fakes.py --port 8900` runs it alone (screenshots,
manual runs).
"""

import argparse
import base64
import hashlib
import hmac
import json
import threading
import time
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, parse_qsl, urlparse

CAMIONBACK_TOKEN = "cb-e2e-token"
WHATSAPP_TOKEN = "meta-e2e-secret-token-4242"
PHONE_NUMBER_ID = "106540352242922"
TWILIO_ACCOUNT_SID = "ACe2e00000000000000000000000000042"
TWILIO_AUTH_TOKEN = "twilio-e2e-auth-token-7331"
TWILIO_FROM = "whatsapp:+212664373534"
TWILIO_MESSAGES_PATH = f"/2010-04-01/Accounts/{TWILIO_ACCOUNT_SID}/Messages.json"
# Twilio's documented errors the fake can answer with: code → (HTTP status, message).
TWILIO_ERRORS = {
    20003: (401, "Authenticate"),
    21211: (400, "Invalid 'To' Phone Number"),
    21610: (400, "Attempt to send to unsubscribed recipient"),
    63016: (400, "Failed to send freeform message because you are outside the allowed window. "
                 "If you are using WhatsApp, please use a Message Template."),
}

CITIES = [
    ("Casablanca", "Marrakech"),
    ("Tanger", "Agadir"),
    ("Rabat", "Fès"),
    ("Oujda", "Casablanca"),
]
NAMES = [
    "Transports Atlas", "Sahara Logistique", "Rif Express", "Souss Fret", "Oriental Cargo",
    "Doukkala Trans", "Chaouia Routiers", "Tafilalet Transit", "Gharb Camions", "Haouz Livraisons",
    "Ziz Transport", "Draa Logistique",
]


def now_rfc3339():
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def order_date():
    """The desired date of every order: three days from today (UTC), inside the relay's window
    (a week before today to a year after) whatever day the tests run."""
    return (datetime.now(timezone.utc) + timedelta(days=3)).strftime("%Y-%m-%d")


def french_date(order):
    """`date_souhaitee` of `order` as the message writes it (DD/MM/YYYY)."""
    year, month, day = order["date_souhaitee"].split("-")
    return f"{day}/{month}/{year}"


def order(order_id, reference, route=0, prix=4500):
    depart, arrivee = CITIES[route % len(CITIES)]
    return {
        "id": order_id,
        "reference": reference,
        "ville_depart": depart,
        "ville_arrivee": arrivee,
        "date_souhaitee": order_date(),
        "prix": prix,
        "type_marchandise": "Palettes",
        "statut": "ouverte",
        "created_at": now_rfc3339(),
    }


class Fakes:
    """State shared by the handler threads."""

    def __init__(self, carriers=12, failing=2, delay=0.0, twilio_refusals=None):
        self.lock = threading.Lock()
        self.orders = []
        self.carriers = []
        self.failing = set()
        self.messages = []
        self.delay = delay
        # Twilio: what the fake received (form, Basic auth, the sid it answered), and the
        # recipients it refuses (`To` → one of TWILIO_ERRORS).
        self.twilio_received = []
        self.twilio_refusals = dict(twilio_refusals or {})
        # `GET /api/orders/{id}`: the statut each order has now, when a test changed it.
        self.statuts = {}
        for i in range(carriers):
            cid = 1001 + i
            name = NAMES[i % len(NAMES)] + ("" if i < len(NAMES) else f" {i}")
            phone = f"06{12345600 + i:08d}"
            statut = "valide"
            if i == carriers - 3:
                statut = "bloque"
            elif i == carriers - 2:
                statut = "en_attente"
            elif i == carriers - 1:
                phone = "12"  # unusable: recorded as invalid_number
            self.carriers.append({"id": cid, "nom": name, "telephone": phone, "statut": statut})
        # The first `failing` validated carriers are refused by the fake Cloud API.
        for c in self.carriers[:failing]:
            self.failing.add("212" + c["telephone"][1:])

    def add_order(self, value):
        with self.lock:
            self.orders.append(value)

    def set_statut(self, order_id, statut):
        """From now on `GET /api/orders/{order_id}` answers this statut (CamionBack closed it)."""
        with self.lock:
            self.statuts[order_id] = statut

    def sent_messages(self):
        with self.lock:
            return list(self.messages)

    def twilio_sends(self):
        """Every request Twilio's fake received: {"form", "auth", "path", "sid"} (sid None when
        refused)."""
        with self.lock:
            return list(self.twilio_received)


def twilio_signature(token, url, params):
    """X-Twilio-Signature as Twilio computes it: Base64(HMAC-SHA1(auth token, URL + each POST
    parameter's name and value, sorted by name))."""
    data = url + "".join(k + v for k, v in sorted(params))
    digest = hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def make_handler(fakes):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def reply(self, status, body):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def authorized(self, token):
            return self.headers.get("Authorization") == f"Bearer {token}"

        def basic_auth(self):
            value = self.headers.get("Authorization", "")
            if not value.startswith("Basic "):
                return None
            try:
                user, _, password = base64.b64decode(value[6:]).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                return None
            return (user, password)

        def twilio_error(self, code):
            http, message = TWILIO_ERRORS[code]
            return self.reply(http, {"code": code, "message": message,
                                     "more_info": f"https://www.twilio.com/docs/errors/{code}",
                                     "status": http})

        def twilio_send(self, raw):
            form = parse_qsl(raw.decode(), keep_blank_values=True)
            fields = dict(form)
            received = {"form": form, "auth": self.basic_auth(), "path": urlparse(self.path).path,
                        "sid": None}
            if fakes.delay:
                time.sleep(fakes.delay)
            with fakes.lock:
                fakes.twilio_received.append(received)
                if received["auth"] != (TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN) \
                        or received["path"] != TWILIO_MESSAGES_PATH:
                    refusal = 20003
                else:
                    refusal = fakes.twilio_refusals.get(fields.get("To", ""))
                if refusal is None:
                    received["sid"] = f"SM{len(fakes.twilio_received):032x}"
            if refusal is not None:
                return self.twilio_error(refusal)
            return self.reply(201, {"sid": received["sid"], "status": "queued",
                                    "to": fields.get("To"), "account_sid": TWILIO_ACCOUNT_SID,
                                    "num_segments": "1"})

        def do_GET(self):
            url = urlparse(self.path)
            query = parse_qs(url.query)
            if url.path == "/api/orders":
                if not self.authorized(CAMIONBACK_TOKEN):
                    return self.reply(401, {"error": "unauthorized"})
                since = int(query.get("since_id", ["0"])[0])
                with fakes.lock:
                    found = sorted((o for o in fakes.orders if o["id"] > since), key=lambda o: o["id"])
                return self.reply(200, {"orders": found[:100]})
            if url.path.startswith("/api/orders/"):
                if not self.authorized(CAMIONBACK_TOKEN):
                    return self.reply(401, {"error": "unauthorized"})
                wanted = url.path.rsplit("/", 1)[-1]
                with fakes.lock:
                    found = next((dict(o) for o in fakes.orders if str(o["id"]) == wanted), None)
                    if found is not None and found["id"] in fakes.statuts:
                        found["statut"] = fakes.statuts[found["id"]]
                if found is None:
                    return self.reply(404, {"error": "commande introuvable"})
                return self.reply(200, {"order": found})
            if url.path == "/api/transporteurs":
                if not self.authorized(CAMIONBACK_TOKEN):
                    return self.reply(401, {"error": "unauthorized"})
                with fakes.lock:
                    listed = list(fakes.carriers)
                return self.reply(200, {"transporteurs": listed, "next_page": None})
            return self.reply(404, {"error": "not found"})

        def do_POST(self):
            url = urlparse(self.path)
            length = int(self.headers.get("Content-Length", "0"))
            raw = self.rfile.read(length)
            if url.path == "/__orders":
                fakes.add_order(json.loads(raw))
                return self.reply(201, {"ok": True})
            if url.path.startswith("/2010-04-01/Accounts/") and url.path.endswith("/Messages.json"):
                return self.twilio_send(raw)
            if url.path.endswith(f"/{PHONE_NUMBER_ID}/messages"):
                if not self.authorized(WHATSAPP_TOKEN):
                    return self.reply(401, {"error": {"code": 190, "message": "Invalid OAuth access token"}})
                body = json.loads(raw or b"{}")
                to = body.get("to", "")
                if fakes.delay:
                    time.sleep(fakes.delay)
                with fakes.lock:
                    fakes.messages.append(body)
                    count = len(fakes.messages)
                    failing = to in fakes.failing
                if failing:
                    return self.reply(400, {"error": {
                        "message": "Message undeliverable", "type": "OAuthException", "code": 131026,
                        "error_data": {"messaging_product": "whatsapp", "details": "Message undeliverable"},
                    }})
                return self.reply(200, {
                    "messaging_product": "whatsapp",
                    "contacts": [{"input": to, "wa_id": to}],
                    "messages": [{"id": f"wamid.E2E{count}"}],
                })
            return self.reply(404, {"error": "not found"})

    return Handler


def start(port=0, **kwargs):
    """Starts the fakes on 127.0.0.1:`port` in a daemon thread; returns (fakes, server)."""
    fakes = Fakes(**kwargs)
    server = ThreadingHTTPServer(("127.0.0.1", port), make_handler(fakes))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return fakes, server


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8900)
    parser.add_argument("--carriers", type=int, default=12)
    parser.add_argument("--failing", type=int, default=2)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--order", action="append", default=[], help="id:reference, e.g. 123:CMD-2025-123")
    args = parser.parse_args()
    fakes, server = start(args.port, carriers=args.carriers, failing=args.failing, delay=args.delay)
    for i, spec in enumerate(args.order):
        oid, ref = spec.split(":", 1)
        fakes.add_order(order(int(oid), ref, route=i))
    print(f"fakes on http://127.0.0.1:{server.server_address[1]}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
