-- When the VM got its job (the assignment): at the cold boot's create, at
-- a pool VM's claim, or for a user's first claim with home volumes on once
-- their new volume is attached to the claimed server. A claimed VM's
-- claim timeout counts from then, not from the claim. NULL until then.
-- VMs that have their job took it at the start of their phase.
ALTER TABLE vms ADD COLUMN assigned_at TIMESTAMPTZ;
UPDATE vms SET assigned_at = phase_started_at WHERE assignment IS NOT NULL;
