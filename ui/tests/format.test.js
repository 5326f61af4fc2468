import { test } from "node:test";
import assert from "node:assert/strict";

import {
  batchLabel,
  broadcastSummary,
  closedHeadline,
  countersText,
  dayRange,
  formatDateTime,
  formatDuration,
  formatRelative,
  formatSeconds,
  groupRows,
  plural,
  progressText,
  doubtfulLabel,
  errorCell,
  relaunchChoice,
  relaunchSentence,
  secondsLeft,
  statusLabel,
  statusTone,
  timeLeft,
} from "../lib/format.js";

test("every engine status has a French label, and unknown ones show as they are", () => {
  assert.equal(statusLabel("sent"), "Envoyé");
  assert.equal(statusLabel("not_on_whatsapp"), "Pas sur WhatsApp");
  assert.equal(statusLabel("sent", true), "Envoyé (non confirmé)");
  assert.equal(statusLabel("bizarre"), "bizarre");
});

test("statuses fall into colour families", () => {
  assert.equal(statusTone("read"), "ok");
  assert.equal(statusTone("invalid_number"), "bad");
  assert.equal(statusTone("queued"), "pending");
  assert.equal(statusTone("skipped"), "neutral");
});

test("dates read day first with a 24-hour clock", () => {
  // 2025-11-03 14:05 UTC
  const ms = Date.UTC(2025, 10, 3, 14, 5);
  assert.equal(formatDateTime(ms, "UTC"), "03/11/2025 14:05");
  assert.equal(formatDateTime(ms, "Africa/Casablanca"), "03/11/2025 15:05");
  assert.equal(formatDateTime(null), "—");
  // The formatters are kept per time zone: asking again, in another order, gives the same.
  assert.equal(formatDateTime(ms + 60_000, "UTC"), "03/11/2025 14:06");
  assert.equal(formatDateTime(ms, "Africa/Casablanca"), "03/11/2025 15:05");
});

test("a throttle reads in French seconds", () => {
  assert.equal(formatSeconds(1500), "1,5");
  assert.equal(formatSeconds(250), "0,25");
  assert.equal(formatSeconds(2000), "2");
});

test("recent instants read as elapsed time", () => {
  const now = Date.UTC(2025, 10, 3, 14, 5);
  assert.equal(formatRelative(now - 2_000, now), "à l'instant");
  assert.equal(formatRelative(now - 12_000, now), "il y a 12 s");
  assert.equal(formatRelative(now - 3 * 60_000, now), "il y a 3 min");
  assert.equal(formatRelative(now - 2 * 3_600_000, now), "il y a 2 h");
  assert.equal(formatRelative(now - 3 * 86_400_000, now, "UTC"), "le 31/10/2025 14:05");
  assert.equal(formatRelative(null, now), "jamais");
});

test("progress and counts read like the issue", () => {
  assert.equal(progressText(12, 48), "12 / 48");
  assert.equal(broadcastSummary(48, 2), "48 envoyés, 2 échecs");
  assert.equal(broadcastSummary(1, 0), "1 envoyé");
  assert.equal(plural(1, "transporteur"), "1 transporteur");
  assert.equal(plural(3, "transporteur"), "3 transporteurs");
  assert.equal(batchLabel(0), "diffusion automatique");
  assert.equal(batchLabel(2), "relance n°2");
});

test("time left follows the throttle and half the jitter", () => {
  assert.equal(timeLeft(36, 1000), "environ 36 s");
  assert.equal(timeLeft(36, 1000, 1000), "environ 54 s");
  assert.equal(timeLeft(200, 1000), "environ 3 min 20 s");
  assert.equal(timeLeft(0, 1000), "terminé");
  assert.equal(formatDuration(3_900), "1 h 05 min");
});

test("the QR countdown never goes below zero", () => {
  assert.equal(secondsLeft(10_500, 1_000), 10);
  assert.equal(secondsLeft(1_000, 5_000), 0);
});

