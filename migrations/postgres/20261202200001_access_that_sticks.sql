-- A revoked user stays revoked (see the SQLite migration of the same version).
ALTER TABLE users ADD COLUMN revoked_at TIMESTAMPTZ;
ALTER TABLE users ADD COLUMN revoked_by TEXT;

-- Plain login names of registration.admins and blocked_users, tied to the
-- GitHub account that first had them.
CREATE TABLE access_names (
    list        TEXT NOT NULL CHECK (list IN ('admins', 'blocked_users')),
    login       TEXT NOT NULL COLLATE nocase,
    github_id   BIGINT NOT NULL,
    resolved_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (list, login)
);
