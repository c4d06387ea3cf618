DROP TABLE paused_workflows;
ALTER TABLE step_executions DROP COLUMN reused_from;
ALTER TABLE step_executions DROP COLUMN handler_version;
DROP INDEX workflow_executions_retry_of;
ALTER TABLE workflow_executions DROP COLUMN retry_of;
