-- People who sign in. `password_hash` is an Argon2id PHC string.
-- `token_version` is raised by a password change, "sign out everywhere"
-- and disabling, which refuses every session created before. Failed
-- sign-ins in a row count in `failed_count`; `locked_until` (ms, 0 when
-- not locked) holds the lock-out.
CREATE TABLE plinth_users (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    login VARCHAR(64) NOT NULL UNIQUE,
    display_name VARCHAR(200) NOT NULL,
    password_hash VARCHAR(255) NOT NULL,
    disabled VARCHAR(1) NOT NULL,
    token_version BIGINT NOT NULL,
    failed_count BIGINT NOT NULL,
    locked_until BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
