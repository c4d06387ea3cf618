DROP TABLE workflow_executions;
