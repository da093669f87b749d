-- One row per execution of the `tick` task: what the host's run history
-- is checked against (a tick run twice shows here twice).
CREATE TABLE {{prefix}}ticks (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    at_ms BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
