-- The last time the proxy saw a VM's Jupyter used (a request or a
-- WebSocket frame), written now and then; idle culling takes the later of
-- it and what Jupyter itself reports (last_activity_at).
ALTER TABLE vms ADD COLUMN proxied_at TEXT;
