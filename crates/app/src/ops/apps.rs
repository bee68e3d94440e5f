//! Apps: creation, secrets, redirect URLs, capabilities, products and the review queue.

use scopegate_core::catalog::ResourceType;
use scopegate_core::model::{
    AccessRequest, App as AppRecord, Capability, RequestStatus, SecretInfo,
};
use scopegate_core::portal::{self, EffectivePermissions, ProductStatus, RequestOutcome};
use scopegate_core::redirect::{RedirectUri, MAX_REDIRECT_URIS};
use scopegate_core::{Program, ScopeSet, Secret};
use scopegate_store::{apps, audit, members};
use serde::Serialize;

use crate::clock::random_id;
use crate::error::{Error, Result};
use crate::ops::Actor;
use crate::state::Service;

/// What a developer gives to create an app.
#[derive(Debug, Clone, Default)]
pub struct AppInput {
    pub name: String,
    /// Member id or email of the owner.
    pub owner: String,
    pub organization_id: Option<i64>,
    pub privacy_policy_url: String,
    pub logo_url: String,
    pub redirect_uris: Vec<String>,
}

/// A new app and its first client secret, shown this once.
#[derive(Debug)]
pub struct CreatedApp {
    pub app: AppRecord,
    pub client_secret: Secret,
}

/// An app with everything its pages show.
#[derive(Debug, Clone, Serialize)]
pub struct AppDetails {
    #[serde(flatten)]
    pub app: AppRecord,
    pub secrets: Vec<SecretInfo>,
    pub redirect_uris: Vec<String>,
    pub products: Vec<ProductRow>,
    pub permissions: EffectivePermissions,
}

/// One line of the Products tab.
#[derive(Debug, Clone, Serialize)]
pub struct ProductRow {
    pub program_id: String,
    pub name: String,
    pub area: String,
    pub access: scopegate_core::Access,
    pub status: ProductStatus,
    pub reason: Option<String>,
    pub permissions: Vec<String>,
}

fn check_text(field: &str, value: &str, max: usize, required: bool) -> Result<String> {
    let v = value.trim();
    if required && v.is_empty() {
        return Err(Error::Invalid(format!("the {field} is required")));
    }
    if v.chars().count() > max || v.chars().any(char::is_control) {
        return Err(Error::Invalid(format!(
            "the {field} must be at most {max} printable characters"
        )));
    }
    Ok(v.to_string())
}

fn check_url(field: &str, value: &str, required: bool) -> Result<String> {
    let v = check_text(field, value, 2000, required)?;
    if v.is_empty() {
        return Ok(v);
    }
    match url::Url::parse(&v) {
        // Shown to members on the consent page: a plain-http link there could be rewritten on
        // the way (OIDC Registration 2: logo_uri and policy_uri are https).
        Ok(u) if u.scheme() == "https" && u.host().is_some() => Ok(v),
        _ => Err(Error::Invalid(format!(
            "the {field} must be an absolute https URL"
        ))),
    }
}

fn parse_redirect(uri: &str) -> Result<RedirectUri> {
    RedirectUri::parse(uri).map_err(|e| {
        Error::Invalid(format!(
            "{e}: \"{}\"",
            uri.chars().take(200).collect::<String>()
        ))
    })
}

/// The app, or a clear "no app" error.
pub async fn get(app: &Service, client_id: &str) -> Result<AppRecord> {
    let id = client_id.to_string();
    app.store
        .read(move |c| apps::get(c, &id))
        .await?
        .ok_or_else(|| Error::NotFound(format!("no app with client_id \"{client_id}\"")))
}

/// The app, if the actor may manage it (its owner or a platform admin).
pub async fn get_managed(app: &Service, actor: &Actor, client_id: &str) -> Result<AppRecord> {
    let a = get(app, client_id).await?;
    match actor {
        Actor::Member {
            id,
            platform_admin: false,
        } if *id != a.owner_id => {
            // Same answer as a missing app: a developer learns nothing about others' apps.
            Err(Error::NotFound(format!(
                "no app with client_id \"{client_id}\""
            )))
        }
        _ => Ok(a),
    }
}

fn secret_hint(secret: &Secret) -> String {
    let s = secret.expose();
    format!("…{}", &s[s.len().saturating_sub(4)..])
}

