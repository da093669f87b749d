-- Per task of a plugin (any version), what an operator set: the paused flag
-- survives restarts and upgrades because it is keyed by name, not version.
CREATE TABLE plinth_task_state (
    plugin VARCHAR(64) NOT NULL,
    task VARCHAR(64) NOT NULL,
    paused VARCHAR(8) NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (plugin, task)
);
