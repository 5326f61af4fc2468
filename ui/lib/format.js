// Pure formatting and grouping helpers: no DOM, no Tauri, so `node --test ui/tests/` covers them.

/** French labels of the delivery statuses the engine stores. */
export const STATUS_LABELS = Object.freeze({
  queued: "En file",
  sending: "Envoi en cours",
  sent: "Envoyé",
  delivered: "Distribué",
  read: "Lu",
  failed: "Échec",
  invalid_number: "Numéro invalide",
  not_on_whatsapp: "Pas sur WhatsApp",
  skipped: "Ignoré",
  interrupted: "Interrompu",
  uncertain: "Incertain",
});

/** The order statuses are offered in the history filter. */
export const STATUS_ORDER = Object.freeze(Object.keys(STATUS_LABELS));

export function statusLabel(status, unconfirmed = false) {
  const label = STATUS_LABELS[status] ?? status;
  return unconfirmed ? `${label} (non confirmé)` : label;
}

/** A colour family for a status: ok, bad, pending or neutral. */
export function statusTone(status) {
  switch (status) {
    case "sent":
    case "delivered":
    case "read":
      return "ok";
    case "failed":
    case "invalid_number":
    case "not_on_whatsapp":
    case "interrupted":
    case "uncertain":
      return "bad";
    case "queued":
    case "sending":
      return "pending";
    default:
      return "neutral";
  }
}

const pad = (n) => String(n).padStart(2, "0");

// One formatter per time zone, made once: each `Intl.DateTimeFormat` holds ICU objects the
// JavaScript collector hardly sees, so making one per date (700 per second while the history
// grid follows a broadcast) grew the WebKit process by tens of megabytes.
const dateTimeFormats = new Map();

function dateTimeFormat(timeZone) {
  let format = dateTimeFormats.get(timeZone);
  if (!format) {
    format = new Intl.DateTimeFormat("fr-FR", {
      timeZone,
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      hourCycle: "h23",
    });
    dateTimeFormats.set(timeZone, format);
  }
  return format;
}

const secondsFormat = new Intl.NumberFormat("fr-FR", { maximumFractionDigits: 3 });

/** A duration in milliseconds as French seconds: `1,5`. */
export function formatSeconds(ms) {
  return secondsFormat.format(ms / 1000);
}

/** `21/11/2025 18:42` in the machine's time zone (or `timeZone` for tests). */
export function formatDateTime(ms, timeZone) {
  if (ms === null || ms === undefined) return "—";
  const parts = dateTimeFormat(timeZone).formatToParts(new Date(ms));
  const get = (type) => parts.find((p) => p.type === type)?.value ?? "";
  return `${get("day")}/${get("month")}/${get("year")} ${get("hour")}:${get("minute")}`;
}

