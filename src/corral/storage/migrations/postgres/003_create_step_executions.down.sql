DROP TABLE step_executions;
