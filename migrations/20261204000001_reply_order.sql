-- Which order a carrier's reply is about, when the reply quotes one of our broadcasts
-- (Twilio's OriginalRepliedMessageSid): the quoted provider message id, kept as received, and
-- the order of the delivery that carried it (NULL when the quoted message is not ours).
ALTER TABLE replies ADD COLUMN quoted_message_id TEXT;
ALTER TABLE replies ADD COLUMN order_id INTEGER REFERENCES orders (id);