/** `il y a 12 s`, `il y a 3 min`, `il y a 2 h`, then the date. */
export function formatRelative(ms, now, timeZone) {
  if (ms === null || ms === undefined) return "jamais";
  const seconds = Math.round((now - ms) / 1000);
  if (seconds < 0) return formatDateTime(ms, timeZone);
  if (seconds < 5) return "à l'instant";
  if (seconds < 60) return `il y a ${seconds} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `il y a ${minutes} min`;
  const hours = Math.floor(minutes / 60);
  if (hours < 24) return `il y a ${hours} h`;
  return `le ${formatDateTime(ms, timeZone)}`;
}

/** `12 / 48` */
export function progressText(done, total) {
  return `${done} / ${total}`;
}

/** `1 transporteur`, `3 transporteurs`. */
export function plural(count, singular, pluralForm = `${singular}s`) {
  return `${count} ${count === 1 || count === 0 ? singular : pluralForm}`;
}

/** A duration in words: `45 s`, `3 min 20 s`, `1 h 05 min`. */
export function formatDuration(totalSeconds) {
  const s = Math.max(0, Math.round(totalSeconds));
  if (s < 60) return `${s} s`;
  const minutes = Math.floor(s / 60);
  if (minutes < 60) {
    const rest = s % 60;
    return rest ? `${minutes} min ${pad(rest)} s` : `${minutes} min`;
  }
  const hours = Math.floor(minutes / 60);
  return `${hours} h ${pad(minutes % 60)} min`;
}

/**
 * Time left to send `pending` messages at the current throttle: each gap is the throttle
 * plus on average half the jitter.
 */
export function timeLeft(pending, throttleMs, jitterMs = 0) {
  if (pending <= 0) return "terminé";
  const gapMs = throttleMs + jitterMs / 2;
  return `environ ${formatDuration((pending * gapMs) / 1000)}`;
}

/** Whole seconds before `expiresAtMs`, never negative. */
export function secondsLeft(expiresAtMs, now) {
  return Math.max(0, Math.ceil((expiresAtMs - now) / 1000));
}

export function batchLabel(batch) {
  return batch === 0 ? "diffusion automatique" : `relance n°${batch}`;
}

/** "48 envoyés, 2 échecs" */
export function broadcastSummary(succeeded, failed) {
  const sent = succeeded <= 1 ? `${succeeded} envoyé` : `${succeeded} envoyés`;
  if (failed === 0) return sent;
  return failed === 1 ? `${sent}, 1 échec` : `${sent}, ${failed} échecs`;
}

/**
 * History rows (newest first) grouped by order and batch, keeping their order: consecutive
 * rows of the same broadcast share one header with the relaunch button.
 */
export function groupRows(rows) {
  const groups = [];
  for (const row of rows) {
    const last = groups[groups.length - 1];
    if (last && last.order_id === row.order_id && last.batch === row.batch) {
      last.rows.push(row);
    } else {
      groups.push({
        key: `${row.order_id}:${row.batch}:${row.id}`,
        order_id: row.order_id,
        order_reference: row.order_reference,
        route: row.route,
        batch: row.batch,
        rows: [row],
      });
    }
  }
  return groups;
}

/**
 * A day typed in the filter, `JJ/MM/AAAA` (or `AAAA-MM-JJ`), as local midnight; `null` when
 * blank, `undefined` when it is not a real date.
 */
export function parseDay(value) {
  const text = (value ?? "").trim();
  if (text === "") return null;
  let match = /^(\d{1,2})\/(\d{1,2})\/(\d{4})$/.exec(text);
  let [day, month, year] = match ? [match[1], match[2], match[3]] : [];
  if (!match) {
    match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(text);
    if (!match) return undefined;
    [year, month, day] = [match[1], match[2], match[3]];
  }
  const date = new Date(Number(year), Number(month) - 1, Number(day));
  // 31/02 rolls over to March in JavaScript: refuse it instead.
  if (date.getDate() !== Number(day) || date.getMonth() !== Number(month) - 1) return undefined;
  return date;
}

/**
 * The filter's two days as a half-open range of unix ms, in local time: `to` includes the
 * whole day. `invalid` names the fields that are not dates.
 */
export function dayRange(fromText, toText) {
  const from = parseDay(fromText);
  const to = parseDay(toText);
  const invalid = [];
  if (from === undefined) invalid.push("de début");
  if (to === undefined) invalid.push("de fin");
  if (to) to.setDate(to.getDate() + 1);
  return {
    from_ms: from ? from.getTime() : null,
    to_ms: to ? to.getTime() : null,
    invalid,
  };
}

/**
 * The relaunch the dialog's choices ask for: the mode `relaunch_order` takes and how many
 * carriers it queues. Carriers in doubt (an interrupted or uncertain send: they may have it)
 * are only in "missing" when staff tick the box for them.
 */
export function relaunchChoice(preview, mode, includeDoubtful = false) {
  if (mode === "all") return { mode: "all", count: preview.all };
  const doubtful = preview.doubtful ?? 0;
  if (includeDoubtful && doubtful > 0) {
    return { mode: "missing_and_doubtful", count: preview.missing + doubtful };
  }
  return { mode: "missing", count: preview.missing };
}

/** The box that adds the carriers in doubt, or null when there are none. */
export function doubtfulLabel(preview) {
  const doubtful = preview.doubtful ?? 0;
  if (doubtful === 0) return null;
  return doubtful === 1
    ? "Inclure aussi le transporteur en doute (envoi interrompu ou incertain : il l'a peut-être déjà reçue)"
    : `Inclure aussi les ${doubtful} transporteurs en doute (envoi interrompu ou incertain : ils l'ont peut-être déjà reçue)`;
}

/** "Commande pourvue — 7 envois évités": an order CamionBack closed, and the sends it saved. */
export function closedHeadline(avoided) {
  return `Commande pourvue — ${plural(avoided, "envoi évité", "envois évités")}`;
}

/** What the confirmation dialog says the chosen relaunch will do. */
export function relaunchSentence(preview, mode, includeDoubtful = false) {
  const { count } = relaunchChoice(preview, mode, includeDoubtful);
  const doubtful = preview.doubtful ?? 0;
  const leftOut =
    mode !== "all" && !includeDoubtful && doubtful > 0
      ? ` ${plural(doubtful, "transporteur en doute", "transporteurs en doute")} ${doubtful === 1 ? "est laissé" : "sont laissés"} de côté.`
      : "";
  if (count === 0) {
    if (mode === "all") return "Aucun transporteur validé à qui renvoyer la commande pour l'instant.";
    return leftOut
      ? `Tous les transporteurs validés l'ont reçue ou l'ont peut-être reçue.${leftOut}`
      : "Tous les transporteurs validés ont déjà reçu cette commande.";
  }
  return `${plural(count, "transporteur")} ${count === 1 ? "va" : "vont"} recevoir la commande ${preview.reference}.${leftOut}`;
}

/**
 * The one-line state shown in the sidebar (the tray shows the same): sends that cannot be
 * recorded first, then a lost WhatsApp connection, then a pause, then the broadcast in progress.
 */
export function activityStatus(activity) {
  if (!activity) return { tone: "neutral", text: "Démarrage…" };
  // Sends that cannot be recorded stop everything until they are (as the tray says).
  if (activity.outbox_write_failing) return { tone: "bad", text: "Envois arrêtés : base de données" };
  const wa = activity.whatsapp;
  if (wa && !wa.connected && wa.kind !== "connecting") {
    const unlinked = ["unlinked", "qr", "qr_expired", "pair_code", "logged_out"].includes(wa.kind);
    return { tone: "bad", text: unlinked ? "WhatsApp non relié" : "WhatsApp déconnecté" };
  }
  if (activity.paused) return { tone: "warn", text: "En pause" };
  if (activity.account_pause) return { tone: "warn", text: "Envois suspendus" };
  const first = activity.broadcasts[0];
  if (first) {
    const more = activity.broadcasts.length > 1 ? ` (+${activity.broadcasts.length - 1})` : "";
    return { tone: "pending", text: `Envoi ${first.done}/${first.total} — ${first.reference}${more}` };
  }
  if (wa && wa.kind === "connecting") return { tone: "neutral", text: "Connexion à WhatsApp…" };
  return { tone: "ok", text: "En attente de commandes" };
}

/**
 * An order's counters as its history header shows them (every batch together): only the
 * statuses it has, "3 envois · 1 remis · 1 lu · 1 numéro invalide". Empty without counters.
 */
export function countersText(c) {
  if (!c) return "";
  // An order CamionBack closed says so first, with what its closing saved.
  const closed = c.closed ? closedHeadline(c.avoided ?? 0) : null;
  if (!c.total) return closed ?? "";
  const parts = closed ? [closed, plural(c.total, "envoi")] : [plural(c.total, "envoi")];
  const add = (count, singular, pluralForm) => {
    if (count > 0) parts.push(plural(count, singular, pluralForm));
  };
  add(c.pending, "en attente", "en attente");
  add(c.sent, "envoyé");
  add(c.delivered, "remis", "remis");
  add(c.read, "lu");
  add(c.failed, "échec");
  add(c.invalid_number, "numéro invalide", "numéros invalides");
  add(c.not_on_whatsapp, "pas sur WhatsApp", "pas sur WhatsApp");
  add(c.skipped, "ignoré");
  add(c.doubtful, "en doute", "en doute");
  return parts.join(" · ");
}

/**
 * The history's "Erreur" cell of a row: for a code the relay explains (`error_help`), what it
 * means and what to do, with the provider's own words and code in the tooltip; otherwise the
 * stored text and code as they are.
 */
export function errorCell(row) {
  const code = row.error_code ? `(${row.error_code})` : "";
  const help = row.error_help;
  if (help) {
    const raw = [row.error, code].filter(Boolean).join(" ");
    return { text: help.explanation, detail: ` ${help.action}`, title: `Message du fournisseur : ${raw}` };
  }
  return { text: row.error ?? "", detail: code ? ` ${code}` : "", title: row.error ?? "" };
}
