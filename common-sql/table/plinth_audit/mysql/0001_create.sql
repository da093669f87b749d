-- Who did what, when, from where: sign-ins (success and failure), user,
-- role, grant and token changes, service-token use on the admin API and
-- plugin operations. `actor` is a login or token name ('' when anonymous).
CREATE TABLE plinth_audit (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    at BIGINT NOT NULL,
    actor VARCHAR(200) NOT NULL,
    actor_kind VARCHAR(16) NOT NULL,
    action VARCHAR(64) NOT NULL,
    target VARCHAR(255) NOT NULL,
    outcome VARCHAR(16) NOT NULL,
    ip VARCHAR(64) NOT NULL,
    detail VARCHAR(1000) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE INDEX plinth_audit_at ON plinth_audit (at);
