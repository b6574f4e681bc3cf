-- Registration links beyond the one in the configuration: one per course
-- or group, each with a label, an optional expiry and an optional number
-- of uses. Only a hash of the secret is kept; the link is shown once.
CREATE TABLE registration_links (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    label       TEXT NOT NULL,
    secret_hash BLOB NOT NULL UNIQUE,
    created_at  TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    expires_at  TEXT,
    max_uses    INTEGER CHECK (max_uses IS NULL OR max_uses > 0),
    uses        INTEGER NOT NULL DEFAULT 0,
    revoked_at  TEXT
);
