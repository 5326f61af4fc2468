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

test("a live refresh redraws only the rows whose data changed, in the new order", () => {
  const parent = fakeParent();
  let made = 0;
  const items = (rows) =>
    rows.map(([key, status]) => ({
      key,
      sig: status,
      make: () => {
        made += 1;
        return parent.node(`${key}:${status}`);
      },
    }));

  let drawn = reconcile(parent, items([["r1", "queued"], ["r2", "queued"], ["r3", "queued"]]));
  assert.deepEqual(parent.children.map((c) => c.name), ["r1:queued", "r2:queued", "r3:queued"]);
  assert.equal(made, 3);
  const [first, , third] = parent.children;

  // r2 was sent; a new row r0 arrives first; r3 left the page.
  drawn = reconcile(parent, items([["r0", "queued"], ["r1", "queued"], ["r2", "sent"]]), drawn);
  assert.deepEqual(parent.children.map((c) => c.name), ["r0:queued", "r1:queued", "r2:sent"]);
  assert.equal(made, 5, "only r0 and the changed r2 are drawn");
  assert.equal(parent.children[1], first, "r1's element is the same one");
  assert.ok(!parent.children.includes(third), "r3 removed");

  // Nothing changed: nothing drawn, nothing moved.
  const before = [...parent.children];
  reconcile(parent, items([["r0", "queued"], ["r1", "queued"], ["r2", "sent"]]), drawn);
  assert.equal(made, 5);
  assert.deepEqual(parent.children, before);
});

test("an empty list clears the parent, foreign children included", () => {
  const parent = fakeParent();
  parent.insertBefore(parent.node("Aucun envoi"), null);
  const drawn = reconcile(parent, [{ key: "a", sig: "1", make: () => parent.node("a") }]);
  assert.deepEqual(parent.children.map((c) => c.name), ["a"]);
  reconcile(parent, [], drawn);
  assert.deepEqual(parent.children, []);
});
