-- One home volume per user: a Cinder volume that outlives their VMs and is
-- attached at every launch. The volume id is recorded once the volume is
-- made (or adopted by its metadata after a crash between the two).
CREATE TABLE home_volumes (
    github_id         INTEGER PRIMARY KEY REFERENCES users (github_id),
    volume_id         TEXT NOT NULL UNIQUE,
    size_gb           INTEGER NOT NULL,
    availability_zone TEXT,
    created_at        TEXT NOT NULL,
    last_attached_at  TEXT
);
