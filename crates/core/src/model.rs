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

/// Capabilities the platform switches on per app; never self-service (LinkedIn enables them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Capability {
    /// The 2-legged client-credentials flow.
    ClientCredentials,
    /// Programmatic refresh tokens.
    RefreshTokens,
    /// The native PKCE flow without a client secret.
    NativePkce,
}

impl Capability {
    pub const ALL: [Capability; 3] = [
        Capability::ClientCredentials,
        Capability::RefreshTokens,
        Capability::NativePkce,
    ];
    /// `client-credentials`, `refresh-tokens`, `native-pkce`.
    pub fn as_str(self) -> &'static str {
        match self {
            Capability::ClientCredentials => "client-credentials",
            Capability::RefreshTokens => "refresh-tokens",
            Capability::NativePkce => "native-pkce",
        }
    }
    pub fn parse(s: &str) -> Option<Capability> {
        Capability::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// A developer's application (OAuth client).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct App {
    pub client_id: String,
    pub name: String,
    pub owner_id: String,
    pub organization_id: Option<i64>,
    pub privacy_policy_url: String,
    pub logo_url: String,
    pub client_credentials: bool,
    pub refresh_tokens: bool,
    pub native_pkce: bool,
    /// Default scopes (comma-separated in storage), used only under a default-scope extension.
    pub default_scopes: String,
    pub extension_until: Option<UnixTime>,
    pub created_at: UnixTime,
}

impl App {
    pub fn has(&self, c: Capability) -> bool {
        match c {
            Capability::ClientCredentials => self.client_credentials,
            Capability::RefreshTokens => self.refresh_tokens,
            Capability::NativePkce => self.native_pkce,
        }
    }
}

/// A live client secret, described without the secret itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SecretInfo {
    pub id: i64,
    /// The last four characters, so a developer can tell two secrets apart.
    pub hint: String,
    pub created_at: UnixTime,
}

/// Where an app's request for a program stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RequestStatus {
    Requested,
    Approved,
    Denied,
}

impl RequestStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RequestStatus::Requested => "requested",
            RequestStatus::Approved => "approved",
            RequestStatus::Denied => "denied",
        }
    }
    pub fn parse(s: &str) -> Option<RequestStatus> {
        match s {
            "requested" => Some(RequestStatus::Requested),
            "approved" => Some(RequestStatus::Approved),
            "denied" => Some(RequestStatus::Denied),
            _ => None,
        }
    }
}

/// An app asking for a program, and the platform's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccessRequest {
    pub client_id: String,
    pub program_id: String,
    pub status: RequestStatus,
    pub reason: Option<String>,
    pub requested_by: String,
    pub requested_at: UnixTime,
    pub decided_by: Option<String>,
    pub decided_at: Option<UnixTime>,
}
