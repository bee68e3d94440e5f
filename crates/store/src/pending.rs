//! Pending authorization requests: a request validated once by the authorization endpoint,
//! kept while the member signs in and answers the consent screen. Looked up by keyed hash only:
//! the browser holds the random id, the store never does.

use scopegate_core::model::UnixTime;
use scopegate_core::SecretHash;

use crate::{params, Conn, Result};

/// A stored request: the validated request as the application layer serialised it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingRecord {
    pub hash: SecretHash,
    /// The validated request (JSON written and read by the application layer).
    pub request: String,
    pub created_at: UnixTime,
    pub expires_at: UnixTime,
}

/// Stores a pending request.
pub fn insert(c: &mut dyn Conn, p: &PendingRecord) -> Result<()> {
    c.execute(
        "INSERT INTO pending_requests (hash, request, created_at, expires_at) VALUES ($1, $2, $3, $4)",
        params![&p.hash, &p.request, p.created_at, p.expires_at],
    )?;
    Ok(())
}

/// The pending request with this hash, unless it has expired.
pub fn get(c: &mut dyn Conn, hash: &SecretHash, now: UnixTime) -> Result<Option<PendingRecord>> {
    c.query_opt(
        "SELECT hash, request, created_at, expires_at FROM pending_requests WHERE hash = $1 AND expires_at > $2",
        params![hash, now],
    )?
    .map(|r| {
        Ok(PendingRecord {
            hash: r.hash(0)?,
            request: r.text(1)?,
            created_at: r.int(2)?,
            expires_at: r.int(3)?,
        })
    })
    .transpose()
}

/// Forgets a pending request (answered or cancelled); true if it was there.
pub fn delete(c: &mut dyn Conn, hash: &SecretHash) -> Result<bool> {
    Ok(c.execute(
        "DELETE FROM pending_requests WHERE hash = $1",
        params![hash],
    )? > 0)
}

/// Deletes at most `batch` pending requests that expired before `before`, through the expiry
/// index. An expired request is useless at once, so nothing is kept for reporting.
pub fn purge_expired(c: &mut dyn Conn, before: UnixTime, batch: i64) -> Result<u64> {
    c.execute(
        "DELETE FROM pending_requests WHERE hash IN (SELECT hash FROM pending_requests WHERE expires_at < $1 ORDER BY expires_at LIMIT $2)",
        params![before, batch],
    )
}
