//! Route tables: which permission allows which API call, on which resource, within which quota.
//!
//! One declarative TOML format describes scopegate's own sandbox API and any operator's API
//! behind a gateway (docs/routes.md). Loading validates against the catalog and reports every
//! problem with its line, like the catalog does.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::catalog::{Catalog, Problem, ResourceType};

/// The sandbox API's route table, built into the binary.
pub const SANDBOX_TOML: &str = include_str!("../../../catalogs/linkedin-routes.toml");

/// Where a route finds the resource it acts on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "from", content = "name")]
pub enum TargetSource {
    /// A `{name}` segment of the path.
    Path(String),
    /// A query parameter.
    Query(String),
    /// A top-level field of a JSON body.
    Body(String),
}

/// Daily quotas (reset at midnight UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quota {
    /// Calls per app per day on this route.
    pub app_daily: Option<i64>,
    /// Calls per member per app per day on this route.
    pub member_daily: Option<i64>,
}

/// The kind of resource a request targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetKind {
    Person,
    Organization,
    AdAccount,
    /// The request names no target.
    None,
}

impl TargetKind {
    /// The name used in route tables.
    pub fn as_str(self) -> &'static str {
        match self {
            TargetKind::Person => "person",
            TargetKind::Organization => "organization",
            TargetKind::AdAccount => "ad_account",
            TargetKind::None => "none",
        }
    }

    /// The kind of target a resource type is.
    pub fn of(rt: ResourceType) -> TargetKind {
        match rt {
            ResourceType::Organization => TargetKind::Organization,
            ResourceType::AdAccount => TargetKind::AdAccount,
        }
    }
}

/// Which kind of token a route accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenKindRule {
    /// 3-legged or 2-legged.
    #[default]
    Any,
    /// Only tokens that act for a member.
    Member,
    /// Only 2-legged application tokens.
    Application,
}

/// What a call reaches when its route names no single target but its permissions are
/// role-restricted (LinkedIn's `rw_ads`/`r_ads` on a finder, a batch get or a create of the
/// resource itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reach {
    /// The one target the route reads (the default; a role-restricted route must name one).
    #[default]
    Target,
    /// The resources the member holds the permission's roles on: the scope allows the call and
    /// the action shows only what a role allows (a finder, a batch get).
    HeldRoles,
    /// A resource the call creates, which the member then holds a role on.
    New,
}

/// One route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Route {
    /// A stable id: `METHOD path`.
    pub id: String,
    pub method: String,
    pub path: String,
    segments: Vec<Segment>,
    /// LinkedIn's resource name for the 403 message (`me`, `posts`, `adAccounts`…).
    pub resource: String,
    /// Any one of these permissions allows the call.
    pub permissions: Vec<String>,
    pub target: Option<TargetSource>,
    /// The kind of target this route is for, when one path serves several (as written).
    pub when: Option<TargetKind>,
    /// The kind of target the route acts on, resolved at load: `when`, or the resource type of
    /// its role-restricted permissions, or `none` for a route without a target. A request naming
    /// a target of another kind is refused, never routed elsewhere.
    pub kind: TargetKind,
    pub tokens: TokenKindRule,
    pub quota: Quota,
    /// What a route without a target reaches (see [`Reach`]).
    pub reach: Reach,
    /// Narrows the roles of the route's role-restricted permissions on this route: LinkedIn's
    /// ad-account data is edited by ACCOUNT_MANAGER and above only, though `rw_ads` has more roles.
    pub roles: Option<Vec<String>>,
    /// What scopegate's sandbox does when the call is allowed (ignored for operators' APIs).
    pub action: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
enum Segment {
    Literal(String),
    Param(String),
}

fn parse_segments(path: &str) -> Vec<Segment> {
    path.trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .map(
            |s| match s.strip_prefix('{').and_then(|r| r.strip_suffix('}')) {
                Some(name) => Segment::Param(name.to_string()),
                None => Segment::Literal(s.to_string()),
            },
        )
        .collect()
}

impl Route {
    /// Whether the route names one entity: its last path segment is a parameter (the Rest.li
    /// key). `/rest/adAccounts/{account}/adCampaigns` is a collection (of one account);
    /// `/rest/adAccounts/{account}/adCampaigns/{id}` an entity. What the Rest.li method of a
    /// call can be follows from it, wherever the call is checked.
    pub fn keyed(&self) -> bool {
        matches!(self.segments.last(), Some(Segment::Param(_)))
    }

