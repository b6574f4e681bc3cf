-- Personal access tokens for /api/v1 (see the SQLite version for why).
CREATE TABLE api_tokens (
    id           BIGSERIAL PRIMARY KEY,
    github_id    BIGINT NOT NULL REFERENCES users (github_id),
    label        TEXT NOT NULL,
    secret_hash  BYTEA NOT NULL UNIQUE,
    scopes       TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    expires_at   TIMESTAMPTZ NOT NULL,
    last_used_at TIMESTAMPTZ,
    revoked_at   TIMESTAMPTZ
);
CREATE INDEX api_tokens_owner ON api_tokens (github_id);
