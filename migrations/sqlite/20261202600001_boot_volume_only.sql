-- Older versions recorded every volume attached to a VM's server at boot
-- and delete time, so a volume an operator attached by hand was deleted
-- with the VM. The boot volume is always the first recorded: keep only it
-- for the records that still hold cloud resources.
UPDATE vms
SET volume_ids = json_array(json_extract(volume_ids, '$[0]'))
WHERE state <> 'deleted'
  AND json_valid(volume_ids)
  AND json_array_length(volume_ids) > 1;