    /// Matches a request path; returns the `{name}` parameters.
    pub fn matches(&self, method: &str, path: &str) -> Option<Vec<(String, String)>> {
        if !self.method.eq_ignore_ascii_case(method) {
            return None;
        }
        let parts: Vec<&str> = path
            .trim_matches('/')
            .split('/')
            .filter(|s| !s.is_empty())
            .collect();
        if parts.len() != self.segments.len() {
            return None;
        }
        let mut params = Vec::new();
        for (seg, part) in self.segments.iter().zip(parts) {
            match seg {
                Segment::Literal(l) if l == part => {}
                Segment::Literal(_) => return None,
                Segment::Param(name) => {
                    // A dot segment or an encoded slash is a different path once a backend
                    // normalizes it (RFC 3986 5.2.4): `/rest/posts/..` is `/rest`, not a post.
                    let v = percent_decode(part);
                    if v == "." || v == ".." || v.contains('/') || v.contains('\\') {
                        return None;
                    }
                    params.push((name.clone(), v))
                }
            }
        }
        Some(params)
    }
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// A validated route table.
#[derive(Debug, Clone, Serialize)]
pub struct RouteTable {
    pub name: String,
    /// The version shown in 403 messages when the request names none (`NO_VERSION`).
    pub default_version: String,
    pub routes: Vec<Route>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTable {
    api: RawApi,
    #[serde(default)]
    route: Vec<RawRoute>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApi {
    name: String,
    #[serde(default = "no_version")]
    default_version: String,
}

fn no_version() -> String {
    "NO_VERSION".into()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    method: Spanned<String>,
    path: Spanned<String>,
    resource: String,
    permissions: Vec<Spanned<String>>,
    target: Option<TargetSource>,
    when: Option<TargetKind>,
    #[serde(default)]
    tokens: TokenKindRule,
    #[serde(default)]
    quota: Quota,
    #[serde(default)]
    reach: Reach,
    roles: Option<Vec<Spanned<String>>>,
    action: Option<String>,
}

const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

impl RouteTable {
    /// Parses and validates a route table against a catalog, reporting every problem.
    pub fn from_toml(text: &str, catalog: &Catalog) -> Result<RouteTable, Vec<Problem>> {
        let line_of = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
        let raw: RawTable = toml::from_str(text).map_err(|e| {
            vec![Problem {
                line: e.span().map(|s| line_of(s.start)).unwrap_or(0),
                reason: e.message().trim().to_string(),
            }]
        })?;
        let mut problems = Vec::new();
        let mut seen = Seen::new();
        let mut routes = Vec::new();
        for r in raw.route {
            routes.push(check_route(r, catalog, &line_of, &mut seen, &mut problems));
        }
        if problems.is_empty() {
            Ok(RouteTable {
                name: raw.api.name,
                default_version: raw.api.default_version,
                routes,
            })
        } else {
            Err(problems)
        }
    }

    /// The routes a request matches (several when they differ by target kind), with the path
    /// parameters.
    pub fn candidates(&self, method: &str, path: &str) -> Vec<(&Route, Vec<(String, String)>)> {
        self.routes
            .iter()
            .filter_map(|r| r.matches(method, path).map(|p| (r, p)))
            .collect()
    }
}

/// The routes seen so far, by what they match: two that match the same requests would make the
/// decision ambiguous.
type Seen = HashSet<(String, Vec<String>, Option<TargetKind>)>;

/// Checks one route of the table (its problems go to `problems`) and builds it.
fn check_route(
    r: RawRoute,
    catalog: &Catalog,
    line_of: &dyn Fn(usize) -> usize,
    seen: &mut Seen,
    problems: &mut Vec<Problem>,
) -> Route {
    let method = r.method.get_ref().to_uppercase();
    if !METHODS.contains(&method.as_str()) {
        problems.push(Problem {
            line: line_of(r.method.span().start),
            reason: format!("unknown method \"{}\"", r.method.get_ref()),
        });
    }
    let path = r.path.get_ref().clone();
    if !path.starts_with('/') {
        problems.push(Problem {
            line: line_of(r.path.span().start),
            reason: format!("path \"{path}\" must start with /"),
        });
    }
    let segments = parse_segments(&path);
    let kind = resolve_kind(&r, catalog, &method, &path).unwrap_or_else(|KindProblem(reason)| {
        problems.push(Problem {
            line: line_of(r.path.span().start),
            reason,
        });
        TargetKind::None
    });
    // Two routes that match the same requests would make the decision ambiguous.
    let shape: Vec<String> = segments
        .iter()
        .map(|s| match s {
            Segment::Literal(l) => l.clone(),
            Segment::Param(_) => "{}".into(),
        })
        .collect();
    if !seen.insert((method.clone(), shape, Some(kind))) {
        problems.push(Problem {
            line: line_of(r.path.span().start),
            reason: format!("{method} {path} duplicates an earlier route"),
        });
    }
    if r.permissions.is_empty() {
        problems.push(Problem {
            line: line_of(r.path.span().start),
            reason: format!("{method} {path} names no permission"),
        });
    }
    check_permissions(&r, catalog, line_of, problems);
    check_roles(&r, catalog, line_of, problems);
    if let Some(TargetSource::Path(name)) = &r.target {
        if !segments.contains(&Segment::Param(name.clone())) {
            problems.push(Problem {
                line: line_of(r.path.span().start),
                reason: format!("target path parameter {{{name}}} is not in {path}"),
            });
        }
    }
    Route {
        id: format!("{method} {path}"),
        method,
        path,
        segments,
        resource: r.resource,
        permissions: r.permissions.iter().map(|p| p.get_ref().clone()).collect(),
        target: r.target,
        when: r.when,
        kind,
        tokens: r.tokens,
        quota: r.quota,
        reach: r.reach,
        roles: r
            .roles
            .as_ref()
            .map(|rs| rs.iter().map(|x| x.get_ref().clone()).collect()),
        action: r.action,
    }
}

/// Every permission a route names is in the catalog, and a role-restricted one has a target.
fn check_permissions(
    r: &RawRoute,
    catalog: &Catalog,
    line_of: &dyn Fn(usize) -> usize,
    problems: &mut Vec<Problem>,
) {
    for p in &r.permissions {
        match catalog.permission(p.get_ref()) {
            None => problems.push(Problem { line: line_of(p.span().start), reason: format!("unknown permission \"{}\" (not in the catalog)", p.get_ref()) }),
            Some(perm) if perm.role_restriction.is_some() && r.target.is_none() && r.reach == Reach::Target => problems.push(Problem {
                line: line_of(p.span().start),
                reason: format!("\"{}\" is restricted to {} roles, so the route needs a target naming the resource", p.get_ref(), perm.role_restriction.as_ref().map(|x| x.resource.as_str()).unwrap_or("")),
            }),
            Some(_) => {}
        }
    }
}

/// A route's `roles` narrow its role-restricted permissions (each is one of their roles), and a
/// route that reaches held roles or a new resource names no target.
fn check_roles(
    r: &RawRoute,
    catalog: &Catalog,
    line_of: &dyn Fn(usize) -> usize,
    problems: &mut Vec<Problem>,
) {
    if r.reach != Reach::Target && (r.target.is_some() || r.when.is_some()) {
        problems.push(Problem {
            line: line_of(r.path.span().start),
            reason: format!(
                "{} reaches held roles or a new resource, so it names no target and no when",
                r.path.get_ref()
            ),
        });
    }
    let Some(roles) = &r.roles else { return };
    let allowed: Vec<&String> = r
        .permissions
        .iter()
        .filter_map(|p| catalog.permission(p.get_ref())?.role_restriction.as_ref())
        .flat_map(|rr| rr.roles.iter())
        .collect();
    if allowed.is_empty() {
        problems.push(Problem {
            line: line_of(r.path.span().start),
            reason: format!(
                "{} names roles but no role-restricted permission",
                r.path.get_ref()
            ),
        });
    }
    for role in roles {
        if !allowed.is_empty() && !allowed.contains(&role.get_ref()) {
            problems.push(Problem {
                line: line_of(role.span().start),
                reason: format!(
                    "role \"{}\" is not a role of the route's permissions",
                    role.get_ref()
                ),
            });
        }
    }
}

/// The kind of target a route acts on (see [`Route::kind`]), or why the table cannot say.
/// Why the table cannot say which kind of target a route acts on (a problem of the table).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct KindProblem(String);

fn refuse<T>(reason: String) -> Result<T, KindProblem> {
    Err(KindProblem(reason))
}

fn resolve_kind(
    r: &RawRoute,
    catalog: &Catalog,
    method: &str,
    path: &str,
) -> Result<TargetKind, KindProblem> {
    let restricted: Vec<(&str, ResourceType)> = r
        .permissions
        .iter()
        .filter_map(|p| {
            let rr = catalog.permission(p.get_ref())?.role_restriction.as_ref()?;
            Some((p.get_ref().as_str(), rr.resource))
        })
        .collect();
    let kind = match (r.when, &r.target) {
        (Some(TargetKind::None), Some(_)) => {
            return refuse(format!("{method} {path} names a target but is for when = \"none\""))
        }
        (Some(TargetKind::None), None) | (None, None) => return Ok(TargetKind::None),
        (Some(k), None) => {
            return refuse(format!(
                "{method} {path} is for {} targets but names no target",
                k.as_str()
            ))
        }
        (Some(k), Some(_)) => k,
        (None, Some(_)) => match restricted.first() {
            Some((_, rt)) => TargetKind::of(*rt),
            None => {
                return refuse(format!(
                    "{method} {path} names a target: say which kind it is with when = \"person\" | \"organization\" | \"ad_account\""
                ))
            }
        },
    };
    // A role-restricted permission is checked on its own resource type: on a route for another
    // kind of target it could never allow the call, or worse, would be checked on the wrong kind.
    for (p, rt) in restricted {
        if TargetKind::of(rt) != kind {
            return refuse(format!(
                "\"{p}\" is restricted to {} roles, but {method} {path} acts on {} targets",
                rt.as_str(),
                kind.as_str()
            ));
        }
    }
    // Writing on an organization or an ad account acts for it: only a role on it allows that
    // (reference 9: "Restricted to organizations in which the authenticated member has one of
    // the following roles"). A permission without a role restriction would let any member post
    // as, or change, any organization.
    if method != "GET" && matches!(kind, TargetKind::Organization | TargetKind::AdAccount) {
        for p in &r.permissions {
            let restricted = catalog
                .permission(p.get_ref())
                .is_some_and(|x| x.role_restriction.is_some());
            if !restricted {
                return refuse(format!(
                    "\"{}\" is not role-restricted, so it cannot allow {method} {path}: writing on {} targets needs a role on them",
                    p.get_ref(),
                    kind.as_str()
                ));
            }
        }
    }
    Ok(kind)
}

/// A canonical LinkedIn id: decimal digits, no sign, no leading zero, no spaces, at least 1.
pub fn canonical_id(s: &str) -> Option<i64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || s.starts_with('0') {
        return None;
    }
    s.parse().ok()
}

/// Parses the URNs of the resources roles are held on, strictly: exactly
/// `urn:li:organization:{id}` or `urn:li:sponsoredAccount:{id}` with a canonical id. Another
/// case, an alias (`company`, `organizationBrand`), spaces or leading zeros are not the same
/// resource to scopegate, whatever a backend might make of them, so they match nothing.
pub fn parse_urn(urn: &str) -> Option<(ResourceType, i64)> {
    let rest = urn.strip_prefix("urn:li:")?;
    let (kind, id) = rest.split_once(':')?;
    let id = canonical_id(id)?;
    match kind {
        "organization" => Some((ResourceType::Organization, id)),
        "sponsoredAccount" => Some((ResourceType::AdAccount, id)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(route: &str) -> Result<RouteTable, Vec<Problem>> {
        let text = format!("[api]\nname = \"t\"\n\n[[route]]\n{route}");
        RouteTable::from_toml(&text, &Catalog::linkedin())
    }

    #[test]
    fn roles_narrow_only_the_roles_of_role_restricted_permissions() {
        let ok = table("method = \"POST\"\npath = \"/a/{id}\"\nresource = \"a\"\npermissions = [\"rw_ads\"]\nroles = [\"ACCOUNT_MANAGER\"]\ntarget = { from = \"path\", name = \"id\" }\n").unwrap();
        assert_eq!(
            ok.routes[0].roles,
            Some(vec!["ACCOUNT_MANAGER".to_string()])
        );
        let unknown = table("method = \"POST\"\npath = \"/a/{id}\"\nresource = \"a\"\npermissions = [\"rw_ads\"]\nroles = [\"VIEWER\"]\ntarget = { from = \"path\", name = \"id\" }\n").unwrap_err();
        assert!(unknown[0].reason.contains("VIEWER"), "{unknown:?}");
        let unrestricted = table("method = \"GET\"\npath = \"/a\"\nresource = \"a\"\npermissions = [\"profile\"]\nroles = [\"ACCOUNT_MANAGER\"]\n").unwrap_err();
        assert!(
            unrestricted[0].reason.contains("no role-restricted"),
            "{unrestricted:?}"
        );
    }

    #[test]
    fn a_route_reaching_held_roles_or_a_new_resource_names_no_target() {
        let ok = table("method = \"GET\"\npath = \"/a\"\nresource = \"a\"\npermissions = [\"r_ads\"]\nreach = \"held_roles\"\n").unwrap();
        assert_eq!(ok.routes[0].reach, Reach::HeldRoles);
        assert!(table(
            "method = \"GET\"\npath = \"/a\"\nresource = \"a\"\npermissions = [\"r_ads\"]\n"
        )
        .is_err());
        assert!(table("method = \"GET\"\npath = \"/a/{id}\"\nresource = \"a\"\npermissions = [\"r_ads\"]\nreach = \"new\"\ntarget = { from = \"path\", name = \"id\" }\n").is_err());
    }
}