/// Creates an app with one client secret.
pub async fn create(app: &Service, actor: &Actor, input: AppInput) -> Result<CreatedApp> {
    create_with(app, actor, input, None).await
}

/// The redirect URLs parsed and normalized, each once.
fn distinct_redirects(uris: &[String]) -> Result<Vec<String>> {
    let mut redirect_uris = Vec::new();
    for u in uris {
        let r = parse_redirect(u)?.to_string();
        if !redirect_uris.contains(&r) {
            redirect_uris.push(r);
        }
    }
    Ok(redirect_uris)
}

/// Whether the actor may create an app owned by `owner_id`; for a member who is not a platform
/// admin, the member whose company-page roles the attach must be checked against.
fn may_create_for(actor: &Actor, owner_id: &str) -> Result<Option<String>> {
    match actor {
        Actor::Member {
            id,
            platform_admin: false,
        } => {
            if id != owner_id {
                return Err(Error::Forbidden(
                    "you can create apps only for yourself".into(),
                ));
            }
            // A member attaches an app only to a company page they administer; the operator,
            // admin API keys and platform admins may attach any (audited in `create_with`).
            Ok(Some(id.clone()))
        }
        _ => Ok(None),
    }
}

/// Creates an app, optionally with a fixed client_id and secret (the demo data set only).
pub(crate) async fn create_with(
    app: &Service,
    actor: &Actor,
    input: AppInput,
    fixed: Option<(String, Secret)>,
) -> Result<CreatedApp> {
    let name = check_text("app name", &input.name, 100, true)?;
    let privacy_policy_url = check_url("privacy policy URL", &input.privacy_policy_url, false)?;
    let logo_url = check_url("logo URL", &input.logo_url, false)?;
    if input.redirect_uris.len() > MAX_REDIRECT_URIS {
        return Err(Error::Invalid(format!(
            "at most {MAX_REDIRECT_URIS} redirect URLs"
        )));
    }
    let redirect_uris = distinct_redirects(&input.redirect_uris)?;
    let owner = crate::ops::members::find(app, &input.owner).await?;
    let must_administer = may_create_for(actor, &owner.id)?;
    let now = app.now();
    let (client_id, secret) = match fixed {
        Some(f) => f,
        None => (
            random_id(app.entropy.as_ref(), 14).to_lowercase(),
            Secret::generate(app.entropy.as_ref(), ""),
        ),
    };
    let record = AppRecord {
        client_id: client_id.into(),
        name,
        owner_id: owner.id,
        organization_id: input.organization_id,
        privacy_policy_url,
        logo_url,
        capabilities: Default::default(),
        default_scopes: ScopeSet::default(),
        extension_until: None,
        created_at: now,
    };
    let hash = app.keys.token_hash.hash(&secret);
    let hint = secret_hint(&secret);
    let actor = actor.to_string();
    let r = record.clone();
    let catalog = app.catalog.clone();
    app.store
        .write(move |c| {
            // Checked in the transaction that attaches: a role revoked meanwhile cannot slip by.
            if let Some(org) = r.organization_id {
                if let Some(member) = &must_administer {
                    let roles = members::roles_of(c, member)?;
                    if let Err(refusal) = portal::may_attach_organization(&catalog, &roles, org) {
                        return Ok(Err(Error::Forbidden(refusal.to_string())));
                    }
                }
                if members::resource(c, ResourceType::Organization, org)?.is_none() {
                    return Ok(Err(Error::NotFound(format!(
                        "no organization with id {org}"
                    ))));
                }
            }
            apps::create(c, &r, &hash, &hint, &redirect_uris)?;
            audit::record(c, now, &actor, "app.create", &r.client_id, &r.name)?;
            if let Some(org) = r.organization_id {
                audit::record(
                    c,
                    now,
                    &actor,
                    "app.organization.attach",
                    &r.client_id,
                    &scopegate_core::model::urn(ResourceType::Organization, org),
                )?;
            }
            Ok(Ok(()))
        })
        .await??;
    Ok(CreatedApp {
        app: record,
        client_secret: secret,
    })
}

