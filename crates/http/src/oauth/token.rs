//! POST /oauth/v2/accessToken: authorization_code, refresh_token, client_credentials.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use scopegate_core::model::{TokenKind, TokenRecord};
use scopegate_core::oauth::{resolve_application_scopes, AppScopeRefusal};
use scopegate_core::secret::{ct_eq_str, sha256_b64url};
use scopegate_core::{ScopeSet, Secret};
use scopegate_store::tokens::{self, Redeem};
use serde_json::json;

use super::client::{self, Client};
use super::{
    carried_scopes, form_request, scope_string, token_scopes, ACCESS_TOKEN_TTL, APP_TOKEN_TTL,
    REFRESH_TOKEN_TTL, ROTATION_GRACE,
};
use crate::config::Compat;
use crate::form::Params;
use crate::state::ServiceState;
use crate::wire::{no_store, OAuthError};

/// The token endpoint.
pub async fn token(
    State(state): State<ServiceState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = handle(&state, &method, &uri, &headers, &body).await;
    match result {
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
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Response, OAuthError> {
    let form = form_request(method, uri, headers, body)?;
    client::refuse_query_credentials(uri)?;
    let grant_type = form
        .get("grant_type")
        .ok_or_else(|| OAuthError::missing("grant_type"))?;
    match grant_type {
        "authorization_code" => authorization_code(state, headers, &form).await,
        "refresh_token" => refresh(state, headers, &form).await,
        "client_credentials" => client_credentials(state, headers, &form).await,
        other => Err(OAuthError::new(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            format!(
                "grant_type \"{}\" is not supported",
                other.chars().take(40).collect::<String>()
            ),
        )),
    }
}

pub(super) async fn authenticate(
    state: &ServiceState,
    headers: &HeaderMap,
    form: &Params,
    allow_public: bool,
) -> Result<Client, OAuthError> {
    let p = client::require(state, headers, form, allow_public)?;
    client::authenticate(state, &p, allow_public).await
}

/// The error for a code that does not redeem, in the configured dialect (reference 1.7).
fn bad_code(compat: Compat, not_found: bool) -> OAuthError {
    match (compat, not_found) {
        (Compat::Standard, true) => OAuthError::new(StatusCode::BAD_REQUEST, "invalid_grant", "Unable to retrieve access token: authorization code not found"),
        (Compat::Linkedin, true) => OAuthError::new(StatusCode::UNAUTHORIZED, "invalid_request", "Unable to retrieve access token: authorization code not found"),
        (c, false) => OAuthError::new(
            StatusCode::BAD_REQUEST,
            if c == Compat::Linkedin { "invalid_redirect_uri" } else { "invalid_grant" },
            "Unable to retrieve access token: appid/redirect uri/code verifier does not match authorization code. Or authorization code expired. Or external member binding exists",
        ),
    }
}

fn bad_refresh(compat: Compat) -> OAuthError {
    OAuthError::new(
        StatusCode::BAD_REQUEST,
        if compat == Compat::Linkedin {
            "invalid_request"
        } else {
            "invalid_grant"
        },
        "The provided authorization grant or refresh token is invalid, expired or revoked",
    )
}

struct Issued {
    access: Secret,
    refresh: Option<Secret>,
    access_expires_in: i64,
    refresh_expires_in: Option<i64>,
    scopes: ScopeSet,
}

fn token_response(state: &ServiceState, issued: &Issued, id_token: Option<String>) -> Response {
    let compat = state.config.compat;
    let mut body = json!({
        "access_token": issued.access.expose(),
        // LinkedIn quirk: real responses say 5183999, one second short of 60 days.
        "expires_in": match compat {
            Compat::Standard => issued.access_expires_in,
            Compat::Linkedin => issued.access_expires_in - 1,
        },
        "scope": scope_string(compat, &issued.scopes),
        "token_type": "Bearer",
    });
    if let (Some(r), Some(exp)) = (&issued.refresh, issued.refresh_expires_in) {
        body["refresh_token"] = json!(r.expose());
        body["refresh_token_expires_in"] = json!(exp);
    }
    if let Some(id) = id_token {
        body["id_token"] = json!(id);
    }
    let n = 1 + u64::from(issued.refresh.is_some());
    state
        .metrics
        .tokens_issued
        .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    no_store(StatusCode::OK, body)
}

/// A token's recorded scopes narrowed to what the app's approved products grant now, as
/// introspection reports them (deprecated scopes past their cut-off included, see
/// `core::oauth::authorized_scopes`). Decisions use [`super::token_scopes`].
pub fn narrowed(state: &ServiceState, approved: &[String], scopes: &ScopeSet) -> ScopeSet {
    let e = state.effective_permissions(approved);
    ScopeSet::from_names(
        scopes
            .iter()
            .filter(|s| {
                e.member.contains(*s)
                    || e.application.contains(*s)
                    || state
                        .catalog
                        .permission(s)
                        .is_some_and(|p| p.deprecated.is_some())
            })
            .map(str::to_string),
    )
}

enum CodeOutcome {
    Issued {
        scopes: ScopeSet,
        /// What the token authorizes now: the ID token's claims follow it.
        claims: ScopeSet,
        member_id: String,
        nonce: Option<String>,
        auth_time: i64,
        refresh: bool,
    },
    Refused(OAuthError),
    /// Refused because no such code exists: possibly a guess, counted against the address.
    Unknown(OAuthError),
}

async fn authorization_code(
    state: &ServiceState,
    headers: &HeaderMap,
    form: &Params,
) -> Result<Response, OAuthError> {
    let code = form
        .get("code")
        .ok_or_else(|| OAuthError::missing("code"))?
        .to_string();
    let redirect_uri = form
        .get("redirect_uri")
        .ok_or_else(|| OAuthError::missing("redirect_uri"))?
        .to_string();
    let verifier = form.get("code_verifier").map(str::to_string);
    // Neither a secret nor a PKCE verifier: whether the app is confidential or public, the
    // request lacks the one parameter that would prove it holds the code.
    if verifier.is_none()
        && state.config.compat == Compat::Standard
        && form.get("client_secret").is_none()
        && !headers.contains_key(axum::http::header::AUTHORIZATION)
    {
        return Err(OAuthError::invalid_request(
            "A required parameter is missing: client_secret (confidential apps) or code_verifier (native PKCE apps)",
        ));
    }
    let client = authenticate(state, headers, form, verifier.is_some()).await?;
    // Reserved before the code is looked up (see throttle).
    let guess = client::guess_attempt(state, headers).await?;
    let compat = state.config.compat;
    let now = state.now();
    let code_hash = state.keys.token_hash.hash_str(&code).as_str().to_string();
    // Public clients get rotating refresh tokens (RFC 9700 4.14); confidential ones only when the
    // platform enabled programmatic refresh for the app.
    let wants_refresh = client.public || client.app.refresh_tokens;
    let access = Secret::generate(state.entropy.as_ref(), "AQ");
    let refresh = Secret::generate(state.entropy.as_ref(), "AQ");
    let access_hash = state.keys.token_hash.hash(&access).as_str().to_string();
    let refresh_hash = state.keys.token_hash.hash(&refresh).as_str().to_string();
    let client_id = client.app.client_id.clone();
    let approved = client.approved.clone();
    let public = client.public;
    let st = state.clone();
    let outcome = state
        .store
        .write(move |c| {
            let record = match tokens::redeem_code(c, &code_hash, now)? {
                Redeem::Unknown => return Ok(CodeOutcome::Unknown(bad_code(compat, true))),
                Redeem::Replayed(_) => {
                    // RFC 6749 4.1.2: a second use of the code MUST be refused and the tokens
                    // issued from it SHOULD be revoked.
                    tokens::revoke_code_lineage(c, &code_hash, now)?;
                    return Ok(CodeOutcome::Refused(bad_code(compat, true)));
                }
                Redeem::Fresh(r) => r,
            };
            // The code is consumed even when a check below fails: a code presented with the
            // wrong verifier or redirect URL is likely stolen and must not get another try.
            let verifier_ok = match (&record.code_challenge, &verifier) {
                (Some(ch), Some(v)) => valid_verifier(v) && ct_eq_str(&sha256_b64url(v), ch),
                (None, None) => true,
                _ => false,
            };
            if record.client_id != client_id
                || record.redirect_uri != redirect_uri
                || now >= record.expires_at
                || !verifier_ok
            {
                return Ok(CodeOutcome::Refused(bad_code(compat, false)));
            }
            // After the binding checks, so a code that does not match at all answers as such.
            // RFC 6749 4.1.3 (and OAuth 2.1 4.1.3): a confidential client authenticates to
            // redeem its code. Only a code the native PKCE endpoint issued may be redeemed by
            // the verifier alone; a web-flow code of the same app needs the secret (docs/oauth.md).
            if public && !record.native {
                return Ok(CodeOutcome::Refused(client::missing(
                    compat,
                    "client_secret",
                )));
            }
            let Some(grant) =
                tokens::grant_by_id(c, record.grant_id)?.filter(|g| g.revoked_at.is_none())
            else {
                return Ok(CodeOutcome::Refused(bad_code(compat, true)));
            };
            let mut base = TokenRecord {
                hash: access_hash.clone(),
                kind: TokenKind::Access,
                client_id: client_id.clone(),
                grant_id: Some(grant.id),
                member_id: Some(record.member_id.clone()),
                scopes: record.scopes.clone(),
                created_at: now,
                authorized_at: grant.updated_at,
                expires_at: now + ACCESS_TOKEN_TTL,
                revoked_at: None,
                refresh_hash: None,
                code_hash: Some(code_hash.clone()),
                rotated_at: None,
                nonce: record.nonce.clone(),
                public_client: client.public,
                auth_time: record.auth_time,
            };
            let scopes = carried_scopes(&st, &base, &approved);
            base.scopes = scopes.to_comma_separated();
            let claims = token_scopes(&st, &base, &approved);
            if wants_refresh {
                let r = TokenRecord {
                    hash: refresh_hash.clone(),
                    kind: TokenKind::Refresh,
                    expires_at: now + REFRESH_TOKEN_TTL,
                    ..base.clone()
                };
                tokens::insert(c, &r)?;
                tokens::insert(
                    c,
                    &TokenRecord {
                        refresh_hash: Some(refresh_hash.clone()),
                        ..base
                    },
                )?;
            } else {
                tokens::insert(c, &base)?;
            }
            Ok(CodeOutcome::Issued {
                scopes,
                claims,
                member_id: record.member_id.to_string(),
                nonce: record.nonce.clone(),
                auth_time: record.auth_time,
                refresh: wants_refresh,
            })
        })
        .await
        .map_err(store_unavailable)?;
    match outcome {
        CodeOutcome::Refused(e) => Err(e),
        CodeOutcome::Unknown(e) => {
            // Nothing by that value exists: possibly a guess, counted against the address.
            guess.failed();
            Err(e)
        }
        CodeOutcome::Issued {
            scopes,
            claims,
            member_id,
            nonce,
            auth_time,
            refresh: with_refresh,
        } => {
            let id_token = crate::oidc::id_token_for(
                state,
                &client.app.client_id,
                &member_id,
                &claims,
                nonce.as_deref(),
                auth_time,
            )
            .await;
            let id_token = match id_token {
                Ok(t) => t,
                Err(e) => {
                    let undelivered = vec![
                        access_hash_of(state, &access),
                        access_hash_of(state, &refresh),
                    ];
                    return Err(id_token_failed(state, e, undelivered).await);
                }
            };
            let issued = Issued {
                access,
                refresh: with_refresh.then_some(refresh),
                access_expires_in: ACCESS_TOKEN_TTL,
                refresh_expires_in: with_refresh.then_some(REFRESH_TOKEN_TTL),
                scopes,
            };
            Ok(token_response(state, &issued, id_token))
        }
    }
}

fn access_hash_of(state: &ServiceState, token: &Secret) -> String {
    state.keys.token_hash.hash(token).as_str().to_string()
}

/// The token response cannot carry the ID token its `openid` scope asks for: the request fails
/// (OIDC Core 3.1.3.3: the response contains an ID token) instead of answering without it, and
/// the tokens stored for it, never handed out, are revoked so they count for nothing (a live
/// token lets a later request skip the consent screen). Logged once, here.
async fn id_token_failed(
    state: &ServiceState,
    e: crate::oidc::IdTokenError,
    undelivered: Vec<String>,
) -> OAuthError {
    let now = state.now();
    let revoked = state
        .store
        .write(move |c| {
            for h in &undelivered {
                tokens::revoke(c, h, now)?;
            }
            Ok(())
        })
        .await;
    tracing::error!(
        error = %e,
        undelivered_tokens_revoked = revoked.is_ok(),
        "token endpoint: the ID token could not be made; the request failed"
    );
    match e {
        crate::oidc::IdTokenError::Unavailable(_) => OAuthError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "try again shortly",
        ),
        crate::oidc::IdTokenError::Failed(_) => OAuthError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "the ID token could not be made",
        ),
    }
}

