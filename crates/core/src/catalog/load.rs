//! Reading a catalog file: its TOML sections as written, each section's own checks, the checks of
//! what one section says about another, and the validated [`Catalog`] built from them.
//!
//! Every check reports into one [`Problems`] and none stops the others, so `catalog check` lists
//! every mistake in one run; only TOML that does not parse at all ends the load at once.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::ops::Range;

use serde::Deserialize;
use time::Date;
use toml::Spanned;

use super::{
    is_scope_token, Access, Catalog, CatalogError, Deprecation, MigrationPolicy, Permission,
    PermissionKind, Platform, Problem, Program, ResourceType, RoleRestriction,
};

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

impl Catalog {
    /// Parses and validates a catalog, reporting every problem found.
    pub fn from_toml(text: &str) -> Result<Catalog, CatalogError> {
        let lines = Lines::new(text);
        let raw = parse(text, &lines)?;
        let mut problems = Problems::new(&lines);

        // Each section on its own, in the order of the file.
        let sunset = read_platform(&raw.platform, &mut problems);
        let roles = read_roles(&raw.roles, &mut problems);
        let program_index = read_programs(&raw.program, &mut problems);
        let permission_index = read_permissions(&raw.permission, &mut problems);

        // What one section says about another: the names it uses must exist, and programs must
        // not require each other in a circle.
        let granted_by = check_program_references(
            &raw.program,
            &program_index,
            &permission_index,
            &mut problems,
        );
        check_prerequisite_cycles(&raw.program, &program_index, &mut problems);
        for p in &raw.permission {
            check_permission_rules(p, &roles, &permission_index, &mut problems);
        }
        problems.finish()?;

        Ok(Catalog {
            platform: Platform {
                name: raw.platform.name,
                default_scope_sunset: sunset,
            },
            roles,
            programs: raw.program.iter().map(program).collect(),
            permissions: raw
                .permission
                .iter()
                .map(|p| permission(p, &granted_by))
                .collect(),
            permission_index,
            program_index,
        })
    }
}

/// The file as written; TOML that does not parse, or does not have the catalog's shape, is the
/// one problem reported (nothing after it can be checked).
fn parse(text: &str, lines: &Lines) -> Result<RawCatalog, CatalogError> {
    toml::from_str(text).map_err(|e| CatalogError {
        problems: vec![Problem {
            line: e.span().map(|s| lines.of(s.start)).unwrap_or(0),
            reason: e.message().trim().to_string(),
        }],
    })
}

/// The problems found so far, each placed on the line of its span.
struct Problems<'a> {
    lines: &'a Lines,
    found: Vec<Problem>,
}

impl<'a> Problems<'a> {
    fn new(lines: &'a Lines) -> Self {
        Problems {
            lines,
            found: Vec::new(),
        }
    }

    fn add(&mut self, span: Range<usize>, reason: String) {
        self.found.push(Problem {
            line: self.lines.of(span.start),
            reason,
        });
    }

    /// Every problem found, as one error; none is a valid catalog.
    fn finish(self) -> Result<(), CatalogError> {
        if self.found.is_empty() {
            Ok(())
        } else {
            Err(CatalogError {
                problems: self.found,
            })
        }
    }
}

/// `[platform]`: the default-scope sunset, when there is one and it is a plain date.
fn read_platform(raw: &RawPlatform, problems: &mut Problems) -> Option<Date> {
    let dt = raw.default_scope_sunset.as_ref()?;
    let date = to_date(dt.get_ref());
    if date.is_none() {
        problems.add(
            dt.span(),
            "default_scope_sunset must be a date like 2019-09-15".into(),
        );
    }
    date
}

/// `[roles]`: the role names of each known resource type, each named once.
fn read_roles(
    raw: &BTreeMap<String, Vec<Spanned<String>>>,
    problems: &mut Problems,
) -> BTreeMap<ResourceType, Vec<String>> {
    let mut roles = BTreeMap::new();
    for (key, names) in raw {
        let Some(rt) = ResourceType::parse(key) else {
            let line = names.first().map(|n| n.span()).unwrap_or(0..0);
            problems.add(
                line,
                format!("unknown resource type [roles].{key}: use organization or ad_account"),
            );
            continue;
        };
        let mut seen = BTreeSet::new();
        for n in names {
            if !seen.insert(n.get_ref().clone()) {
                problems.add(
                    n.span(),
                    format!("duplicate role {} in [roles].{key}", n.get_ref()),
                );
            }
        }
        roles.insert(rt, names.iter().map(|n| n.get_ref().clone()).collect());
    }
    roles
}

/// `[[program]]`: ids well-formed and unique, names unique. The index maps each id to its
/// program (the last one, where an id is repeated).
fn read_programs(programs: &[RawProgram], problems: &mut Problems) -> HashMap<String, usize> {
    let mut index = HashMap::new();
    let mut names = HashSet::new();
    for (i, p) in programs.iter().enumerate() {
        if !is_slug(p.id.get_ref()) {
            problems.add(
                p.id.span(),
                format!(
                    "program id \"{}\" must be lowercase letters, digits and dashes",
                    p.id.get_ref()
                ),
            );
        }
        if index.insert(p.id.get_ref().clone(), i).is_some() {
            problems.add(
                p.id.span(),
                format!("duplicate program id \"{}\"", p.id.get_ref()),
            );
        }
        if !names.insert(p.name.get_ref().clone()) {
            problems.add(
                p.name.span(),
                format!("duplicate program name \"{}\"", p.name.get_ref()),
            );
        }
    }
    index
}

