// Historique: the send history, grouped by order, with filters, sortable columns, keyset
// pages, "Exporter CSV" (every row of the filters, into the Downloads folder) and
// "📤 Relancer les transporteurs" (confirmation with the count, "missing" by default; the
// carriers in doubt only when their box is ticked).
// The newest page follows a running broadcast live, and the statuses that arrive after it.

import { call } from "../lib/ipc.js";
import { reconcile } from "../lib/reconcile.js";
import { $, $$, errorBox, fill, h, toast } from "../lib/dom.js";
import {
  STATUS_LABELS,
  STATUS_ORDER,
  batchLabel,
  countersText,
  dayRange,
  errorCell,
  formatDateTime,
  doubtfulLabel,
  plural,
  relaunchChoice,
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
/** Between broadcasts the newest page still follows, slower: receipts and status callbacks
 * ("Distribué", "Lu", a late "Échec") keep arriving for minutes after the last send. */
const IDLE_REFRESH_MS = 5000;

let paging = firstPage();
let sort = defaultSort();
let nextCursor = null;
let liveTimer = null;
/** The period `liveTimer` runs at: LIVE_REFRESH_MS while sending, IDLE_REFRESH_MS otherwise. */
let livePeriod = 0;
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
  else if (isLive(paging, sort)) startLive(IDLE_REFRESH_MS);
}

export function leave() {
  stopLive();
}

export function onActivity(ctx, activity) {
  // Only the newest page follows (another page or order would move rows under the reader):
  // every second while something is being sent, with one refresh when the broadcast ends so
  // the final statuses show, then every few seconds for the statuses that come later.
  if (!isLive(paging, sort)) return;
  if (activity.broadcasts.length > 0) startLive(LIVE_REFRESH_MS);
  else {
    if (livePeriod === LIVE_REFRESH_MS) load();
    startLive(IDLE_REFRESH_MS);
  }
}

function startLive(period = LIVE_REFRESH_MS) {
  $("#history-live").hidden = period !== LIVE_REFRESH_MS;
  if (liveTimer && livePeriod === period) return;
  clearInterval(liveTimer);
  livePeriod = period;
  // An older page or another order, chosen since, is left as the reader has it.
  liveTimer = setInterval(() => isLive(paging, sort) && load({ quiet: true }), period);
}

function stopLive() {
  clearInterval(liveTimer);
  liveTimer = null;
  livePeriod = 0;
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
    render(page.rows, page.counters ?? []);
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

function render(rows, counters = []) {
  const countersOf = new Map(counters.map((c) => [c.order_id, countersText(c)]));
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
        sig: `${row.order_reference}|${row.route}|${countersOf.get(row.order_id) ?? ""}`,
        kind: "group",
        make: groupHeader,
        paint: (el) => paintGroupHeader(el, row, countersOf.get(row.order_id) ?? ""),
      });
    }
    items.push({
      key: `r:${row.id}`,
      sig: JSON.stringify(row),
      kind: "row",
      make: rowLine,
      paint: (el) => paintRowLine(el, row),
    });
    previous = row;
  }
  drawn = reconcile(tbody, items, drawn);
}

// Rows are built once (`groupHeader`, `rowLine`) and repainted in place (`paint…`) when their
// data changes or a page change gives them another delivery: see lib/reconcile.js.

/** Sets `el`'s text, keeping its text node: no new node when only the words change. */
function setText(el, text) {
  const node = el.firstChild;
  if (node && node.nodeType === Node.TEXT_NODE && !node.nextSibling) {
    if (node.data !== text) node.data = text;
  } else {
    el.textContent = text;
  }
}

function groupHeader() {
  return h(
    "tr",
    { class: "group" },
    h(
      "td",
      { colspan: 7 },
      h("strong", { class: "reference" }),
      h("span", { class: "muted" }),
      h("span", { class: "counters small" }),
      h(
        "button",
        {
          class: "relaunch small-button",
          // The order is read when clicked: the row may have been repainted for another one.
          onclick: (event) => openDialog(Number(event.currentTarget.dataset.order)),
        },
        "📤 Relancer les transporteurs",
      ),
    ),
  );
}

