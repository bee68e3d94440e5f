//! Permission migrations (seeds 002 and 003): default scopes and extensions, the token audit,
//! and the report of apps still on old permissions.

use std::collections::BTreeMap;

use scopegate_core::catalog::PermissionKind;
use scopegate_core::model::TokenRecord;
use scopegate_core::ScopeSet;
use scopegate_store::{apps, audit, tokens};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::ops::apps::{get, get_managed};
use crate::ops::Actor;
use crate::state::Service;

/// An app's default scopes and its extension.
#[derive(Debug, Clone, Serialize)]
pub struct Defaults {
    pub client_id: String,
    pub default_scopes: Vec<String>,
    pub extension_until: Option<String>,
    /// Whether a request without `scope` uses the defaults today.
    pub in_force: bool,
    pub sunset: Option<String>,
}

/// The defaults of an app.
pub async fn defaults(app: &Service, actor: &Actor, client_id: &str) -> Result<Defaults> {
    let a = get_managed(app, actor, client_id).await?;
    let today = crate::clock::date_of(app.now());
    let ext = a.extension_until.map(crate::clock::date_of);
    let sunset = app.catalog.platform.default_scope_sunset;
    let scopes = a.default_scopes;
    Ok(Defaults {
        client_id: a.client_id.into_string(),
        in_force: !scopes.is_empty()
            && scopegate_core::oauth::default_scopes_allowed(sunset, today, ext),
        default_scopes: scopes.iter().map(str::to_string).collect(),
        extension_until: ext.map(|d| d.to_string()),
        sunset: sunset.map(|d| d.to_string()),
    })
}

/// Sets an app's default scopes (member permissions of the catalog).
pub async fn set_defaults(
    app: &Service,
    actor: &Actor,
    client_id: &str,
    scopes: &str,
) -> Result<Defaults> {
    let a = get_managed(app, actor, client_id).await?;
    let set = ScopeSet::parse(scopes).map_err(|e| Error::Invalid(e.to_string()))?;
    for s in set.iter() {
        match app.catalog.permission(s) {
            Some(p) if p.kind == PermissionKind::Member && !p.auto_granted => {}
            Some(_) => return Err(Error::Invalid(format!("\"{s}\" cannot be a default scope: only member permissions are requested in the 3-legged flow"))),
            None => return Err(Error::Invalid(format!("\"{s}\" is not a permission of the catalog"))),
        }
    }
    let joined = set.to_comma_separated();
    let now = app.now();
    let who = actor.to_string();
    let (id, ext) = (a.client_id.clone(), a.extension_until);
    app.store
        .write(move |c| {
            apps::set_defaults(c, &id, &set, ext)?;
            audit::record(c, now, &who, "app.defaults.set", &id, &joined)
        })
        .await?;
    defaults(app, actor, client_id).await
}

/// Grants (`Some(date)`) or revokes (`None`) a default-scope extension; platform admins only.
pub async fn set_extension(
    app: &Service,
    actor: &Actor,
    client_id: &str,
    until: Option<time::Date>,
) -> Result<Defaults> {
    if !actor.is_platform_admin() {
        return Err(Error::Forbidden(
            "only a platform admin can grant default-scope extensions".into(),
        ));
    }
    let a = get(app, client_id).await?;
    let now = app.now();
    let who = actor.to_string();
    let until_ts = until.map(crate::clock::end_of);
    let (id, scopes) = (a.client_id.clone(), a.default_scopes.clone());
    app.store
        .write(move |c| {
            apps::set_defaults(c, &id, &scopes, until_ts)?;
            let (verb, detail) = match until {
                Some(d) => ("app.extension.grant", d.to_string()),
                None => ("app.extension.revoke", String::new()),
            };
            audit::record(c, now, &who, verb, &id, &detail)
        })
        .await?;
    defaults(app, actor, client_id).await
}

/// One app's tokens issued before a migration.
#[derive(Debug, Clone, Serialize)]
pub struct AppTokens {
    pub client_id: String,
    pub tokens: usize,
    /// Distinct members holding those tokens (3-legged).
    pub members: Vec<String>,
    pub application_tokens: usize,
    pub oldest: i64,
}

