//! GET|POST /oauth/v2/authorization and /oauth/native-pkce/authorization: validate the request,
//! sign the member in, ask for consent, issue the code (DOMAIN.md, the authorization flow).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use maud::html;
use scopegate_core::model::{App as AppRecord, CodeRecord, Member};
use scopegate_core::oauth::{consent_needed, resolve_member_scopes, Consent, ResolvedScopes};
use scopegate_core::portal::effective_permissions;
use scopegate_core::redirect::matches_registered;
use scopegate_core::{ScopeSet, Secret};
use scopegate_store::{apps, tokens};

use crate::config::Compat;
use crate::form::{encode, Params};
use crate::state::{App, AppState};
use crate::web::layout::{self, csrf_field, error_page, page, Viewer};
use crate::web::session::{self, SignedIn};

/// A validated authorization request.
#[derive(Debug, Clone)]
pub struct AuthRequest {
    pub app: AppRecord,
    pub redirect_uri: String,
    pub state: Option<String>,
    pub resolved: ResolvedScopes,
    pub code_challenge: Option<String>,
    pub nonce: Option<String>,
    pub prompt: Option<String>,
    /// OIDC max_age: the longest time since sign-in the member may have (seconds).
    pub max_age: Option<i64>,
    /// OIDC login_hint: prefills the sign-in form.
    pub login_hint: Option<String>,
    pub native: bool,
    /// The request's parameters as received, to carry through sign-in and consent.
    pub query: String,
}

/// Why a request cannot proceed.
pub enum Rejection {
    /// Shown on scopegate: the client or redirect URL cannot be trusted (RFC 6749 4.1.2.1).
    Page(Response),
    /// Sent back to the verified redirect URL.
    Redirect(Response),
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        match self {
            Rejection::Page(r) | Rejection::Redirect(r) => r,
        }
    }
}

/// Builds the redirect to the client with `params` appended, plus `iss` (RFC 9207).
pub fn redirect_to(app: &App, redirect_uri: &str, params: &[(&str, &str)]) -> Response {
    let mut url = match url::Url::parse(redirect_uri) {
        Ok(u) => u,
        Err(_) => {
            return error_page(
                StatusCode::BAD_REQUEST,
                "Invalid redirect URL",
                "The redirect URL is not valid.",
            )
        }
    };
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in params {
            q.append_pair(k, v);
        }
        q.append_pair("iss", &app.config.issuer());
    }
    let mut res = StatusCode::FOUND.into_response();
    if let Ok(v) = HeaderValue::from_str(url.as_str()) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// An error sent back to the client, with `state`.
pub fn error_redirect(
    app: &App,
    req_redirect: &str,
    state: Option<&str>,
    error: &str,
    description: &str,
) -> Response {
    let mut params = vec![("error", error), ("error_description", description)];
    if let Some(s) = state {
        params.push(("state", s));
    }
    redirect_to(app, req_redirect, &params)
}

fn same_loopback_ignoring_port(requested: &str, registered: &[String]) -> bool {
    let strip = |s: &str| {
        url::Url::parse(s)
            .ok()
            .filter(|u| {
                u.host()
                    .is_some_and(|h| scopegate_core::redirect::is_loopback_host(&h))
            })
            .map(|mut u| {
                let _ = u.set_port(None);
                u.to_string()
            })
    };
    let Some(r) = strip(requested) else {
        return false;
    };
    registered
        .iter()
        .any(|reg| strip(reg).as_deref() == Some(r.as_str()))
}

