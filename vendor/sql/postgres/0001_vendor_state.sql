-- The vendor server's state (PostgreSQL). Times are unix
-- milliseconds unless a column says otherwise; booleans are 0/1 integers
-- so that one sqlx `Any` code path reads both dialects.

-- Every published package version and the archive that holds it.
CREATE TABLE packages (
    name         TEXT    NOT NULL,
    version      TEXT    NOT NULL,
    size         BIGINT  NOT NULL,
    sha256       TEXT    NOT NULL,
    -- JSON object: dependency name -> semver range, as in plugin.toml.
    depends      TEXT    NOT NULL,
    forked_from  TEXT,
    published_at BIGINT  NOT NULL,
    -- File name inside the package store (named by sha256).
    file         TEXT    NOT NULL,
    PRIMARY KEY (name, version)
);

CREATE TABLE customers (
    id           BIGSERIAL PRIMARY KEY,
    name         TEXT    NOT NULL UNIQUE,
    -- SHA-256 hex of the bearer token; the token itself is never stored.
    token_sha256 TEXT    NOT NULL UNIQUE,
    created_at   BIGINT  NOT NULL
);

-- Customer -> plugin name -> semver range. A fork is just another name.
CREATE TABLE assignments (
    customer_id   BIGINT  NOT NULL REFERENCES customers (id),
    plugin        TEXT    NOT NULL,
    version_range TEXT    NOT NULL,
    assigned_at   BIGINT  NOT NULL,
    PRIMARY KEY (customer_id, plugin)
);

-- Every deployment made. `serial` orders them; `id` is what agents see.
CREATE TABLE deployments (
    serial         BIGSERIAL PRIMARY KEY,
    id             TEXT    NOT NULL UNIQUE,
    customer_id    BIGINT  NOT NULL REFERENCES customers (id),
    manifest       TEXT    NOT NULL,
    signature      TEXT    NOT NULL,
    key_id         TEXT    NOT NULL,
    issued_at      BIGINT  NOT NULL, -- unix seconds
    expires_at     BIGINT  NOT NULL, -- unix seconds
    -- NULL while open; success | failure | cancelled | superseded
    outcome        TEXT,
    outcome_reason TEXT,
    outcome_at     BIGINT
);
CREATE INDEX deployments_by_customer ON deployments (customer_id, serial);

CREATE TABLE deployment_packages (
    deployment_id TEXT    NOT NULL REFERENCES deployments (id),
    position      BIGINT  NOT NULL,
    name          TEXT    NOT NULL,
    version       TEXT    NOT NULL,
    PRIMARY KEY (deployment_id, name)
);
CREATE INDEX deployment_packages_by_package ON deployment_packages (name, version);

-- What the running server must tell connected agents (offer, cancel),
-- written by whichever process made the change; the server polls by id.
CREATE TABLE deployment_events (
    id            BIGSERIAL PRIMARY KEY,
    customer_id   BIGINT  NOT NULL REFERENCES customers (id),
    deployment_id TEXT    NOT NULL REFERENCES deployments (id),
    kind          TEXT    NOT NULL,
    reason        TEXT,
    created_at    BIGINT  NOT NULL
);

-- Every status report received, once per (customer, deployment, seq).
CREATE TABLE status_reports (
    customer_id   BIGINT  NOT NULL REFERENCES customers (id),
    deployment_id TEXT    NOT NULL,
    seq           BIGINT  NOT NULL,
    package       TEXT,
    version       TEXT,
    state         TEXT    NOT NULL,
    reason        TEXT,
    bytes         BIGINT,
    total         BIGINT,
    at_ms         BIGINT  NOT NULL,
    received_at   BIGINT  NOT NULL,
    UNIQUE (customer_id, deployment_id, seq)
);
CREATE INDEX status_reports_by_deployment ON status_reports (deployment_id, seq);

-- The last `hello` of each customer's agent.
CREATE TABLE agent_hellos (
    customer_id        BIGINT  PRIMARY KEY REFERENCES customers (id),
    protocol           BIGINT  NOT NULL,
    agent_version      TEXT    NOT NULL,
    installed          TEXT    NOT NULL, -- JSON array of {name, version, enabled}
    last_deployment_id TEXT,
    hello_at           BIGINT  NOT NULL,
    last_seen          BIGINT  NOT NULL,
    connected          BIGINT  NOT NULL DEFAULT 0
);

CREATE TABLE audit_log (
    id       BIGSERIAL PRIMARY KEY,
    at_ms    BIGINT  NOT NULL,
    customer TEXT,
    action   TEXT    NOT NULL,
    detail   TEXT    NOT NULL
);
