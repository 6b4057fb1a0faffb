-- Version 9 adds the domain of each tag row, which PostgreSQL fills and leads its listing
-- index with (D85). SQLite leaves it empty: its in-memory tag index is split by domain
-- already, and a wider row would only slow every tag write. The column is here because
-- both schemas hold the same tables and columns (a test compares them).
ALTER TABLE tags ADD COLUMN domain_id TEXT;
