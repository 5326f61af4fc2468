// Redraws a list of elements keeping the ones whose data did not change, and repainting the
// others in place. The history grid is refreshed every second while a broadcast runs and
// replaced at each page change; making new rows each time left the WebKit process holding
// megabytes of dead rows (collected late), while the grid only ever needs about a hundred.

/**
 * Makes `parent`'s children the elements of `items`, in order. Each item is
 * `{ key, sig, kind, make, paint }`: an element drawn before under the same key and signature
 * is reused as it is (moved if needed); otherwise an element of the same `kind` that is no
 * longer needed is repainted with `paint(el)`, or `make()` builds a new one, then `paint(el)`.
 * Children not reused are removed. `drawn` is what the previous call returned; returns what to
 * pass next time.
 */
export function reconcile(parent, items, drawn = new Map()) {
  const unchanged = new Set();
  for (const item of items) {
    if (drawn.get(item.key)?.sig === item.sig) unchanged.add(item.key);
  }
  // The elements this pass will not keep as they are, ready to be repainted, by kind.
  const spare = new Map();
  for (const [key, old] of drawn) {
    if (unchanged.has(key)) continue;
    if (!spare.has(old.kind)) spare.set(old.kind, []);
    spare.get(old.kind).push(old.el);
  }
  const next = new Map();
  let cursor = parent.firstChild;
  for (const item of items) {
    let el;
    if (unchanged.has(item.key)) {
      el = drawn.get(item.key).el;
    } else {
      el = spare.get(item.kind)?.pop() ?? item.make();
      item.paint(el);
    }
    next.set(item.key, { el, sig: item.sig, kind: item.kind });
    if (cursor === el) {
      cursor = cursor.nextSibling;
    } else {
      parent.insertBefore(el, cursor);
    }
  }
  // Everything from the cursor on was not placed by this pass.
  while (cursor) {
    const after = cursor.nextSibling;
    cursor.remove();
    cursor = after;
  }
  return next;
}
