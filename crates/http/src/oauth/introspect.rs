//! POST /oauth/v2/introspectToken (LinkedIn's fields plus RFC 7662's) and POST /oauth/v2/revoke
//! (RFC 7009).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use scopegate_app::oauth::{self, Introspection};
use scopegate_core::model::{TokenKind, TokenState};
use scopegate_core::Secret;
use serde_json::json;

use crate::extract::client::ClientRequest;
use crate::wire::{no_store, OAuthError};
use scopegate_app::state::ServiceState;

/// The introspection endpoint. An app may introspect only its own tokens; anything else is
/// exactly `{"active": false}` (RFC 7662 2.2).
pub async fn introspect(
    State(state): State<ServiceState>,
    req: Result<ClientRequest, OAuthError>,
) -> Response {
    state
        .metrics
        .introspections
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    match introspect_inner(&state, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn introspect_inner(
    state: &ServiceState,
    req: Result<ClientRequest, OAuthError>,
) -> Result<Response, OAuthError> {
    let req = req?;
    let token = Secret::new(req.required("token")?);
    let found = oauth::introspect(state, req.credentials.as_ref(), &token)
        .await
        .map_err(|e| OAuthError::from_token(state.config.compat, e))?;
    let body = match found {
        None => json!({"active": false}),
        Some(i) => introspection_body(state, &i),
    };
    Ok(no_store(StatusCode::OK, body))
}

fn introspection_body(state: &ServiceState, i: &Introspection) -> serde_json::Value {
    let t = &i.token;
    let active = i.state == TokenState::Active;
    let mut body = json!({
        "active": active,
        "status": i.state,
        "client_id": t.client_id,
        "created_at": t.created_at,
        "expires_at": t.expires_at,
        "authorized_at": t.authorized_at,
        "auth_type": if t.grant_id.is_some() { "3L" } else { "2L" },
        "scope": i.scopes.to_comma_separated(),
    });
    if active {
        body["exp"] = json!(t.expires_at);
        body["iat"] = json!(t.created_at);
        body["iss"] = json!(state.config.issuer());
        // The audience: the app the token was issued to (RFC 7662 2.2, RFC 9068's convention
        // for tokens meant for the platform's own API on the app's behalf).
        body["aud"] = json!(t.client_id);
        body["token_type"] = json!(match t.kind {
            TokenKind::Access => "Bearer",
            TokenKind::Refresh => "refresh_token",
        });
        if let Some(m) = &t.member_id {
            body["sub"] = json!(scopegate_app::signing::pairwise_sub(state, &t.client_id, m));
        }
    }
    body
}

/// The revocation endpoint: 200 whatever the token's state (RFC 7009 2.2).
pub async fn revoke(
    State(state): State<ServiceState>,
    req: Result<ClientRequest, OAuthError>,
) -> Response {
    state
        .metrics
        .revocations
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    match revoke_inner(&state, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn revoke_inner(
    state: &ServiceState,
    req: Result<ClientRequest, OAuthError>,
) -> Result<Response, OAuthError> {
    let req = req?;
    let token = Secret::new(req.required("token")?);
    oauth::revoke(state, req.credentials.as_ref(), &token)
        .await
        .map_err(|e| OAuthError::from_token(state.config.compat, e))?;
    Ok(no_store(StatusCode::OK, json!({})))
}
