-- One row per step of an execution, created with the execution and updated as
-- the step runs. A step's terminal row (with its output) is committed before
-- its dependents start.
CREATE TABLE step_executions (
    execution_id  TEXT NOT NULL REFERENCES workflow_executions (id) ON DELETE CASCADE,
    step_id       TEXT NOT NULL,
    position      INTEGER NOT NULL,
    handler       TEXT,
    status        TEXT NOT NULL CHECK (status IN ('pending', 'running', 'succeeded', 'failed',
                      'skipped', 'cancelled', 'cached', 'timed_out')),
    attempts      INTEGER NOT NULL DEFAULT 0,
    output        BYTEA,
    error         BYTEA,
    started_at    DOUBLE PRECISION,
    finished_at   DOUBLE PRECISION,
    PRIMARY KEY (execution_id, step_id)
);
