-- Orders CamionBack says are no longer open (filled, cancelled…), learnt from its webhook
-- (`order.updated` / `order.closed`) or from asking its API while deliveries are queued. Keyed
-- by the order id with no foreign key: an order may be closed before the relay ever heard of
-- it, and must then never be broadcast. Written in the same transaction that skips the order's
-- queued deliveries, and the dispatcher's claim takes no delivery of an order found here, so no
-- send for it starts once the relay knows.
CREATE TABLE order_closures (
    order_id  INTEGER PRIMARY KEY,
    statut    TEXT    NOT NULL,     -- CamionBack's word, cleaned (`attribuee`, `annulee`…)
    closed_at INTEGER NOT NULL,
    source    TEXT    NOT NULL      -- 'webhook' | 'polling'
);

-- A relaunch staff forced on a closed order (`relaunch --force`, confirmed in the window): its
-- deliveries are sent despite the closure, and a later close notice leaves them queued.
ALTER TABLE deliveries ADD COLUMN forced INTEGER NOT NULL DEFAULT 0;
