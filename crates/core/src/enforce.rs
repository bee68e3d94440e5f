//! Decision 4: is this token allowed to do this? Token state, the token's scopes as they stand
//! today, the route's permissions, and for role-restricted permissions the member's role on the
//! resource the request names. Pure: the caller loads the token, the app's approved programs and
//! the member's roles, and turns a denial into LinkedIn's 401/403 body.

use serde::Serialize;
use time::Date;

use crate::catalog::{Catalog, ResourceType};
use crate::model::{RoleAssignment, TokenRecord, TokenState, UnixTime};
use crate::oauth::authorized_scopes;
use crate::portal::effective_permissions;
use crate::routes::{Route, TokenKindRule};
use crate::scope::ScopeSet;

/// Why a call is refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Denial {
    /// No token was presented.
    NoToken,
    /// The token is unknown (or not an access token).
    InvalidToken,
    ExpiredToken,
    RevokedToken,
    /// The route needs a member token and got an application one, or the reverse.
    WrongTokenKind,
    /// The token holds none of the route's permissions.
    ScopeMissing {
        needs: Vec<String>,
    },
    /// The token holds a role-restricted permission, but the member lacks an allowed role on
    /// the resource (or the request names no resource of the right type).
    RoleMissing {
        permission: String,
        resource: Option<String>,
        roles: Vec<String>,
    },
    /// A daily quota is spent.
    QuotaExceeded,
}

/// An allowed call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Allowed {
    /// The permission that allowed it.
    pub permission: String,
    /// The scopes the token authorizes today.
    pub scopes: Vec<String>,
}

/// The scopes a token authorizes now: its own scopes, narrowed to what the app's approved
/// products still grant and to deprecations not yet past their cut-off, plus the auto-granted
/// permissions of the app's approved programs (held through the program, never requested).
pub fn effective_token_scopes(
    catalog: &Catalog,
    token: &TokenRecord,
    approved: &[String],
    today: Date,
) -> ScopeSet {
    let e = effective_permissions(catalog, approved);
    let own = ScopeSet::parse(&token.scopes).unwrap_or_default();
    let mut s = ScopeSet::from_names(
        authorized_scopes(catalog, &own, today)
            .iter()
            .filter(|p| {
                e.member.contains(*p)
                    || e.application.contains(*p)
                    || catalog
                        .permission(p)
                        .is_some_and(|x| x.deprecated.is_some())
            })
            .map(str::to_string),
    );
    // Auto-granted permissions travel with the program, for tokens of the matching kind.
    for p in &e.auto_granted {
        if token.member_id.is_some() {
            s.insert(p.as_str());
        }
    }
    s
}

/// What the request names as its target: an organization, an ad account, or a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Resource(ResourceType, i64),
    /// `urn:li:person:{id}`: the caller may act only as itself.
    Person(String),
    /// Something else (or unparseable): no role can hold on it.
    Other(String),
}

/// Parses a target value (a URN, or a bare id for a route whose resource type is known).
pub fn parse_target(value: &str, expect: Option<ResourceType>) -> Target {
    if let Some((rt, id)) = crate::routes::parse_urn(value) {
        return Target::Resource(rt, id);
    }
    if let Some(p) = value.strip_prefix("urn:li:person:") {
        return Target::Person(p.to_string());
    }
    match (expect, value.parse::<i64>()) {
        (Some(rt), Ok(id)) => Target::Resource(rt, id),
        _ => Target::Other(value.to_string()),
    }
}

/// What a decision looks at, loaded by the caller.
pub struct Facts<'a> {
    pub token: Option<&'a TokenRecord>,
    /// Programs approved for the token's app.
    pub approved: &'a [String],
    /// The member's roles.
    pub roles: &'a [RoleAssignment],
    /// The member's person id as the app sees it (`urn:li:person:{id}`).
    pub person: Option<&'a str>,
    pub target: Option<&'a Target>,
    pub now: UnixTime,
    pub today: Date,
}

/// Decides a call.
pub fn decide(catalog: &Catalog, route: &Route, f: &Facts) -> Result<Allowed, Denial> {
    let (token, approved, roles, person, target, now, today) = (
        f.token, f.approved, f.roles, f.person, f.target, f.now, f.today,
    );
    let token = token.ok_or(Denial::InvalidToken)?;
    match token.state(now) {
        TokenState::Revoked => return Err(Denial::RevokedToken),
        TokenState::Expired => return Err(Denial::ExpiredToken),
        TokenState::Active => {}
    }
    match (route.tokens, token.member_id.is_some()) {
        (TokenKindRule::Member, false) | (TokenKindRule::Application, true) => {
            return Err(Denial::WrongTokenKind)
        }
        _ => {}
    }
    let scopes = effective_token_scopes(catalog, token, approved, today);
    let held: Vec<&String> = route
        .permissions
        .iter()
        .filter(|p| scopes.contains(p))
        .collect();
    if held.is_empty() {
        return Err(Denial::ScopeMissing {
            needs: route.permissions.clone(),
        });
    }
    let mut role_denial = None;
    for p in held {
        let Some(perm) = catalog.permission(p) else {
            continue;
        };
        match &perm.role_restriction {
            None => {
                // A member permission that names a person acts only as that member.
                if let (Some(Target::Person(id)), Some(me)) = (target, person) {
                    if id != me {
                        continue;
                    }
                }
                return Ok(Allowed {
                    permission: p.clone(),
                    scopes: scopes.iter().map(str::to_string).collect(),
                });
            }
            Some(rr) => {
                let on = match target {
                    Some(Target::Resource(rt, id)) if *rt == rr.resource => Some(*id),
                    _ => None,
                };
                let ok = on.is_some_and(|id| {
                    token.member_id.as_deref().is_some_and(|m| {
                        roles.iter().any(|a| {
                            a.member_id == m
                                && a.resource_type == rr.resource
                                && a.resource_id == id
                                && rr.roles.contains(&a.role)
                        })
                    })
                });
                if ok {
                    return Ok(Allowed {
                        permission: p.clone(),
                        scopes: scopes.iter().map(str::to_string).collect(),
                    });
                }
                role_denial.get_or_insert(Denial::RoleMissing {
                    permission: p.clone(),
                    resource: on.map(|id| crate::model::urn(rr.resource, id)),
                    roles: rr.roles.clone(),
                });
            }
        }
    }
    Err(role_denial.unwrap_or(Denial::ScopeMissing {
        needs: route.permissions.clone(),
    }))
}
