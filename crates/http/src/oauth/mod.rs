//! OAuth 2.0 endpoints on LinkedIn's paths. The flows are in `scopegate_app::oauth`; these
//! handlers parse, call them and render.

pub mod authorize;
pub mod client;
pub mod introspect;
pub mod token;

// The app's lifetimes and scope functions under their old paths (authorize and oidc use them).
pub use scopegate_app::oauth::{
    carried_scopes, code_ttl, scope_string, token_scopes, ACCESS_TOKEN_TTL, APP_TOKEN_TTL,
    REFRESH_TOKEN_TTL, ROTATION_GRACE,
};
