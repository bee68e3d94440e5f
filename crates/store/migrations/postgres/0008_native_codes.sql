-- v7: remember whether a code was issued by the native PKCE endpoint: only such a code may be
-- redeemed without client authentication (RFC 6749 4.1.3, OAuth 2.1 4.1.3); a code from the web
-- endpoint needs the confidential client's secret even when the app also has native PKCE.
ALTER TABLE auth_codes ADD COLUMN native BIGINT NOT NULL DEFAULT 0;
