//! Whether this node can serve: not draining, and its store answers.

use crate::error::{Error, Result};
use crate::state::Service;

/// What `/healthz` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Serving.
    Ok,
    /// A shutdown began: a load balancer should stop sending new requests.
    Draining,
}

/// A cheap read proves the store answers; a node that cannot reach its database is not healthy
/// (`Error::Unavailable`).
pub async fn check(svc: &Service) -> Result<Health> {
    if svc.draining.load(std::sync::atomic::Ordering::Relaxed) {
        return Ok(Health::Draining);
    }
    svc.store
        .read(|c| c.query("SELECT 1", &[]))
        .await
        .map_err(Error::from)?;
    Ok(Health::Ok)
}
