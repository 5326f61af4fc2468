// Transporteurs: the carrier list as last synced from the CamionBack API, who may receive
// broadcasts and why not, and "Synchroniser".

import { call } from "../lib/ipc.js";
import { $, errorBox, fill, h, toast } from "../lib/dom.js";
import { formatDateTime, formatRelative, plural } from "../lib/format.js";

export function init() {
  $("#carriers-sync").addEventListener("click", async () => {
    const button = $("#carriers-sync");
    button.disabled = true;
    button.textContent = "Synchronisation…";
    try {
      const outcome = await call("sync_carriers");
      toast(`${plural(outcome.listed, "transporteur")} listé(s) par l'API, ${outcome.eligible} validé(s).`);
    } catch (err) {
      toast(err.message, "bad");
    } finally {
      button.disabled = false;
      button.textContent = "🔄 Synchroniser";
      load();
    }
  });
}

export function enter() {
  load();
}

function statusCell(carrier) {
  const tone = carrier.eligible ? "ok" : carrier.status_label === "en attente" ? "pending" : "bad";
  // The API's own word only when it says more than the label ("absent de l'API", a new word).
  const raw = carrier.status_label === "inconnu" && carrier.statut ? ` (${carrier.statut})` : "";
  return h("td", {}, h("span", { class: `badge tone-${tone}` }, carrier.status_label), h("span", { class: "muted small" }, raw));
}

async function load() {
  const meta = $("#carriers-meta");
  try {
    const list = await call("list_carriers");
    const now = Date.now();
    const eligible = list.carriers.filter((c) => c.eligible && !c.opted_out_at).length;
    fill(
      meta,
      h("span", {}, `${plural(list.carriers.length, "transporteur")}, ${eligible} reçoivent les commandes. `),
      list.api_configured
        ? h("span", { class: "muted" }, `Dernière synchronisation : ${formatRelative(list.last_sync_at, now)}.`)
        : h("span", { class: "tone-bad" }, "API CamionBack non configurée : pas de synchronisation."),
      list.last_sync_error
        ? h("div", { class: "notice bad" }, `Échec de la dernière synchronisation (${formatRelative(list.last_sync_error.at, now)}) : ${list.last_sync_error.message}`)
        : null,
    );
    const rows = list.carriers.map((c) =>
      h(
        "tr",
        { dataset: { id: c.id } },
        h("td", {}, c.name),
        h("td", { class: "mono" }, c.phone, c.phone_error ? h("div", { class: "tone-bad small" }, c.phone_error) : null),
        statusCell(c),
        h("td", {}, c.last_sent_at ? formatDateTime(c.last_sent_at) : h("span", { class: "muted" }, "jamais")),
        h("td", {}, c.opted_out_at ? h("span", { class: "badge tone-bad" }, `oui, le ${formatDateTime(c.opted_out_at)}`) : h("span", { class: "muted" }, "non")),
      ),
    );
    fill(
      $("#carriers-rows"),
      rows.length ? rows : h("tr", {}, h("td", { colspan: 5, class: "empty" }, "Aucun transporteur synchronisé pour l'instant.")),
    );
  } catch (err) {
    fill(meta, errorBox(err));
    fill($("#carriers-rows"));
  }
}
