-- The launch profile (`[[profiles]]`) a VM was launched with: its flavor,
-- boot volume size, image and GPU come from it. NULL: no profiles were
-- configured, the VM is made of `[cloud]`.
ALTER TABLE vms ADD COLUMN profile TEXT;
