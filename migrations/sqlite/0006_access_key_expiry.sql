-- Expired temporary keys are swept a few at a time on each key insert; without this
-- index the sweep reads every key when few have expired.
CREATE INDEX access_keys_by_expiry ON access_keys (expires_at) WHERE expires_at IS NOT NULL;
