//! Apps, their secrets, redirect URLs, capabilities and program access requests.

use scopegate_core::model::{
    AccessRequest, App, Capabilities, Capability, RequestStatus, SecretInfo, UnixTime,
};
use scopegate_core::SecretHash;

use crate::{params, Conn, Result, Row, StoreError};

/// At most two live secrets per app, as LinkedIn allows.
pub const MAX_SECRETS: i64 = 2;

const APP_COLUMNS: &str = "client_id, name, owner_id, organization_id, privacy_policy_url, logo_url, client_credentials, refresh_tokens, native_pkce, default_scopes, extension_until, created_at";

fn app(r: &Row) -> Result<App> {
    Ok(App {
        client_id: r.text("client_id")?.into(),
        name: r.text("name")?,
        owner_id: r.text("owner_id")?.into(),
        organization_id: r.opt_int("organization_id")?,
        privacy_policy_url: r.text("privacy_policy_url")?,
        logo_url: r.text("logo_url")?,
        capabilities: Capabilities::default()
            .with(Capability::ClientCredentials, r.bool("client_credentials")?)
            .with(Capability::RefreshTokens, r.bool("refresh_tokens")?)
            .with(Capability::NativePkce, r.bool("native_pkce")?),
        default_scopes: r.scopes("default_scopes")?,
        extension_until: r.opt_int("extension_until")?,
        created_at: r.int("created_at")?,
    })
}

/// Inserts an app with its first secret and redirect URLs.
pub fn create(
    c: &mut dyn Conn,
    a: &App,
    secret: &SecretHash,
    hint: &str,
    redirect_uris: &[String],
) -> Result<()> {
    c.execute(
        &format!("INSERT INTO apps ({APP_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"),
        params![&a.client_id, &a.name, &a.owner_id, a.organization_id, &a.privacy_policy_url, &a.logo_url, a.has(Capability::ClientCredentials), a.has(Capability::RefreshTokens), a.has(Capability::NativePkce), &a.default_scopes, a.extension_until, a.created_at],
    )?;
    add_secret(c, &a.client_id, secret, hint, a.created_at)?;
    for uri in redirect_uris {
        add_redirect_uri(c, &a.client_id, uri, a.created_at)?;
    }
    Ok(())
}

/// The app with this client_id.
pub fn get(c: &mut dyn Conn, client_id: &str) -> Result<Option<App>> {
    c.query_opt(
        &format!("SELECT {APP_COLUMNS} FROM apps WHERE client_id = $1"),
        params![client_id],
    )?
    .as_ref()
    .map(app)
    .transpose()
}

/// Every app, or every app of one owner.
pub fn list(c: &mut dyn Conn, owner_id: Option<&str>) -> Result<Vec<App>> {
    let rows = match owner_id {
        Some(o) => c.query(
            &format!(
                "SELECT {APP_COLUMNS} FROM apps WHERE owner_id = $1 ORDER BY created_at, client_id"
            ),
            params![o],
        )?,
        None => c.query(
            &format!("SELECT {APP_COLUMNS} FROM apps ORDER BY created_at, client_id"),
            params![],
        )?,
    };
    rows.iter().map(app).collect()
}

/// Deletes an app; its secrets, redirect URLs, requests, grants, codes and tokens go with it.
pub fn delete(c: &mut dyn Conn, client_id: &str) -> Result<bool> {
    // Explicit deletes rather than relying on ON DELETE CASCADE alone: they make the revocation
    // visible in one statement each, and tokens of a deleted app must never outlive it.
    for table in [
        "tokens",
        "auth_codes",
        "grants",
        "access_requests",
        "redirect_uris",
        "app_secrets",
    ] {
        c.execute(
            &format!("DELETE FROM {table} WHERE client_id = $1"),
            params![client_id],
        )?;
    }
    Ok(c.execute("DELETE FROM apps WHERE client_id = $1", params![client_id])? == 1)
}