test("rows group by order and batch without reordering", () => {
  const row = (id, order_id, batch) => ({
    id,
    order_id,
    batch,
    order_reference: `CMD-${order_id}`,
    route: "Casablanca → Marrakech",
  });
  const groups = groupRows([row(9, 2, 1), row(8, 2, 1), row(7, 1, 0), row(6, 2, 0), row(5, 2, 0)]);
  assert.deepEqual(
    groups.map((g) => [g.order_reference, g.batch, g.rows.map((r) => r.id)]),
    [
      ["CMD-2", 1, [9, 8]],
      ["CMD-1", 0, [7]],
      ["CMD-2", 0, [6, 5]],
    ],
  );
  assert.deepEqual(groupRows([]), []);
});

test("the date filter reads French dates and covers whole local days", () => {
  const { from_ms, to_ms, invalid } = dayRange("03/11/2025", "3/11/2025");
  assert.deepEqual(invalid, []);
  assert.equal(to_ms - from_ms, 24 * 3_600_000);
  const from = new Date(from_ms);
  assert.deepEqual([from.getDate(), from.getMonth(), from.getHours()], [3, 10, 0]);
  assert.equal(dayRange("2025-11-03", "").from_ms, from_ms, "ISO dates are read too");
  assert.deepEqual(dayRange("", " "), { from_ms: null, to_ms: null, invalid: [] });
  assert.deepEqual(dayRange("31/02/2025", "demain").invalid, ["de début", "de fin"]);
});

test("the relaunch dialog says how many carriers the choice reaches", () => {
  const preview = { reference: "CMD-2025-123", missing: 3, all: 48 };
  assert.equal(
    relaunchSentence(preview, "missing"),
    "3 transporteurs vont recevoir la commande CMD-2025-123.",
  );
  assert.equal(
    relaunchSentence(preview, "all"),
    "48 transporteurs vont recevoir la commande CMD-2025-123.",
  );
  assert.equal(
    relaunchSentence({ ...preview, missing: 1 }, "missing"),
    "1 transporteur va recevoir la commande CMD-2025-123.",
  );
  assert.match(relaunchSentence({ ...preview, missing: 0 }, "missing"), /déjà reçu/);
});

