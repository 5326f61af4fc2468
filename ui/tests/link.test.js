import { test } from "node:test";
import assert from "node:assert/strict";

import { NOT_LINKED, followLink } from "../lib/link.js";

const follow = (...kinds) => kinds.reduce((link, kind) => followLink(link, { kind }), NOT_LINKED);

test("a first QR code is no relink: the account was never linked", () => {
  assert.deepEqual(follow("starting", "connecting", "qr"), { linked: false, relink: false });
  assert.deepEqual(follow("qr", "connecting", "connected"), { linked: true, relink: false });
});

test("a device removed from the phone asks for a new QR code until linked again", () => {
  assert.deepEqual(follow("connected", "logged_out", "connecting", "qr"), { linked: false, relink: true });
  // The event for logged_out may be coalesced away: a QR code after connected says the same.
  assert.deepEqual(follow("connected", "connecting", "qr"), { linked: false, relink: true });
  assert.deepEqual(follow("connected", "qr", "qr_expired", "qr"), { linked: false, relink: true });
  assert.deepEqual(follow("connected", "logged_out", "qr", "connected"), { linked: true, relink: false });
});

test("a lost connection is not an unlinking", () => {
  assert.deepEqual(follow("connected", "reconnecting", "connected"), { linked: true, relink: false });
  assert.deepEqual(follow("connected", "reconnecting"), { linked: true, relink: false });
});
