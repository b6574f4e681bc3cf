-- `failed_during` holds the launch script's phase a VM failed in; older
-- versions wrote 'ready' for what is the end of `starting`.
UPDATE vms SET failed_during = 'starting' WHERE failed_during = 'ready';