/// An app with its secrets, redirect URLs, products and effective permissions.
pub async fn details(app: &Service, actor: &Actor, client_id: &str) -> Result<AppDetails> {
    let a = get_managed(app, actor, client_id).await?;
    let id = a.client_id.clone();
    let (secrets, redirect_uris, requests) = app
        .store
        .read(move |c| {
            Ok((
                apps::secrets(c, &id)?,
                apps::redirect_uris(c, &id)?,
                apps::requests_of(c, &id)?,
            ))
        })
        .await?;
    let approved: Vec<String> = requests
        .iter()
        .filter(|r| r.status == RequestStatus::Approved)
        .map(|r| r.program_id.clone())
        .collect();
    let products = app
        .catalog
        .programs
        .iter()
        .map(|p| {
            let req = requests.iter().find(|r| r.program_id == p.id);
            ProductRow {
                program_id: p.id.clone(),
                name: p.name.clone(),
                area: p.area.clone(),
                access: p.access,
                status: portal::product_status(p, &requests),
                reason: req.and_then(|r| r.reason.clone()),
                permissions: p.permissions.clone(),
            }
        })
        .collect();
    Ok(AppDetails {
        permissions: portal::effective_permissions(&app.catalog, &approved),
        app: a,
        secrets,
        redirect_uris,
        products,
    })
}

/// Every app (platform admins) or the actor's own apps.
pub async fn list(app: &Service, actor: &Actor) -> Result<Vec<AppRecord>> {
    let owner = match actor {
        Actor::Member {
            id,
            platform_admin: false,
        } => Some(id.clone()),
        _ => None,
    };
    Ok(app
        .store
        .read(move |c| apps::list(c, owner.as_deref()))
        .await?)
}

/// The company pages (id, name) the actor may attach an app to: every one for a platform admin,
/// otherwise those on which the member holds the administrator role (the rule is
/// `portal::may_attach_organization`, which `create` checks again).
pub async fn attachable_organizations(app: &Service, actor: &Actor) -> Result<Vec<(i64, String)>> {
    let member_id = match actor {
        Actor::Member {
            id,
            platform_admin: false,
        } => Some(id.clone()),
        _ => None,
    };
    let catalog = app.catalog.clone();
    Ok(app
        .store
        .read(move |c| {
            let all = members::resources(c, ResourceType::Organization)?;
            let Some(member_id) = member_id.as_deref() else {
                return Ok(all.into_iter().map(|r| (r.id, r.name)).collect());
            };
            let roles = members::roles_of(c, member_id)?;
            Ok(all
                .into_iter()
                .filter(|r| portal::may_attach_organization(&catalog, &roles, r.id).is_ok())
                .map(|r| (r.id, r.name))
                .collect())
        })
        .await?)
}

/// Deletes an app, revoking every grant and token it holds.
pub async fn delete(app: &Service, actor: &Actor, client_id: &str) -> Result<()> {
    let a = get_managed(app, actor, client_id).await?;
    let now = app.now();
    let actor = actor.to_string();
    app.store
        .write(move |c| {
            apps::delete(c, &a.client_id)?;
            audit::record(c, now, &actor, "app.delete", &a.client_id, &a.name)
        })
        .await?;
    Ok(())
}

/// Adds a second client secret (LinkedIn's rotation: the old one stays valid until deleted).
pub async fn rotate_secret(app: &Service, actor: &Actor, client_id: &str) -> Result<(Secret, i64)> {
    let a = get_managed(app, actor, client_id).await?;
    let secret = Secret::generate(app.entropy.as_ref(), "");
    let hash = app.keys.token_hash.hash(&secret);
    let hint = secret_hint(&secret);
    let now = app.now();
    let actor = actor.to_string();
    let id = app
        .store
        .write(move |c| {
            let id = apps::add_secret(c, &a.client_id, &hash, &hint, now)?;
            audit::record(c, now, &actor, "app.secret.rotate", &a.client_id, &hint)?;
            Ok(id)
        })
        .await?;
    Ok((secret, id))
}

/// Deletes one client secret by its id.
pub async fn delete_secret(
    app: &Service,
    actor: &Actor,
    client_id: &str,
    secret_id: i64,
) -> Result<()> {
    let a = get_managed(app, actor, client_id).await?;
    let now = app.now();
    let actor = actor.to_string();
    app.store
        .write(move |c| {
            apps::delete_secret(c, &a.client_id, secret_id).map_err(|e| match e {
                scopegate_store::StoreError::NotFound => scopegate_store::StoreError::Conflict(
                    format!("the app has no secret with id {secret_id}"),
                ),
                other => other,
            })?;
            audit::record(
                c,
                now,
                &actor,
                "app.secret.delete",
                &a.client_id,
                &secret_id.to_string(),
            )
        })
        .await?;
    Ok(())
}

