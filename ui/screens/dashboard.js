// Tableau de bord: the broadcast in progress (12 / 48 and time left at the current throttle),
// the queue, today's counts, the last order received and whether the API answers.

import { call } from "../lib/ipc.js";
import { reconcile } from "../lib/reconcile.js";
import { $, errorBox, fill, h, toast } from "../lib/dom.js";
import {
  STATUS_ORDER,
  batchLabel,
  formatDateTime,
  formatRelative,
  formatSeconds,
  plural,
  progressText,
  statusLabel,
  statusTone,
  timeLeft,
} from "../lib/format.js";

const REFRESH_MS = 2000;
let timer = null;
let last = null;

export function init(ctx) {
  $("#pause-toggle").addEventListener("click", async () => {
    const paused = !(ctx.activity?.paused ?? false);
    try {
      await call("set_paused", { paused });
      toast(paused ? "Envois en pause : l'envoi en cours se termine." : "Envois repris.");
      refresh(ctx);
    } catch (err) {
      toast(err.message, "bad");
    }
  });
}

export function enter(ctx) {
  refresh(ctx);
  clearInterval(timer);
  timer = setInterval(() => refresh(ctx), REFRESH_MS);
}

export function leave() {
  clearInterval(timer);
  timer = null;
}

export function onActivity(ctx, activity) {
  if (last) {
    last = { ...last, activity };
    render(ctx, last);
  }
}

async function refresh(ctx) {
  try {
    last = await call("overview");
    if (last.activity) ctx.setActivity(last.activity);
    render(ctx, last);
  } catch (err) {
    fillBody(errorBox(err));
  }
}

function card(title, ...body) {
  return h("div", { class: "card" }, h("h2", {}, title), ...body);
}

// The dashboard is redrawn every two seconds all day long. Each part (a notice, a card) is
// rebuilt only when what it shows changed (lib/reconcile.js): rebuilding every card each time
// grew the WebKit process by ~0.7 MB a minute when idle, garbage its collector left behind.
let drawnParts = new Map();
let drawnCards = new Map();

/** A part of the dashboard: `view` is the plain data it shows, `build(view)` its children. */
function part(key, className, view, build) {
  return {
    key,
    kind: key,
    sig: JSON.stringify(view),
    make: () => h("div", {}),
    paint: (el) => {
      el.className = className;
      fill(el, ...build(view));
    },
  };
}

function cardPart(key, title, view, build) {
  return part(key, "card", view, (v) => [h("h2", {}, title), ...build(v)]);
}

/** Draws something else than the parts (a start-up state, an error): the next render starts over. */
function fillBody(...children) {
  fill($("#dashboard-body"), ...children);
  drawnParts = new Map();
  drawnCards = new Map();
}

function broadcastCard(b, overview) {
  const failedNote = b.failed > 0 ? h("span", { class: "tone-bad" }, ` · ${plural(b.failed, "échec")}`) : null;
  return h(
    "div",
    { class: "broadcast", dataset: { order: b.order_id, batch: b.batch } },
    h(
      "div",
      { class: "broadcast-head" },
      h("strong", { class: "reference" }, b.reference),
      h("span", { class: "muted" }, ` — ${batchLabel(b.batch)}`),
      h("span", { class: "broadcast-count" }, progressText(b.done, b.total)),
    ),
    h("progress", { max: Math.max(b.total, 1), value: b.done }),
    h(
      "div",
      { class: "muted small" },
      `${plural(b.succeeded, "envoyé")}`,
      failedNote,
      ` · reste ${b.pending} — ${timeLeft(b.pending, overview.throttle_ms, overview.jitter_ms)} au rythme actuel`,
    ),
  );
}

