-- Cached step results (JSON), keyed by handler, version, params and
-- upstream outputs. Expired entries are ignored and pruned.
CREATE TABLE cache_entries (
    key         TEXT PRIMARY KEY,
    value       BYTEA NOT NULL,
    size        INTEGER NOT NULL,
    created_at  DOUBLE PRECISION NOT NULL,
    expires_at  DOUBLE PRECISION
);
CREATE INDEX cache_entries_expiry ON cache_entries (expires_at) WHERE expires_at IS NOT NULL;
CREATE INDEX cache_entries_age ON cache_entries (created_at);
