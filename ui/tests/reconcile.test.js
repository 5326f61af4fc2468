import { test } from "node:test";
import assert from "node:assert/strict";

import { reconcile } from "../lib/reconcile.js";

// Just enough of a DOM parent for reconcile: children in order, insertBefore, remove.
function fakeParent() {
  const children = [];
  const node = (name) => ({
    name,
    get nextSibling() {
      const i = children.indexOf(this);
      return i >= 0 && i + 1 < children.length ? children[i + 1] : null;
    },
    remove() {
      const i = children.indexOf(this);
      if (i >= 0) children.splice(i, 1);
    },
  });
  return {
    children,
    node,
    get firstChild() {
      return children[0] ?? null;
    },
    insertBefore(el, before) {
      const at = children.indexOf(el);
      if (at >= 0) children.splice(at, 1);
      const i = before ? children.indexOf(before) : -1;
      if (i < 0) children.push(el);
      else children.splice(i, 0, el);
    },
  };
}

// Rows of the grid as the test sees them: a kind, and what was painted last.
function grid(parent) {
  const counts = { made: 0, painted: 0 };
  const items = (rows) =>
    rows.map(([key, status, kind = "row"]) => ({
      key,
      sig: status,
      kind,
      make: () => {
        counts.made += 1;
        const el = parent.node("");
        el.kind = kind;
        return el;
      },
      paint: (el) => {
        counts.painted += 1;
        el.name = `${key}:${status}`;
      },
    }));
  return { counts, items };
}

test("a live refresh repaints only the rows whose data changed, in the new order", () => {
  const parent = fakeParent();
  const { counts, items } = grid(parent);

  let drawn = reconcile(parent, items([["r1", "queued"], ["r2", "queued"], ["r3", "queued"]]));
  assert.deepEqual(parent.children.map((c) => c.name), ["r1:queued", "r2:queued", "r3:queued"]);
  assert.deepEqual(counts, { made: 3, painted: 3 });
  const [first, second, third] = parent.children;

  // r2 was sent; a new row r0 arrives first; r3 left the page.
  drawn = reconcile(parent, items([["r0", "queued"], ["r1", "queued"], ["r2", "sent"]]), drawn);
  assert.deepEqual(parent.children.map((c) => c.name), ["r0:queued", "r1:queued", "r2:sent"]);
  assert.deepEqual(counts, { made: 3, painted: 5 }, "r0 and r2 repainted in the elements r2 and r3 left");
  assert.equal(parent.children[1], first, "r1's element is the same one, untouched");
  assert.deepEqual(new Set(parent.children), new Set([first, second, third]), "no element made, none lost");

  // Nothing changed: nothing painted, nothing moved.
  const before = [...parent.children];
  reconcile(parent, items([["r0", "queued"], ["r1", "queued"], ["r2", "sent"]]), drawn);
  assert.deepEqual(counts, { made: 3, painted: 5 });
  assert.deepEqual(parent.children, before);
});

test("a page change reuses the elements of the page before, kind by kind", () => {
  const parent = fakeParent();
  const { counts, items } = grid(parent);
  const page = (from) => [
    [`g${from}`, "CMD", "group"],
    ...Array.from({ length: 100 }, (_, i) => [`r${from + i}`, "sent"]),
  ];
  let drawn = reconcile(parent, items(page(0)));
  const elements = new Set(parent.children);
  assert.deepEqual(counts, { made: 101, painted: 101 });

  for (let n = 1; n <= 5; n += 1) drawn = reconcile(parent, items(page(n * 100)), drawn);
  assert.equal(counts.made, 101, "five page changes made no new element");
  assert.equal(counts.painted, 101 * 6);
  assert.deepEqual(new Set(parent.children), elements);
  assert.equal(parent.children[0].kind, "group", "the group header is repainted in a group element");
  assert.deepEqual(parent.children.slice(0, 2).map((c) => c.name), ["g500:CMD", "r500:sent"]);

  // A page with two groups: one more group element is made, the spare row is removed.
  drawn = reconcile(parent, items([["gA", "A", "group"], ["a1", "sent"], ["gB", "B", "group"], ["b1", "sent"]]), drawn);
  assert.deepEqual(parent.children.map((c) => c.name), ["gA:A", "a1:sent", "gB:B", "b1:sent"]);
  assert.equal(counts.made, 102);
  assert.deepEqual(parent.children.map((c) => c.kind), ["group", "row", "group", "row"]);
});

test("an empty list clears the parent, foreign children included", () => {
  const parent = fakeParent();
  parent.insertBefore(parent.node("Aucun envoi"), null);
  const item = { key: "a", sig: "1", kind: "row", make: () => parent.node(""), paint: (el) => (el.name = "a") };
  const drawn = reconcile(parent, [item]);
  assert.deepEqual(parent.children.map((c) => c.name), ["a"]);
  reconcile(parent, [], drawn);
  assert.deepEqual(parent.children, []);
});
