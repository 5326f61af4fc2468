// Tableau de bord: the broadcast in progress (12 / 48 and time left at the current throttle),
// the queue, today's counts, the last order received and whether the API answers.

import { call } from "../lib/ipc.js";
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
    fill($("#dashboard-body"), errorBox(err));
  }
}

function card(title, ...body) {
  return h("div", { class: "card" }, h("h2", {}, title), ...body);
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
    fill(body, card("État", h("p", { class: "muted" }, text)));
    return;
  }
  const now = Date.now();
  const notices = [];
  if (activity.paused) {
    notices.push(h("div", { class: "notice warn" }, "⏸ Envois en pause : rien n'est envoyé jusqu'à la reprise. Les commandes reçues restent en file."));
  }
  if (activity.account_pause) {
    const until = activity.account_pause.until_ms ? ` jusqu'à ${formatDateTime(activity.account_pause.until_ms)}` : "";
    notices.push(h("div", { class: "notice bad" }, `Envois suspendus${until} : ${activity.account_pause.reason}`));
  }
  if (activity.whatsapp && !activity.whatsapp.connected) {
    notices.push(
      h(
        "div",
        { class: "notice bad" },
        `WhatsApp : ${activity.whatsapp.description} `,
        h("button", { class: "link", onclick: () => ctx.show("whatsapp") }, "Ouvrir la connexion WhatsApp"),
      ),
    );
  }

  const progress = activity.broadcasts.length
    ? activity.broadcasts.map((b) => broadcastCard(b, overview))
    : [h("p", { class: "muted", id: "no-broadcast" }, "Aucune diffusion en cours : le relais attend la prochaine commande.")];

  const counts = new Map(overview.today.map((c) => [c.status, c.count]));
  const today = STATUS_ORDER.filter((s) => counts.has(s)).map((s) =>
    h("div", { class: `count tone-${statusTone(s)}` }, h("div", { class: "count-n" }, String(counts.get(s))), h("div", { class: "count-label" }, statusLabel(s))),
  );

  const lastOrder = overview.last_order
    ? [
        h("div", { class: "big" }, overview.last_order.reference),
        h("div", {}, overview.last_order.route),
        h(
          "div",
          { class: "muted small" },
          `reçue ${formatRelative(overview.last_order.received_at, now)} par ${overview.last_order.source === "webhook" ? "webhook" : "interrogation de l'API"}`,
        ),
      ]
    : [h("p", { class: "muted" }, "Aucune commande reçue pour l'instant.")];

  fill(
    body,
    notices,
    h(
      "div",
      { class: "cards" },
      card(`Diffusion en cours`, ...progress),
      card(
        "File d'attente",
        h("div", { class: "big", id: "queue-depth" }, String(activity.queue_depth)),
        h("div", { class: "muted small" }, activity.queue_depth === 1 ? "message à envoyer" : "messages à envoyer"),
        activity.broadcasts.length > 1
          ? h("ul", { class: "queue" }, activity.broadcasts.map((b) => h("li", {}, `${b.reference} : ${b.pending} restant(s)`)))
          : null,
        h(
          "div",
          { class: "muted small" },
          overview.throttle_ms === 1000
            ? "Rythme : 1 message par seconde"
            : `Rythme : 1 message toutes les ${formatSeconds(overview.throttle_ms)} s`,
          overview.jitter_ms ? ` (+ jusqu'à ${formatSeconds(overview.jitter_ms)} s)` : "",
        ),
      ),
      card("Aujourd'hui", today.length ? h("div", { class: "counts" }, today) : h("p", { class: "muted" }, "Aucun envoi aujourd'hui.")),
      card("Dernière commande reçue", ...lastOrder),
      card("API CamionBack", ...apiHealth(overview.api, now)),
    ),
  );
}

function apiHealth(api, now) {
  if (!api || !api.configured) {
    return [
      h("div", { class: "tone-bad" }, "Non configurée"),
      h("p", { class: "muted small" }, "Sans CAMIONBACK_API_URL : ni interrogation des commandes ni synchronisation des transporteurs."),
    ];
  }
  const lines = [];
  if (api.last_poll_error) {
    lines.push(h("div", { class: "tone-bad" }, "⚠ Injoignable"));
    lines.push(h("div", { class: "small" }, api.last_poll_error.message));
    lines.push(h("div", { class: "muted small" }, `dernière réponse : ${formatRelative(api.last_poll_ok_at, now)}`));
  } else if (api.polling) {
    lines.push(h("div", { class: "tone-ok" }, "✔ Joignable"));
    lines.push(h("div", { class: "muted small" }, `dernière interrogation : ${formatRelative(api.last_poll_ok_at, now)}`));
  } else {
    lines.push(h("div", {}, "Interrogation désactivée (webhooks seulement)"));
  }
  lines.push(
    h(
      "div",
      { class: "muted small" },
      api.last_sync_error
        ? `transporteurs : échec de la synchronisation (${api.last_sync_error.message})`
        : `transporteurs synchronisés ${formatRelative(api.last_sync_at, now)}`,
    ),
  );
  return lines;
}
