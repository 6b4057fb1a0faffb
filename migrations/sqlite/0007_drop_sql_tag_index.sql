-- Queries by tag are answered by the in-memory tag index (src/store/tag_index.rs), which
-- is always current; the SQL index only slowed every tag write (D61).
DROP INDEX IF EXISTS tags_by_key_value;
