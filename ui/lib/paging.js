// Keyset pagination of the history grid, as pure state transitions: the engine pages with
// `before_id` (older rows), so going back to newer pages needs the cursors already seen.

export function firstPage() {
  return { cursors: [null], index: 0 };
}

/** The `before_id` of the page being shown (`null` for the newest page). */
export function currentCursor(paging) {
  return paging.cursors[paging.index];
}

export function hasNewer(paging) {
  return paging.index > 0;
}

/** Moves to the older page that starts below `nextBeforeId` (from the last answer). */
export function older(paging, nextBeforeId) {
  if (nextBeforeId === null || nextBeforeId === undefined) return paging;
  const cursors = paging.cursors.slice(0, paging.index + 1);
  cursors.push(nextBeforeId);
  return { cursors, index: paging.index + 1 };
}

export function newer(paging) {
  if (paging.index === 0) return paging;
  return { cursors: paging.cursors, index: paging.index - 1 };
}

/** Only the newest page follows a running broadcast live; older pages stay put. */
export function isLive(paging) {
  return paging.index === 0;
}

/**
 * The `history_page` query for the filters as typed and the current page; throws a
 * `{code, message}` error when a date cannot be read.
 */
export function historyQuery(filters, paging, limit, dayRange) {
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
    before_id: currentCursor(paging),
    limit,
  };
}
