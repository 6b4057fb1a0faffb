-- Access keys (AK/SK). The secret is sealed with the server key (ChaCha20-Poly1305,
-- nonce || ciphertext, the access key as associated data): a copy of the database
-- alone does not reveal it. Temporary keys also carry the hash of their security
-- token, an expiry and the scope of the token they were issued from.
CREATE TABLE access_keys (
    access               TEXT COLLATE "C" PRIMARY KEY,
    user_id              TEXT COLLATE "C" NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    secret               BYTEA NOT NULL,
    status               TEXT COLLATE "C" NOT NULL,
    description          TEXT COLLATE "C" NOT NULL DEFAULT '',
    created_at           BIGINT NOT NULL,
    security_token_hash  TEXT COLLATE "C",
    expires_at           BIGINT,
    project_id           TEXT COLLATE "C",
    source_token_hash    TEXT COLLATE "C"
);

-- Facts about the deployment, e.g. which server key seals the secrets above.
CREATE TABLE settings (
    name   TEXT COLLATE "C" PRIMARY KEY,
    value  TEXT COLLATE "C" NOT NULL
);
CREATE INDEX access_keys_by_user ON access_keys (user_id);
