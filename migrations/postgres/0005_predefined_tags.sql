-- Predefined tags: a domain's catalogue of approved key-value pairs (TMS).
CREATE TABLE predefined_tags (
    domain_id   TEXT COLLATE "C" NOT NULL REFERENCES domains(id) ON DELETE CASCADE,
    key         TEXT COLLATE "C" NOT NULL,
    value       TEXT COLLATE "C" NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (domain_id, key, value)
);
