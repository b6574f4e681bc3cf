-- Which stackbinder this database belongs to (see the SQLite migration of
-- the same version). The CHECK keeps it to one row.
CREATE TABLE installation (
    singleton  INTEGER PRIMARY KEY CHECK (singleton = 1),
    id         TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);

-- When a failed launch's cloud resources were torn down.
ALTER TABLE vms ADD COLUMN released_at TIMESTAMPTZ;
