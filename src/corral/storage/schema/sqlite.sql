-- The schema of a fresh SQLite store: all migrations applied in order.
-- tests/storage/test_migrate.py checks that both give the same schema.

-- Workflow definitions: every spec an execution ran (by content hash), and the
-- registered, versioned ones (engine.create) that can be run by name.
CREATE TABLE workflow_definitions (
    digest      TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    version     TEXT NOT NULL,
    registered  INTEGER NOT NULL DEFAULT 0 CHECK (registered IN (0, 1)),
    spec        BLOB NOT NULL,
    created_at  REAL NOT NULL
);
CREATE UNIQUE INDEX workflow_definitions_name_version
    ON workflow_definitions (name, version) WHERE registered = 1;
CREATE INDEX workflow_definitions_latest
    ON workflow_definitions (name, created_at) WHERE registered = 1;

-- One row per execution. `owner` and `lease_expires_at` let several engines
-- share one database: an engine renews the lease of what it runs, and another
-- may take over an execution only after its lease expired. `seq` numbers the
-- rows in the order they were written (the rowid): step rows are keyed by it,
-- so that they land where the last ones did, not all over the table as the
-- scrambled public ids would put them (migration 012).
CREATE TABLE workflow_executions (
    seq               INTEGER PRIMARY KEY,
    id                TEXT NOT NULL UNIQUE,
    workflow          TEXT NOT NULL,
    version           TEXT NOT NULL,
    definition        TEXT REFERENCES workflow_definitions (digest),
    status            TEXT NOT NULL CHECK (status = 'pending' OR status = 'running'
                          OR status = 'succeeded' OR status = 'failed'
                          OR status = 'cancelled' OR status = 'timed_out'),
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
-- (step_plan: the steps, [[step_id, handler, workflow], ...] in plan order; a
-- step's row is made by its first write, none at submission: migration 010.)
-- The queue: unfinished executions by status, priority, age.
CREATE INDEX workflow_executions_queue
    ON workflow_executions (status, priority DESC, created_at);
-- Listings by workflow (and status), newest first.
CREATE INDEX workflow_executions_by_workflow
    ON workflow_executions (workflow, status, created_at);
CREATE INDEX workflow_executions_created
    ON workflow_executions (created_at);
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
-- The handlers an execution needs (a JSON list), so that a worker claims only
-- what it can run; the queue of unowned top-level executions that workers
-- claim from; and the cancel requests an engine looks for.
CREATE INDEX workflow_executions_claim
    ON workflow_executions (priority DESC, created_at)
    WHERE finished_at IS NULL AND parent_id IS NULL;
CREATE INDEX workflow_executions_cancel_requested
    ON workflow_executions (owner)
    WHERE cancel_requested = 1 AND finished_at IS NULL;
-- The retries of an execution (its retry_of link, read both ways).
CREATE INDEX workflow_executions_retry_of
    ON workflow_executions (retry_of) WHERE retry_of IS NOT NULL;

-- One row per step of an execution, made by its first write and updated as
-- the step runs. A step's terminal row (with its output) is committed before
-- its dependents start. (The status check is a chain of comparisons: an
-- `IN (...)` list costs ~2 µs at every write: migration 011.) The execution
-- is named by its `seq`: migration 012.
CREATE TABLE step_executions (
    execution_seq INTEGER NOT NULL REFERENCES workflow_executions (seq) ON DELETE CASCADE,
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
    PRIMARY KEY (execution_seq, step_id)
) WITHOUT ROWID;

-- Cached step results (JSON), keyed by handler, version, params and
-- upstream outputs. Expired entries are ignored and pruned.
CREATE TABLE cache_entries (
    key         TEXT PRIMARY KEY,
    value       BLOB NOT NULL,
    size        INTEGER NOT NULL,
    created_at  REAL NOT NULL,
    expires_at  REAL
);
CREATE INDEX cache_entries_expiry ON cache_entries (expires_at) WHERE expires_at IS NOT NULL;
CREATE INDEX cache_entries_age ON cache_entries (created_at);

-- Paused workflows ('*': all): their queued executions stay queued, in every
-- engine and worker sharing the store, until unpaused.
CREATE TABLE paused_workflows (
    workflow   TEXT PRIMARY KEY,
    paused_at  REAL NOT NULL
);
