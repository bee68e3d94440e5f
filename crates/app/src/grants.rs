//! Permitted services: the apps a member authorized (their grants), and revoking one.

use scopegate_core::model::{App, Grant};
use scopegate_store::{apps, audit, tokens};

use crate::error::Result;
use crate::Service;

/// One app a member allowed, with the grant that records what it may do.
#[derive(Debug, Clone)]
pub struct Permitted {
    pub grant: Grant,
    pub app: App,
}

/// Every live grant of a member, with its app. An outage is an error, never "no apps": the
/// member would think nothing can reach their account.
pub async fn of_member(svc: &Service, member_id: &str) -> Result<Vec<Permitted>> {
    let member_id = member_id.to_string();
    Ok(svc
        .store
        .read(move |c| {
            let mut out = Vec::new();
            for grant in tokens::grants_of_member(c, &member_id)? {
                if let Some(app) = apps::get(c, &grant.client_id)? {
                    out.push(Permitted { grant, app });
                }
            }
            Ok(out)
        })
        .await?)
}

/// Revokes a member's grant for an app and all its tokens at once, with its audit event (one
/// transaction). `Ok(false)` when the app had no live grant.
pub async fn revoke(svc: &Service, member_id: &str, client_id: &str) -> Result<bool> {
    let (member_id, client_id) = (member_id.to_string(), client_id.to_string());
    let now = svc.now();
    let actor = format!("member:{member_id}");
    Ok(svc
        .store
        .write(move |c| {
            let done = tokens::revoke_grant(c, &client_id, &member_id, now)?;
            if done {
                audit::record(
                    c,
                    now,
                    &actor,
                    "grant.revoke",
                    &client_id,
                    "Permitted services",
                )?;
            }
            Ok(done)
        })
        .await?)
}