/// Validates an authorization request. Until the client and redirect URL are verified, every
/// error is a page on scopegate; after, errors go back to the client.
pub async fn validate(app: &App, params: &Params, native: bool) -> Result<AuthRequest, Rejection> {
    let Some(client_id) = params.get("client_id") else {
        return Err(Rejection::Page(error_page(
            StatusCode::BAD_REQUEST,
            "Client_id doesn't match",
            "The request has no client_id.",
        )));
    };
    let id = client_id.to_string();
    let found = app
        .store
        .read(move |c| {
            let Some(a) = apps::get(c, &id)? else {
                return Ok(None);
            };
            Ok(Some((
                a,
                apps::redirect_uris(c, &id)?,
                apps::approved_programs(c, &id)?,
            )))
        })
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "authorization: store failed");
            Rejection::Page(error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Temporarily unavailable",
                "Please try again in a moment.",
            ))
        })?;
    let Some((record, registered, approved)) = found else {
        return Err(Rejection::Page(error_page(
            StatusCode::UNAUTHORIZED,
            "Client_id doesn't match",
            "The client_id does not belong to any registered application.",
        )));
    };
    if native && !record.native_pkce {
        return Err(Rejection::Page(error_page(
            StatusCode::FORBIDDEN,
            "Not enough permissions",
            "Not enough permissions to access Native PKCE protocol.",
        )));
    }
    let Some(redirect_uri) = params.get("redirect_uri") else {
        return Err(Rejection::Page(error_page(
            StatusCode::BAD_REQUEST,
            "Redirect_uri doesn't match",
            "The request has no redirect_uri.",
        )));
    };
    // RFC 9700 2.1: exact string matching, except the port of a native app's loopback URL.
    let matched = if native {
        same_loopback_ignoring_port(redirect_uri, &registered)
    } else {
        matches_registered(redirect_uri, &registered).is_some()
    };
    if !matched {
        return Err(Rejection::Page(error_page(
            StatusCode::UNAUTHORIZED,
            "Redirect_uri doesn't match",
            "The redirect_uri does not match any redirect URL registered for this application.",
        )));
    }
    let redirect_uri = redirect_uri.to_string();
    let state = params.get("state").map(str::to_string);
    let fail = |error: &str, description: &str| {
        Rejection::Redirect(error_redirect(
            app,
            &redirect_uri,
            state.as_deref(),
            error,
            description,
        ))
    };
    match params.get("response_type") {
        Some("code") => {}
        None => {
            return Err(fail(
                "invalid_request",
                "A required parameter \"response_type\" is missing",
            ))
        }
        Some(_) => {
            return Err(fail(
                "unsupported_response_type",
                "response_type must be code",
            ))
        }
    }
    for unsupported in ["request", "request_uri", "registration"] {
        if params.has(unsupported) {
            let error = match unsupported {
                "request" => "request_not_supported",
                "request_uri" => "request_uri_not_supported",
                _ => "registration_not_supported",
            };
            return Err(fail(
                error,
                &format!("the {unsupported} parameter is not supported"),
            ));
        }
    }
    let code_challenge = match (
        params.get("code_challenge"),
        params.get("code_challenge_method"),
    ) {
        (Some(ch), Some("S256")) => {
            if ch.len() != 43
                || !ch
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(fail("invalid_request", "code_challenge must be the base64url SHA-256 of the code verifier (43 characters)"));
            }
            Some(ch.to_string())
        }
        (Some(_), _) => {
            return Err(fail(
                "invalid_request",
                "code_challenge_method must be S256",
            ))
        }
        (None, Some(_)) => {
            return Err(fail(
                "invalid_request",
                "code_challenge_method was sent without code_challenge",
            ))
        }
        (None, None) if native => {
            return Err(fail(
                "invalid_request",
                "the native PKCE flow requires code_challenge with code_challenge_method=S256",
            ))
        }
        (None, None) => None,
    };
    let today = crate::clock::date_of(app.now());
    let mut requested = match params.get("scope") {
        Some(s) => ScopeSet::parse(s).map_err(|e| fail("invalid_scope", &e.to_string()))?,
        None => ScopeSet::default(),
    };
    // Seed 002: without `scope`, the app's default scopes apply only before the sunset or under
    // an extension a platform admin granted; otherwise the request is refused below.
    if requested.is_empty()
        && scopegate_core::oauth::default_scopes_allowed(
            app.catalog.platform.default_scope_sunset,
            today,
            record.extension_until.map(crate::clock::date_of),
        )
    {
        requested = ScopeSet::parse(&record.default_scopes).unwrap_or_default();
    }
    let effective = effective_permissions(&app.catalog, &approved);
    let resolved =
        resolve_member_scopes(&app.catalog, &effective, &requested, today).map_err(|refusal| {
            let mut description = refusal.description();
            if app.config.compat == Compat::Linkedin {
                // LinkedIn sends the quotes HTML-escaped (reference 1.4).
                description = description.replace('"', "&quot;");
            }
            fail("unauthorized_scope_error", &description)
        })?;
    let max_age = match params.get("max_age") {
        None => None,
        Some(v) => match v.parse::<i64>() {
            Ok(n) if n >= 0 => Some(n),
            _ => {
                return Err(fail(
                    "invalid_request",
                    "max_age must be a non-negative number of seconds",
                ))
            }
        },
    };
    let nonce = params.get("nonce").map(|n| n.chars().take(512).collect());
    Ok(AuthRequest {
        app: record,
        redirect_uri,
        state,
        resolved,
        code_challenge,
        nonce,
        prompt: params.get("prompt").map(str::to_string),
        max_age,
        login_hint: params
            .get("login_hint")
            .map(|h| h.chars().take(254).collect()),
        native,
        query: params
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect::<Vec<_>>()
            .join("&"),
    })
}

fn endpoint(native: bool) -> &'static str {
    if native {
        "/oauth/native-pkce/authorization"
    } else {
        "/oauth/v2/authorization"
    }
}

