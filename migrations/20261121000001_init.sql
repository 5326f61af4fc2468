-- The relay's own database. Timestamps are unix milliseconds (UTC).

-- Carriers as last synced from the CamionBack API. `eligible` is computed by the relay from
-- `statut`, never taken from the API's filter.
CREATE TABLE carriers (
    id          INTEGER PRIMARY KEY,
    name        TEXT    NOT NULL,
    phone_raw   TEXT    NOT NULL,
    phone       TEXT,               -- E.164, NULL when the number is unusable
    phone_error TEXT,               -- why the number is unusable
    statut      TEXT    NOT NULL,
    eligible    INTEGER NOT NULL,
    opted_out_at INTEGER,
    synced_at   INTEGER NOT NULL
);

-- Every order the relay has heard of, whichever way it arrived. The primary key is the
-- intake's deduplication: an order is stored, and broadcast, once.
CREATE TABLE orders (
    id               INTEGER PRIMARY KEY,
    reference        TEXT    NOT NULL,
    ville_depart     TEXT    NOT NULL,
    ville_arrivee    TEXT    NOT NULL,
    date_souhaitee   TEXT    NOT NULL,
    prix             REAL    NOT NULL,
    type_marchandise TEXT    NOT NULL,
    statut           TEXT,
    created_at       TEXT,
    source           TEXT    NOT NULL,  -- 'webhook' | 'polling'
    received_at      INTEGER NOT NULL,
    -- Set in the same transaction that writes the order's deliveries: NULL means the
    -- broadcast is still owed (the relay may have stopped in between).
    fanned_out_at    INTEGER,
    -- Why nothing was queued, when nothing was (order not open...).
    fan_out_note     TEXT
);
CREATE INDEX orders_reference ON orders (reference);
CREATE INDEX orders_pending_fan_out ON orders (id) WHERE fanned_out_at IS NULL;

-- The outbox, the send log and the history in one table: a row is written before any send
-- and kept forever.
CREATE TABLE deliveries (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id        INTEGER NOT NULL REFERENCES orders (id),
    carrier_id      INTEGER NOT NULL,
    -- 0 for the automatic broadcast, 1, 2... for each manual relaunch: the automatic
    -- broadcast can hold a carrier once per order, by construction.
    batch           INTEGER NOT NULL DEFAULT 0,
    carrier_name    TEXT    NOT NULL,
    phone           TEXT    NOT NULL,
    status          TEXT    NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    error           TEXT,
    error_code      TEXT,
    message_id      TEXT,
    queued_at       INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    sent_at         INTEGER,
    updated_at      INTEGER NOT NULL,
    UNIQUE (order_id, carrier_id, batch)
);
CREATE INDEX deliveries_due ON deliveries (order_id, id) WHERE status = 'queued';
CREATE INDEX deliveries_status ON deliveries (status, id);
CREATE INDEX deliveries_order ON deliveries (order_id, carrier_id);
CREATE UNIQUE INDEX deliveries_message_id ON deliveries (message_id) WHERE message_id IS NOT NULL;

-- Status reports (Cloud API webhooks) for a message id we have not stored yet: the report can
-- overtake the answer to our own send. Applied as soon as the id is stored.
CREATE TABLE early_reports (
    message_id  TEXT    NOT NULL,
    status      TEXT    NOT NULL,
    error       TEXT,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (message_id, status)
);

-- Small named values: the polling cursor, the last poll and carrier sync outcomes.
CREATE TABLE relay_state (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
