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
