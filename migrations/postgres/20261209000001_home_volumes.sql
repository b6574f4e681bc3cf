-- One home volume per user (see the SQLite version for why).
CREATE TABLE home_volumes (
    github_id         BIGINT PRIMARY KEY REFERENCES users (github_id),
    volume_id         TEXT NOT NULL UNIQUE,
    size_gb           BIGINT NOT NULL,
    availability_zone TEXT,
    created_at        TIMESTAMPTZ NOT NULL,
    last_attached_at  TIMESTAMPTZ
);
