-- `failed_during` holds the launch script's phase a VM failed in. Older
-- versions wrote the last progress reported instead, so a VM that failed
-- after it said `ready` has 'ready', which is the end of the `starting`
-- phase (the status page and the metrics always read it so). The CHECK
-- still allows 'ready' (SQLite cannot change a CHECK in place); nothing
-- writes it any more.
UPDATE vms SET failed_during = 'starting' WHERE failed_during = 'ready';
