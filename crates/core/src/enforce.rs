//! Decision 4: is this token allowed to do this? Token state, the token's scopes as they stand
//! today, the route's permissions, and for role-restricted permissions the member's role on the
//! resource the request names. Pure: the caller loads the token, the app's approved programs and
//! the member's roles, and turns a denial into LinkedIn's 401/403 body.

use serde::Serialize;
use time::Date;

use crate::catalog::{Catalog, ResourceType};
use crate::model::{RoleAssignment, TokenRecord, TokenState, UnixTime};
use crate::oauth::authorized_scopes;
use crate::portal::{effective_permissions, EffectivePermissions};
use crate::routes::{Route, TargetKind, TokenKindRule};
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
    /// The request's target cannot be read as one canonical target of the route's kind: it is
    /// missing, repeated, not one string, not a canonical URN, or of another kind. Never a
    /// fallback to another route or to "no target".
    TargetInvalid {
        problem: TargetProblem,
    },
    /// The request names another member's person URN: a member permission acts only as the
    /// member themself.
    OtherMember,
}

/// Why the target of a request cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetProblem {
    /// The route acts on a resource and the request names none (for a body target: no body, or
    /// no such field, which is what a gateway that does not forward the body sends).
    Missing,
    /// The parameter or JSON key appears more than once: a backend may read another one.
    Repeated,
    /// Not one string: an array, a number, an object, or a `List(…)` of several.
    NotOneValue,
    /// The body is not one JSON object.
    UnreadableBody,
    /// Not a canonical URN (`urn:li:organization:1`, exact case, no alias, spaces or zeros).
    NotCanonical,
    /// A target of a kind the route (and its siblings on the same path) does not act on.
    WrongKind,
    /// Two routes of the same path could both act on what the request names.
    Ambiguous,
}

impl TargetProblem {
    /// A sentence for error messages.
    pub fn describe(self) -> &'static str {
        match self {
            TargetProblem::Missing => "names no target (a body target needs the JSON body)",
            TargetProblem::Repeated => "names its target more than once",
            TargetProblem::NotOneValue => "names a target that is not one string",
            TargetProblem::UnreadableBody => "has a body that is not one JSON object",
            TargetProblem::NotCanonical => "names a target that is not a canonical URN",
            TargetProblem::WrongKind => "names a target of a kind this route does not act on",
            TargetProblem::Ambiguous => "names a target more than one route could act on",
        }
    }
}

/// An allowed call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Allowed {
    /// The permission that allowed it.
    pub permission: String,
    /// The scopes the token authorizes today.
    pub scopes: Vec<String>,
}

/// A token's own scopes that the app's approved products still grant. Deprecated permissions
/// are kept whatever their cut-off: they are the token's, and whether they still authorize is
/// [`effective_token_scopes`]'s question. This is the view introspection reports (a resource
/// server sees what the token holds); every decision reads [`effective_token_scopes`].
pub fn granted_token_scopes(
    catalog: &Catalog,
    e: &EffectivePermissions,
    own: &ScopeSet,
) -> ScopeSet {
    ScopeSet::from_names(
        own.iter()
            .filter(|p| {
                e.member.contains(*p)
                    || e.application.contains(*p)
                    || catalog
                        .permission(p)
                        .is_some_and(|x| x.deprecated.is_some())
            })
            .map(str::to_string),
    )
}