/// RFC 7636 4.1: 43 to 128 characters of [A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~".
fn valid_verifier(v: &str) -> bool {
    (43..=128).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

fn store_unavailable(e: scopegate_store::StoreError) -> OAuthError {
    tracing::error!(error = %e, "token endpoint: store failed");
    OAuthError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "temporarily_unavailable",
        "try again shortly",
    )
}

enum RefreshOutcome {
    Issued {
        scopes: ScopeSet,
        /// What the new access token authorizes now: the ID token's claims follow it.
        claims: ScopeSet,
        access_expires_in: i64,
        rotated: bool,
        refresh_remaining: i64,
        member_id: Option<String>,
        nonce: Option<String>,
        auth_time: i64,
    },
    Refused(OAuthError),
    /// Refused because no such refresh token exists: possibly a guess.
    Unknown(OAuthError),
}

async fn refresh(
    state: &ServiceState,
    headers: &HeaderMap,
    form: &Params,
) -> Result<Response, OAuthError> {
    let presented = form
        .get("refresh_token")
        .ok_or_else(|| OAuthError::missing("refresh_token"))?
        .to_string();
    let client = authenticate(state, headers, form, true).await?;
    // Reserved before the refresh token is looked up (see throttle).
    let guess = client::guess_attempt(state, headers).await?;
    let requested = match form.get("scope") {
        Some(s) => Some(ScopeSet::parse(s).map_err(|e| {
            OAuthError::new(StatusCode::BAD_REQUEST, "invalid_scope", e.to_string())
        })?),
        None => None,
    };
    let compat = state.config.compat;
    let now = state.now();
    let old_hash = state
        .keys
        .token_hash
        .hash_str(&presented)
        .as_str()
        .to_string();
    let access = Secret::generate(state.entropy.as_ref(), "AQ");
    let rotated = Secret::generate(state.entropy.as_ref(), "AQ");
    let access_hash = state.keys.token_hash.hash(&access).as_str().to_string();
    let rotated_hash = state.keys.token_hash.hash(&rotated).as_str().to_string();
    let client_id = client.app.client_id.clone();
    let public = client.public;
    let approved = client.approved.clone();
    let st = state.clone();
    let outcome = state
        .store
        .write(move |c| {
            let Some(rt) = tokens::get(c, &old_hash)?
                .filter(|t| t.kind == TokenKind::Refresh && t.client_id == client_id)
            else {
                return Ok(RefreshOutcome::Unknown(bad_refresh(compat)));
            };
            // RFC 6749 6: a confidential client's refresh token needs the client's secret; only
            // a token issued to a public client may be refreshed without one.
            if public && !rt.public_client {
                return Ok(RefreshOutcome::Refused(client::missing(
                    compat,
                    "client_secret",
                )));
            }
            if rt.revoked_at.is_some() || now >= rt.expires_at {
                return Ok(RefreshOutcome::Refused(bad_refresh(compat)));
            }
            let Some(grant) = rt
                .grant_id
                .and_then(|g| tokens::grant_by_id(c, g).ok().flatten())
                .filter(|g| g.revoked_at.is_none())
            else {
                return Ok(RefreshOutcome::Refused(bad_refresh(compat)));
            };
            if let Some(at) = rt.rotated_at {
                if now > at + ROTATION_GRACE {
                    // RFC 9700 4.14.2: a rotated refresh token used again means one of two
                    // parties is an attacker: revoke the whole grant.
                    tokens::revoke_grant_tokens(c, grant.id, now)?;
                    return Ok(RefreshOutcome::Refused(bad_refresh(compat)));
                }
            }
            // RFC 6749 6: the scope may narrow what the resource owner granted, never widen it.
            let granted = ScopeSet::parse(&rt.scopes).unwrap_or_default();
            let scopes = match &requested {
                Some(req) if !req.is_subset(&granted) => {
                    return Ok(RefreshOutcome::Refused(OAuthError::new(
                        StatusCode::BAD_REQUEST,
                        "invalid_scope",
                        "the requested scope exceeds the scope originally granted",
                    )))
                }
                Some(req) => req.clone(),
                None => granted,
            };
            // What the new token records: of those, the ones the refresh token still
            // authorizes (a removed product's scopes are gone).
            let still = carried_scopes(&st, &rt, &approved);
            let scopes = ScopeSet::from_names(
                scopes
                    .iter()
                    .filter(|s| still.contains(s))
                    .map(str::to_string),
            );
            // The refresh token's lifetime counts from the first grant and is never extended; the
            // access token is capped at it.
            let access_exp = (now + ACCESS_TOKEN_TTL).min(rt.expires_at);
            let lineage = rt.code_hash.clone();
            let mut parent = old_hash.clone();
            let rotate = rt.public_client;
            if rotate {
                tokens::mark_rotated(c, &old_hash, now)?;
                tokens::insert(
                    c,
                    &TokenRecord {
                        hash: rotated_hash.clone(),
                        created_at: now,
                        rotated_at: None,
                        revoked_at: None,
                        ..rt.clone()
                    },
                )?;
                parent = rotated_hash.clone();
            }
            let issued = TokenRecord {
                hash: access_hash.clone(),
                kind: TokenKind::Access,
                client_id: client_id.clone(),
                grant_id: Some(grant.id),
                member_id: rt.member_id.clone(),
                scopes: scopes.to_comma_separated(),
                created_at: now,
                authorized_at: rt.authorized_at,
                expires_at: access_exp,
                revoked_at: None,
                refresh_hash: Some(parent),
                code_hash: lineage,
                rotated_at: None,
                nonce: None,
                public_client: rt.public_client,
                auth_time: rt.auth_time,
            };
            tokens::insert(c, &issued)?;
            Ok(RefreshOutcome::Issued {
                claims: token_scopes(&st, &issued, &approved),
                scopes,
                access_expires_in: access_exp - now,
                rotated: rotate,
                refresh_remaining: rt.expires_at - now,
                member_id: rt.member_id.as_deref().map(str::to_string),
                nonce: None,
                auth_time: rt.auth_time,
            })
        })
        .await
        .map_err(store_unavailable)?;
    match outcome {
        RefreshOutcome::Refused(e) => Err(e),
        RefreshOutcome::Unknown(e) => {
            // Nothing by that value exists: possibly a guess, counted against the address.
            guess.failed();
            Err(e)
        }
        RefreshOutcome::Issued {
            scopes,
            claims,
            access_expires_in,
            rotated: was_rotated,
            refresh_remaining,
            member_id,
            nonce,
            auth_time,
        } => {
            let id_token = match &member_id {
                Some(m) => {
                    crate::oidc::id_token_for(
                        state,
                        &client.app.client_id,
                        m,
                        &claims,
                        nonce.as_deref(),
                        auth_time,
                    )
                    .await
                }
                None => Ok(None),
            };
            let id_token = match id_token {
                Ok(t) => t,
                Err(e) => {
                    let mut undelivered = vec![access_hash_of(state, &access)];
                    if was_rotated {
                        undelivered.push(access_hash_of(state, &rotated));
                    }
                    return Err(id_token_failed(state, e, undelivered).await);
                }
            };
            let issued = Issued {
                access,
                // Confidential clients keep their refresh token (LinkedIn returns the same one).
                refresh: Some(if was_rotated {
                    rotated
                } else {
                    Secret::new(presented)
                }),
                access_expires_in,
                refresh_expires_in: Some(refresh_remaining),
                scopes,
            };
            Ok(token_response(state, &issued, id_token))
        }
    }
}

