-- The handlers an execution needs (a JSON list), so that a worker claims only
-- what it can run; the queue of unowned top-level executions that workers
-- claim from; and the cancel requests an engine looks for.
ALTER TABLE workflow_executions ADD COLUMN handlers TEXT;
CREATE INDEX workflow_executions_claim
    ON workflow_executions (priority DESC, created_at)
    WHERE finished_at IS NULL AND parent_id IS NULL;
CREATE INDEX workflow_executions_cancel_requested
    ON workflow_executions (owner)
    WHERE cancel_requested = 1 AND finished_at IS NULL;
