//! Plain data records of scopegate's domain, shared by the decisions, the store and the server.

use serde::Serialize;

use crate::catalog::ResourceType;
use crate::scope::ScopeSet;
use crate::secret::SecretHash;

/// Unix time in seconds.
pub type UnixTime = i64;

/// Declares a text id newtype whose conversions make moving callers off `String` cheap: it
/// derefs to `str`, compares with strings and serializes as the bare string.
macro_rules! text_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Wraps an id (read from the store or the wire).
            pub fn new(id: impl Into<String>) -> Self {
                $name(id.into())
            }
            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
            /// The id as an owned string.
            pub fn into_string(self) -> String {
                self.0
            }
        }
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }
        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }
        impl From<String> for $name {
            fn from(s: String) -> Self {
                $name(s)
            }
        }
        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                $name(s.to_string())
            }
        }
        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }
        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }
        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }
        impl PartialEq<String> for $name {
            fn eq(&self, other: &String) -> bool {
                &self.0 == other
            }
        }
        impl PartialEq<$name> for str {
            fn eq(&self, other: &$name) -> bool {
                self == other.0
            }
        }
        impl PartialEq<$name> for &str {
            fn eq(&self, other: &$name) -> bool {
                *self == other.0
            }
        }
        impl PartialEq<$name> for String {
            fn eq(&self, other: &$name) -> bool {
                *self == other.0
            }
        }
    };
}

text_id!(
    /// An app's OAuth `client_id`.
    ClientId
);
text_id!(
    /// A member's stable opaque id (never the email).
    MemberId
);

/// The id of a grant (what a member consented to for one app).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct GrantId(i64);

impl GrantId {
    /// Wraps a grant id read from the store.
    pub fn new(id: i64) -> Self {
        GrantId(id)
    }
    /// The stored integer.
    pub fn get(self) -> i64 {
        self.0
    }
}

impl std::fmt::Display for GrantId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}
impl From<i64> for GrantId {
    fn from(id: i64) -> Self {
        GrantId(id)
    }
}
impl From<GrantId> for i64 {
    fn from(id: GrantId) -> i64 {
        id.0
    }
}
impl PartialEq<i64> for GrantId {
    fn eq(&self, other: &i64) -> bool {
        self.0 == *other
    }
}

/// A person who signs in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Member {
    /// Stable opaque id (never the email).
    pub id: MemberId,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub headline: String,
    pub picture_url: String,
    pub locale: String,
    pub email_verified: bool,
    pub platform_admin: bool,
    pub created_at: UnixTime,
    /// False once deprovisioned (SCIM `active=false`, or disabled upstream): the member cannot
    /// sign in, and deprovisioning ended their sessions and revoked their grants.
    pub active: bool,
    /// The id the provisioning system knows the member by (SCIM `externalId`).
    pub external_id: Option<String>,
    /// Bumped by every change to the member's record: the SCIM ETag.
    pub version: i64,
    pub updated_at: UnixTime,
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
    pub member_id: MemberId,
    pub role: String,
    /// Who owns this assignment: [`MANUAL_ROLE_SOURCE`] for an operator's hand, or the name of
    /// the source that keeps it in sync (`oidc:<issuer>`, `scim`, an import's `--source`).
    pub source: String,
}

/// The source of roles granted by hand; no sync ever replaces them.
pub const MANUAL_ROLE_SOURCE: &str = "manual";

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

/// The capabilities switched on for one app: a set, so a new capability is one more variant,
/// not one more field every constructor must remember.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Capabilities(u8);

impl Capabilities {
    fn bit(c: Capability) -> u8 {
        match c {
            Capability::ClientCredentials => 1,
            Capability::RefreshTokens => 2,
            Capability::NativePkce => 4,
        }
    }
    pub fn has(self, c: Capability) -> bool {
        self.0 & Capabilities::bit(c) != 0
    }
    /// This set with `c` switched on or off.
    pub fn with(self, c: Capability, on: bool) -> Capabilities {
        match on {
            true => Capabilities(self.0 | Capabilities::bit(c)),
            false => Capabilities(self.0 & !Capabilities::bit(c)),
        }
    }
}

