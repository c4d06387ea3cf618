-- One row per execution. `owner` and `lease_expires_at` let many workers
-- share one database: a worker renews the lease of what it runs, and another
-- may take over an execution only after its lease expired. JSON values
-- (inputs, result, error) are stored as UTF-8 bytes, as on SQLite; query them
-- with convert_from(inputs, 'UTF8')::jsonb. Times are seconds since the epoch.
-- `seq` orders executions created in the same instant.
CREATE TABLE workflow_executions (
    id                TEXT PRIMARY KEY,
    seq               BIGINT GENERATED ALWAYS AS IDENTITY,
    workflow          TEXT NOT NULL,
    version           TEXT NOT NULL,
    definition        TEXT REFERENCES workflow_definitions (digest),
    status            TEXT NOT NULL CHECK (status IN
                          ('pending', 'running', 'succeeded', 'failed', 'cancelled', 'timed_out')),
    priority          INTEGER NOT NULL DEFAULT 0,
    inputs            BYTEA NOT NULL,
    result            BYTEA,
    error             BYTEA,
    parent_id         TEXT,
    parent_step       TEXT,
    idempotency_key   TEXT,
    owner             TEXT,
    lease_expires_at  DOUBLE PRECISION,
    cancel_requested  INTEGER NOT NULL DEFAULT 0 CHECK (cancel_requested IN (0, 1)),
    created_at        DOUBLE PRECISION NOT NULL,
    started_at        DOUBLE PRECISION,
    finished_at       DOUBLE PRECISION
);
-- The queue: unfinished executions by priority, age.
CREATE INDEX workflow_executions_queue
    ON workflow_executions (priority DESC, created_at) WHERE finished_at IS NULL;
-- Listings by workflow (and status), newest first.
CREATE INDEX workflow_executions_by_workflow
    ON workflow_executions (workflow, status, created_at);
CREATE INDEX workflow_executions_created
    ON workflow_executions (created_at, seq);
-- Children of an execution (and of one of its steps).
CREATE INDEX workflow_executions_parent
    ON workflow_executions (parent_id, parent_step) WHERE parent_id IS NOT NULL;
-- Idempotency keys are unique.
CREATE UNIQUE INDEX workflow_executions_key
    ON workflow_executions (idempotency_key) WHERE idempotency_key IS NOT NULL;
-- Leases of unfinished executions (renewal and takeover).
CREATE INDEX workflow_executions_lease
    ON workflow_executions (owner, lease_expires_at) WHERE finished_at IS NULL;
-- Retention: finished executions by age.
CREATE INDEX workflow_executions_retention
    ON workflow_executions (finished_at) WHERE finished_at IS NOT NULL;
