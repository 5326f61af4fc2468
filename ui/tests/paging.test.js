import { test } from "node:test";
import assert from "node:assert/strict";

import { dayRange } from "../lib/format.js";
import {
  currentCursor,
  firstPage,
  hasNewer,
  historyQuery,
  isLive,
  newer,
  older,
} from "../lib/paging.js";

test("older pages follow the cursor of the last answer, newer ones go back", () => {
  let paging = firstPage();
  assert.equal(currentCursor(paging), null);
  assert.equal(hasNewer(paging), false);
  assert.equal(isLive(paging), true);

  paging = older(paging, 901);
  paging = older(paging, 801);
  assert.equal(currentCursor(paging), 801);
  assert.equal(isLive(paging), false);

  paging = newer(paging);
  assert.equal(currentCursor(paging), 901);
  // Going older again from here replaces what followed.
  paging = older(paging, 850);
  assert.deepEqual(paging.cursors, [null, 901, 850]);

  assert.equal(older(paging, null), paging, "no older page: stay");
  assert.equal(newer(firstPage()).index, 0);
});

test("the query carries trimmed filters, the day range and the cursor", () => {
  const paging = older(firstPage(), 500);
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
    before_id: 500,
    limit: 100,
  });
  assert.throws(
    () => historyQuery({ from: "hier" }, paging, 100, dayRange),
    (err) => err.code === "invalid" && /JJ\/MM\/AAAA/.test(err.message),
  );
});
