//! The permission catalog: programs, permissions, roles, loaded from TOML.
//!
//! Loading validates the whole file and reports every problem with its line, so an operator fixing
//! a catalog sees all mistakes at once (`scopegate catalog check`).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};
use time::Date;
use toml::Spanned;

/// LinkedIn's catalog, built into the binary as the default.
pub const LINKEDIN_TOML: &str = include_str!("../../../catalogs/linkedin.toml");

/// How an app obtains a program.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    /// Self-service: approved the moment it is requested.
    Open,
    /// A platform admin must approve it.
    Approval,
    /// Cannot be requested.
    Closed,
}

/// Who a permission is granted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PermissionKind {
    /// 3-legged: needs the member's consent.
    Member,
    /// 2-legged: granted to the app itself (client credentials).
    Application,
}

/// The kind of resource a role restriction is checked on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResourceType {
    Organization,
    AdAccount,
}

impl ResourceType {
    /// The name used in URNs, the CLI and the store.
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceType::Organization => "organization",
            ResourceType::AdAccount => "ad_account",
        }
    }

    /// Parses `organization` or `ad_account`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "organization" => Some(Self::Organization),
            "ad_account" => Some(Self::AdAccount),
            _ => None,
        }
    }
}

/// The member roles on a resource type that allow a role-restricted permission.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RoleRestriction {
    pub resource: ResourceType,
    pub roles: Vec<String>,
}

/// What happens to an authorization request naming a deprecated permission.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MigrationPolicy {
    /// Replace the old permission by its replacements.
    Map,
    /// Refuse the request, naming the replacements.
    Reject,
}

/// A deprecation: the permissions to use instead, and when the old one stops working.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Deprecation {
    pub replacements: Vec<String>,
    pub cutoff: Date,
    /// A fixed policy; when absent, `map` before the cut-off and `reject` from it on.
    pub policy: Option<MigrationPolicy>,
    pub note: Option<String>,
}

impl Deprecation {
    /// The policy in force on `today`.
    pub fn policy_on(&self, today: Date) -> MigrationPolicy {
        self.policy.unwrap_or(if today < self.cutoff {
            MigrationPolicy::Map
        } else {
            MigrationPolicy::Reject
        })
    }
}

/// A permission: an OAuth scope string and the rules around it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Permission {
    pub name: String,
    pub kind: PermissionKind,
    pub description: String,
    pub consent: Option<String>,
    pub auto_granted: bool,
    pub role_restriction: Option<RoleRestriction>,
    pub deprecated: Option<Deprecation>,
    /// Ids of the programs that grant this permission (derived).
    pub programs: Vec<String>,
}

impl Permission {
    /// True for a deprecated permission that is gone, not merely changed: one whose replacements
    /// do not include itself, or that no program grants any more (r_ads_leadgen_automation).
    /// rw_dmp_segments, replaced by itself plus r_ads and still granted by Audiences, is changed.
    pub fn retired(&self) -> bool {
        self.deprecated
            .as_ref()
            .is_some_and(|d| !d.replacements.contains(&self.name) || self.programs.is_empty())
    }
}

/// A product or partner program.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Program {
    pub id: String,
    pub name: String,
    pub area: String,
    pub access: Access,
    pub description: String,
    /// The app must already be approved for at least one of these programs.
    pub prerequisites: Vec<String>,
    pub permissions: Vec<String>,
}

/// Platform-wide settings of a catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Platform {
    pub name: String,
    /// After this date an authorization request without `scope` is refused (seed 002).
    pub default_scope_sunset: Option<Date>,
}

/// A validated catalog.
#[derive(Debug, Clone, Serialize)]
pub struct Catalog {
    pub platform: Platform,
    pub roles: BTreeMap<ResourceType, Vec<String>>,
    pub programs: Vec<Program>,
    pub permissions: Vec<Permission>,
    #[serde(skip)]
    permission_index: HashMap<String, usize>,
    #[serde(skip)]
    program_index: HashMap<String, usize>,
}

/// One mistake in a catalog file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// 1-based line; 0 when the problem has no single place.
    pub line: usize,
    pub reason: String,
}

/// Every mistake found in a catalog file.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the catalog has {} problem(s): {}", .problems.len(), first_reason(.problems))]
pub struct CatalogError {
    pub problems: Vec<Problem>,
}

