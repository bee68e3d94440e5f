//! OpenID Connect over HTTP: discovery, JWKS and userinfo. Keys, signing, hints and pairwise
//! subjects live in the application layer (`scopegate_app::signing`, `scopegate_app::userinfo`);
//! they are re-exported here under their old paths for the handlers that call them.

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use scopegate_app::signing::{algorithms, JWKS_MAX_AGE};
use scopegate_app::userinfo::{self, UserinfoError};
use serde_json::{json, Value};

use crate::extract::bearer::Bearer;
use crate::wire::ApiError;
use scopegate_app::state::{Service, ServiceState};

fn cached_json(v: Value, max_age: u32) -> Response {
    let mut res = Json(v).into_response();
    if let Ok(h) = HeaderValue::from_str(&format!("public, max-age={max_age}")) {
        res.headers_mut().insert(header::CACHE_CONTROL, h);
    }
    res
}

/// The discovery document (OpenID Connect Discovery 1.0 and RFC 8414): exactly what is served.
pub fn discovery_document(state: &Service) -> Value {
    let base = state.config.public_url.trim_end_matches('/');
    let scopes: Vec<String> = state
        .catalog
        .permissions
        .iter()
        .filter(|p| !p.auto_granted && p.deprecated.is_none() && !p.programs.is_empty())
        .map(|p| p.name.clone())
        .collect();
    json!({
        "issuer": state.config.issuer(),
        "authorization_endpoint": format!("{base}/oauth/v2/authorization"),
        "token_endpoint": format!("{base}/oauth/v2/accessToken"),
        "userinfo_endpoint": format!("{base}/v2/userinfo"),
        "jwks_uri": format!("{base}/oauth/openid/jwks"),
        "introspection_endpoint": format!("{base}/oauth/v2/introspectToken"),
        "revocation_endpoint": format!("{base}/oauth/v2/revoke"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": algorithms(state).iter().map(|a| a.as_str()).collect::<Vec<_>>(),
        "scopes_supported": scopes,
        "claims_supported": ["iss", "aud", "azp", "iat", "exp", "auth_time", "nonce", "sub", "name", "given_name", "family_name", "picture", "email", "email_verified", "locale"],
        "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic", "none"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic", "none"],
        "code_challenge_methods_supported": ["S256"],
        "prompt_values_supported": ["none", "login", "consent"],
        "display_values_supported": ["page", "popup", "touch"],
        "ui_locales_supported": ["en"],
        "authorization_response_iss_parameter_supported": true,
        // OIDC Core 5.5, as docs/oauth.md describes: parsed strictly, and answered with the
        // claims of the scopes the member consented to.
        "claims_parameter_supported": true,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
    })
}

/// GET /oauth/.well-known/openid-configuration (and the other two well-known paths).
pub async fn discovery(State(state): State<ServiceState>) -> Response {
    cached_json(discovery_document(&state), 300)
}

/// GET /oauth/openid/jwks
pub async fn jwks(State(state): State<ServiceState>) -> Response {
    match scopegate_app::signing::jwks(&state).await {
        Ok(keys) => cached_json(json!({"keys": keys}), JWKS_MAX_AGE),
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// GET|POST /v2/userinfo
pub async fn userinfo(
    State(state): State<ServiceState>,
    Bearer(token): Bearer,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(userinfo::claims(&state, &token).await?))
}

impl From<UserinfoError> for ApiError {
    fn from(e: UserinfoError) -> Self {
        match e {
            UserinfoError::InvalidToken => ApiError::invalid_token(),
            UserinfoError::Revoked => ApiError::revoked_token(),
            UserinfoError::Expired => ApiError::expired_token(),
            UserinfoError::NotOpenid => ApiError::access_denied("userinfo", "GET", "NO_VERSION"),
            // A store outage at userinfo: 503, not a verdict on the token (logged once).
            UserinfoError::Unavailable(e) => {
                tracing::error!(error = %e, "userinfo: store failed");
                ApiError::unavailable()
            }
        }
    }
}