function paintGroupHeader(el, row, counters) {
  const [reference, details, tally, button] = el.firstChild.children;
  el.dataset.order = row.order_id;
  button.dataset.order = row.order_id;
  setText(reference, row.order_reference);
  setText(details, ` · ${row.route} · ${batchLabel(row.batch)}`);
  // The order's counters (every batch): the same statuses whatever the channel.
  setText(tally, counters ? ` · ${counters}` : "");
  tally.title = "commande entière, tous les envois";
}

function rowLine() {
  return h(
    "tr",
    { class: "delivery" },
    h("td", {}),
    h("td", { class: "carrier" }),
    h("td", { class: "mono nowrap" }),
    h("td", { class: "nowrap" }),
    h("td", { class: "nowrap" }, h("span", {})),
    h("td", { class: "num" }),
    h("td", { class: "error-cell" }, h("span", { class: "error-text" }), h("span", { class: "muted small" })),
  );
}

function paintRowLine(el, row) {
  const [date, carrier, phone, reference, status, attempts, error] = el.children;
  el.dataset.id = row.id;
  el.dataset.order = row.order_id;
  el.dataset.status = row.status;
  date.className = row.sent_at ? "nowrap" : "nowrap muted";
  date.title = row.sent_at ? "date d'envoi" : "pas envoyé : date de mise en file";
  setText(date, formatDateTime(row.sent_at ?? row.queued_at));
  setText(carrier, row.carrier_name);
  setText(phone, row.phone);
  setText(reference, row.order_reference);
  const badge = status.firstChild;
  badge.className = `badge tone-${statusTone(row.status)}`;
  setText(badge, statusLabel(row.status, row.unconfirmed));
  setText(attempts, String(row.attempts));
  const cell = errorCell(row);
  error.title = cell.title;
  const [text, detail] = error.children;
  setText(text, cell.text);
  setText(detail, cell.detail);
}

function initDialog() {
  const dialog = $("#relaunch-dialog");
  const form = $("#relaunch-form");
  form.addEventListener("change", () => renderSentence());
  $("#relaunch-cancel").addEventListener("click", () => dialog.close());
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!preview) return;
    const { mode } = dialogChoice();
    $("#relaunch-confirm").disabled = true;
    try {
      // A closed order is relaunched only once staff ticked "Relancer quand même".
      const force = Boolean(preview.closed) && $("#relaunch-force").checked;
      const outcome = await call("relaunch_order", { orderId: preview.order_id, mode, force });
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

/** The dialog's choices: the radio button, and the box for the carriers in doubt. */
function dialogChoice() {
  const mode = new FormData($("#relaunch-form")).get("mode");
  const includeDoubtful = $("#relaunch-include-doubtful").checked;
  return { ...relaunchChoice(preview, mode, includeDoubtful), radio: mode, includeDoubtful };
}

function renderSentence() {
  if (!preview) return;
  const { count, radio, includeDoubtful } = dialogChoice();
  // "Tous" already includes them: the box only refines "seulement ceux qui ne l'ont pas reçue".
  $("#relaunch-include-doubtful").disabled = radio === "all";
  $("#relaunch-sentence").textContent = relaunchSentence(preview, radio, includeDoubtful);
  const unconfirmedClose = Boolean(preview.closed) && !$("#relaunch-force").checked;
  $("#relaunch-confirm").disabled = count === 0 || unconfirmedClose;
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
  const doubtful = doubtfulLabel(preview);
  $("#relaunch-doubtful").hidden = doubtful === null;
  $("#relaunch-doubtful-label").textContent = doubtful ?? "";
  $("#relaunch-closed").hidden = !preview.closed;
  $("#relaunch-closed-headline").textContent = preview.closed ?? "";
  renderSentence();
  dialog.showModal();
}
