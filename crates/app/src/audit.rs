//! Reading the audit log (`scopegate audit`, the admin API's /audit). Events are written by the
//! operations themselves, in the transaction of the change they record.

use scopegate_core::model::AuditEvent;

use crate::error::{Error, Result};
use crate::ops::Actor;
use crate::state::Service;

/// The most events one listing returns.
pub const MAX_LIMIT: i64 = 10_000;

/// The newest events first, at most `limit` (clamped to 1..=[`MAX_LIMIT`]), optionally only
/// those on one target (a client_id, member id, URN…).
pub async fn list(
    app: &Service,
    actor: &Actor,
    target: Option<&str>,
    limit: i64,
) -> Result<Vec<AuditEvent>> {
    if !actor.is_platform_admin() {
        return Err(Error::Forbidden(
            "only a platform admin can read the audit log".into(),
        ));
    }
    let target = target.map(str::to_string);
    let limit = limit.clamp(1, MAX_LIMIT);
    Ok(app
        .store
        .read(move |c| scopegate_store::audit::list(c, target.as_deref(), limit))
        .await?)
}