/// GET|POST /oauth/v2/authorization
pub async fn authorize(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    entry(&state, method, uri, headers, body, false).await
}

/// GET|POST /oauth/native-pkce/authorization
pub async fn authorize_native(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    entry(&state, method, uri, headers, body, true).await
}

async fn entry(
    state: &AppState,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
    native: bool,
) -> Response {
    let raw = if method == Method::POST {
        String::from_utf8(body.to_vec()).ok()
    } else {
        Some(uri.query().unwrap_or("").to_string())
    };
    let params = match raw.as_deref().map(Params::parse) {
        Some(Ok(p)) => p,
        Some(Err(e)) => {
            return error_page(StatusCode::BAD_REQUEST, "Invalid request", &e.to_string())
        }
        None => {
            return error_page(
                StatusCode::BAD_REQUEST,
                "Invalid request",
                "The request is not valid UTF-8.",
            )
        }
    };
    let req = match validate(state, &params, native).await {
        Ok(r) => r,
        Err(r) => return r.into_response(),
    };
    let signed_in = session::current(state, &headers).await;
    let prompt = req.prompt.clone().unwrap_or_default();
    let prompts: Vec<&str> = prompt.split(' ').collect();
    // OIDC Core 3.1.2.1: max_age forces a fresh sign-in when the last one is older.
    let now = state.now();
    let fresh = |s: &SignedIn| req.max_age.is_none_or(|m| now - s.session.auth_time <= m);
    let Some(signed_in) = signed_in.filter(|s| !prompts.contains(&"login") && fresh(s)) else {
        if prompts.contains(&"none") {
            return error_redirect(
                state,
                &req.redirect_uri,
                req.state.as_deref(),
                "login_required",
                "The member is not signed in",
            );
        }
        // prompt=login is honoured once: the sign-in page sends the member back without it.
        let query = req
            .query
            .split('&')
            .filter(|kv| !kv.starts_with("prompt="))
            .collect::<Vec<_>>()
            .join("&");
        let next = format!("{}?{}", endpoint(native), query);
        let mut res = StatusCode::FOUND.into_response();
        if let Ok(v) = HeaderValue::from_str(&format!("/login?next={}", encode(&next))) {
            res.headers_mut().insert(header::LOCATION, v);
        }
        return res;
    };
    let decision = consent_decision(state, &req, &signed_in.member).await;
    match decision {
        Ok(Consent::Skip) if !prompts.contains(&"consent") => {
            issue_code(state, &req, &signed_in).await
        }
        Ok(_) if prompts.contains(&"none") => error_redirect(
            state,
            &req.redirect_uri,
            req.state.as_deref(),
            "consent_required",
            "The member must consent to the requested permissions",
        ),
        Ok(Consent::Show { reauthorize }) => consent_page(state, &req, &signed_in, reauthorize),
        Ok(Consent::Skip) => consent_page(state, &req, &signed_in, false),
        Err(r) => r,
    }
}

async fn consent_decision(
    state: &App,
    req: &AuthRequest,
    member: &Member,
) -> Result<Consent, Response> {
    let (client_id, member_id, now) = (req.app.client_id.clone(), member.id.clone(), state.now());
    let found = state
        .store
        .read(move |c| {
            let Some(g) = tokens::live_grant(c, &client_id, &member_id)? else {
                return Ok(None);
            };
            let live = tokens::grant_has_live_access_token(c, g.id, now)?;
            Ok(Some((g, live)))
        })
        .await
        .map_err(|_| {
            error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Temporarily unavailable",
                "Please try again in a moment.",
            )
        })?;
    let granted = found
        .as_ref()
        .map(|(g, _)| ScopeSet::parse(&g.scopes).unwrap_or_default());
    let live = found.as_ref().is_some_and(|(_, l)| *l);
    Ok(consent_needed(
        &state.catalog,
        granted.as_ref(),
        live,
        &req.resolved.scopes,
    ))
}

