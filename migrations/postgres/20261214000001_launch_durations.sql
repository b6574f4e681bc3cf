-- The status page estimates a launch from the last launches of the same
-- repository on the same path (cold or pool) that got ready: this index
-- finds them newest first without reading the whole table, which keeps
-- every VM ever launched.
CREATE INDEX vms_repo_path_ready ON vms (repo, launch_path, ready_at);
