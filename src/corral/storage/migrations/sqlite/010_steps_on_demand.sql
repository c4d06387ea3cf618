-- Step rows on demand (issue 20): an execution no longer gets a `pending`
-- row per step when it is submitted; its steps are listed in `step_plan`
-- (JSON: [[step_id, handler, workflow], ...] in plan order) and a step's row
-- is made by its first write. Reading an execution fills in, from the list,
-- the steps that have no row yet: `pending`, or `cancelled` in a cancelled
-- execution. Executions written before keep their rows (step_plan NULL).
ALTER TABLE workflow_executions ADD COLUMN step_plan TEXT;
