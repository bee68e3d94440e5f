//! Members, organizations, ad accounts and roles.

use scopegate_core::catalog::ResourceType;
use scopegate_core::model::{Member, NewMember, Resource, RoleAssignment};
use scopegate_store::{audit, members};

use crate::clock::random_id;
use crate::error::{Error, Result};
use crate::ops::Actor;
use crate::state::Service;

/// What is needed to create a member.
#[derive(Debug, Clone)]
pub struct MemberInput {
    pub email: String,
    /// Chosen by a person: redacted in `Debug`, exposed only to the hasher.
    pub password: scopegate_core::Secret,
    pub first_name: String,
    pub last_name: String,
    pub headline: String,
    pub picture_url: String,
    pub locale: String,
    pub email_verified: bool,
    pub platform_admin: bool,
}

/// The shortest password accepted.
pub const MIN_PASSWORD_LEN: usize = 10;

fn valid_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// Creates a member (argon2id password hash).
pub async fn create(app: &Service, actor: &Actor, input: MemberInput) -> Result<Member> {
    let email = input.email.trim().to_lowercase();
    if !valid_email(&email) {
        return Err(Error::Invalid(format!(
            "\"{}\" is not an email address",
            input.email
        )));
    }
    if input.password.expose().chars().count() < MIN_PASSWORD_LEN {
        return Err(Error::Invalid(format!(
            "the password must be at least {MIN_PASSWORD_LEN} characters"
        )));
    }
    if input.first_name.trim().is_empty() {
        return Err(Error::Invalid("the first name is required".into()));
    }
    if input.platform_admin && !actor.is_platform_admin() {
        return Err(Error::Forbidden(
            "only a platform admin can create platform admins".into(),
        ));
    }
    let password = input.password.clone();
    let entropy = app.entropy.clone();
    // argon2id takes tens of milliseconds on purpose: keep it off the async workers.
    let password_hash = tokio::task::spawn_blocking(move || {
        crate::password::hash(entropy.as_ref(), password.expose())
    })
    .await
    .map_err(|e| Error::Internal(e.to_string()))?
    .map_err(|e| Error::Internal(e.to_string()))?;
    let new = NewMember {
        email,
        password_hash,
        first_name: input.first_name.trim().to_string(),
        last_name: input.last_name.trim().to_string(),
        headline: input.headline,
        picture_url: input.picture_url,
        locale: if input.locale.is_empty() {
            "en-US".into()
        } else {
            input.locale
        },
        email_verified: input.email_verified,
        platform_admin: input.platform_admin,
    };
    let id = random_id(app.entropy.as_ref(), 10);
    let now = app.now();
    let actor = actor.to_string();
    let member = app
        .store
        .write(move |c| {
            let m = members::create(c, &id, &new, now)?;
            audit::record(c, now, &actor, "member.create", &m.id, "")?;
            Ok(m)
        })
        .await?;
    Ok(member)
}

/// What deprovisioning a member ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Deprovisioned {
    /// False when the member was already in the state asked for (nothing changed).
    pub changed: bool,
    pub sessions_ended: u64,
    pub grants_revoked: u64,
}

/// Deprovisions (`active = false`) or reinstates a member. Deprovisioning ends every session
/// and revokes every grant with all its tokens, in the same transaction as the flag and its
/// audit event: once it commits, no node answers for the member's tokens again (nothing about
/// tokens is cached), and a crash can never leave a deactivated member with a live token.
/// Reinstating gives back no grant: the member signs in and consents again. `via` names the
/// source of the change for the audit log (`scim`, `oidc:<issuer>`, `cli`).
pub async fn set_active(
    app: &Service,
    actor: &Actor,
    member_id: &str,
    active: bool,
    via: &str,
) -> Result<Deprovisioned> {
    if !actor.is_platform_admin() {
        return Err(Error::Forbidden(
            "only a platform admin can deprovision members".into(),
        ));
    }
    let member = find(app, member_id).await?;
    let now = app.now();
    let (actor, via) = (actor.to_string(), via.to_string());
    Ok(app
        .store
        .write(move |c| set_active_in(c, &member.id, active, &actor, &via, now))
        .await?)
}

