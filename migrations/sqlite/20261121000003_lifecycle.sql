-- Lifecycle: every VM has an expiry the owner can push back a few times,
-- and the last activity its Jupyter reported (for idle culling).
ALTER TABLE vms ADD COLUMN expires_at TEXT;
ALTER TABLE vms ADD COLUMN extensions INTEGER NOT NULL DEFAULT 0;
ALTER TABLE vms ADD COLUMN last_activity_at TEXT;