async fn client_credentials(
    state: &ServiceState,
    headers: &HeaderMap,
    form: &Params,
) -> Result<Response, OAuthError> {
    let client = authenticate(state, headers, form, false).await?;
    if !client.app.client_credentials {
        // LinkedIn answers 401 access_denied (reference 2.4); RFC 6749 5.2 names a grant the
        // client may not use `unauthorized_client`, with 400.
        let (status, code) = match state.config.compat {
            Compat::Standard => (StatusCode::BAD_REQUEST, "unauthorized_client"),
            Compat::Linkedin => (StatusCode::UNAUTHORIZED, "access_denied"),
        };
        return Err(OAuthError::new(
            status,
            code,
            "This application is not allowed to create application tokens",
        ));
    }
    let requested = match form.get("scope") {
        Some(s) => Some(ScopeSet::parse(s).map_err(|e| {
            OAuthError::new(StatusCode::BAD_REQUEST, "invalid_scope", e.to_string())
        })?),
        None => None,
    };
    let effective = state.effective_permissions(&client.approved);
    let scopes =
        resolve_application_scopes(&effective, requested.as_ref()).map_err(|r| match r {
            AppScopeRefusal::NoneHeld => OAuthError::new(
                StatusCode::BAD_REQUEST,
                "invalid_scope",
                "no approved program grants this application an application permission",
            ),
            AppScopeRefusal::NotHeld(s) => OAuthError::new(
                StatusCode::BAD_REQUEST,
                "invalid_scope",
                format!(
                    "Scope \"{s}\" is not an application permission granted to your application"
                ),
            ),
        })?;
    let now = state.now();
    let access = Secret::generate(state.entropy.as_ref(), "AQ");
    let record = TokenRecord {
        hash: state.keys.token_hash.hash(&access).as_str().to_string(),
        kind: TokenKind::Access,
        client_id: client.app.client_id.clone(),
        grant_id: None,
        member_id: None,
        scopes: scopes.to_comma_separated(),
        created_at: now,
        authorized_at: now,
        expires_at: now + APP_TOKEN_TTL,
        revoked_at: None,
        refresh_hash: None,
        code_hash: None,
        rotated_at: None,
        nonce: None,
        public_client: false,
        auth_time: 0,
    };
    // Durable before it is returned: the write resolves only after the commit.
    state
        .store
        .write(move |c| tokens::insert(c, &record))
        .await
        .map_err(store_unavailable)?;
    state
        .metrics
        .tokens_issued
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let body = match state.config.compat {
        Compat::Standard => {
            json!({"access_token": access.expose(), "expires_in": APP_TOKEN_TTL, "token_type": "Bearer", "scope": scopes.to_space_separated()})
        }
        // LinkedIn's 2-legged response has neither scope nor token_type (reference section 2).
        Compat::Linkedin => json!({"access_token": access.expose(), "expires_in": APP_TOKEN_TTL}),
    };
    Ok(no_store(StatusCode::OK, body))
}
