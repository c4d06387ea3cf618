-- Child workflows are a kind of step (issue 19): a step that runs one
-- records the child workflow's name here and no handler (it was the
-- handler name "workflow:<name>").
ALTER TABLE step_executions ADD COLUMN workflow TEXT;
UPDATE step_executions SET workflow = substr(handler, 10), handler = NULL
    WHERE handler LIKE 'workflow:%';
