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
