-- History of scheduled task runs, newest last.
CREATE TABLE plinth_task_runs (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    plugin VARCHAR(64) NOT NULL,
    version VARCHAR(64) NOT NULL,
    task VARCHAR(64) NOT NULL,
    started_at BIGINT NOT NULL,
    finished_at BIGINT,
    outcome VARCHAR(16) NOT NULL,
    message TEXT,
    INDEX plinth_task_runs_by_task (plugin, task, started_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
