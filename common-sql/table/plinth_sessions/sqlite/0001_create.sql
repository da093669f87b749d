-- Server-side sessions. `id_hash` is the SHA-256 (hex) of the random
-- cookie value, so a copy of this table signs nobody in. A session counts
-- only while its `token_version` equals the user's.
CREATE TABLE plinth_sessions (
    id_hash VARCHAR(64) NOT NULL PRIMARY KEY,
    user_id BIGINT NOT NULL,
    token_version BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    ip VARCHAR(64) NOT NULL,
    user_agent VARCHAR(255) NOT NULL
);
CREATE INDEX plinth_sessions_user ON plinth_sessions (user_id);
