-- Version 9 gives each tag row its resource's domain, and leads the listing index by it,
-- so that listing the keys or values in use in one domain walks that domain's keys only,
-- never another tenant's (issue 16, D85). A resource never changes domain, so the copy
-- cannot go stale. Nullable in the schema because SQLite keeps the column empty (its
-- in-memory tag index is split by domain instead); PostgreSQL fills it on every write,
-- and `copy-store` fills it when rows arrive without it.
ALTER TABLE tags ADD COLUMN domain_id TEXT COLLATE "C";
UPDATE tags t SET domain_id = r.domain_id FROM resources r WHERE r.rid = t.rid;
CREATE INDEX tags_by_domain_key_value ON tags (domain_id, key, value, rid);
DROP INDEX IF EXISTS tags_by_key_value;
