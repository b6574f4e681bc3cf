-- When a VM claimed from the warm pool had its server renamed and marked
-- as its owner's, its floating IP (in floating_ip mode) and its owner's
-- home volume attached: the claim's steps in the cloud are done. NULL for
-- a cold VM, and for a claimed one until then.
ALTER TABLE vms ADD COLUMN claim_settled_at TIMESTAMPTZ;
