-- Carriers' replies on every channel: where each came from, what it says about interest, which
-- order it is about and how that was found, and its forward to CamionBack.
ALTER TABLE replies ADD COLUMN channel TEXT;         -- 'whatsapp-web' | 'cloud-api' | 'twilio'; NULL before this
ALTER TABLE replies ADD COLUMN user_id TEXT;         -- Meta's business-scoped user id, when given
ALTER TABLE replies ADD COLUMN button_payload TEXT;  -- a quick-reply tap's payload (or id)
ALTER TABLE replies ADD COLUMN interested INTEGER NOT NULL DEFAULT 0;
ALTER TABLE replies ADD COLUMN attributed_by TEXT;   -- 'payload' | 'quote' | 'window'; NULL: no order
CREATE INDEX replies_order ON replies (order_id) WHERE order_id IS NOT NULL;

-- The last order sent to a number, for a reply that names none (a number has a few deliveries
-- per order: the index finds them, their times are read from the rows).
CREATE INDEX deliveries_phone ON deliveries (phone);

-- The forward of an attributed reply to CamionBack: written in the reply's own transaction, so
-- a reply is never stored without it, and kept after it is done (the history of the forward).
CREATE TABLE reply_forwards (
    reply_id        INTEGER PRIMARY KEY REFERENCES replies (id),
    status          TEXT    NOT NULL,  -- 'pending' | 'done' | 'given_up' | 'off'
    attempts        INTEGER NOT NULL DEFAULT 0,
    queued_at       INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT,
    finished_at     INTEGER
);
CREATE INDEX reply_forwards_due ON reply_forwards (next_attempt_at) WHERE status = 'pending';
