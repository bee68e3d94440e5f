//! The permission catalog: programs, permissions, roles, loaded from TOML.
//!
//! Loading validates the whole file and reports every problem with its line, so an operator fixing
//! a catalog sees all mistakes at once (`scopegate catalog check`). This module is the validated
//! model; `load` reads the file into it (`Catalog::from_toml`).

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use time::Date;

mod load;

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