fn first_reason(problems: &[Problem]) -> String {
    problems
        .first()
        .map(|p| format!("line {}: {}", p.line, p.reason))
        .unwrap_or_default()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCatalog {
    platform: RawPlatform,
    #[serde(default)]
    roles: BTreeMap<String, Vec<Spanned<String>>>,
    #[serde(default)]
    program: Vec<RawProgram>,
    #[serde(default)]
    permission: Vec<RawPermission>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlatform {
    name: String,
    default_scope_sunset: Option<Spanned<toml::value::Datetime>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProgram {
    id: Spanned<String>,
    name: Spanned<String>,
    area: String,
    access: Access,
    #[serde(default)]
    description: String,
    #[serde(default)]
    prerequisites: Vec<Spanned<String>>,
    #[serde(default)]
    permissions: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPermission {
    name: Spanned<String>,
    kind: PermissionKind,
    #[serde(default)]
    description: String,
    consent: Option<String>,
    #[serde(default)]
    auto_granted: bool,
    role_restriction: Option<Spanned<RawRoleRestriction>>,
    deprecated: Option<Spanned<RawDeprecation>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoleRestriction {
    resource: ResourceType,
    roles: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDeprecation {
    replacements: Vec<Spanned<String>>,
    cutoff: Spanned<toml::value::Datetime>,
    policy: Option<MigrationPolicy>,
    note: Option<String>,
}

/// Maps byte offsets to 1-based line numbers.
struct Lines(Vec<usize>);

impl Lines {
    fn new(text: &str) -> Self {
        Lines(
            std::iter::once(0)
                .chain(text.match_indices('\n').map(|(i, _)| i + 1))
                .collect(),
        )
    }
    fn of(&self, offset: usize) -> usize {
        self.0.partition_point(|&start| start <= offset)
    }
}

fn to_date(dt: &toml::value::Datetime) -> Option<Date> {
    let d = dt.date?;
    if dt.time.is_some() || dt.offset.is_some() {
        return None;
    }
    let month = time::Month::try_from(d.month).ok()?;
    Date::from_calendar_date(i32::from(d.year), month, d.day).ok()
}

fn is_slug(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// A scope string must be a non-empty run of RFC 6749 scope-token characters other than `,`
/// (scopegate accepts commas as a delimiter, as LinkedIn does).
pub fn is_scope_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
        && !s.contains(',')
}

impl Catalog {
    /// LinkedIn's catalog, built into the binary.
    pub fn linkedin() -> Catalog {
        // The embedded catalog is checked by this crate's tests; failing here would be a build defect.
        #[allow(clippy::expect_used)]
        Catalog::from_toml(LINKEDIN_TOML).expect("the embedded LinkedIn catalog is valid")
    }

    /// Parses and validates a catalog, reporting every problem found.
    pub fn from_toml(text: &str) -> Result<Catalog, CatalogError> {
        let lines = Lines::new(text);
        let raw: RawCatalog = toml::from_str(text).map_err(|e| CatalogError {
            problems: vec![Problem {
                line: e.span().map(|s| lines.of(s.start)).unwrap_or(0),
                reason: e.message().trim().to_string(),
            }],
        })?;
        let mut problems = Vec::new();
        let mut problem = |span: std::ops::Range<usize>, reason: String| {
            problems.push(Problem {
                line: lines.of(span.start),
                reason,
            })
        };

        let sunset = match &raw.platform.default_scope_sunset {
            Some(dt) => match to_date(dt.get_ref()) {
                Some(d) => Some(d),
                None => {
                    problem(
                        dt.span(),
                        "default_scope_sunset must be a date like 2019-09-15".into(),
                    );
                    None
                }
            },
            None => None,
        };

        let mut roles: BTreeMap<ResourceType, Vec<String>> = BTreeMap::new();
        for (key, names) in &raw.roles {
            let Some(rt) = ResourceType::parse(key) else {
                let line = names.first().map(|n| n.span()).unwrap_or(0..0);
                problem(
                    line,
                    format!("unknown resource type [roles].{key}: use organization or ad_account"),
                );
                continue;
            };
            let mut seen = BTreeSet::new();
            for n in names {
                if !seen.insert(n.get_ref().clone()) {
                    problem(
                        n.span(),
                        format!("duplicate role {} in [roles].{key}", n.get_ref()),
                    );
                }
            }
            roles.insert(rt, names.iter().map(|n| n.get_ref().clone()).collect());
        }

        // Programs: ids and names unique, well-formed.
        let mut program_index = HashMap::new();
        let mut program_names = HashSet::new();
        for (i, p) in raw.program.iter().enumerate() {
            if !is_slug(p.id.get_ref()) {
                problem(
                    p.id.span(),
                    format!(
                        "program id \"{}\" must be lowercase letters, digits and dashes",
                        p.id.get_ref()
                    ),
                );
            }
            if program_index.insert(p.id.get_ref().clone(), i).is_some() {
                problem(
                    p.id.span(),
                    format!("duplicate program id \"{}\"", p.id.get_ref()),
                );
            }
            if !program_names.insert(p.name.get_ref().clone()) {
                problem(
                    p.name.span(),
                    format!("duplicate program name \"{}\"", p.name.get_ref()),
                );
            }
        }

        // Permissions: names unique, well-formed.
        let mut permission_index = HashMap::new();
        for (i, p) in raw.permission.iter().enumerate() {
            let name = p.name.get_ref();
            if !is_scope_token(name) {
                problem(
                    p.name.span(),
                    format!("permission name \"{name}\" is not a valid OAuth scope token"),
                );
            }
            if permission_index.insert(name.clone(), i).is_some() {
                problem(p.name.span(), format!("duplicate permission \"{name}\""));
            }
        }

        // References from programs.
        let mut granted_by: HashMap<&str, Vec<String>> = HashMap::new();
        for p in &raw.program {
            let mut seen = HashSet::new();
            for perm in &p.permissions {
                if !permission_index.contains_key(perm.get_ref()) {
                    problem(
                        perm.span(),
                        format!(
                            "program \"{}\" grants unknown permission \"{}\"",
                            p.id.get_ref(),
                            perm.get_ref()
                        ),
                    );
                } else if !seen.insert(perm.get_ref().as_str()) {
                    problem(
                        perm.span(),
                        format!(
                            "program \"{}\" lists permission \"{}\" twice",
                            p.id.get_ref(),
                            perm.get_ref()
                        ),
                    );
                } else {
                    granted_by
                        .entry(perm.get_ref().as_str())
                        .or_default()
                        .push(p.id.get_ref().clone());
                }
            }
            for pre in &p.prerequisites {
                if !program_index.contains_key(pre.get_ref()) {
                    problem(
                        pre.span(),
                        format!(
                            "program \"{}\" has unknown prerequisite program \"{}\"",
                            p.id.get_ref(),
                            pre.get_ref()
                        ),
                    );
                }
            }
        }
        for cycle in prerequisite_cycles(&raw.program, &program_index) {
            let p = &raw.program[cycle[0]];
            let names: Vec<&str> = cycle
                .iter()
                .chain(std::iter::once(&cycle[0]))
                .map(|&i| raw.program[i].id.get_ref().as_str())
                .collect();
            problem(
                p.id.span(),
                format!("prerequisite cycle: {}", names.join(" -> ")),
            );
        }

        // Per-permission rules.
        for p in &raw.permission {
            let name = p.name.get_ref();
            if let Some(rr) = &p.role_restriction {
                if p.kind == PermissionKind::Application {
                    problem(rr.span(), format!("application permission \"{name}\" cannot have a role restriction: 2-legged tokens act for no member"));
                }
                let known = roles.get(&rr.get_ref().resource);
                for role in &rr.get_ref().roles {
                    if !known.is_some_and(|k| k.contains(role.get_ref())) {
                        problem(
                            role.span(),
                            format!(
                                "permission \"{name}\" names unknown {} role \"{}\" (not in [roles])",
                                rr.get_ref().resource.as_str(),
                                role.get_ref()
                            ),
                        );
                    }
                }
                if rr.get_ref().roles.is_empty() {
                    problem(
                        rr.span(),
                        format!("permission \"{name}\" has a role restriction with no roles"),
                    );
                }
            }
            if let Some(dep) = &p.deprecated {
                for r in &dep.get_ref().replacements {
                    if !permission_index.contains_key(r.get_ref()) {
                        problem(r.span(), format!("deprecated permission \"{name}\" names replacement \"{}\", which does not exist", r.get_ref()));
                    }
                }
                if to_date(dep.get_ref().cutoff.get_ref()).is_none() {
                    problem(
                        dep.get_ref().cutoff.span(),
                        format!("permission \"{name}\": cutoff must be a date like 2020-06-30"),
                    );
                }
            }
            let needs_consent = p.kind == PermissionKind::Member && !p.auto_granted;
            if needs_consent && p.consent.as_deref().is_none_or(|c| c.trim().is_empty()) {
                problem(p.name.span(), format!("member permission \"{name}\" needs a consent message: members must be told what they grant"));
            }
            if p.kind == PermissionKind::Application && p.consent.is_some() {
                problem(p.name.span(), format!("application permission \"{name}\" has a consent message, but no member ever consents to it"));
            }
        }

        if !problems.is_empty() {
            return Err(CatalogError { problems });
        }

        let programs = raw
            .program
            .iter()
            .map(|p| Program {
                id: p.id.get_ref().clone(),
                name: p.name.get_ref().clone(),
                area: p.area.clone(),
                access: p.access,
                description: p.description.clone(),
                prerequisites: p
                    .prerequisites
                    .iter()
                    .map(|s| s.get_ref().clone())
                    .collect(),
                permissions: p.permissions.iter().map(|s| s.get_ref().clone()).collect(),
            })
            .collect();
        let permissions = raw
            .permission
            .iter()
            .map(|p| Permission {
                name: p.name.get_ref().clone(),
                kind: p.kind,
                description: p.description.clone(),
                consent: p.consent.clone(),
                auto_granted: p.auto_granted,
                role_restriction: p.role_restriction.as_ref().map(|r| RoleRestriction {
                    resource: r.get_ref().resource,
                    roles: r
                        .get_ref()
                        .roles
                        .iter()
                        .map(|s| s.get_ref().clone())
                        .collect(),
                }),
                deprecated: p.deprecated.as_ref().and_then(|d| {
                    let d = d.get_ref();
                    Some(Deprecation {
                        replacements: d.replacements.iter().map(|s| s.get_ref().clone()).collect(),
                        cutoff: to_date(d.cutoff.get_ref())?,
                        policy: d.policy,
                        note: d.note.clone(),
                    })
                }),
                programs: granted_by
                    .get(p.name.get_ref().as_str())
                    .cloned()
                    .unwrap_or_default(),
            })
            .collect();
        Ok(Catalog {
            platform: Platform {
                name: raw.platform.name,
                default_scope_sunset: sunset,
            },
            roles,
            programs,
            permissions,
            permission_index,
            program_index,
        })
    }

    /// The permission with this scope name.
    pub fn permission(&self, name: &str) -> Option<&Permission> {
        self.permission_index
            .get(name)
            .map(|&i| &self.permissions[i])
    }

    /// The program with this id, or failing that, this exact name.
    pub fn program(&self, id_or_name: &str) -> Option<&Program> {
        self.program_index
            .get(id_or_name)
            .map(|&i| &self.programs[i])
            .or_else(|| self.programs.iter().find(|p| p.name == id_or_name))
    }

    /// The roles known for a resource type.
    pub fn roles(&self, resource: ResourceType) -> &[String] {
        self.roles.get(&resource).map(Vec::as_slice).unwrap_or(&[])
    }
}

use std::collections::HashSet;

/// Finds each prerequisite cycle once (as the list of program indexes along it).
fn prerequisite_cycles(programs: &[RawProgram], index: &HashMap<String, usize>) -> Vec<Vec<usize>> {
    // Colours for an iterative depth-first search: 0 unvisited, 1 on the stack, 2 done.
    let mut colour = vec![0u8; programs.len()];
    let mut cycles = Vec::new();
    for start in 0..programs.len() {
        if colour[start] != 0 {
            continue;
        }
        let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
        colour[start] = 1;
        while let Some(&mut (node, ref mut next)) = stack.last_mut() {
            let edges = &programs[node].prerequisites;
            if *next < edges.len() {
                let target = index.get(edges[*next].get_ref()).copied();
                *next += 1;
                match target {
                    Some(t) if colour[t] == 1 => {
                        let from = stack.iter().position(|&(n, _)| n == t).unwrap_or(0);
                        cycles.push(stack[from..].iter().map(|&(n, _)| n).collect());
                    }
                    Some(t) if colour[t] == 0 => {
                        colour[t] = 1;
                        stack.push((t, 0));
                    }
                    _ => {}
                }
            } else {
                colour[node] = 2;
                stack.pop();
            }
        }
    }
    cycles
}