/// Registers or unregisters a redirect URL.
pub async fn set_redirect_uri(
    app: &Service,
    actor: &Actor,
    client_id: &str,
    uri: &str,
    add: bool,
) -> Result<String> {
    let a = get_managed(app, actor, client_id).await?;
    let normalized = if add {
        parse_redirect(uri)?.to_string()
    } else {
        uri.trim().to_string()
    };
    let now = app.now();
    let actor = actor.to_string();
    let u = normalized.clone();
    let changed = app
        .store
        .write(move |c| {
            if add {
                let count = apps::redirect_uris(c, &a.client_id)?.len();
                if count >= MAX_REDIRECT_URIS {
                    return Err(scopegate_store::StoreError::Conflict(format!(
                        "an app can register at most {MAX_REDIRECT_URIS} redirect URLs"
                    )));
                }
            }
            let changed = if add {
                apps::add_redirect_uri(c, &a.client_id, &u, now)?
            } else {
                apps::remove_redirect_uri(c, &a.client_id, &u)?
            };
            if changed {
                let verb = if add {
                    "app.redirect_uri.add"
                } else {
                    "app.redirect_uri.remove"
                };
                audit::record(c, now, &actor, verb, &a.client_id, &u)?;
            }
            Ok(changed)
        })
        .await?;
    if !changed && !add {
        return Err(Error::NotFound(format!(
            "\"{normalized}\" is not registered for this app"
        )));
    }
    Ok(normalized)
}

/// Switches a platform capability; platform admins only (LinkedIn enables these per app).
pub async fn set_capability(
    app: &Service,
    actor: &Actor,
    client_id: &str,
    cap: Capability,
    on: bool,
) -> Result<()> {
    if !actor.is_platform_admin() {
        return Err(Error::Forbidden(format!(
            "only a platform admin can {} {}",
            if on { "enable" } else { "disable" },
            cap.as_str()
        )));
    }
    let a = get(app, client_id).await?;
    let now = app.now();
    let actor = actor.to_string();
    app.store
        .write(move |c| {
            apps::set_capability(c, &a.client_id, cap, on)?;
            let verb = if on {
                "app.capability.enable"
            } else {
                "app.capability.disable"
            };
            audit::record(c, now, &actor, verb, &a.client_id, cap.as_str())
        })
        .await?;
    Ok(())
}

/// Looks a program up by id or name.
pub fn program<'a>(app: &'a Service, id_or_name: &str) -> Result<&'a Program> {
    app.catalog.program(id_or_name).ok_or_else(|| {
        Error::NotFound(format!(
            "no program \"{id_or_name}\" in the catalog (see `scopegate catalog show`)"
        ))
    })
}

/// Requests a program for an app: open programs are approved at once, others queued.
pub async fn request_product(
    app: &Service,
    actor: &Actor,
    client_id: &str,
    program_id: &str,
) -> Result<RequestStatus> {
    let a = get_managed(app, actor, client_id).await?;
    let program = program(app, program_id)?.clone();
    let catalog = app.catalog.clone();
    let now = app.now();
    let actor = actor.to_string();
    Ok(app
        .store
        .write(move |c| {
            // Decided inside the write so two concurrent requests cannot both pass the checks.
            let requests = apps::requests_of(c, &a.client_id)?;
            let outcome = portal::request_program(&catalog, &program, &requests)
                .map_err(|e| scopegate_store::StoreError::Conflict(e.to_string()))?;
            let status = match outcome {
                RequestOutcome::Approved => RequestStatus::Approved,
                RequestOutcome::Queued => RequestStatus::Requested,
            };
            apps::put_request(
                c,
                &AccessRequest {
                    client_id: a.client_id.clone(),
                    program_id: program.id.clone(),
                    status,
                    reason: None,
                    requested_by: actor.clone(),
                    requested_at: now,
                    decided_by: (status == RequestStatus::Approved).then(|| "system".to_string()),
                    decided_at: (status == RequestStatus::Approved).then_some(now),
                },
            )?;
            audit::record(
                c,
                now,
                &actor,
                "app.product.request",
                &a.client_id,
                &format!("{} -> {}", program.id, status.as_str()),
            )?;
            Ok(status)
        })
        .await?)
}

