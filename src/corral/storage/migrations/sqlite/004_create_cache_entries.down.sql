DROP INDEX cache_entries_age;
DROP INDEX cache_entries_expiry;
DROP TABLE cache_entries;
