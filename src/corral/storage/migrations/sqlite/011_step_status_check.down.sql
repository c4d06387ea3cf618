-- Back to the `IN (...)` check: the table made anew again, its rows copied.
CREATE TABLE step_executions_010 (
    execution_id  TEXT NOT NULL REFERENCES workflow_executions (id) ON DELETE CASCADE,
    step_id       TEXT NOT NULL,
    position      INTEGER NOT NULL,
    handler       TEXT,
    status        TEXT NOT NULL CHECK (status IN ('pending', 'running', 'succeeded', 'failed',
                      'skipped', 'cancelled', 'cached', 'timed_out')),
    attempts      INTEGER NOT NULL DEFAULT 0,
    output        BLOB,
    error         BLOB,
    started_at    REAL,
    finished_at   REAL,
    warnings      BLOB,
    logs          BLOB,
    handler_version TEXT,
    reused_from   TEXT,
    workflow      TEXT,
    PRIMARY KEY (execution_id, step_id)
) WITHOUT ROWID;
INSERT INTO step_executions_010 (execution_id, step_id, position, handler, status, attempts,
    output, error, started_at, finished_at, warnings, logs, handler_version, reused_from,
    workflow)
SELECT execution_id, step_id, position, handler, status, attempts, output, error, started_at,
    finished_at, warnings, logs, handler_version, reused_from, workflow
FROM step_executions;
DROP TABLE step_executions;
ALTER TABLE step_executions_010 RENAME TO step_executions;