fn consent_page(
    state: &App,
    req: &AuthRequest,
    signed_in: &SignedIn,
    reauthorize: bool,
) -> Response {
    let app = &req.app;
    let platform = &state.catalog.platform.name;
    let viewer = Viewer {
        member: Some(&signed_in.member),
        csrf: Some(&signed_in.session.csrf),
    };
    let messages: Vec<String> = req
        .resolved
        .scopes
        .iter()
        .filter_map(|s| state.catalog.permission(s).and_then(|p| p.consent.clone()))
        .collect();
    layout::respond(
        StatusCode::OK,
        page(
            &format!("Allow {}", app.name),
            &viewer,
            true,
            html! {
                div.card {
                    div.app-head {
                        div.logo {
                            @if app.logo_url.starts_with("https://") { img src=(app.logo_url) alt=""; } @else { (layout::initial(&app.name)) }
                        }
                        div {
                            h1 { (app.name) }
                            p.lede { "wants to access your " (platform) " account" }
                        }
                    }
                    @if reauthorize {
                        div.notice.warn { "Permissions have changed. Please re-authorize your account to continue." }
                    }
                    p { "Signed in as " strong { (signed_in.member.full_name()) } ". " (app.name) " will be able to:" }
                    ul.consents { @for m in &messages { li { (m) } } }
                    @for (old, new) in &req.resolved.mapped {
                        p.hint { code { (old) } " has been replaced by " @for (i, n) in new.iter().enumerate() { @if i > 0 { ", " } code { (n) } } "." }
                    }
                    @if !app.privacy_policy_url.is_empty() {
                        p.hint { "See " (app.name) "'s " a href=(app.privacy_policy_url) rel="noopener noreferrer" { "privacy policy" } ". You can stop its access at any time on " a href="/psettings/permitted-services" { "Permitted services" } "." }
                    } @else {
                        p.hint { "You can stop its access at any time on " a href="/psettings/permitted-services" { "Permitted services" } "." }
                    }
                    form method="post" action="/oauth/v2/authorization/consent" {
                        (csrf_field(&signed_in.session.csrf))
                        input type="hidden" name="request" value=(req.query);
                        input type="hidden" name="native" value=(if req.native { "1" } else { "0" });
                        div.actions {
                            button type="submit" name="action" value="allow" { "Allow" }
                            button.secondary type="submit" name="action" value="cancel" { "Cancel" }
                        }
                    }
                }
            },
        ),
    )
}

/// POST /oauth/v2/authorization/consent: Allow or Cancel.
pub async fn consent(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let form = match std::str::from_utf8(&body).ok().map(Params::parse) {
        Some(Ok(f)) => f,
        _ => {
            return error_page(
                StatusCode::BAD_REQUEST,
                "Invalid request",
                "The form could not be read.",
            )
        }
    };
    let Some(signed_in) = session::current(&state, &headers).await else {
        return error_page(
            StatusCode::UNAUTHORIZED,
            "Signed out",
            "Your session ended. Start again from the application.",
        );
    };
    if !session::csrf_ok(&signed_in, form.get("csrf")) {
        return error_page(
            StatusCode::FORBIDDEN,
            "Invalid form",
            "The form expired or did not come from this site. Start again from the application.",
        );
    }
    let native = form.get("native") == Some("1");
    let params = match Params::parse(form.get("request").unwrap_or("")) {
        Ok(p) => p,
        Err(e) => return error_page(StatusCode::BAD_REQUEST, "Invalid request", &e.to_string()),
    };
    // Everything is validated again: hidden fields are client input like any other.
    let req = match validate(&state, &params, native).await {
        Ok(r) => r,
        Err(r) => return r.into_response(),
    };
    match form.get("action") {
        Some("allow") => issue_code(&state, &req, &signed_in).await,
        _ => error_redirect(
            &state,
            &req.redirect_uri,
            req.state.as_deref(),
            "user_cancelled_authorize",
            "The member refused to authorize the permissions request from your application",
        ),
    }
}

/// Records the grant and issues a code (one write: both or neither).
async fn issue_code(state: &App, req: &AuthRequest, signed_in: &SignedIn) -> Response {
    let code = Secret::generate(state.entropy.as_ref(), "AQ");
    let now = state.now();
    let record = CodeRecord {
        hash: state.keys.token_hash.hash(&code).as_str().to_string(),
        client_id: req.app.client_id.clone(),
        grant_id: 0,
        member_id: signed_in.member.id.clone(),
        redirect_uri: req.redirect_uri.clone(),
        scopes: req.resolved.scopes.to_comma_separated(),
        code_challenge: req.code_challenge.clone(),
        nonce: req.nonce.clone(),
        auth_time: signed_in.session.auth_time,
        created_at: now,
        expires_at: now + super::code_ttl(state.config.compat),
        consumed_at: None,
    };
    let stored = state
        .store
        .write(move |c| {
            let g = tokens::consent(c, &record.client_id, &record.member_id, &record.scopes, now)?;
            tokens::insert_code(
                c,
                &CodeRecord {
                    grant_id: g.id,
                    ..record.clone()
                },
            )
        })
        .await;
    if let Err(e) = stored {
        tracing::error!(error = %e, "authorization: storing the code failed");
        return error_redirect(
            state,
            &req.redirect_uri,
            req.state.as_deref(),
            "temporarily_unavailable",
            "Please try again",
        );
    }
    state
        .metrics
        .codes_issued
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut params = vec![("code", code.expose())];
    if let Some(s) = &req.state {
        params.push(("state", s));
    }
    redirect_to(state, &req.redirect_uri, &params)
}
