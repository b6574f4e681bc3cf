-- The interface a launch asked for (`?ide=`: lab, notebook, rstudio,
-- vscode, desktop; NULL: none named, Jupyter's default), and when the
-- driver found, as the VM became ready, that the environment does not
-- provide it (its path under the VM's Jupyter answered 404): the status
-- page then says so instead of linking to a broken page.
ALTER TABLE vms ADD COLUMN ide TEXT;
ALTER TABLE vms ADD COLUMN ide_missing_at TEXT;
