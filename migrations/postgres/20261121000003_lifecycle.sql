-- Lifecycle: the expiry an owner can push back, and Jupyter's last activity.
ALTER TABLE vms ADD COLUMN expires_at TIMESTAMPTZ;
ALTER TABLE vms ADD COLUMN extensions BIGINT NOT NULL DEFAULT 0;
ALTER TABLE vms ADD COLUMN last_activity_at TIMESTAMPTZ;
