-- Leadership leases: several replicas share one database, and the work
-- that touches the cloud (the driver, the reconciler, expiry and idle
-- culling) runs on exactly one of them, the holder of the `driver` lease.
-- `holder` is the replica's id (made at start), `epoch` grows by one at
-- every take-over and fences the driver's writes: a replica that lost the
-- lease and wakes up late still carries its old epoch, and its writes find
-- no matching row. `expires_at` is set by each renewal; once it is past,
-- another replica may take the lease over.
CREATE TABLE leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    epoch      INTEGER NOT NULL,
    expires_at TEXT NOT NULL
);
