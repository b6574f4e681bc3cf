-- Which stackbinder this database belongs to: a random id made once, the
-- first time the database is opened. Everything this installation creates
-- in the cloud carries it (`stackbinder_instance`), and the reconciler and
-- every clean-up touch only what carries it, so two installations on one
-- OpenStack project never delete each other's servers, volumes or
-- floating IPs. The CHECK keeps it to one row.
CREATE TABLE installation (
    singleton  INTEGER PRIMARY KEY CHECK (singleton = 1),
    id         TEXT NOT NULL,
    created_at TEXT NOT NULL
);

-- When a failed launch's server, boot volume and floating IP were torn
-- down (the record, its log and its reason stay for the user). A failed VM
-- without it still holds cloud resources: the driver keeps tearing them
-- down, like a deletion, until this is set.
ALTER TABLE vms ADD COLUMN released_at TEXT;