/// `[[permission]]`: names valid scope tokens and unique. The index maps each name to its
/// permission (the last one, where a name is repeated).
fn read_permissions(
    permissions: &[RawPermission],
    problems: &mut Problems,
) -> HashMap<String, usize> {
    let mut index = HashMap::new();
    for (i, p) in permissions.iter().enumerate() {
        let name = p.name.get_ref();
        if !is_scope_token(name) {
            problems.add(
                p.name.span(),
                format!("permission name \"{name}\" is not a valid OAuth scope token"),
            );
        }
        if index.insert(name.clone(), i).is_some() {
            problems.add(p.name.span(), format!("duplicate permission \"{name}\""));
        }
    }
    index
}

/// The permissions and prerequisites each program names must exist, a permission listed once.
/// Returns the programs granting each permission, in file order.
fn check_program_references<'r>(
    programs: &'r [RawProgram],
    program_index: &HashMap<String, usize>,
    permission_index: &HashMap<String, usize>,
    problems: &mut Problems,
) -> HashMap<&'r str, Vec<String>> {
    let mut granted_by: HashMap<&str, Vec<String>> = HashMap::new();
    for p in programs {
        let mut seen = HashSet::new();
        for perm in &p.permissions {
            if !permission_index.contains_key(perm.get_ref()) {
                problems.add(
                    perm.span(),
                    format!(
                        "program \"{}\" grants unknown permission \"{}\"",
                        p.id.get_ref(),
                        perm.get_ref()
                    ),
                );
            } else if !seen.insert(perm.get_ref().as_str()) {
                problems.add(
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
                problems.add(
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
    granted_by
}

/// Each prerequisite cycle once, reported on its first program as `a -> b -> a`.
fn check_prerequisite_cycles(
    programs: &[RawProgram],
    index: &HashMap<String, usize>,
    problems: &mut Problems,
) {
    for cycle in prerequisite_cycles(programs, index) {
        let p = &programs[cycle[0]];
        let names: Vec<&str> = cycle
            .iter()
            .chain(std::iter::once(&cycle[0]))
            .map(|&i| programs[i].id.get_ref().as_str())
            .collect();
        problems.add(
            p.id.span(),
            format!("prerequisite cycle: {}", names.join(" -> ")),
        );
    }
}

/// One permission's own rules: its role restriction, its deprecation, its consent message.
fn check_permission_rules(
    p: &RawPermission,
    roles: &BTreeMap<ResourceType, Vec<String>>,
    permission_index: &HashMap<String, usize>,
    problems: &mut Problems,
) {
    let name = p.name.get_ref();
    if let Some(rr) = &p.role_restriction {
        check_role_restriction(name, p.kind, rr, roles, problems);
    }
    if let Some(dep) = &p.deprecated {
        check_deprecation(name, dep, permission_index, problems);
    }
    let needs_consent = p.kind == PermissionKind::Member && !p.auto_granted;
    if needs_consent && p.consent.as_deref().is_none_or(|c| c.trim().is_empty()) {
        problems.add(p.name.span(), format!("member permission \"{name}\" needs a consent message: members must be told what they grant"));
    }
    if p.kind == PermissionKind::Application && p.consent.is_some() {
        problems.add(p.name.span(), format!("application permission \"{name}\" has a consent message, but no member ever consents to it"));
    }
}

/// A role restriction is for member permissions only, and names at least one role, each one
/// of `[roles]`.
fn check_role_restriction(
    name: &str,
    kind: PermissionKind,
    rr: &Spanned<RawRoleRestriction>,
    roles: &BTreeMap<ResourceType, Vec<String>>,
    problems: &mut Problems,
) {
    if kind == PermissionKind::Application {
        problems.add(rr.span(), format!("application permission \"{name}\" cannot have a role restriction: 2-legged tokens act for no member"));
    }
    let known = roles.get(&rr.get_ref().resource);
    for role in &rr.get_ref().roles {
        if !known.is_some_and(|k| k.contains(role.get_ref())) {
            problems.add(
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
        problems.add(
            rr.span(),
            format!("permission \"{name}\" has a role restriction with no roles"),
        );
    }
}

/// A deprecation's replacements must exist and its cut-off be a plain date.
fn check_deprecation(
    name: &str,
    dep: &Spanned<RawDeprecation>,
    permission_index: &HashMap<String, usize>,
    problems: &mut Problems,
) {
    for r in &dep.get_ref().replacements {
        if !permission_index.contains_key(r.get_ref()) {
            problems.add(r.span(), format!("deprecated permission \"{name}\" names replacement \"{}\", which does not exist", r.get_ref()));
        }
    }
    if to_date(dep.get_ref().cutoff.get_ref()).is_none() {
        problems.add(
            dep.get_ref().cutoff.span(),
            format!("permission \"{name}\": cutoff must be a date like 2020-06-30"),
        );
    }
}

/// A checked program.
fn program(p: &RawProgram) -> Program {
    Program {
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
    }
}

/// A checked permission, with the programs that grant it.
fn permission(p: &RawPermission, granted_by: &HashMap<&str, Vec<String>>) -> Permission {
    Permission {
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
    }
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
