-- The permission codes a service token holds (its own, not a role's).
CREATE TABLE plinth_service_token_grants (
    token_id BIGINT NOT NULL,
    permission VARCHAR(128) NOT NULL,
    granted_at BIGINT NOT NULL,
    PRIMARY KEY (token_id, permission)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
