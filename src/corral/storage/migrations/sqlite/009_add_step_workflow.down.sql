UPDATE step_executions SET handler = 'workflow:' || workflow WHERE workflow IS NOT NULL;
ALTER TABLE step_executions DROP COLUMN workflow;
