-- A revoked user stays revoked: a registration link does not register them
-- again, only an admin allowing the login again (`users add`, /admin).
ALTER TABLE users ADD COLUMN revoked_at TEXT;
ALTER TABLE users ADD COLUMN revoked_by TEXT;

-- Plain login names in registration.admins and registration.blocked_users,
-- resolved to the GitHub account that first logged in with that name (or
-- had it when the name was first configured) and kept: GitHub lets anyone
-- take a login that its owner renamed away from, the numeric id stays.
CREATE TABLE access_names (
    list        TEXT NOT NULL CHECK (list IN ('admins', 'blocked_users')),
    login       TEXT NOT NULL COLLATE NOCASE,
    github_id   INTEGER NOT NULL,
    resolved_at TEXT NOT NULL,
    PRIMARY KEY (list, login)
);
