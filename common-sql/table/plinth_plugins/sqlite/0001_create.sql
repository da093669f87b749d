-- The installed plugin set: one row per plugin name, the version serving now
-- and the one before it (kept on disk for rollback).
CREATE TABLE plinth_plugins (
    name VARCHAR(64) NOT NULL PRIMARY KEY,
    version VARCHAR(64) NOT NULL,
    previous_version VARCHAR(64),
    state VARCHAR(16) NOT NULL,
    manifest TEXT NOT NULL,
    installed_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
