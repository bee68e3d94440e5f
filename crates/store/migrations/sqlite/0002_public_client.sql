-- v2: remember whether a token was issued to a public (native PKCE) client, so its refresh
-- token is the only kind usable without a client secret.
ALTER TABLE tokens ADD COLUMN public_client BIGINT NOT NULL DEFAULT 0;