/// Updates the settings a developer may change.
pub fn update_settings(
    c: &mut dyn Conn,
    client_id: &str,
    name: &str,
    privacy_policy_url: &str,
    logo_url: &str,
) -> Result<()> {
    let n = c.execute(
        "UPDATE apps SET name = $1, privacy_policy_url = $2, logo_url = $3 WHERE client_id = $4",
        params![name, privacy_policy_url, logo_url, client_id],
    )?;
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// Switches a platform capability on or off.
pub fn set_capability(c: &mut dyn Conn, client_id: &str, cap: Capability, on: bool) -> Result<()> {
    let column = match cap {
        Capability::ClientCredentials => "client_credentials",
        Capability::RefreshTokens => "refresh_tokens",
        Capability::NativePkce => "native_pkce",
    };
    let n = c.execute(
        &format!("UPDATE apps SET {column} = $1 WHERE client_id = $2"),
        params![on, client_id],
    )?;
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// Sets the default scopes and the default-scope extension.
pub fn set_defaults(
    c: &mut dyn Conn,
    client_id: &str,
    default_scopes: &scopegate_core::ScopeSet,
    extension_until: Option<UnixTime>,
) -> Result<()> {
    let n = c.execute(
        "UPDATE apps SET default_scopes = $1, extension_until = $2 WHERE client_id = $3",
        params![default_scopes, extension_until, client_id],
    )?;
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// Adds a secret, refusing a third live one. The count is checked in the same transaction as the
/// insert; the app row is updated first so concurrent rotations on PostgreSQL serialize on it.
pub fn add_secret(
    c: &mut dyn Conn,
    client_id: &str,
    secret: &SecretHash,
    hint: &str,
    now: UnixTime,
) -> Result<i64> {
    let locked = c.execute(
        "UPDATE apps SET client_id = client_id WHERE client_id = $1",
        params![client_id],
    )?;
    if locked == 0 {
        return Err(StoreError::NotFound);
    }
    let live = c
        .query_one(
            "SELECT COUNT(*) FROM app_secrets WHERE client_id = $1",
            params![client_id],
        )?
        .int(0)?;
    if live >= MAX_SECRETS {
        return Err(StoreError::Conflict(
            "this app already has two client secrets; delete one before rotating".into(),
        ));
    }
    c.query_one(
        "INSERT INTO app_secrets (client_id, secret_hash, hint, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
        params![client_id, secret.as_str(), hint, now],
    )?
    .int(0)
}

/// The live secrets of an app, oldest first.
pub fn secrets(c: &mut dyn Conn, client_id: &str) -> Result<Vec<SecretInfo>> {
    c.query(
        "SELECT id, hint, created_at FROM app_secrets WHERE client_id = $1 ORDER BY id",
        params![client_id],
    )?
    .iter()
    .map(|r| {
        Ok(SecretInfo {
            id: r.int(0)?,
            hint: r.text(1)?,
            created_at: r.int(2)?,
        })
    })
    .collect()
}

/// Deletes one secret; refuses to delete the last one (an app without a secret is unusable).
pub fn delete_secret(c: &mut dyn Conn, client_id: &str, id: i64) -> Result<()> {
    let live = c
        .query_one(
            "SELECT COUNT(*) FROM app_secrets WHERE client_id = $1",
            params![client_id],
        )?
        .int(0)?;
    let exists = c
        .query_opt(
            "SELECT id FROM app_secrets WHERE client_id = $1 AND id = $2",
            params![client_id, id],
        )?
        .is_some();
    if !exists {
        return Err(StoreError::NotFound);
    }
    if live <= 1 {
        return Err(StoreError::Conflict(
            "this is the app's only client secret; rotate first, then delete the old one".into(),
        ));
    }
    c.execute(
        "DELETE FROM app_secrets WHERE client_id = $1 AND id = $2",
        params![client_id, id],
    )?;
    Ok(())
}

/// True when `secret` is one of the app's live secrets (looked up by its keyed hash).
pub fn secret_matches(c: &mut dyn Conn, client_id: &str, secret: &SecretHash) -> Result<bool> {
    Ok(c.query_opt(
        "SELECT 1 FROM app_secrets WHERE client_id = $1 AND secret_hash = $2",
        params![client_id, secret.as_str()],
    )?
    .is_some())
}

/// Registers a redirect URL (already validated and normalized).
pub fn add_redirect_uri(
    c: &mut dyn Conn,
    client_id: &str,
    uri: &str,
    now: UnixTime,
) -> Result<bool> {
    Ok(c.execute(
        "INSERT INTO redirect_uris (client_id, uri, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        params![client_id, uri, now],
    )? == 1)
}

/// Unregisters a redirect URL.
pub fn remove_redirect_uri(c: &mut dyn Conn, client_id: &str, uri: &str) -> Result<bool> {
    Ok(c.execute(
        "DELETE FROM redirect_uris WHERE client_id = $1 AND uri = $2",
        params![client_id, uri],
    )? == 1)
}

/// The registered redirect URLs of an app.
pub fn redirect_uris(c: &mut dyn Conn, client_id: &str) -> Result<Vec<String>> {
    c.query(
        "SELECT uri FROM redirect_uris WHERE client_id = $1 ORDER BY created_at, uri",
        params![client_id],
    )?
    .iter()
    .map(|r| r.text(0))
    .collect()
}

const REQUEST_COLUMNS: &str =
    "client_id, program_id, status, reason, requested_by, requested_at, decided_by, decided_at";

fn request(r: &Row) -> Result<AccessRequest> {
    let status = r.text("status")?;
    Ok(AccessRequest {
        client_id: r.text("client_id")?.into(),
        program_id: r.text("program_id")?,
        status: RequestStatus::parse(&status)
            .ok_or_else(|| StoreError::Backend(format!("unknown request status {status}")))?,
        reason: r.opt_text("reason")?,
        requested_by: r.text("requested_by")?,
        requested_at: r.int("requested_at")?,
        decided_by: r.opt_text("decided_by")?,
        decided_at: r.opt_int("decided_at")?,
    })
}

/// Records a request (or its immediate approval) for a program, replacing a denied one.
pub fn put_request(c: &mut dyn Conn, r: &AccessRequest) -> Result<()> {
    c.execute(
        &format!("INSERT INTO access_requests ({REQUEST_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (client_id, program_id) DO UPDATE SET status = excluded.status, reason = excluded.reason, \
         requested_by = excluded.requested_by, requested_at = excluded.requested_at, decided_by = excluded.decided_by, decided_at = excluded.decided_at"),
        params![&r.client_id, &r.program_id, r.status.as_str(), r.reason.clone(), &r.requested_by, r.requested_at, r.decided_by.clone(), r.decided_at],
    )?;
    Ok(())
}

/// Decides a pending request; fails with NotFound when no request is pending.
pub fn decide(
    c: &mut dyn Conn,
    client_id: &str,
    program_id: &str,
    status: RequestStatus,
    reason: Option<&str>,
    by: &str,
    now: UnixTime,
) -> Result<()> {
    let n = c.execute(
        "UPDATE access_requests SET status = $1, reason = $2, decided_by = $3, decided_at = $4 \
         WHERE client_id = $5 AND program_id = $6 AND status = 'requested'",
        params![status.as_str(), reason, by, now, client_id, program_id],
    )?;
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// Removes a program from an app (whatever its status).
pub fn remove_request(c: &mut dyn Conn, client_id: &str, program_id: &str) -> Result<bool> {
    Ok(c.execute(
        "DELETE FROM access_requests WHERE client_id = $1 AND program_id = $2",
        params![client_id, program_id],
    )? == 1)
}

/// Every request of one app.
pub fn requests_of(c: &mut dyn Conn, client_id: &str) -> Result<Vec<AccessRequest>> {
    c.query(
        &format!("SELECT {REQUEST_COLUMNS} FROM access_requests WHERE client_id = $1 ORDER BY program_id"),
        params![client_id],
    )?
    .iter()
    .map(request)
    .collect()
}

/// Requests with a given status across all apps, oldest first (the review queue).
pub fn requests_with_status(c: &mut dyn Conn, status: RequestStatus) -> Result<Vec<AccessRequest>> {
    c.query(
        &format!("SELECT {REQUEST_COLUMNS} FROM access_requests WHERE status = $1 ORDER BY requested_at, client_id, program_id"),
        params![status.as_str()],
    )?
    .iter()
    .map(request)
    .collect()
}

/// Ids of the programs approved for an app.
pub fn approved_programs(c: &mut dyn Conn, client_id: &str) -> Result<Vec<String>> {
    c.query(
        "SELECT program_id FROM access_requests WHERE client_id = $1 AND status = 'approved' ORDER BY program_id",
        params![client_id],
    )?
    .iter()
    .map(|r| r.text(0))
    .collect()
}