/// `scopegate migrate tokens`: live tokens issued before `before`, per app; revoked on request.
pub async fn tokens_before(
    app: &Service,
    actor: &Actor,
    before: i64,
    client_id: Option<&str>,
    revoke: bool,
) -> Result<(Vec<AppTokens>, u64)> {
    if !actor.is_platform_admin() {
        return Err(Error::Forbidden(
            "only a platform admin can audit tokens".into(),
        ));
    }
    if let Some(id) = client_id {
        get(app, id).await?;
    }
    let now = app.now();
    let id = client_id.map(str::to_string);
    let found: Vec<TokenRecord> = app
        .store
        .read(move |c| tokens::live_issued_before(c, before, now, id.as_deref()))
        .await?;
    let mut per_app: BTreeMap<String, AppTokens> = BTreeMap::new();
    for t in &found {
        let e = per_app
            .entry(t.client_id.to_string())
            .or_insert_with(|| AppTokens {
                client_id: t.client_id.to_string(),
                tokens: 0,
                members: vec![],
                application_tokens: 0,
                oldest: t.created_at,
            });
        e.tokens += 1;
        e.oldest = e.oldest.min(t.created_at);
        match &t.member_id {
            Some(m) if !e.members.iter().any(|x| x == m) => e.members.push(m.to_string()),
            Some(_) => {}
            None => e.application_tokens += 1,
        }
    }
    let mut revoked = 0;
    if revoke && !found.is_empty() {
        let hashes: Vec<_> = found.iter().map(|t| t.hash.clone()).collect();
        let who = actor.to_string();
        revoked = app
            .store
            .write(move |c| {
                let mut n = 0;
                for h in &hashes {
                    n += tokens::revoke(c, h, now)?;
                }
                audit::record(
                    c,
                    now,
                    &who,
                    "migrate.tokens.revoke",
                    "*",
                    &format!("{} tokens issued before {before}", hashes.len()),
                )?;
                Ok(n)
            })
            .await?;
    }
    Ok((per_app.into_values().collect(), revoked))
}

/// One app in the migration report.
#[derive(Debug, Clone, Serialize)]
pub struct ReportRow {
    pub client_id: String,
    pub name: String,
    /// Deprecated permissions its members' grants still hold.
    pub deprecated_permissions: Vec<String>,
    /// Members who must re-authorize (their grant holds a retired permission).
    pub members_to_reauthorize: usize,
    /// Default scopes it relies on under an extension (empty when none).
    pub default_scopes: Vec<String>,
    pub extension_until: Option<String>,
}

/// Apps still on deprecated permissions or relying on default scopes.
pub async fn report(app: &Service, actor: &Actor) -> Result<Vec<ReportRow>> {
    if !actor.is_platform_admin() {
        return Err(Error::Forbidden(
            "only a platform admin can see the migration report".into(),
        ));
    }
    let (grants, all_apps) = app
        .store
        .read(|c| Ok((tokens::live_grants(c)?, apps::list(c, None)?)))
        .await?;
    let catalog = &app.catalog;
    let mut rows = Vec::new();
    for a in all_apps {
        let mut deprecated: Vec<String> = Vec::new();
        let mut members = 0;
        for g in grants.iter().filter(|g| g.client_id == a.client_id) {
            let old: Vec<&str> = g
                .scopes
                .iter()
                .filter(|s| catalog.permission(s).is_some_and(|p| p.retired()))
                .collect();
            if !old.is_empty() {
                members += 1;
                for s in old {
                    if !deprecated.iter().any(|d| d == s) {
                        deprecated.push(s.to_string());
                    }
                }
            }
        }
        let relies = a.extension_until.is_some() && !a.default_scopes.is_empty();
        if deprecated.is_empty() && !relies {
            continue;
        }
        deprecated.sort();
        rows.push(ReportRow {
            client_id: a.client_id.into_string(),
            name: a.name,
            deprecated_permissions: deprecated,
            members_to_reauthorize: members,
            default_scopes: if relies {
                a.default_scopes.iter().map(str::to_string).collect()
            } else {
                vec![]
            },
            extension_until: a
                .extension_until
                .filter(|_| relies)
                .map(|t| crate::clock::date_of(t).to_string()),
        });
    }
    Ok(rows)
}