/// The scopes a token authorizes now: [`granted_token_scopes`] of those its deprecations allow
/// today, plus the auto-granted permissions of the app's approved programs (held through the
/// program, never requested).
pub fn effective_token_scopes(
    catalog: &Catalog,
    token: &TokenRecord,
    approved: &[String],
    today: Date,
) -> ScopeSet {
    let e = effective_permissions(catalog, approved);
    let mut s = granted_token_scopes(
        catalog,
        &e,
        &authorized_scopes(catalog, &token.scopes, today),
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
}

impl Target {
    /// The kind of target this is.
    pub fn kind(&self) -> TargetKind {
        match self {
            Target::Resource(rt, _) => TargetKind::of(*rt),
            Target::Person(_) => TargetKind::Person,
        }
    }
}

/// Parses a target value strictly: a canonical URN, or (`bare_id`, for a path segment of a route
/// acting on an organization or ad account) a canonical bare id.
pub fn parse_target(value: &str, kind: TargetKind, bare_id: bool) -> Result<Target, TargetProblem> {
    if let Some((rt, id)) = crate::routes::parse_urn(value) {
        return Ok(Target::Resource(rt, id));
    }
    if let Some(p) = value.strip_prefix("urn:li:person:") {
        // Person ids are base64url (pairwise subjects): anything else is not a person scopegate knows.
        if !p.is_empty()
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Ok(Target::Person(p.to_string()));
        }
        return Err(TargetProblem::NotCanonical);
    }
    let rt = match kind {
        TargetKind::Organization => Some(ResourceType::Organization),
        TargetKind::AdAccount => Some(ResourceType::AdAccount),
        TargetKind::Person | TargetKind::None => None,
    };
    match (bare_id, rt, crate::routes::canonical_id(value)) {
        (true, Some(rt), Some(id)) => Ok(Target::Resource(rt, id)),
        _ => Err(TargetProblem::NotCanonical),
    }
}

/// Reads one query parameter: absent, one value, or refused when it is repeated (a backend may
/// act on another occurrence than the one checked). LinkedIn's finders wrap lists,
/// `accounts=List(urn%3Ali%3AsponsoredAccount%3A1)`: a list of one is its element, a list of
/// several is refused (one call, one target).
pub fn query_field(query: Option<&str>, name: &str) -> Result<Option<String>, TargetProblem> {
    let Some(q) = query else { return Ok(None) };
    let mut values = url::form_urlencoded::parse(q.as_bytes())
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned());
    let Some(v) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(TargetProblem::Repeated);
    }
    match v.strip_prefix("List(").and_then(|r| r.strip_suffix(')')) {
        Some(inner) if inner.contains(',') => Err(TargetProblem::NotOneValue),
        Some(inner) => Ok(Some(inner.to_string())),
        None => Ok(Some(v)),
    }
}

/// Reads one top-level string field of a JSON object body. serde_json keeps the last of
/// duplicate keys while other parsers keep the first, so a key that appears twice is refused
/// (keys compare after JSON unescaping, as every parser sees them).
pub fn body_field(body: &[u8], name: &str) -> Result<Option<String>, TargetProblem> {
    use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, Visitor};
    struct Field<'a>(&'a str);
    impl<'de> Visitor<'de> for Field<'_> {
        type Value = Result<Option<String>, TargetProblem>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
            let mut found = None;
            let mut count = 0usize;
            while let Some(k) = m.next_key::<std::borrow::Cow<'de, str>>()? {
                if k == self.0 {
                    count += 1;
                    found = Some(m.next_value::<serde_json::Value>()?);
                } else {
                    m.next_value::<IgnoredAny>()?;
                }
            }
            Ok(match (count, found) {
                (0, _) => Ok(None),
                (1, Some(serde_json::Value::String(s))) => Ok(Some(s)),
                (1, _) => Err(TargetProblem::NotOneValue),
                _ => Err(TargetProblem::Repeated),
            })
        }
    }
    impl<'de> DeserializeSeed<'de> for Field<'_> {
        type Value = Result<Option<String>, TargetProblem>;
        fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_map(self)
        }
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let read = Field(name)
        .deserialize(&mut de)
        .map_err(|_| TargetProblem::UnreadableBody)?;
    de.end().map_err(|_| TargetProblem::UnreadableBody)?;
    read
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
    /// The target the request names (`Ok(None)`: none), or why it cannot be used.
    pub target: Result<Option<&'a Target>, TargetProblem>,
    pub now: UnixTime,
    pub today: Date,
}

