-- The last time the proxy saw a VM's Jupyter used.
ALTER TABLE vms ADD COLUMN proxied_at TIMESTAMPTZ;
