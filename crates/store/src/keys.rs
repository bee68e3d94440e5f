//! Admin API keys (stored as keyed hashes).

use scopegate_core::model::UnixTime;

use crate::{params, Conn, Result};

/// Stores a new key's hash.
pub fn insert_api_key(
    c: &mut dyn Conn,
    hash: &str,
    name: &str,
    created_by: &str,
    now: UnixTime,
) -> Result<()> {
    c.execute(
        "INSERT INTO admin_api_keys (hash, name, created_by, created_at) VALUES ($1, $2, $3, $4)",
        params![hash, name, created_by, now],
    )?;
    Ok(())
}

/// The name of a live key with this hash.
pub fn api_key_name(c: &mut dyn Conn, hash: &str) -> Result<Option<String>> {
    c.query_opt(
        "SELECT name FROM admin_api_keys WHERE hash = $1 AND revoked_at IS NULL",
        params![hash],
    )?
    .map(|r| r.text(0))
    .transpose()
}

/// Revokes every live key with this name; returns how many.
pub fn revoke_api_key(c: &mut dyn Conn, name: &str, now: UnixTime) -> Result<u64> {
    c.execute(
        "UPDATE admin_api_keys SET revoked_at = $1 WHERE name = $2 AND revoked_at IS NULL",
        params![now, name],
    )
}
