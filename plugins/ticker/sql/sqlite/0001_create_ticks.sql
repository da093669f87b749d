-- One row per execution of the `tick` task: what the host's run history
-- is checked against (a tick run twice shows here twice).
CREATE TABLE {{prefix}}ticks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms BIGINT NOT NULL
);
