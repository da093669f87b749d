-- Tokens for automation (the CLI, scripts). Only the SHA-256 (hex) of
-- the token is kept; it is shown once, at creation. `revoked_at` is 0
-- while the token is valid.
CREATE TABLE plinth_service_tokens (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name VARCHAR(64) NOT NULL UNIQUE,
    token_hash VARCHAR(64) NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT NOT NULL,
    revoked_at BIGINT NOT NULL
);
