-- Version 7 drops the SQL tag index on SQLite, whose in-memory tag index answers every
-- query by tag (D61). PostgreSQL keeps it: replicas share the database and keep no
-- in-memory index of their own (D54). Nothing changes here.
SELECT 1;
