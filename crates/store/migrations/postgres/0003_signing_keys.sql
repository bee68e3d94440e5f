-- v3: ID-token signing keys. Private keys are stored encrypted (AES-256-GCM) under a key
-- derived from the deployment's master secret; the newest key signs, older ones stay published.
CREATE TABLE signing_keys (
    kid TEXT PRIMARY KEY,
    alg TEXT NOT NULL,
    public_jwk TEXT NOT NULL,
    private_enc TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    retired_at BIGINT
);
