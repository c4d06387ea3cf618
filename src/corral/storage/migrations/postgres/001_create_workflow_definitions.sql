-- Workflow definitions: every spec an execution ran (by content hash), and the
-- registered, versioned ones (engine.create) that can be run by name.
CREATE TABLE workflow_definitions (
    digest      TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    version     TEXT NOT NULL,
    registered  INTEGER NOT NULL DEFAULT 0 CHECK (registered IN (0, 1)),
    spec        BYTEA NOT NULL,
    created_at  DOUBLE PRECISION NOT NULL
);
CREATE UNIQUE INDEX workflow_definitions_name_version
    ON workflow_definitions (name, version) WHERE registered = 1;
CREATE INDEX workflow_definitions_latest
    ON workflow_definitions (name, created_at) WHERE registered = 1;