function render(ctx, overview) {
  const body = $("#dashboard-body");
  const pauseButton = $("#pause-toggle");
  const activity = overview.activity;
  pauseButton.hidden = !activity;
  if (activity) {
    pauseButton.textContent = activity.paused ? "▶ Reprendre les envois" : "⏸ Mettre en pause";
    pauseButton.classList.toggle("warn", activity.paused);
  }
  if (overview.phase !== "running" || !activity) {
    const text = overview.phase === "failed" ? "Le relais est arrêté : rien à afficher (voir le message ci-dessus)." : "Le relais démarre…";
    fillBody(card("État", h("p", { class: "muted" }, text)));
    return;
  }
  const now = Date.now();
  const notices = [];
  if (activity.paused) {
    notices.push(
      part("notice-paused", "notice warn", {}, () => [
        "⏸ Envois en pause : rien n'est envoyé jusqu'à la reprise. Les commandes reçues restent en file.",
      ]),
    );
  }
  if (activity.account_pause) {
    const until = activity.account_pause.until_ms ? ` jusqu'à ${formatDateTime(activity.account_pause.until_ms)}` : "";
    const text = `Envois suspendus${until} : ${activity.account_pause.reason}`;
    notices.push(part("notice-account", "notice bad", { text }, (v) => [v.text]));
  }
  if (activity.whatsapp && !activity.whatsapp.connected) {
    notices.push(
      part("notice-whatsapp", "notice bad", { description: activity.whatsapp.description }, (v) => [
        `WhatsApp : ${v.description} `,
        h("button", { class: "link", onclick: () => ctx.show("whatsapp") }, "Ouvrir la connexion WhatsApp"),
      ]),
    );
  }

  const pace = { throttle_ms: overview.throttle_ms, jitter_ms: overview.jitter_ms };
  const cards = [
    cardPart("broadcasts", "Diffusion en cours", { broadcasts: activity.broadcasts, ...pace }, (v) =>
      v.broadcasts.length
        ? v.broadcasts.map((b) => broadcastCard(b, v))
        : [h("p", { class: "muted", id: "no-broadcast" }, "Aucune diffusion en cours : le relais attend la prochaine commande.")],
    ),
    cardPart(
      "queue",
      "File d'attente",
      { depth: activity.queue_depth, pending: activity.broadcasts.map((b) => [b.reference, b.pending]), ...pace },
      (v) => [
        h("div", { class: "big", id: "queue-depth" }, String(v.depth)),
        h("div", { class: "muted small" }, v.depth === 1 ? "message à envoyer" : "messages à envoyer"),
        v.pending.length > 1
          ? h("ul", { class: "queue" }, v.pending.map(([reference, pending]) => h("li", {}, `${reference} : ${pending} restant(s)`)))
          : null,
        h(
          "div",
          { class: "muted small" },
          v.throttle_ms === 1000 ? "Rythme : 1 message par seconde" : `Rythme : 1 message toutes les ${formatSeconds(v.throttle_ms)} s`,
          v.jitter_ms ? ` (+ jusqu'à ${formatSeconds(v.jitter_ms)} s)` : "",
        ),
      ],
    ),
    cardPart("today", "Aujourd'hui", { today: overview.today }, (v) => {
      const counts = new Map(v.today.map((c) => [c.status, c.count]));
      const today = STATUS_ORDER.filter((s) => counts.has(s)).map((s) =>
        h("div", { class: `count tone-${statusTone(s)}` }, h("div", { class: "count-n" }, String(counts.get(s))), h("div", { class: "count-label" }, statusLabel(s))),
      );
      return [today.length ? h("div", { class: "counts" }, today) : h("p", { class: "muted" }, "Aucun envoi aujourd'hui.")];
    }),
    cardPart(
      "last-order",
      "Dernière commande reçue",
      overview.last_order
        ? {
            reference: overview.last_order.reference,
            route: overview.last_order.route,
            how: `reçue ${formatRelative(overview.last_order.received_at, now)} par ${overview.last_order.source === "webhook" ? "webhook" : "interrogation de l'API"}`,
            // "Commande pourvue — N envois évités" once CamionBack closed it.
            closed: overview.last_order.closed ?? null,
          }
        : null,
      (v) =>
        v
          ? [
              h("div", { class: "big" }, v.reference),
              h("div", {}, v.route),
              h("div", { class: "muted small" }, v.how),
              ...(v.closed ? [h("div", { class: "tone-ok small" }, v.closed)] : []),
            ]
          : [h("p", { class: "muted" }, "Aucune commande reçue pour l'instant.")],
    ),
    cardPart("api", "API CamionBack", apiHealth(overview.api, now), (lines) =>
      lines.map(([tag, className, text]) => h(tag, className ? { class: className } : {}, text)),
    ),
  ];

  const container = { key: "cards", kind: "cards", sig: "", make: () => h("div", { class: "cards" }), paint: () => {} };
  drawnParts = reconcile(body, [...notices, container], drawnParts);
  drawnCards = reconcile(drawnParts.get("cards").el, cards, drawnCards);
}

/** What the API card says, as `[tag, class, text]` lines: plain data, compared between renders. */
function apiHealth(api, now) {
  if (!api || !api.configured) {
    return [
      ["div", "tone-bad", "Non configurée"],
      ["p", "muted small", "Sans CAMIONBACK_API_URL : ni interrogation des commandes ni synchronisation des transporteurs."],
    ];
  }
  const lines = [];
  if (api.last_poll_error) {
    lines.push(["div", "tone-bad", "⚠ Injoignable"]);
    lines.push(["div", "small", api.last_poll_error.message]);
    lines.push(["div", "muted small", `dernière réponse : ${formatRelative(api.last_poll_ok_at, now)}`]);
  } else if (api.polling) {
    lines.push(["div", "tone-ok", "✔ Joignable"]);
    lines.push(["div", "muted small", `dernière interrogation : ${formatRelative(api.last_poll_ok_at, now)}`]);
  } else {
    lines.push(["div", null, "Interrogation désactivée (webhooks seulement)"]);
  }
  lines.push([
    "div",
    "muted small",
    api.last_sync_error
      ? `transporteurs : échec de la synchronisation (${api.last_sync_error.message})`
      : `transporteurs synchronisés ${formatRelative(api.last_sync_at, now)}`,
  ]);
  return lines;
}
