-- Keep only the boot volume (the first recorded) of records that still
-- hold cloud resources (see the SQLite migration of the same version).
UPDATE vms
SET volume_ids = jsonb_build_array(volume_ids -> 0)
WHERE state <> 'deleted'
  AND jsonb_typeof(volume_ids) = 'array'
  AND jsonb_array_length(volume_ids) > 1;