test("carriers in doubt are left out of a relaunch unless their box is ticked", () => {
  const preview = { reference: "CMD-2025-123", missing: 3, doubtful: 2, all: 48 };
  assert.deepEqual(relaunchChoice(preview, "missing"), { mode: "missing", count: 3 });
  assert.deepEqual(relaunchChoice(preview, "missing", true), { mode: "missing_and_doubtful", count: 5 });
  assert.deepEqual(relaunchChoice(preview, "all", true), { mode: "all", count: 48 }, "« tous » has them already");
  assert.equal(
    relaunchSentence(preview, "missing"),
    "3 transporteurs vont recevoir la commande CMD-2025-123. 2 transporteurs en doute sont laissés de côté.",
  );
  assert.equal(relaunchSentence(preview, "missing", true), "5 transporteurs vont recevoir la commande CMD-2025-123.");
  assert.match(doubtfulLabel(preview), /^Inclure aussi les 2 transporteurs en doute \(envoi interrompu ou incertain/);
  assert.match(doubtfulLabel({ ...preview, doubtful: 1 }), /^Inclure aussi le transporteur en doute/);
  assert.equal(doubtfulLabel({ ...preview, doubtful: 0 }), null, "no box without carriers in doubt");
  // Everyone else has it: only the ones in doubt could still be sent to, if asked.
  const onlyDoubt = { ...preview, missing: 0, doubtful: 1 };
  assert.equal(relaunchChoice(onlyDoubt, "missing").count, 0);
  assert.match(relaunchSentence(onlyDoubt, "missing"), /1 transporteur en doute est laissé de côté/);
  assert.equal(relaunchChoice(onlyDoubt, "missing", true).count, 1);
});

test("the sidebar status ranks a lost connection over a pause over sending", async () => {
  const { activityStatus } = await import("../lib/format.js");
  const base = { broadcasts: [], paused: false, account_pause: null, whatsapp: null };
  const sending = {
    ...base,
    broadcasts: [{ done: 12, total: 48, reference: "CMD-2025-123" }],
  };
  assert.deepEqual(activityStatus(sending), { tone: "pending", text: "Envoi 12/48 — CMD-2025-123" });
  assert.equal(activityStatus({ ...sending, paused: true }).text, "En pause");
  assert.equal(
    activityStatus({ ...sending, paused: true, whatsapp: { kind: "reconnecting", connected: false } }).text,
    "WhatsApp déconnecté",
  );
  assert.equal(activityStatus({ ...base, whatsapp: { kind: "qr", connected: false } }).text, "WhatsApp non relié");
  assert.equal(activityStatus(base).text, "En attente de commandes");
  assert.equal(activityStatus(null).text, "Démarrage…");
  assert.deepEqual(
    activityStatus({ ...sending, whatsapp: { kind: "reconnecting", connected: false }, outbox_write_failing: "disk is full" }),
    { tone: "bad", text: "Envois arrêtés : base de données" },
  );
});

test("an order's header counts its deliveries by status, naming only those it has", () => {
  const c = { total: 3, pending: 0, sent: 0, delivered: 1, read: 1, failed: 0, invalid_number: 1, not_on_whatsapp: 0, skipped: 0, doubtful: 0 };
  assert.equal(countersText(c), "3 envois · 1 remis · 1 lu · 1 numéro invalide");
  assert.equal(countersText({ ...c, total: 1, delivered: 0, read: 0, invalid_number: 0, sent: 1 }), "1 envoi · 1 envoyé");
  assert.equal(countersText(undefined), "");
});

test("a failed row whose code the relay explains reads in French, the provider's words in the tooltip", () => {
  // As the desktop's history_page sends a Cloud API 131026 failure (HistoryRowView).
  const row = {
    status: "failed",
    error: "131026 : Message undeliverable (Message undeliverable)",
    error_code: "131026",
    error_help: {
      explanation: "WhatsApp n'a pas pu remettre le message : ce numéro n'a pas WhatsApp, ou le transporteur n'a pas accepté les dernières conditions de WhatsApp, ou son application est trop ancienne.",
      action: "Vérifiez le numéro avec le transporteur et demandez-lui de mettre WhatsApp à jour, puis relancez la commande.",
    },
  };
  const cell = errorCell(row);
  assert.equal(cell.text, row.error_help.explanation);
  assert.equal(cell.detail, ` ${row.error_help.action}`);
  assert.doesNotMatch(cell.text + cell.detail, /undeliverable/);
  assert.equal(cell.title, "Message du fournisseur : 131026 : Message undeliverable (Message undeliverable) (131026)");
});

test("an error the relay does not explain shows as stored, with its code", () => {
  const row = { error: "HTTP 500 : refusé par Meta", error_code: "131000", error_help: null };
  assert.deepEqual(errorCell(row), { text: "HTTP 500 : refusé par Meta", detail: " (131000)", title: "HTTP 500 : refusé par Meta" });
  assert.deepEqual(errorCell({ error: null, error_code: null }), { text: "", detail: "", title: "" });
});

test("an order CamionBack closed says so first, with the sends its closing saved", () => {
  const c = { total: 10, pending: 0, sent: 3, delivered: 0, read: 0, failed: 0, invalid_number: 0, not_on_whatsapp: 0, skipped: 7, doubtful: 0 };
  assert.equal(countersText({ ...c, closed: true, avoided: 7 }), "Commande pourvue — 7 envois évités · 10 envois · 3 envoyés · 7 ignorés");
  assert.equal(countersText({ ...c, closed: false, avoided: 0 }), "10 envois · 3 envoyés · 7 ignorés");
  assert.equal(closedHeadline(1), "Commande pourvue — 1 envoi évité");
  assert.equal(countersText({ total: 0, closed: true, avoided: 0 }), "Commande pourvue — 0 envoi évité", "closed before its broadcast");
});
