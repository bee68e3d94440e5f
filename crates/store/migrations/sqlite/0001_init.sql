-- scopegate schema v1 (SQLite). Times are Unix seconds. Secrets are stored only as keyed hashes.
CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE members (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    first_name TEXT NOT NULL,
    last_name TEXT NOT NULL,
    headline TEXT NOT NULL DEFAULT '',
    picture_url TEXT NOT NULL DEFAULT '',
    locale TEXT NOT NULL DEFAULT 'en-US',
    email_verified BIGINT NOT NULL DEFAULT 0,
    platform_admin BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL
);
CREATE TABLE organizations (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE ad_accounts (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE role_assignments (
    resource_type TEXT NOT NULL,
    resource_id BIGINT NOT NULL,
    member_id TEXT NOT NULL REFERENCES members(id) ON DELETE CASCADE,
    role TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (resource_type, resource_id, member_id, role)
);
CREATE INDEX role_assignments_member ON role_assignments (member_id);
CREATE TABLE apps (
    client_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    owner_id TEXT NOT NULL REFERENCES members(id),
    organization_id BIGINT,
    privacy_policy_url TEXT NOT NULL DEFAULT '',
    logo_url TEXT NOT NULL DEFAULT '',
    client_credentials BIGINT NOT NULL DEFAULT 0,
    refresh_tokens BIGINT NOT NULL DEFAULT 0,
    native_pkce BIGINT NOT NULL DEFAULT 0,
    default_scopes TEXT NOT NULL DEFAULT '',
    extension_until BIGINT,
    created_at BIGINT NOT NULL
);
CREATE INDEX apps_owner ON apps (owner_id);
CREATE TABLE app_secrets (
    id INTEGER PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES apps(client_id) ON DELETE CASCADE,
    secret_hash TEXT NOT NULL UNIQUE,
    hint TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX app_secrets_client ON app_secrets (client_id);
CREATE TABLE redirect_uris (
    client_id TEXT NOT NULL REFERENCES apps(client_id) ON DELETE CASCADE,
    uri TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (client_id, uri)
);
CREATE TABLE access_requests (
    client_id TEXT NOT NULL REFERENCES apps(client_id) ON DELETE CASCADE,
    program_id TEXT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT,
    requested_by TEXT NOT NULL,
    requested_at BIGINT NOT NULL,
    decided_by TEXT,
    decided_at BIGINT,
    PRIMARY KEY (client_id, program_id)
);
CREATE INDEX access_requests_status ON access_requests (status, requested_at);
CREATE TABLE grants (
    id INTEGER PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES apps(client_id) ON DELETE CASCADE,
    member_id TEXT NOT NULL REFERENCES members(id) ON DELETE CASCADE,
    scopes TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE UNIQUE INDEX grants_live ON grants (client_id, member_id) WHERE revoked_at IS NULL;
CREATE INDEX grants_member ON grants (member_id);
CREATE TABLE auth_codes (
    hash TEXT PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES apps(client_id) ON DELETE CASCADE,
    grant_id BIGINT NOT NULL,
    member_id TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    scopes TEXT NOT NULL,
    code_challenge TEXT,
    nonce TEXT,
    auth_time BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    consumed_at BIGINT
);
CREATE INDEX auth_codes_expires ON auth_codes (expires_at);
CREATE TABLE tokens (
    hash TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    client_id TEXT NOT NULL REFERENCES apps(client_id) ON DELETE CASCADE,
    grant_id BIGINT,
    member_id TEXT,
    scopes TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    authorized_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT,
    refresh_hash TEXT,
    code_hash TEXT,
    rotated_at BIGINT,
    nonce TEXT
);
CREATE INDEX tokens_grant ON tokens (grant_id);
CREATE INDEX tokens_client_created ON tokens (client_id, created_at);
CREATE INDEX tokens_expires ON tokens (expires_at);
CREATE INDEX tokens_code ON tokens (code_hash);
CREATE INDEX tokens_refresh ON tokens (refresh_hash);
CREATE TABLE sessions (
    hash TEXT PRIMARY KEY,
    member_id TEXT NOT NULL REFERENCES members(id) ON DELETE CASCADE,
    csrf TEXT NOT NULL,
    auth_time BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_expires ON sessions (expires_at);
CREATE TABLE sign_in_failures (
    key TEXT PRIMARY KEY,
    failures BIGINT NOT NULL,
    window_start BIGINT NOT NULL
);
CREATE TABLE admin_api_keys (
    hash TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE TABLE audit_events (
    id INTEGER PRIMARY KEY,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_events_at ON audit_events (at);
