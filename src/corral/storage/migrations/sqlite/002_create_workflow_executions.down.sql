DROP INDEX workflow_executions_retention;
DROP INDEX workflow_executions_lease;
DROP INDEX workflow_executions_key;
DROP INDEX workflow_executions_parent;
DROP INDEX workflow_executions_created;
DROP INDEX workflow_executions_by_workflow;
DROP INDEX workflow_executions_queue;
DROP TABLE workflow_executions;
