//! The token-style flows (RFC 6749 token endpoint, RFC 7662 introspection, RFC 7009
//! revocation) and the client authentication they share. Each is one function: typed input,
//! its own transaction(s), a typed outcome or a [`TokenError`]; the wire lives in
//! `scopegate-http`'s `wire::oauth`.

pub mod client;
pub mod introspect;
pub mod token;

pub use client::{authenticate_client, Client, Credentials};
pub use introspect::{introspect, revoke, Introspection};
pub use token::{
    client_credentials, redeem_code, refresh, withdraw_undelivered, AppToken, CodeRedemption,
    Issued, Refresh,
};

use crate::config::Compat;
use crate::state::Service;
use scopegate_core::model::TokenRecord;
use scopegate_core::ScopeSet;

/// Lifetimes (seconds).
pub const ACCESS_TOKEN_TTL: i64 = 60 * 24 * 3600;
/// A refresh token lives a year from the first grant and is never extended.
pub const REFRESH_TOKEN_TTL: i64 = 365 * 24 * 3600;
/// A 2-legged (client credentials) token.
pub const APP_TOKEN_TTL: i64 = 30 * 60;
/// RFC 6749 4.1.2 recommends at most 10 minutes; LinkedIn's codes live 30.
pub fn code_ttl(compat: Compat) -> i64 {
    match compat {
        Compat::Standard => 10 * 60,
        Compat::Linkedin => 30 * 60,
    }
}
/// A rotated refresh token presented again within this window is a concurrent refresh, not a replay.
pub const ROTATION_GRACE: i64 = 30;

/// Why a token-style request was refused, in domain terms; `wire::oauth` maps each to its RFC
/// 6749 5.2 code and status in the configured dialect.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The request is malformed (a missing or bad parameter).
    #[error("{0}")]
    InvalidRequest(String),
    /// A required parameter is absent.
    #[error("A required parameter \"{0}\" is missing")]
    Missing(&'static str),
    /// The request lacks a client credential it needs (`client_id` or `client_secret`).
    #[error("missing client credential {0}")]
    MissingCredential(&'static str),
    /// Client authentication failed: an unknown client and a wrong secret alike.
    #[error("Client authentication failed")]
    InvalidClient {
        /// The client tried HTTP Basic: the 401 names the scheme (RFC 6749 5.2).
        basic: bool,
    },
    /// The grant (code, refresh token) does not redeem.
    #[error("invalid grant: {0:?}")]
    InvalidGrant(GrantRefusal),
    /// The client may not use this grant type (client credentials not enabled).
    #[error("This application is not allowed to create application tokens")]
    UnauthorizedClient,
    /// The requested scope is malformed or not held.
    #[error("{0}")]
    InvalidScope(String),
    /// The grant type is not one this server supports.
    #[error("grant_type \"{0}\" is not supported")]
    UnsupportedGrantType(String),
    /// A throttle refused the attempt; retry after the given seconds.
    #[error("throttled")]
    Throttled {
        /// Which limit.
        reason: ThrottleReason,
        /// Seconds to wait.
        retry_after: i64,
    },
    /// The store cannot answer now (503); the detail was logged.
    #[error("temporarily unavailable")]
    Unavailable,
    /// Something the response needs could not be made (500); the detail was logged.
    #[error("{0}")]
    ServerError(&'static str),
}

/// Which way a grant failed to redeem (reference 1.7 words each differently).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantRefusal {
    /// No such code (or replayed, or its grant was revoked).
    CodeNotFound,
    /// The code exists but its app, redirect URL or verifier do not match, or it expired.
    CodeMismatch,
    /// The refresh token is unknown, expired, revoked or replayed.
    RefreshToken,
    /// The refresh asked for more scope than was granted.
    ScopeWidened,
}

/// Which throttle refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThrottleReason {
    /// Too many failed client authentications.
    ClientFailures,
    /// Too many unknown tokens or codes from this address.
    Guessing,
}

impl From<crate::throttle::Refused> for TokenError {
    fn from(r: crate::throttle::Refused) -> Self {
        use crate::throttle::Refused;
        let (reason, retry_after) = match r {
            Refused::Failures(w) => (ThrottleReason::ClientFailures, w),
            Refused::Guessing(w) => (ThrottleReason::Guessing, w),
        };
        TokenError::Throttled {
            reason,
            retry_after,
        }
    }
}

impl From<scopegate_store::StoreError> for TokenError {
    fn from(e: scopegate_store::StoreError) -> Self {
        tracing::error!(error = %e, "token endpoint: store failed");
        TokenError::Unavailable
    }
}

/// The scopes `token` authorizes now: its own, narrowed to what the app's approved products
/// still grant and to deprecations before their cut-off, plus the auto-granted permissions of
/// those products. Every decision about what a token may do (enforcement, userinfo, the claims
/// of an ID token, refresh) reads a token's scopes through this one function, never its raw
/// `scopes`, so removing a product takes effect at once everywhere (docs/portal.md).
pub fn token_scopes(state: &Service, token: &TokenRecord, approved: &[String]) -> ScopeSet {
    Scoping::of(state).token_scopes(token, approved)
}

/// The scopes a new token issued from `token` (a redeemed code's consent, a refresh token)
/// records: those of its own it still authorizes. Auto-granted permissions are not written into
/// tokens: they travel with the product and [`token_scopes`] adds them while it is approved.
pub fn carried_scopes(state: &Service, token: &TokenRecord, approved: &[String]) -> ScopeSet {
    Scoping::of(state).carried(token, approved)
}

/// What scope decisions read (the catalog and today), owned, so a transaction's closure can
/// make them.
#[derive(Clone)]
pub(crate) struct Scoping {
    catalog: std::sync::Arc<scopegate_core::Catalog>,
    today: time::Date,
}

impl Scoping {
    pub(crate) fn of(state: &Service) -> Self {
        Scoping {
            catalog: state.catalog.clone(),
            today: crate::clock::date_of(state.now()),
        }
    }
    /// See [`token_scopes`].
    pub(crate) fn token_scopes(&self, token: &TokenRecord, approved: &[String]) -> ScopeSet {
        scopegate_core::enforce::effective_token_scopes(&self.catalog, token, approved, self.today)
    }
    /// See [`carried_scopes`].
    pub(crate) fn carried(&self, token: &TokenRecord, approved: &[String]) -> ScopeSet {
        let own = &token.scopes;
        let now = self.token_scopes(token, approved);
        ScopeSet::from_names(own.iter().filter(|s| now.contains(s)).map(str::to_string))
    }
}
