-- The vendor server's state (SQLite, for a local trial). Times are unix
-- milliseconds unless a column says otherwise; booleans are 0/1 integers
-- so that one sqlx `Any` code path reads both dialects.

-- Every published package version and the archive that holds it.
CREATE TABLE packages (
    name         TEXT    NOT NULL,
    version      TEXT    NOT NULL,
    size         INTEGER NOT NULL,
    sha256       TEXT    NOT NULL,
    -- JSON object: dependency name -> semver range, as in plugin.toml.
    depends      TEXT    NOT NULL,
    forked_from  TEXT,
    published_at INTEGER NOT NULL,
    -- File name inside the package store (named by sha256).
    file         TEXT    NOT NULL,
    PRIMARY KEY (name, version)
);

CREATE TABLE customers (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    name         TEXT    NOT NULL UNIQUE,
    -- SHA-256 hex of the bearer token; the token itself is never stored.
    token_sha256 TEXT    NOT NULL UNIQUE,
    created_at   INTEGER NOT NULL
);

-- Customer -> plugin name -> semver range. A fork is just another name.
CREATE TABLE assignments (
    customer_id   INTEGER NOT NULL REFERENCES customers (id),
    plugin        TEXT    NOT NULL,
    version_range TEXT    NOT NULL,
    assigned_at   INTEGER NOT NULL,
    PRIMARY KEY (customer_id, plugin)
);

-- Every deployment made. `serial` orders them; `id` is what agents see.
CREATE TABLE deployments (
    serial         INTEGER PRIMARY KEY AUTOINCREMENT,
    id             TEXT    NOT NULL UNIQUE,
    customer_id    INTEGER NOT NULL REFERENCES customers (id),
    manifest       TEXT    NOT NULL,
    signature      TEXT    NOT NULL,
    key_id         TEXT    NOT NULL,
    issued_at      INTEGER NOT NULL, -- unix seconds
    expires_at     INTEGER NOT NULL, -- unix seconds
    -- NULL while open; success | failure | cancelled | superseded
    outcome        TEXT,
    outcome_reason TEXT,
    outcome_at     INTEGER
);
CREATE INDEX deployments_by_customer ON deployments (customer_id, serial);

CREATE TABLE deployment_packages (
    deployment_id TEXT    NOT NULL REFERENCES deployments (id),
    position      INTEGER NOT NULL,
    name          TEXT    NOT NULL,
    version       TEXT    NOT NULL,
    PRIMARY KEY (deployment_id, name)
);
CREATE INDEX deployment_packages_by_package ON deployment_packages (name, version);

-- What the running server must tell connected agents (offer, cancel),
-- written by whichever process made the change; the server polls by id.
CREATE TABLE deployment_events (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    customer_id   INTEGER NOT NULL REFERENCES customers (id),
    deployment_id TEXT    NOT NULL REFERENCES deployments (id),
    kind          TEXT    NOT NULL,
    reason        TEXT,
    created_at    INTEGER NOT NULL
);

-- Every status report received, once per (customer, deployment, seq).
CREATE TABLE status_reports (
    customer_id   INTEGER NOT NULL REFERENCES customers (id),
    deployment_id TEXT    NOT NULL,
    seq           INTEGER NOT NULL,
    package       TEXT,
    version       TEXT,
    state         TEXT    NOT NULL,
    reason        TEXT,
    bytes         INTEGER,
    total         INTEGER,
    at_ms         INTEGER NOT NULL,
    received_at   INTEGER NOT NULL,
    UNIQUE (customer_id, deployment_id, seq)
);
CREATE INDEX status_reports_by_deployment ON status_reports (deployment_id, seq);

-- The last `hello` of each customer's agent.
CREATE TABLE agent_hellos (
    customer_id        INTEGER PRIMARY KEY REFERENCES customers (id),
    protocol           INTEGER NOT NULL,
    agent_version      TEXT    NOT NULL,
    installed          TEXT    NOT NULL, -- JSON array of {name, version, enabled}
    last_deployment_id TEXT,
    hello_at           INTEGER NOT NULL,
    last_seen          INTEGER NOT NULL,
    connected          INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE audit_log (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms    INTEGER NOT NULL,
    customer TEXT,
    action   TEXT    NOT NULL,
    detail   TEXT    NOT NULL
);
