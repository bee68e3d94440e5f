-- v4: the time the member signed in, kept on tokens so a refreshed ID token repeats the
-- original auth_time (OpenID Connect Core 12.2).
ALTER TABLE tokens ADD COLUMN auth_time BIGINT NOT NULL DEFAULT 0;
