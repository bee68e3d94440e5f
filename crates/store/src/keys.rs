//! Admin API keys (stored as keyed hashes).

use scopegate_core::model::UnixTime;

use crate::{params, Conn, Result};

/// Stores a new key's hash.
pub fn insert_api_key(
    c: &mut dyn Conn,
    hash: &str,
    name: &str,
    kind: &str,
    created_by: &str,
    now: UnixTime,
) -> Result<()> {
    c.execute(
        "INSERT INTO admin_api_keys (hash, name, kind, created_by, created_at) VALUES ($1, $2, $3, $4, $5)",
        params![hash, name, kind, created_by, now],
    )?;
    Ok(())
}

/// The name of a live key with this hash.
pub fn api_key_name(c: &mut dyn Conn, hash: &str, kind: &str) -> Result<Option<String>> {
    c.query_opt(
        "SELECT name FROM admin_api_keys WHERE hash = $1 AND kind = $2 AND revoked_at IS NULL",
        params![hash, kind],
    )?
    .map(|r| r.text(0))
    .transpose()
}

/// Revokes every live key with this name; returns how many.
pub fn revoke_api_key(c: &mut dyn Conn, name: &str, kind: &str, now: UnixTime) -> Result<u64> {
    c.execute(
        "UPDATE admin_api_keys SET revoked_at = $1 WHERE name = $2 AND kind = $3 AND revoked_at IS NULL",
        params![now, name, kind],
    )
}

/// A stored signing key (its private half encrypted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSigningKey {
    pub kid: String,
    pub alg: String,
    pub public_jwk: String,
    pub private_enc: String,
    pub created_at: UnixTime,
    pub retired_at: Option<UnixTime>,
}

fn signing_key(r: &crate::Row) -> Result<StoredSigningKey> {
    Ok(StoredSigningKey {
        kid: r.text("kid")?,
        alg: r.text("alg")?,
        public_jwk: r.text("public_jwk")?,
        private_enc: r.text("private_enc")?,
        created_at: r.int("created_at")?,
        retired_at: r.opt_int("retired_at")?,
    })
}

/// Adds a key that signs from its `created_at` on (which may lie ahead: the key is published
/// first) and retires, at that moment, the key signing until then (it stays published).
pub fn add_signing_key(c: &mut dyn Conn, k: &StoredSigningKey) -> Result<()> {
    c.execute(
        "UPDATE signing_keys SET retired_at = $1 WHERE retired_at IS NULL AND alg = $2",
        params![k.created_at, &k.alg],
    )?;
    c.execute(
        "INSERT INTO signing_keys (kid, alg, public_jwk, private_enc, created_at) VALUES ($1, $2, $3, $4, $5)",
        params![&k.kid, &k.alg, &k.public_jwk, &k.private_enc, k.created_at],
    )?;
    Ok(())
}

/// The key that signs at `now` for an algorithm: the newest already in force and not retired.
pub fn active_signing_key(
    c: &mut dyn Conn,
    alg: &str,
    now: UnixTime,
) -> Result<Option<StoredSigningKey>> {
    c.query_opt(
        "SELECT kid, alg, public_jwk, private_enc, created_at, retired_at FROM signing_keys WHERE alg = $1 AND created_at <= $2 AND (retired_at IS NULL OR retired_at > $2) ORDER BY created_at DESC, kid LIMIT 1",
        params![alg, now],
    )?
    .as_ref()
    .map(signing_key)
    .transpose()
}

/// Keys to publish: the active ones and those retired after `since` (tokens they signed may
/// still be outstanding).
pub fn published_signing_keys(c: &mut dyn Conn, since: UnixTime) -> Result<Vec<StoredSigningKey>> {
    c.query(
        "SELECT kid, alg, public_jwk, private_enc, created_at, retired_at FROM signing_keys WHERE retired_at IS NULL OR retired_at > $1 ORDER BY created_at DESC, kid",
        params![since],
    )?
    .iter()
    .map(signing_key)
    .collect()
}
