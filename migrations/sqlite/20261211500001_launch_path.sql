-- How a VM came to its owner: `cold`, a server booted for the launch, or
-- `pool`, a ready VM of the warm pool claimed for it. The status page says
-- which, and the launch-time estimate of a repository is kept per path.
ALTER TABLE vms ADD COLUMN launch_path TEXT NOT NULL DEFAULT 'cold'
    CHECK (launch_path IN ('cold', 'pool'));
