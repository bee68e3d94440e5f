-- v10: members that come from the platform's own identity. A member may be signed in through
-- upstream OpenID Connect providers (identified by issuer and subject, never by email alone),
-- provisioned over SCIM (external_id, active, version for ETags), and hold roles that a source
-- outside scopegate owns: each role assignment names its source, so replacing what one source
-- says never touches the roles an operator granted by hand ('manual').
ALTER TABLE members ADD COLUMN active BIGINT NOT NULL DEFAULT 1;
ALTER TABLE members ADD COLUMN external_id TEXT;
ALTER TABLE members ADD COLUMN version BIGINT NOT NULL DEFAULT 1;
ALTER TABLE members ADD COLUMN updated_at BIGINT NOT NULL DEFAULT 0;
CREATE UNIQUE INDEX members_external_id ON members (external_id) WHERE external_id IS NOT NULL;
CREATE TABLE member_identities (
    issuer TEXT NOT NULL,
    subject TEXT NOT NULL,
    member_id TEXT NOT NULL REFERENCES members(id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    last_sign_in_at BIGINT NOT NULL,
    PRIMARY KEY (issuer, subject)
);
CREATE INDEX member_identities_member ON member_identities (member_id);
ALTER TABLE role_assignments ADD COLUMN source TEXT NOT NULL DEFAULT 'manual';
CREATE INDEX role_assignments_source ON role_assignments (member_id, source);
