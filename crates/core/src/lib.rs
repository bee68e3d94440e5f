//! scopegate's pure core: the permission catalog and the decisions made over it.
//!
//! Nothing here does I/O: no clock, no randomness source, no database, no network. Callers pass
//! the time and an [`secret::Entropy`] in, so every rule is testable with plain values.

pub mod catalog;
pub mod enforce;
pub mod model;
pub mod oauth;
pub mod oidc_request;
pub mod portal;
pub mod redirect;
pub mod restli;
pub mod routes;
pub mod scope;
pub mod secret;
pub mod versions;

pub use catalog::{Access, Catalog, CatalogError, Permission, PermissionKind, Problem, Program};
pub use model::{ClientId, GrantId, MemberId};
pub use scope::ScopeSet;
pub use secret::{Entropy, HashKey, Secret, SecretHash};

#[cfg(test)]
mod catalog_tests;
