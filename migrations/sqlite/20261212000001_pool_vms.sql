-- The warm pool: VMs booted ahead of demand, with no owner yet. A table of
-- their own rather than ownerless `vms` rows, so that every VM record keeps
-- an owner. `id` is the VmId the VM keeps when a launch claims it (its
-- server carries it as `stackbinder_vm`); the claim deletes the row and
-- inserts the `vms` row in one transaction. A row is written before its
-- server is asked for, so a crash never leaves a server nobody knows.
CREATE TABLE pool_vms (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('creating', 'booting', 'ready', 'deleting')),
    server_id   TEXT,
    address     TEXT,
    volume_ids  TEXT NOT NULL DEFAULT '[]',
    secret_hash BLOB NOT NULL,
    -- The repositories it builds ahead ("repo@ref"), as booted.
    prebuilt    TEXT NOT NULL DEFAULT '[]',
    -- Why it is being deleted (recycled, shrunk, dead, given up).
    reason      TEXT,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    -- When the VM first asked for its assignment: ready to be claimed.
    ready_at    TEXT
);
CREATE INDEX pool_vms_ready ON pool_vms (state, ready_at);
