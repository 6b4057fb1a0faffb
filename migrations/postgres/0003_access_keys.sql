-- Access keys (AK/SK). The secret is sealed with the server key (ChaCha20-Poly1305,
-- nonce || ciphertext, the access key as associated data): a copy of the database
-- alone does not reveal it. Temporary keys also carry the hash of their security
-- token, an expiry and the scope of the token they were issued from.
CREATE TABLE access_keys (
    access               TEXT PRIMARY KEY,
    user_id              TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    secret               BYTEA NOT NULL,
    status               TEXT NOT NULL,
    description          TEXT NOT NULL DEFAULT '',
    created_at           BIGINT NOT NULL,
    security_token_hash  TEXT,
    expires_at           BIGINT,
    project_id           TEXT,
    source_token_hash    TEXT
);

-- Facts about the deployment, e.g. which server key seals the secrets above.
CREATE TABLE settings (
    name   TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);
CREATE INDEX access_keys_by_user ON access_keys (user_id);
