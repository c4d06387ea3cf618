ALTER TABLE step_executions DROP COLUMN logs;
