-- v6: enforcement. Daily quota counters (one row per key and UTC day, incremented atomically),
-- the sandbox API's stored objects, and key kinds (admin API keys, resource-server keys).
CREATE TABLE quota_counters (
    key TEXT NOT NULL,
    day BIGINT NOT NULL,
    count BIGINT NOT NULL,
    PRIMARY KEY (key, day)
);
CREATE TABLE sandbox_objects (
    id INTEGER PRIMARY KEY,
    collection TEXT NOT NULL,
    client_id TEXT NOT NULL,
    member_id TEXT,
    target TEXT,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX sandbox_objects_target ON sandbox_objects (collection, target);
ALTER TABLE admin_api_keys ADD COLUMN kind TEXT NOT NULL DEFAULT 'admin';
