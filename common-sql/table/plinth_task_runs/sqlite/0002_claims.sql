-- Each row is also the claim of one scheduled tick: the unique key lets
-- exactly one host insert it; the lease (database clock, ms) frees the task
-- when the host that claimed it died mid-run. Rows from before this change
-- keep scheduled_at NULL, which the unique key allows many times.
ALTER TABLE plinth_task_runs ADD COLUMN scheduled_at BIGINT;
ALTER TABLE plinth_task_runs ADD COLUMN host_id VARCHAR(128);
ALTER TABLE plinth_task_runs ADD COLUMN lease_until BIGINT;
CREATE UNIQUE INDEX plinth_task_runs_claim ON plinth_task_runs (plugin, task, scheduled_at);
CREATE INDEX plinth_task_runs_by_outcome ON plinth_task_runs (outcome, lease_until);
UPDATE plinth_task_runs SET outcome = 'failed' WHERE outcome IN ('error', 'crashed');
