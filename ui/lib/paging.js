// Keyset pagination and sorting of the history grid, as pure state transitions: the engine
// pages with an opaque `cursor` (the last row of a page), so going back to earlier pages needs
// the cursors already seen.

export function firstPage() {
  return { cursors: [null], index: 0 };
}

/** The cursor of the page being shown (`null` for the first page). */
export function currentCursor(paging) {
  return paging.cursors[paging.index];
}

export function hasNewer(paging) {
  return paging.index > 0;
}

/** Moves to the next page, which starts after `nextCursor` (from the last answer). */
export function older(paging, nextCursor) {
  if (nextCursor === null || nextCursor === undefined) return paging;
  const cursors = paging.cursors.slice(0, paging.index + 1);
  cursors.push(nextCursor);
  return { cursors, index: paging.index + 1 };
}

export function newer(paging) {
  if (paging.index === 0) return paging;
  return { cursors: paging.cursors, index: paging.index - 1 };
}

/** Only the newest page (first page, newest first) follows a running broadcast live. */
export function isLive(paging, sort = defaultSort()) {
  return paging.index === 0 && sort.column === "date" && sort.descending;
}

/** The grid's sortable columns, as the engine names them. */
export const SORT_COLUMNS = Object.freeze(["date", "carrier", "status", "reference"]);

/** Newest first, as the grid opens. */
export function defaultSort() {
  return { column: "date", descending: true };
}

/**
 * A click on a column header: the same column flips its direction; another column starts
 * with dates newest first, and names, statuses and references from A.
 */
export function toggleSort(sort, column) {
  if (sort.column === column) return { column, descending: !sort.descending };
  return { column, descending: column === "date" };
}

/** `aria-sort` of a header: how the grid is sorted by that column, if it is. */
export function ariaSort(sort, column) {
  if (sort.column !== column) return "none";
  return sort.descending ? "descending" : "ascending";
}

/** The pager's buttons: through time when newest first, plainly otherwise. */
export function pageLabels(sort) {
  if (sort.column === "date" && sort.descending) return { previous: "← Plus récents", next: "Plus anciens →" };
  if (sort.column === "date") return { previous: "← Plus anciens", next: "Plus récents →" };
  return { previous: "← Précédents", next: "Suivants →" };
}

/**
 * Rows stay grouped under their order (with "Relancer") when the sort keeps an order's rows
 * together: by date (each broadcast) or by reference. Other sorts show plain rows.
 */
export function groupsByOrder(sort) {
  return sort.column === "date" || sort.column === "reference";
}

/**
 * The `history_page` query for the filters as typed and the current page; throws a
 * `{code, message}` error when a date cannot be read.
 */
export function historyQuery(filters, paging, limit, dayRange, sort = defaultSort()) {
  const blank = (value) => {
    const text = (value ?? "").trim();
    return text === "" ? null : text;
  };
  const range = dayRange(filters.from, filters.to);
  if (range.invalid.length > 0) {
    throw { code: "invalid", message: `Date ${range.invalid.join(" et ")} illisible : écrivez JJ/MM/AAAA (ex. 03/11/2025).` };
  }
  return {
    order: blank(filters.order),
    status: blank(filters.status),
    text: blank(filters.text),
    from_ms: range.from_ms,
    to_ms: range.to_ms,
    sort: sort.column,
    descending: sort.descending,
    cursor: currentCursor(paging),
    limit,
  };
}
