import { test } from "node:test";
import assert from "node:assert/strict";

import { dayRange } from "../lib/format.js";
import {
  ariaSort,
  currentCursor,
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

test("older pages follow the cursor of the last answer, newer ones go back", () => {
  let paging = firstPage();
  assert.equal(currentCursor(paging), null);
  assert.equal(hasNewer(paging), false);
  assert.equal(isLive(paging), true);

  paging = older(paging, "901:1700000000000");
  paging = older(paging, "801:1700000000000");
  assert.equal(currentCursor(paging), "801:1700000000000");
  assert.equal(isLive(paging), false);

  paging = newer(paging);
  assert.equal(currentCursor(paging), "901:1700000000000");
  // Going older again from here replaces what followed.
  paging = older(paging, "850:1699000000000");
  assert.deepEqual(paging.cursors, [null, "901:1700000000000", "850:1699000000000"]);

  assert.equal(older(paging, null), paging, "no older page: stay");
  assert.equal(newer(firstPage()).index, 0);
});

test("the query carries trimmed filters, the day range, the sort and the cursor", () => {
  const paging = older(firstPage(), "500:Atlas");
  const query = historyQuery(
    { order: " CMD-2025-123 ", status: "failed", text: "", from: "", to: "" },
    paging,
    100,
    dayRange,
  );
  assert.deepEqual(query, {
    order: "CMD-2025-123",
    status: "failed",
    text: null,
    from_ms: null,
    to_ms: null,
    sort: "date",
    descending: true,
    cursor: "500:Atlas",
    limit: 100,
  });
  const byCarrier = historyQuery({}, firstPage(), 100, dayRange, { column: "carrier", descending: false });
  assert.equal(byCarrier.sort, "carrier");
  assert.equal(byCarrier.descending, false);
  assert.equal(byCarrier.cursor, null);
  assert.throws(
    () => historyQuery({ from: "hier" }, paging, 100, dayRange),
    (err) => err.code === "invalid" && /JJ\/MM\/AAAA/.test(err.message),
  );
});

test("a header click sorts by its column, a second click reverses it", () => {
  let sort = defaultSort();
  assert.deepEqual(sort, { column: "date", descending: true });
  assert.equal(ariaSort(sort, "date"), "descending");

  sort = toggleSort(sort, "date");
  assert.deepEqual(sort, { column: "date", descending: false }, "oldest first");
  sort = toggleSort(sort, "carrier");
  assert.deepEqual(sort, { column: "carrier", descending: false }, "names from A");
  assert.equal(ariaSort(sort, "carrier"), "ascending");
  assert.equal(ariaSort(sort, "date"), "none");
  sort = toggleSort(sort, "carrier");
  assert.deepEqual(sort, { column: "carrier", descending: true }, "names from Z");
  assert.deepEqual(toggleSort(sort, "date"), defaultSort(), "back to newest first");
});

test("only the newest-first first page is live, and only order-keeping sorts group rows", () => {
  assert.equal(isLive(firstPage(), defaultSort()), true);
  assert.equal(isLive(firstPage(), { column: "date", descending: false }), false);
  assert.equal(isLive(firstPage(), { column: "status", descending: false }), false);
  assert.equal(groupsByOrder(defaultSort()), true);
  assert.equal(groupsByOrder({ column: "reference", descending: true }), true);
  assert.equal(groupsByOrder({ column: "carrier", descending: false }), false);
  assert.equal(groupsByOrder({ column: "status", descending: false }), false);
});

test("the pager speaks of time only when the grid is in time order", () => {
  assert.deepEqual(pageLabels(defaultSort()), { previous: "← Plus récents", next: "Plus anciens →" });
  assert.deepEqual(pageLabels({ column: "date", descending: false }), { previous: "← Plus anciens", next: "Plus récents →" });
  assert.deepEqual(pageLabels({ column: "carrier", descending: false }), { previous: "← Précédents", next: "Suivants →" });
});
