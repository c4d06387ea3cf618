-- Retries (issue 18): the execution a retry was made from, the version of the
-- handler that ran each step, and the execution whose output a retry reused.
ALTER TABLE workflow_executions ADD COLUMN retry_of TEXT;
CREATE INDEX workflow_executions_retry_of
    ON workflow_executions (retry_of) WHERE retry_of IS NOT NULL;
ALTER TABLE step_executions ADD COLUMN handler_version TEXT;
ALTER TABLE step_executions ADD COLUMN reused_from TEXT;
-- Paused workflows ('*': all): their queued executions stay queued, in every
-- engine and worker sharing the store, until unpaused.
CREATE TABLE paused_workflows (
    workflow   TEXT PRIMARY KEY,
    paused_at  DOUBLE PRECISION NOT NULL
);
