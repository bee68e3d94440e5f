//! Plain data records of scopegate's domain, shared by the decisions, the store and the server.

use serde::Serialize;

use crate::catalog::ResourceType;

/// Unix time in seconds.
pub type UnixTime = i64;

/// A person who signs in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Member {
    /// Stable opaque id (never the email).
    pub id: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub headline: String,
    pub picture_url: String,
    pub locale: String,
    pub email_verified: bool,
    pub platform_admin: bool,
    pub created_at: UnixTime,
}

impl Member {
    /// "First Last".
    pub fn full_name(&self) -> String {
        format!("{} {}", self.first_name, self.last_name)
            .trim()
            .to_string()
    }
}

/// The fields needed to create a member.
#[derive(Debug, Clone)]
pub struct NewMember {
    pub email: String,
    /// An argon2id PHC string, never the password.
    pub password_hash: String,
    pub first_name: String,
    pub last_name: String,
    pub headline: String,
    pub picture_url: String,
    pub locale: String,
    pub email_verified: bool,
    pub platform_admin: bool,
}

/// An organization (company page) or ad account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Resource {
    pub resource_type: ResourceType,
    pub id: i64,
    pub name: String,
    pub created_at: UnixTime,
}

impl Resource {
    /// LinkedIn's URN for the resource: `urn:li:organization:1`, `urn:li:sponsoredAccount:1`.
    pub fn urn(&self) -> String {
        urn(self.resource_type, self.id)
    }
}

/// LinkedIn's URN for a resource.
pub fn urn(resource_type: ResourceType, id: i64) -> String {
    match resource_type {
        ResourceType::Organization => format!("urn:li:organization:{id}"),
        ResourceType::AdAccount => format!("urn:li:sponsoredAccount:{id}"),
    }
}

/// A member's role on a resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RoleAssignment {
    pub resource_type: ResourceType,
    pub resource_id: i64,
    pub member_id: String,
    pub role: String,
}

/// One entry of the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEvent {
    pub id: i64,
    pub at: UnixTime,
    /// Who: a member id, `cli`, or `system`.
    pub actor: String,
    /// What: a dotted verb such as `app.create`.
    pub action: String,
    /// On what: a client_id, member id, program id…
    pub target: String,
    pub detail: String,
}
