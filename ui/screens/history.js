// Historique: the send history, grouped by order, with filters, sortable columns, keyset
// pages, "Exporter CSV" (every row of the filters, into the Downloads folder) and
// "📤 Relancer les transporteurs" (confirmation with the count, "missing" by default).
// The newest page follows a running broadcast live.

import { call } from "../lib/ipc.js";
import { reconcile } from "../lib/reconcile.js";
import { $, $$, errorBox, fill, h, toast } from "../lib/dom.js";
import {
  STATUS_LABELS,
  STATUS_ORDER,
  batchLabel,
  dayRange,
  formatDateTime,
  plural,
  relaunchSentence,
  statusLabel,
  statusTone,
} from "../lib/format.js";
import {
  ariaSort,
  defaultSort,
  firstPage,
  groupsByOrder,
  hasNewer,
  historyQuery,
  isLive,
  newer,
  older,
  pageLabels,
  toggleSort,
} from "../lib/paging.js";

const PAGE_ROWS = 100;
const LIVE_REFRESH_MS = 1000;

let paging = firstPage();
let sort = defaultSort();
let nextCursor = null;
let liveTimer = null;
/** The grid's rows as last drawn, so a refresh redraws only the ones that changed. */
let drawn = new Map();
let loading = false;
let reloadQueued = false;
let preview = null;

function filters() {
  const form = $("#history-filters");
  const data = new FormData(form);
  return {
    status: data.get("status"),
    order: data.get("order"),
    text: data.get("text"),
    from: data.get("from"),
    to: data.get("to"),
  };
}

export function init() {
  const select = $("#filter-status");
  for (const status of STATUS_ORDER) select.append(h("option", { value: status }, STATUS_LABELS[status]));
  $("#history-filters").addEventListener("submit", (event) => {
    event.preventDefault();
    paging = firstPage();
    load();
  });
  $("#filter-reset").addEventListener("click", () => {
    $("#history-filters").reset();
    paging = firstPage();
    sort = defaultSort();
    load();
  });
  for (const button of $$("#history-grid button.sort")) {
    button.addEventListener("click", () => {
      sort = toggleSort(sort, button.dataset.sort);
      paging = firstPage();
      // Another order than newest first: the live refresh would move rows under the reader.
      if (!isLive(paging, sort)) stopLive();
      load();
    });
  }
  $("#history-export").addEventListener("click", exportCsv);
  $("#page-older").addEventListener("click", () => {
    paging = older(paging, nextCursor);
    load();
  });
  $("#page-newer").addEventListener("click", () => {
    paging = newer(paging);
    load();
  });
  initDialog();
}

export function enter(ctx) {
  load();
  // A broadcast already running when the screen opens is followed at once.
  if (ctx.activity) onActivity(ctx, ctx.activity);
}

export function leave() {
  stopLive();
}

export function onActivity(ctx, activity) {
  // Live while something is being sent and the newest page is shown; one last refresh when
  // the broadcast ends so the final statuses show.
  if (activity.broadcasts.length > 0 && isLive(paging, sort)) startLive();
  else if (liveTimer) {
    stopLive();
    load();
  }
}

function startLive() {
  if (liveTimer) return;
  $("#history-live").hidden = false;
  liveTimer = setInterval(() => load({ quiet: true }), LIVE_REFRESH_MS);
}

function stopLive() {
  clearInterval(liveTimer);
  liveTimer = null;
  $("#history-live").hidden = true;
}

/** Loads the current page; `quiet` keeps the rows on screen while a live refresh runs. */
async function load({ quiet = false } = {}) {
  // A request made while a page is loading (a live tick, a click on a header, the refresh at
  // the end of a broadcast) is run right after it, never dropped: else the grid could keep a
  // row "En file" that has long been sent.
  if (loading) {
    reloadQueued = true;
    return;
  }
  loading = true;
  const errorSlot = $("#history-error");
  try {
    const query = historyQuery(filters(), paging, PAGE_ROWS, dayRange, sort);
    const page = await call("history_page", { query });
    nextCursor = page.next_cursor;
    fill(errorSlot);
    render(page.rows);
  } catch (err) {
    fill(errorSlot, errorBox(err));
    if (!quiet) fill($("#history-rows"));
  } finally {
    loading = false;
  }
  $("#page-older").disabled = nextCursor === null;
  $("#page-newer").disabled = !hasNewer(paging);
  $("#page-info").textContent = `page ${paging.index + 1}`;
  const labels = pageLabels(sort);
  $("#page-newer").textContent = labels.previous;
  $("#page-older").textContent = labels.next;
  if (reloadQueued) {
    reloadQueued = false;
    load({ quiet: true });
  }
}

function renderSortHeaders() {
  for (const button of $$("#history-grid button.sort")) {
    const state = ariaSort(sort, button.dataset.sort);
    button.parentElement.setAttribute("aria-sort", state);
    button.querySelector(".sort-mark").textContent = state === "ascending" ? "▲" : state === "descending" ? "▼" : "";
  }
}

