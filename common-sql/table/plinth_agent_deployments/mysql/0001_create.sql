-- Deployments the upgrade agent was offered: replay protection (a verified
-- deployment is applied once; an older one than the newest applied is
-- refused) and the per-deployment status sequence, kept across restarts.
CREATE TABLE plinth_agent_deployments (
    deployment_id VARCHAR(128) NOT NULL PRIMARY KEY,
    customer VARCHAR(128) NOT NULL,
    verified SMALLINT NOT NULL,
    issued_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    received_at BIGINT NOT NULL,
    outcome VARCHAR(16) NOT NULL,
    reason TEXT,
    last_seq BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
