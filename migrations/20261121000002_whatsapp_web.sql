-- WhatsApp Web: which numbers are on WhatsApp (checked before the first send, kept 30 days),
-- and what carriers write back.

CREATE TABLE wa_numbers (
    phone      TEXT    PRIMARY KEY,   -- E.164
    registered INTEGER NOT NULL,
    checked_at INTEGER NOT NULL
);

CREATE TABLE replies (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id  TEXT    UNIQUE,       -- WhatsApp's id: a redelivered message is stored once
    phone       TEXT    NOT NULL,     -- E.164
    carrier_id  INTEGER,              -- NULL when the number is no known carrier's
    text        TEXT    NOT NULL,
    received_at INTEGER NOT NULL,
    opt_out     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX replies_received ON replies (received_at);