/// The presented token, if it is live and of the kind the route takes.
fn usable_token<'a>(
    route: &Route,
    token: Option<&'a TokenRecord>,
    now: UnixTime,
) -> Result<&'a TokenRecord, Denial> {
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
    Ok(token)
}

/// The target the route acts on, if the request names the right one.
fn usable_target<'a>(
    route: &Route,
    target: Result<Option<&'a Target>, TargetProblem>,
    person: Option<&str>,
) -> Result<Option<&'a Target>, Denial> {
    // The target, before any permission is looked at: one canonical target of the route's kind,
    // or none for a route that acts on none. Anything else is refused, never guessed.
    let target = target.map_err(|problem| Denial::TargetInvalid { problem })?;
    match (route.kind, target) {
        (TargetKind::None, None) => {}
        (_, None) => {
            return Err(Denial::TargetInvalid {
                problem: TargetProblem::Missing,
            })
        }
        (k, Some(t)) if t.kind() != k => {
            return Err(Denial::TargetInvalid {
                problem: TargetProblem::WrongKind,
            })
        }
        _ => {}
    }
    // A member permission acts only as the member: on a person route the person is the caller.
    if let Some(Target::Person(id)) = target {
        if person != Some(id.as_str()) {
            return Err(Denial::OtherMember);
        }
    }
    Ok(target)
}

/// The roles of a role-restricted permission that allow this route (its table `roles` narrow
/// them).
fn route_roles(route: &Route, rr: &crate::catalog::RoleRestriction) -> Vec<String> {
    rr.roles
        .iter()
        .filter(|x| route.roles.as_ref().is_none_or(|n| n.contains(x)))
        .cloned()
        .collect()
}

/// Does the token's member hold one of the route's roles for `rr` on resource `id`?
fn holds_role(
    route: &Route,
    rr: &crate::catalog::RoleRestriction,
    token: &TokenRecord,
    roles: &[RoleAssignment],
    id: i64,
) -> bool {
    let allowed = route_roles(route, rr);
    token.member_id.as_deref().is_some_and(|m| {
        roles.iter().any(|a| {
            a.member_id == m
                && a.resource_type == rr.resource
                && a.resource_id == id
                && allowed.contains(&a.role)
        })
    })
}

