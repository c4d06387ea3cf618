-- Back to a row per step: the rows the list stood for are made (`pending`,
-- `cancelled` in a cancelled execution), the rows made on demand get their
-- place in the plan, then the list goes.
UPDATE step_executions SET position = (
    SELECT CAST(j.key AS INTEGER)
    FROM workflow_executions e, json_each(e.step_plan) j
    WHERE e.id = step_executions.execution_id
      AND json_extract(j.value, '$[0]') = step_executions.step_id
) WHERE position < 0;
INSERT INTO step_executions (execution_id, step_id, position, handler, status, attempts,
                             finished_at, workflow)
SELECT e.id, json_extract(j.value, '$[0]'), CAST(j.key AS INTEGER), json_extract(j.value, '$[1]'),
       CASE WHEN e.status = 'cancelled' THEN 'cancelled' ELSE 'pending' END, 0,
       CASE WHEN e.status = 'cancelled' THEN e.finished_at END, json_extract(j.value, '$[2]')
FROM workflow_executions e, json_each(e.step_plan) j
WHERE e.step_plan IS NOT NULL
ON CONFLICT (execution_id, step_id) DO NOTHING;
ALTER TABLE workflow_executions DROP COLUMN step_plan;
