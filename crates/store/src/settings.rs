//! Deployment-wide settings kept in the store (e.g. the first-start marker).

use crate::{params, Conn, Result};

/// Reads a setting.
pub fn get(c: &mut dyn Conn, key: &str) -> Result<Option<String>> {
    c.query_opt("SELECT value FROM settings WHERE key = $1", params![key])?
        .map(|r| r.text(0))
        .transpose()
}

/// Sets a setting only if it is not set yet; returns whether this call set it.
pub fn set_if_absent(c: &mut dyn Conn, key: &str, value: &str) -> Result<bool> {
    let n = c.execute(
        "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
        params![key, value],
    )?;
    Ok(n == 1)
}

/// Sets a setting.
pub fn set(c: &mut dyn Conn, key: &str, value: &str) -> Result<()> {
    c.execute(
        "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        params![key, value],
    )?;
    Ok(())
}