/// Decides a call.
pub fn decide(catalog: &Catalog, route: &Route, f: &Facts) -> Result<Allowed, Denial> {
    let (token, approved, roles, person, target, now, today) = (
        f.token, f.approved, f.roles, f.person, f.target, f.now, f.today,
    );
    let token = usable_token(route, token, now)?;
    let target = usable_target(route, target, person)?;
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
            // Writing for an organization or ad account needs a role on it (the route table
            // refuses such a route at load; this holds for tables built any other way too).
            None if route.method != "GET"
                && matches!(route.kind, TargetKind::Organization | TargetKind::AdAccount) =>
            {
                continue
            }
            // The route's kind was checked above: the table says this permission acts on it.
            None => {
                return Ok(Allowed {
                    permission: p.clone(),
                    scopes: scopes.iter().map(str::to_string).collect(),
                });
            }
            // A finder, batch get or create of the resource names no one target: the scope
            // allows the call and the action shows or makes only what a role allows.
            Some(_) if target.is_none() && route.reach != crate::routes::Reach::Target => {
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
                let ok = on.is_some_and(|id| holds_role(route, rr, token, roles, id));
                if ok {
                    return Ok(Allowed {
                        permission: p.clone(),
                        scopes: scopes.iter().map(str::to_string).collect(),
                    });
                }
                role_denial.get_or_insert(Denial::RoleMissing {
                    permission: p.clone(),
                    resource: on.map(|id| crate::model::urn(rr.resource, id)),
                    roles: route_roles(route, rr),
                });
            }
        }
    }
    Err(role_denial.unwrap_or(Denial::ScopeMissing {
        needs: route.permissions.clone(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The two views of a token's scopes, pinned: introspection's keeps a deprecated scope past
    /// its cut-off and adds nothing; the decisions' drops it and adds the auto-granted ones.
    /// Both drop a scope whose product the app no longer has.
    #[test]
    fn introspection_and_decisions_see_a_tokens_scopes_as_documented() {
        let c = Catalog::linkedin();
        let approved = vec!["advertising-apis".to_string()];
        let own = ScopeSet::parse("rw_ads,w_share,r_sales_nav_profiles").unwrap();
        let e = effective_permissions(&c, &approved);
        assert_eq!(
            granted_token_scopes(&c, &e, &own),
            ScopeSet::parse("rw_ads,w_share").unwrap()
        );
        let token = TokenRecord {
            hash: crate::SecretHash::from_stored("h".into()),
            kind: crate::model::TokenKind::Access,
            client_id: "app".into(),
            grant_id: None,
            member_id: Some("m".into()),
            scopes: own,
            created_at: 0,
            authorized_at: 0,
            expires_at: i64::MAX,
            revoked_at: None,
            refresh_hash: None,
            code_hash: None,
            rotated_at: None,
            nonce: None,
            public_client: false,
            auth_time: 0,
        };
        let today = time::macros::date!(2026 - 12 - 04);
        let now = effective_token_scopes(&c, &token, &approved, today);
        assert!(
            now.contains("rw_ads") && now.contains("r_targeting"),
            "{now:?}"
        );
        assert!(
            !now.contains("w_share") && !now.contains("r_sales_nav_profiles"),
            "{now:?}"
        );
    }

    #[test]
    fn a_body_field_is_read_once_at_the_top_level_or_refused() {
        let read = |b: &str| body_field(b.as_bytes(), "author");
        assert_eq!(read(r#"{"author": "a"}"#), Ok(Some("a".into())));
        assert_eq!(read(r#"{"x": {"author": "a"}}"#), Ok(None));
        assert_eq!(
            read(r#"{"author": "a", "author": "b"}"#),
            Err(TargetProblem::Repeated)
        );
        assert_eq!(
            read(r#"{"\u0061uthor": "a", "author": "b"}"#),
            Err(TargetProblem::Repeated)
        );
        assert_eq!(
            read(r#"{"author": ["a"]}"#),
            Err(TargetProblem::NotOneValue)
        );
        assert_eq!(
            read(r#"[{"author": "a"}]"#),
            Err(TargetProblem::UnreadableBody)
        );
        assert_eq!(
            read(r#"{"author": "a"} {}"#),
            Err(TargetProblem::UnreadableBody)
        );
    }

    #[test]
    fn targets_parse_only_in_their_canonical_form() {
        let org = |v: &str| parse_target(v, TargetKind::Organization, false);
        assert_eq!(
            org("urn:li:organization:7"),
            Ok(Target::Resource(ResourceType::Organization, 7))
        );
        for v in [
            "urn:li:Organization:7",
            "urn:li:company:7",
            "urn:li:organizationBrand:7",
            "urn:li:organization: 7",
            "urn:li:organization:07",
            "urn:li:organization:+7",
            "urn:li:organization:0",
            "7",
            "urn:li:person:a b",
        ] {
            assert_eq!(org(v), Err(TargetProblem::NotCanonical), "{v}");
        }
        assert_eq!(
            parse_target("7", TargetKind::AdAccount, true),
            Ok(Target::Resource(ResourceType::AdAccount, 7))
        );
        assert_eq!(
            query_field(Some("a=1&a=2"), "a"),
            Err(TargetProblem::Repeated)
        );
        assert_eq!(
            query_field(Some("a=List(x,y)"), "a"),
            Err(TargetProblem::NotOneValue)
        );
        assert_eq!(query_field(Some("a=List(x)"), "a"), Ok(Some("x".into())));
    }
}