/// [`set_active`] inside a transaction the caller owns (SCIM changes the record and the flag in
/// one).
pub(crate) fn set_active_in(
    c: &mut dyn scopegate_store::Conn,
    member_id: &str,
    active: bool,
    actor: &str,
    via: &str,
    now: i64,
) -> scopegate_store::Result<Deprovisioned> {
    let mut out = Deprovisioned {
        changed: members::set_active(c, member_id, active, now)?,
        ..Deprovisioned::default()
    };
    if !active {
        // Even when already inactive: a session or grant that slipped in (it cannot, but a
        // deprovision is the moment to be sure) ends here.
        out.sessions_ended = members::end_sessions(c, member_id)?;
        for grant in scopegate_store::tokens::grants_of_member(c, member_id)? {
            if scopegate_store::tokens::revoke_grant(c, &grant.client_id, member_id, now)? {
                out.grants_revoked += 1;
            }
        }
    }
    if out.changed {
        let verb = if active {
            "member.reinstate"
        } else {
            "member.deprovision"
        };
        audit::record(
            c,
            now,
            actor,
            verb,
            member_id,
            &format!(
                "via {via}; {} sessions ended, {} grants revoked",
                out.sessions_ended, out.grants_revoked
            ),
        )?;
    }
    Ok(out)
}

/// A member by id or email.
pub async fn find(app: &Service, id_or_email: &str) -> Result<Member> {
    let key = id_or_email.to_string();
    app.store
        .read(move |c| members::find(c, &key))
        .await?
        .ok_or_else(|| Error::NotFound(format!("no member \"{id_or_email}\"")))
}

/// Every member.
pub async fn list(app: &Service) -> Result<Vec<Member>> {
    Ok(app.store.read(members::list).await?)
}

/// Creates an organization or ad account.
pub async fn create_resource(
    app: &Service,
    actor: &Actor,
    rt: ResourceType,
    name: &str,
) -> Result<Resource> {
    let name = name.trim().to_string();
    if name.is_empty() || name.len() > 200 {
        return Err(Error::Invalid(
            "the name must be 1 to 200 characters".into(),
        ));
    }
    let now = app.now();
    let actor = actor.to_string();
    Ok(app
        .store
        .write(move |c| {
            let r = members::create_resource(c, rt, &name, now)?;
            audit::record(
                c,
                now,
                &actor,
                &format!("{}.create", rt.as_str()),
                &r.urn(),
                &r.name,
            )?;
            Ok(r)
        })
        .await?)
}

/// Every organization or ad account.
pub async fn resources(app: &Service, rt: ResourceType) -> Result<Vec<Resource>> {
    Ok(app.store.read(move |c| members::resources(c, rt)).await?)
}

/// Grants (`on = true`) or revokes a member's role on a resource, checking the role exists.
pub async fn set_role(
    app: &Service,
    actor: &Actor,
    rt: ResourceType,
    resource_id: i64,
    member: &str,
    role: &str,
    on: bool,
) -> Result<bool> {
    if !actor.is_platform_admin() {
        return Err(Error::Forbidden(
            "only a platform admin can change roles".into(),
        ));
    }
    let role = role.trim().to_uppercase();
    let known = app.catalog.roles(rt);
    if !known.contains(&role) {
        return Err(Error::Invalid(format!(
            "unknown {} role \"{role}\"; known roles: {}",
            rt.as_str(),
            known.join(", ")
        )));
    }
    let member = find(app, member).await?;
    let exists = app
        .store
        .read(move |c| members::resource(c, rt, resource_id))
        .await?;
    if exists.is_none() {
        return Err(Error::NotFound(format!(
            "no {} with id {resource_id}",
            rt.as_str()
        )));
    }
    let a = RoleAssignment {
        resource_type: rt,
        resource_id,
        member_id: member.id.clone(),
        role,
        source: scopegate_core::model::MANUAL_ROLE_SOURCE.into(),
    };
    let now = app.now();
    let actor = actor.to_string();
    Ok(app
        .store
        .write(move |c| {
            let changed = if on {
                members::grant_role(c, &a, now)?
            } else {
                members::revoke_role(c, &a)?
            };
            if changed {
                let verb = if on { "role.grant" } else { "role.revoke" };
                let target = scopegate_core::model::urn(a.resource_type, a.resource_id);
                audit::record(
                    c,
                    now,
                    &actor,
                    verb,
                    &target,
                    &format!("{} {}", a.member_id, a.role),
                )?;
            }
            Ok(changed)
        })
        .await?)
}
