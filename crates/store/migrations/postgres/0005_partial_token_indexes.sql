-- v5: partial indexes on the token lineage columns. 2-legged tokens (the hot path) have no
-- grant, code or refresh parent, so they no longer pay for three index insertions each.
DROP INDEX tokens_grant;
DROP INDEX tokens_code;
DROP INDEX tokens_refresh;
CREATE INDEX tokens_grant ON tokens (grant_id) WHERE grant_id IS NOT NULL;
CREATE INDEX tokens_code ON tokens (code_hash) WHERE code_hash IS NOT NULL;
CREATE INDEX tokens_refresh ON tokens (refresh_hash) WHERE refresh_hash IS NOT NULL;
