//! Operations shared by the CLI, the admin API and the pages: one implementation of each rule.

pub mod apps;
pub mod bootstrap;
pub mod keys;
pub mod members;
pub mod migrate;

use std::fmt;

/// Who is acting, for permission checks and the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// An operator at the command line (full rights over the store).
    Cli,
    /// A signed-in member (platform admin or not).
    Member { id: String, platform_admin: bool },
    /// An admin API key.
    ApiKey(String),
    /// scopegate itself (first start, demo data).
    System,
}

impl Actor {
    /// True for the operator, platform admins and admin API keys.
    pub fn is_platform_admin(&self) -> bool {
        match self {
            Actor::Cli | Actor::System | Actor::ApiKey(_) => true,
            Actor::Member { platform_admin, .. } => *platform_admin,
        }
    }
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actor::Cli => f.write_str("cli"),
            Actor::System => f.write_str("system"),
            Actor::ApiKey(name) => write!(f, "api-key:{name}"),
            Actor::Member { id, .. } => write!(f, "member:{id}"),
        }
    }
}
