-- Used space as the VM last reported it, and a purge asked for while a VM
-- held the volume (see the SQLite version for why).
ALTER TABLE home_volumes ADD COLUMN used_bytes BIGINT;
ALTER TABLE home_volumes ADD COLUMN total_bytes BIGINT;
ALTER TABLE home_volumes ADD COLUMN usage_reported_at TIMESTAMPTZ;
ALTER TABLE home_volumes ADD COLUMN purge_requested_at TIMESTAMPTZ;
