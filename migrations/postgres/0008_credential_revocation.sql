-- A temporary key minted with an access key (permanent, or temporary and so through
-- it a permanent one) names that permanent key: disabling or deleting it kills the
-- temporary key too. Keys minted from a temporary key inherit its source token and
-- source key, so no key outlives what it came from.
ALTER TABLE access_keys ADD COLUMN source_access TEXT COLLATE "C";
-- Setting a password revokes the user's tokens (by user).
CREATE INDEX tokens_by_user ON tokens (user_id);
