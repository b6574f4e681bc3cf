-- A VM's job as `GET /api/vm/assignment` answers it (JSON of
-- cloud_init::Assignment): written with the boot secret's hash for a VM
-- booted for its owner, at the claim for a pool VM; NULL while it waits.
ALTER TABLE vms ADD COLUMN assignment TEXT;
-- A rotated secret (a claimed pool VM): the boot secret's hash, which may
-- still ask for the assignment, and the new secret that answer delivers.
-- Both are cleared once the VM first uses the new secret (secret_hash).
ALTER TABLE vms ADD COLUMN boot_secret_hash BYTEA;
ALTER TABLE vms ADD COLUMN delivered_secret TEXT;
