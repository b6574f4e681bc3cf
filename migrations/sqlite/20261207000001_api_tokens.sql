-- Personal access tokens for /api/v1. Only a SHA-256 of the secret is kept
-- (the token is shown once); scopes are a space-separated list checked in
-- Rust against the closed set of scope names.
CREATE TABLE api_tokens (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    github_id    INTEGER NOT NULL REFERENCES users (github_id),
    label        TEXT NOT NULL,
    secret_hash  BLOB NOT NULL UNIQUE,
    scopes       TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    expires_at   TEXT NOT NULL,
    last_used_at TEXT,
    revoked_at   TEXT
);
CREATE INDEX api_tokens_owner ON api_tokens (github_id);
