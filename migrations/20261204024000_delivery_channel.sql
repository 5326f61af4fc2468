-- Which channel sent each delivery (written by the claim: 'cloud-api', 'whatsapp-web' or
-- 'twilio'; NULL for rows claimed before this column existed). A provider's error code only
-- means something with the provider that gave it: the history explains `error_code` with it.
ALTER TABLE deliveries ADD COLUMN channel TEXT;
-- The code of a failure report that came before its send's answer, applied with its text.
ALTER TABLE early_reports ADD COLUMN error_code TEXT;
