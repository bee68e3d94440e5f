//! Reading the audit log (the admin API's /audit).

use scopegate_core::model::AuditEvent;

use crate::error::{Error, Result};
use crate::ops::Actor;
use crate::state::Service;

/// The newest `limit` events (clamped to 1..=10 000), optionally only those about `target`.
/// Only platform admins (and admin API keys) may read the log.
pub async fn list(
    app: &Service,
    actor: &Actor,
    target: Option<String>,
    limit: i64,
) -> Result<Vec<AuditEvent>> {
    if !actor.is_platform_admin() {
        return Err(Error::Forbidden(
            "only a platform admin may read the audit log".into(),
        ));
    }
    let limit = limit.clamp(1, 10_000);
    Ok(app
        .store
        .read(move |c| scopegate_store::audit::list(c, target.as_deref(), limit))
        .await?)
}
