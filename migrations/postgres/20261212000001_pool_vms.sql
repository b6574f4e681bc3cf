-- The warm pool (see the SQLite version for why a table of its own).
CREATE TABLE pool_vms (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('creating', 'booting', 'ready', 'deleting')),
    server_id   TEXT,
    address     TEXT,
    volume_ids  JSONB NOT NULL DEFAULT '[]',
    secret_hash BYTEA NOT NULL,
    prebuilt    JSONB NOT NULL DEFAULT '[]',
    reason      TEXT,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    ready_at    TIMESTAMPTZ
);
CREATE INDEX pool_vms_ready ON pool_vms (state, ready_at);
