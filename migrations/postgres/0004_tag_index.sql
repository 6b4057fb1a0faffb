-- Finding resources by tag, and listing the keys and values in use.
CREATE INDEX tags_by_key_value ON tags (key, value, rid);