/** "Exporter CSV": every row of the filters as typed (not only this page), in the sort shown. */
async function exportCsv() {
  const button = $("#history-export");
  const result = $("#history-export-result");
  button.disabled = true;
  try {
    const { cursor, limit, ...query } = historyQuery(filters(), firstPage(), PAGE_ROWS, dayRange, sort);
    const outcome = await call("history_export_csv", { query });
    result.dataset.path = outcome.path;
    result.dataset.rows = String(outcome.rows);
    result.textContent = `✅ ${plural(outcome.rows, "ligne")} exportée${outcome.rows > 1 ? "s" : ""} dans ${outcome.path}`;
    result.hidden = false;
    toast(`Export CSV enregistré : ${outcome.path}`);
  } catch (err) {
    result.hidden = true;
    fill($("#history-error"), errorBox(err));
  } finally {
    button.disabled = false;
  }
}

function render(rows) {
  renderSortHeaders();
  const tbody = $("#history-rows");
  if (rows.length === 0) {
    fill(tbody, h("tr", {}, h("td", { colspan: 7, class: "empty" }, "Aucun envoi ne correspond à ces filtres.")));
    drawn = new Map();
    return;
  }
  const items = [];
  let previous = null;
  const grouped = groupsByOrder(sort);
  for (const row of rows) {
    // One header per run of rows of the same order and batch.
    if (grouped && (!previous || previous.order_id !== row.order_id || previous.batch !== row.batch)) {
      items.push({
        key: `g:${row.order_id}:${row.batch}:${row.id}`,
        sig: `${row.order_reference}|${row.route}`,
        make: () => groupHeader(row),
      });
    }
    items.push({ key: `r:${row.id}`, sig: JSON.stringify(row), make: () => rowLine(row) });
    previous = row;
  }
  drawn = reconcile(tbody, items, drawn);
}

function groupHeader(row) {
  return h(
    "tr",
    { class: "group", dataset: { order: row.order_id } },
    h(
      "td",
      { colspan: 7 },
      h("strong", { class: "reference" }, row.order_reference),
      h("span", { class: "muted" }, ` · ${row.route} · ${batchLabel(row.batch)}`),
      h(
        "button",
        {
          class: "relaunch small-button",
          dataset: { order: row.order_id },
          onclick: () => openDialog(row.order_id),
        },
        "📤 Relancer les transporteurs",
      ),
    ),
  );
}

function rowLine(row) {
  const date = row.sent_at ?? row.queued_at;
  return h(
    "tr",
    { class: "delivery", dataset: { id: row.id, order: row.order_id, status: row.status } },
    h(
      "td",
      {
        class: row.sent_at ? "nowrap" : "nowrap muted",
        title: row.sent_at ? "date d'envoi" : "pas envoyé : date de mise en file",
      },
      formatDateTime(date),
    ),
    h("td", { class: "carrier" }, row.carrier_name),
    h("td", { class: "mono nowrap" }, row.phone),
    h("td", { class: "nowrap" }, row.order_reference),
    h("td", { class: "nowrap" }, h("span", { class: `badge tone-${statusTone(row.status)}` }, statusLabel(row.status, row.unconfirmed))),
    h("td", { class: "num" }, String(row.attempts)),
    h("td", { class: "error-cell", title: row.error ?? "" }, row.error ?? "", row.error_code ? h("span", { class: "muted small" }, ` (${row.error_code})`) : null),
  );
}

function initDialog() {
  const dialog = $("#relaunch-dialog");
  const form = $("#relaunch-form");
  form.addEventListener("change", () => renderSentence());
  $("#relaunch-cancel").addEventListener("click", () => dialog.close());
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!preview) return;
    const mode = new FormData(form).get("mode");
    $("#relaunch-confirm").disabled = true;
    try {
      const outcome = await call("relaunch_order", { orderId: preview.order_id, mode });
      dialog.close();
      const invalid = outcome.invalid_numbers ? `, ${plural(outcome.invalid_numbers, "numéro invalide", "numéros invalides")}` : "";
      toast(`${outcome.reference} : ${plural(outcome.queued, "transporteur")} en file${invalid}.`);
      if (outcome.sync_warning) toast(outcome.sync_warning, "bad");
      paging = firstPage();
      load();
      // Followed live from now: a short relaunch can end before the next activity tick, which
      // then refreshes the grid once more (see onActivity).
      if (isLive(paging, sort)) startLive();
    } catch (err) {
      fill($("#relaunch-error"), errorBox(err));
    } finally {
      $("#relaunch-confirm").disabled = false;
    }
  });
}

function renderSentence() {
  if (!preview) return;
  const mode = new FormData($("#relaunch-form")).get("mode");
  $("#relaunch-sentence").textContent = relaunchSentence(preview, mode);
  $("#relaunch-confirm").disabled = (mode === "all" ? preview.all : preview.missing) === 0;
}

async function openDialog(orderId) {
  const dialog = $("#relaunch-dialog");
  fill($("#relaunch-error"));
  try {
    preview = await call("relaunch_preview", { orderId });
  } catch (err) {
    toast(err.message, "bad");
    return;
  }
  $("#relaunch-form").reset();
  $("#relaunch-order").textContent = `${preview.reference} · ${preview.route}`;
  $("#relaunch-count-missing").textContent = `(${plural(preview.missing, "transporteur")})`;
  $("#relaunch-count-all").textContent = `(${plural(preview.all, "transporteur")})`;
  renderSentence();
  dialog.showModal();
}
