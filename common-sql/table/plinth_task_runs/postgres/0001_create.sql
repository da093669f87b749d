-- History of scheduled task runs, newest last.
CREATE TABLE plinth_task_runs (
    id BIGSERIAL PRIMARY KEY,
    plugin VARCHAR(64) NOT NULL,
    version VARCHAR(64) NOT NULL,
    task VARCHAR(64) NOT NULL,
    started_at BIGINT NOT NULL,
    finished_at BIGINT,
    outcome VARCHAR(16) NOT NULL,
    message TEXT
);
CREATE INDEX plinth_task_runs_by_task ON plinth_task_runs (plugin, task, started_at);