/// Shown as one boolean per capability (`client_credentials`, `refresh_tokens`, `native_pkce`),
/// the admin API's documented shape.
impl Serialize for Capabilities {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(Capability::ALL.len()))?;
        for c in Capability::ALL {
            m.serialize_entry(&c.as_str().replace('-', "_"), &self.has(c))?;
        }
        m.end()
    }
}

/// A developer's application (OAuth client).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct App {
    pub client_id: ClientId,
    pub name: String,
    pub owner_id: MemberId,
    pub organization_id: Option<i64>,
    pub privacy_policy_url: String,
    pub logo_url: String,
    #[serde(flatten)]
    pub capabilities: Capabilities,
    /// Default scopes, used only under a default-scope extension.
    pub default_scopes: ScopeSet,
    pub extension_until: Option<UnixTime>,
    pub created_at: UnixTime,
}

impl App {
    pub fn has(&self, c: Capability) -> bool {
        self.capabilities.has(c)
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
    pub client_id: ClientId,
    pub program_id: String,
    pub status: RequestStatus,
    pub reason: Option<String>,
    pub requested_by: String,
    pub requested_at: UnixTime,
    pub decided_by: Option<String>,
    pub decided_at: Option<UnixTime>,
}

/// What a member consented to for one app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Grant {
    pub id: GrantId,
    pub client_id: ClientId,
    pub member_id: MemberId,
    pub scopes: ScopeSet,
    pub created_at: UnixTime,
    pub updated_at: UnixTime,
    pub revoked_at: Option<UnixTime>,
}

/// Access or refresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenKind {
    Access,
    Refresh,
}

impl TokenKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Access => "access",
            TokenKind::Refresh => "refresh",
        }
    }
}

/// A stored token (its hash, never the token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    /// The keyed hash of the token: the token itself is never stored.
    pub hash: SecretHash,
    pub kind: TokenKind,
    pub client_id: ClientId,
    /// The grant of a 3-legged token; none for 2-legged tokens.
    pub grant_id: Option<GrantId>,
    pub member_id: Option<MemberId>,
    pub scopes: ScopeSet,
    pub created_at: UnixTime,
    /// When the member authorized the grant (LinkedIn's `authorized_at`).
    pub authorized_at: UnixTime,
    pub expires_at: UnixTime,
    pub revoked_at: Option<UnixTime>,
    /// For access tokens issued by a refresh: the refresh token's hash.
    pub refresh_hash: Option<SecretHash>,
    /// The authorization code every token of this lineage descends from.
    pub code_hash: Option<SecretHash>,
    /// For rotated refresh tokens: when they were rotated.
    pub rotated_at: Option<UnixTime>,
    pub nonce: Option<String>,
    /// Issued to a public (native PKCE) client that authenticated with no secret.
    pub public_client: bool,
    /// When the member signed in for the grant (OIDC `auth_time`); 0 for 2-legged tokens.
    pub auth_time: UnixTime,
}

/// Where a token stands at a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenState {
    Active,
    Expired,
    Revoked,
}

impl TokenRecord {
    /// Revoked wins over expired: a revoked token says so even after its expiry. A rotated
    /// refresh token counts as revoked: only the rotation grace window still honours it.
    pub fn state(&self, now: UnixTime) -> TokenState {
        if self.revoked_at.is_some() || self.rotated_at.is_some() {
            TokenState::Revoked
        } else if now >= self.expires_at {
            TokenState::Expired
        } else {
            TokenState::Active
        }
    }
}

/// A stored authorization code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeRecord {
    pub hash: SecretHash,
    pub client_id: ClientId,
    pub grant_id: GrantId,
    pub member_id: MemberId,
    pub redirect_uri: String,
    pub scopes: ScopeSet,
    pub code_challenge: Option<String>,
    pub nonce: Option<String>,
    pub auth_time: UnixTime,
    pub created_at: UnixTime,
    pub expires_at: UnixTime,
    pub consumed_at: Option<UnixTime>,
    /// Issued by the native PKCE endpoint: the only kind of code a public client may redeem
    /// without a secret (RFC 6749 4.1.3).
    pub native: bool,
}

/// A signed-in browser session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub hash: SecretHash,
    pub member_id: MemberId,
    /// The per-session CSRF token every form carries.
    pub csrf: String,
    pub auth_time: UnixTime,
    pub expires_at: UnixTime,
}
