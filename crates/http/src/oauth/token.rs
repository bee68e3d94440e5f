//! POST /oauth/v2/accessToken: authorization_code, refresh_token, client_credentials. The grants
//! are `scopegate_app::oauth::{redeem_code, refresh, client_credentials}`; this parses, adds
//! the ID token and renders.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use scopegate_app::oauth::{self, AppToken, CodeRedemption, Issued, Refresh, TokenError};
use scopegate_core::Secret;

use crate::extract::client::ClientRequest;
use crate::wire::{self, no_store, OAuthError};
use scopegate_app::state::ServiceState;

/// The token endpoint.
pub async fn token(
    State(state): State<ServiceState>,
    req: Result<ClientRequest, OAuthError>,
) -> Response {
    match handle(&state, req).await {
        Ok(r) => r,
        Err(e) => {
            state
                .metrics
                .token_requests_refused
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            e.into_response()
        }
    }
}

async fn handle(
    state: &ServiceState,
    req: Result<ClientRequest, OAuthError>,
) -> Result<Response, OAuthError> {
    let req = req?;
    let compat = state.config.compat;
    let wire = |e: TokenError| OAuthError::from_token(compat, e);
    match req.required("grant_type")? {
        "authorization_code" => {
            let redemption = CodeRedemption {
                code: Secret::new(req.required("code")?),
                redirect_uri: req.required("redirect_uri")?.to_string(),
                verifier: req.form.get("code_verifier").map(Secret::new),
                client: req.credentials,
            };
            let issued = oauth::redeem_code(state, redemption).await.map_err(wire)?;
            respond(state, issued).await
        }
        "refresh_token" => {
            let refresh = Refresh {
                refresh_token: Secret::new(req.required("refresh_token")?),
                scope: req.form.get("scope").map(str::to_string),
                client: req.credentials,
            };
            let issued = oauth::refresh(state, refresh).await.map_err(wire)?;
            respond(state, issued).await
        }
        "client_credentials" => {
            let app_token = AppToken {
                scope: req.form.get("scope").map(str::to_string),
                client: req.credentials,
            };
            let issued = oauth::client_credentials(state, app_token)
                .await
                .map_err(wire)?;
            Ok(app_token_response(state, &issued))
        }
        other => Err(wire(TokenError::UnsupportedGrantType(
            other.chars().take(40).collect(),
        ))),
    }
}

/// The 3-legged response, with the ID token its `openid` scope asks for.
async fn respond(state: &ServiceState, issued: Issued) -> Result<Response, OAuthError> {
    let id_token = match &issued.id_token {
        Some(b) => {
            scopegate_app::signing::id_token_for(
                state,
                &b.client_id,
                &b.member_id,
                &b.claims,
                b.nonce.as_deref(),
                b.auth_time,
            )
            .await
        }
        None => Ok(None),
    };
    match id_token {
        Ok(id_token) => Ok(token_response(state, &issued, id_token)),
        Err(e) => Err(id_token_failed(state, e, issued).await),
    }
}

fn token_response(state: &ServiceState, issued: &Issued, id_token: Option<String>) -> Response {
    let n = 1 + u64::from(issued.refresh.is_some());
    state
        .metrics
        .tokens_issued
        .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    no_store(
        StatusCode::OK,
        wire::oauth::token_body(state.config.compat, issued, id_token),
    )
}

/// The 2-legged response.
fn app_token_response(state: &ServiceState, issued: &Issued) -> Response {
    state
        .metrics
        .tokens_issued
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    no_store(
        StatusCode::OK,
        wire::oauth::app_token_body(state.config.compat, issued),
    )
}

/// The token response cannot carry the ID token its `openid` scope asks for: the request fails
/// (OIDC Core 3.1.3.3: the response contains an ID token) instead of answering without it, and
/// the tokens stored for it, never handed out, are withdrawn. Logged once, here.
async fn id_token_failed(
    state: &ServiceState,
    e: scopegate_app::signing::IdTokenError,
    issued: Issued,
) -> OAuthError {
    let revoked = oauth::withdraw_undelivered(state, issued).await;
    tracing::error!(
        error = %e,
        undelivered_tokens_revoked = revoked.is_ok(),
        "token endpoint: the ID token could not be made; the request failed"
    );
    match e {
        scopegate_app::signing::IdTokenError::Unavailable(_) => OAuthError::unavailable(),
        scopegate_app::signing::IdTokenError::Failed(_) => OAuthError::from_token(
            state.config.compat,
            TokenError::ServerError("the ID token could not be made"),
        ),
    }
}
