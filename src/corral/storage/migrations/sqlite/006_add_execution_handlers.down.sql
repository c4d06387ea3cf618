DROP INDEX workflow_executions_cancel_requested;
DROP INDEX workflow_executions_claim;
ALTER TABLE workflow_executions DROP COLUMN handlers;
