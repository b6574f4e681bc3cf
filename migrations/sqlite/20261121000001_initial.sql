-- Users who have logged in at least once. `registered_at` is set while they
-- are on the allowlist; revoking clears it (their VM history stays).
CREATE TABLE users (
    github_id      INTEGER PRIMARY KEY,
    login          TEXT NOT NULL COLLATE NOCASE UNIQUE,
    created_at     TEXT NOT NULL,
    last_login_at  TEXT NOT NULL,
    registered_at  TEXT,
    registered_via TEXT
);

-- Logins an admin allowed before they ever logged in (the old tool's
-- allowed_users.cfg). Claimed, and removed, at their first login.
CREATE TABLE invited_logins (
    login      TEXT PRIMARY KEY COLLATE NOCASE,
    invited_at TEXT NOT NULL,
    invited_by TEXT NOT NULL
);

CREATE TABLE vms (
    id               TEXT PRIMARY KEY,
    owner_id         INTEGER NOT NULL REFERENCES users (github_id),
    name             TEXT NOT NULL,
    repo             TEXT NOT NULL,
    git_ref          TEXT NOT NULL,
    url_path         TEXT NOT NULL,
    state            TEXT NOT NULL CHECK (state IN
                       ('requested', 'creating', 'booting', 'building',
                        'ready', 'failed', 'deleting', 'deleted')),
    progress         TEXT CHECK (progress IN
                       ('cloning', 'building', 'starting', 'ready', 'failed')),
    -- What the VM was doing when it reported `failed`.
    failed_during    TEXT CHECK (failed_during IN
                       ('cloning', 'building', 'starting', 'ready')),
    server_id        TEXT,
    address          TEXT,
    floating_ip      TEXT,
    floating_ip_id   TEXT,
    volume_ids       TEXT NOT NULL DEFAULT '[]',
    port             INTEGER,
    jupyter_token    TEXT NOT NULL,
    secret_hash      BLOB,
    last_seq         INTEGER NOT NULL DEFAULT 0,
    last_error       TEXT,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    phase_started_at TEXT NOT NULL,
    ready_at         TEXT,
    deleted_at       TEXT
);

-- The heart of "one VM per user": at most one row per owner that is not yet
-- deleted, whatever the number of concurrent launches.
CREATE UNIQUE INDEX one_live_vm_per_user ON vms (owner_id) WHERE state <> 'deleted';
CREATE INDEX vms_by_state ON vms (state);

-- What happened to each VM, in order. Never updated, never deleted.
CREATE TABLE vm_events (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    vm_id   TEXT NOT NULL REFERENCES vms (id),
    at      TEXT NOT NULL,
    kind    TEXT NOT NULL CHECK (kind IN ('state', 'log', 'warning', 'error')),
    message TEXT NOT NULL
);
CREATE INDEX vm_events_by_vm ON vm_events (vm_id, id);

CREATE TRIGGER vm_events_are_append_only_update BEFORE UPDATE ON vm_events
BEGIN
    SELECT RAISE(ABORT, 'vm_events is append-only');
END;

CREATE TRIGGER vm_events_are_append_only_delete BEFORE DELETE ON vm_events
BEGIN
    SELECT RAISE(ABORT, 'vm_events is append-only');
END;
