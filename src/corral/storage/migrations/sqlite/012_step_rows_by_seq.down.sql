-- Back to step rows keyed by the execution's id: both tables made anew
-- again, their rows copied (executions in `seq` order, so rowids keep it).
CREATE TABLE workflow_executions_011 (
    id                TEXT PRIMARY KEY,
    workflow          TEXT NOT NULL,
    version           TEXT NOT NULL,
    definition        TEXT REFERENCES workflow_definitions (digest),
    status            TEXT NOT NULL CHECK (status IN
                          ('pending', 'running', 'succeeded', 'failed', 'cancelled', 'timed_out')),
    priority          INTEGER NOT NULL DEFAULT 0,
    inputs            BLOB NOT NULL,
    result            BLOB,
    error             BLOB,
    parent_id         TEXT,
    parent_step       TEXT,
    idempotency_key   TEXT,
    owner             TEXT,
    lease_expires_at  REAL,
    cancel_requested  INTEGER NOT NULL DEFAULT 0 CHECK (cancel_requested IN (0, 1)),
    created_at        REAL NOT NULL,
    started_at        REAL,
    finished_at       REAL,
    handlers          TEXT,
    retry_of          TEXT,
    step_plan         TEXT
);
INSERT INTO workflow_executions_011 (id, workflow, version, definition, status, priority,
    inputs, result, error, parent_id, parent_step, idempotency_key, owner, lease_expires_at,
    cancel_requested, created_at, started_at, finished_at, handlers, retry_of, step_plan)
SELECT id, workflow, version, definition, status, priority, inputs, result, error,
    parent_id, parent_step, idempotency_key, owner, lease_expires_at, cancel_requested,
    created_at, started_at, finished_at, handlers, retry_of, step_plan
FROM workflow_executions ORDER BY seq;
CREATE TABLE step_executions_011 (
    execution_id  TEXT NOT NULL REFERENCES workflow_executions_011 (id) ON DELETE CASCADE,
    step_id       TEXT NOT NULL,
    position      INTEGER NOT NULL,
    handler       TEXT,
    status        TEXT NOT NULL CHECK (status = 'pending' OR status = 'running'
                      OR status = 'succeeded' OR status = 'failed' OR status = 'skipped'
                      OR status = 'cancelled' OR status = 'cached' OR status = 'timed_out'),
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
INSERT INTO step_executions_011 (execution_id, step_id, position, handler, status, attempts,
    output, error, started_at, finished_at, warnings, logs, handler_version, reused_from,
    workflow)
SELECT e.id, s.step_id, s.position, s.handler, s.status, s.attempts, s.output, s.error,
    s.started_at, s.finished_at, s.warnings, s.logs, s.handler_version, s.reused_from,
    s.workflow
FROM step_executions s JOIN workflow_executions e ON e.seq = s.execution_seq;
DROP TABLE step_executions;
DROP TABLE workflow_executions;
ALTER TABLE workflow_executions_011 RENAME TO workflow_executions;
ALTER TABLE step_executions_011 RENAME TO step_executions;
CREATE INDEX workflow_executions_queue
    ON workflow_executions (status, priority DESC, created_at);
CREATE INDEX workflow_executions_by_workflow
    ON workflow_executions (workflow, status, created_at);
CREATE INDEX workflow_executions_created
    ON workflow_executions (created_at);
CREATE INDEX workflow_executions_parent
    ON workflow_executions (parent_id, parent_step) WHERE parent_id IS NOT NULL;
CREATE UNIQUE INDEX workflow_executions_key
    ON workflow_executions (idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX workflow_executions_lease
    ON workflow_executions (owner, lease_expires_at) WHERE finished_at IS NULL;
CREATE INDEX workflow_executions_retention
    ON workflow_executions (finished_at) WHERE finished_at IS NOT NULL;
CREATE INDEX workflow_executions_claim
    ON workflow_executions (priority DESC, created_at)
    WHERE finished_at IS NULL AND parent_id IS NULL;
CREATE INDEX workflow_executions_cancel_requested
    ON workflow_executions (owner)
    WHERE cancel_requested = 1 AND finished_at IS NULL;
CREATE INDEX workflow_executions_retry_of
    ON workflow_executions (retry_of) WHERE retry_of IS NOT NULL;
