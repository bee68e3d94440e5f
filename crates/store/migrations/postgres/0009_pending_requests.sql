-- v9: an authorization request, validated once, waits here while the member signs in and
-- answers the consent screen; the browser carries only its random id (stored as a keyed hash),
-- so nothing the client asked for is read back from a hidden field. Rows live ten minutes.
CREATE TABLE pending_requests (
    hash TEXT PRIMARY KEY,
    request TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX pending_requests_expires ON pending_requests (expires_at);
