-- What the VM last reported of its home volume's filesystem (statvfs of
-- the mount: used and total bytes) and when; and when revoking the owner
-- asked for their storage to go (`users remove --purge`) while a VM of
-- theirs still held it: the storage job deletes it once it is free.
ALTER TABLE home_volumes ADD COLUMN used_bytes INTEGER;
ALTER TABLE home_volumes ADD COLUMN total_bytes INTEGER;
ALTER TABLE home_volumes ADD COLUMN usage_reported_at TEXT;
ALTER TABLE home_volumes ADD COLUMN purge_requested_at TEXT;