/// Removes a program from an app. Takes effect at once: tokens already issued lose the program's
/// permissions (they are narrowed, not revoked: see docs/portal.md).
pub async fn remove_product(
    app: &Service,
    actor: &Actor,
    client_id: &str,
    program_id: &str,
) -> Result<()> {
    let a = get_managed(app, actor, client_id).await?;
    let program = program(app, program_id)?.clone();
    let now = app.now();
    let actor = actor.to_string();
    let removed = app
        .store
        .write(move |c| {
            let removed = apps::remove_request(c, &a.client_id, &program.id)?;
            if removed {
                audit::record(
                    c,
                    now,
                    &actor,
                    "app.product.remove",
                    &a.client_id,
                    &program.id,
                )?;
            }
            Ok(removed)
        })
        .await?;
    if !removed {
        return Err(Error::NotFound(format!(
            "\"{program_id}\" is not on this app"
        )));
    }
    Ok(())
}

/// The review queue: pending requests, oldest first.
pub async fn review_queue(app: &Service, actor: &Actor) -> Result<Vec<AccessRequest>> {
    if !actor.is_platform_admin() {
        return Err(Error::Forbidden(
            "only a platform admin can see the review queue".into(),
        ));
    }
    Ok(app
        .store
        .read(|c| apps::requests_with_status(c, RequestStatus::Requested))
        .await?)
}

/// Approves or denies a pending request. A denial needs a reason.
pub async fn decide(
    app: &Service,
    actor: &Actor,
    client_id: &str,
    program_id: &str,
    approve: bool,
    reason: Option<String>,
) -> Result<()> {
    if !actor.is_platform_admin() {
        return Err(Error::Forbidden(
            "only a platform admin can approve or deny programs".into(),
        ));
    }
    let a = get(app, client_id).await?;
    let program = program(app, program_id)?.clone();
    let reason = reason
        .map(|r| r.trim().to_string())
        .filter(|r| !r.is_empty());
    if !approve && reason.is_none() {
        return Err(Error::Invalid(format!(
            "a denial needs a reason, e.g. one of: {}",
            portal::REJECTION_REASONS.join("; ")
        )));
    }
    if let Some(r) = &reason {
        check_text("reason", r, 500, false)?;
    }
    let status = if approve {
        RequestStatus::Approved
    } else {
        RequestStatus::Denied
    };
    let now = app.now();
    let actor = actor.to_string();
    app.store
        .write(move |c| {
            apps::decide(
                c,
                &a.client_id,
                &program.id,
                status,
                reason.as_deref(),
                &actor,
                now,
            )
            .map_err(|e| match e {
                scopegate_store::StoreError::NotFound => scopegate_store::StoreError::Conflict(
                    format!("no pending request for \"{}\" on this app", program.id),
                ),
                other => other,
            })?;
            let verb = if approve {
                "review.approve"
            } else {
                "review.deny"
            };
            audit::record(
                c,
                now,
                &actor,
                verb,
                &a.client_id,
                format!("{} {}", program.id, reason.as_deref().unwrap_or("")).trim_end(),
            )
        })
        .await?;
    Ok(())
}

/// Updates the settings a developer may change.
pub async fn update_settings(
    app: &Service,
    actor: &Actor,
    client_id: &str,
    name: &str,
    privacy_policy_url: &str,
    logo_url: &str,
) -> Result<()> {
    let a = get_managed(app, actor, client_id).await?;
    let name = check_text("app name", name, 100, true)?;
    let privacy = check_url("privacy policy URL", privacy_policy_url, false)?;
    let logo = check_url("logo URL", logo_url, false)?;
    let now = app.now();
    let actor = actor.to_string();
    app.store
        .write(move |c| {
            apps::update_settings(c, &a.client_id, &name, &privacy, &logo)?;
            audit::record(c, now, &actor, "app.settings.update", &a.client_id, &name)
        })
        .await?;
    Ok(())
}
