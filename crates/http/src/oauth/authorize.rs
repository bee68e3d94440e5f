//! GET|POST /oauth/v2/authorization and /oauth/native-pkce/authorization: validate the request,
//! sign the member in, ask for consent, issue the code (DOMAIN.md, the authorization flow).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use maud::html;
use scopegate_app::authorize::{Answer, IssueCode, Issued};
use scopegate_core::model::{App as AppRecord, Capability, Member};
use scopegate_core::oauth::{resolve_member_scopes, Consent, ResolvedScopes};
use scopegate_core::oidc_request::{ClaimsRequest, Prompt};
use scopegate_core::portal::effective_permissions;
use scopegate_core::redirect::matches_registered;
use scopegate_core::ScopeSet;

use crate::form::{encode, FormError, Params};
use crate::web::layout::{self, csrf_field, error_page, page};
use crate::web::session::{self, SignedIn};
use scopegate_app::config::Compat;
use scopegate_app::signing::{pairwise_sub, verify_id_token_hint, HintFailure};
use scopegate_app::state::{Service, ServiceState};

/// A validated authorization request.
#[derive(Debug, Clone)]
pub struct AuthRequest {
    pub app: AppRecord,
    pub redirect_uri: String,
    pub state: Option<String>,
    pub resolved: ResolvedScopes,
    pub code_challenge: Option<String>,
    pub nonce: Option<String>,
    pub prompt: Prompt,
    /// OIDC max_age: the longest time since sign-in the member may have (seconds).
    pub max_age: Option<i64>,
    /// OIDC login_hint: prefills the sign-in form.
    pub login_hint: Option<String>,
    /// The only End-User this request may be answered for: the `sub` of a verified
    /// `id_token_hint`, or an ID token `sub` value in the `claims` parameter (OIDC Core 3.1.2.1,
    /// 5.5.1). Pairwise, so it is compared with the member's `sub` for this app.
    pub required_sub: Option<String>,
    /// The OIDC Core 5.5 `claims` request. Claims are released by the consented scopes (see
    /// docs/oauth.md); the request is kept for the rules it carries (`sub`, essential `acr`).
    pub claims: Option<ClaimsRequest>,
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
pub fn redirect_to(app: &Service, redirect_uri: &str, params: &[(&str, &str)]) -> Response {
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
    app: &Service,
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
pub async fn validate(
    app: &Service,
    params: &Params,
    native: bool,
) -> Result<AuthRequest, Rejection> {
    let (record, approved, redirect_uri) = trusted_client(app, params, native).await?;
    let state = params.get("state").map(str::to_string);
    let fail = |(error, description): Refusal| {
        Rejection::Redirect(error_redirect(
            app,
            &redirect_uri,
            state.as_deref(),
            error,
            &description,
        ))
    };
    let code_challenge = checked_shape(params, native).map_err(&fail)?;
    let resolved = scopes_of(app, params, &record, &approved).map_err(&fail)?;
    let oidc = oidc_params(app, params, &record.client_id)
        .await
        .map_err(&fail)?;
    // Accepted and deliberately not acted on (docs/oauth.md): ui_locales and claims_locales
    // (pages and claims exist in English only, and OIDC Core 3.1.2.1 says unsupported locales
    // SHOULD NOT cause an error), display (one responsive page serves every value), acr_values
    // (voluntary, and scopegate asserts no acr). Unknown parameters are ignored (RFC 6749 3.1).
    Ok(AuthRequest {
        app: record,
        redirect_uri,
        state,
        resolved,
        code_challenge,
        nonce: oidc.nonce,
        prompt: oidc.prompt,
        max_age: oidc.max_age,
        login_hint: params
            .get("login_hint")
            .map(|h| h.chars().take(254).collect()),
        required_sub: oidc.required_sub,
        claims: oidc.claims,
        native,
        query: params
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect::<Vec<_>>()
            .join("&"),
    })
}

/// A refusal sent back to the verified redirect URL: the error code and its description.
type Refusal = (&'static str, String);

fn refuse(error: &'static str, description: &str) -> Refusal {
    (error, description.to_string())
}

/// The client and redirect URL, verified before anything goes back to the client: every
/// failure here is a page on scopegate (RFC 6749 4.1.2.1).
async fn trusted_client(
    app: &Service,
    params: &Params,
    native: bool,
) -> Result<(AppRecord, Vec<String>, String), Rejection> {
    let Some(client_id) = params.get("client_id") else {
        return Err(Rejection::Page(error_page(
            StatusCode::BAD_REQUEST,
            "Client_id doesn't match",
            "The request has no client_id.",
        )));
    };
    let found = scopegate_app::authorize::client(app, client_id)
        .await
        .map_err(|e| {
            Rejection::Page(crate::web::layout::unavailable_page(
                "authorization",
                &e,
                "Please try again in a moment.",
            ))
        })?;
    let Some(scopegate_app::authorize::Client {
        app: record,
        redirect_uris: registered,
        approved_programs: approved,
    }) = found
    else {
        return Err(Rejection::Page(error_page(
            StatusCode::UNAUTHORIZED,
            "Client_id doesn't match",
            "The client_id does not belong to any registered application.",
        )));
    };
    if native && !record.has(Capability::NativePkce) {
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
    Ok((record, approved, redirect_uri.to_string()))
}

/// The response type, the unsupported request objects and PKCE; the code challenge if any.
fn checked_shape(params: &Params, native: bool) -> Result<Option<String>, Refusal> {
    match params.get("response_type") {
        Some("code") => {}
        None => {
            return Err(refuse(
                "invalid_request",
                "A required parameter \"response_type\" is missing",
            ))
        }
        Some(_) => {
            return Err(refuse(
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
            return Err(refuse(
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
                return Err(refuse("invalid_request", "code_challenge must be the base64url SHA-256 of the code verifier (43 characters)"));
            }
            Some(ch.to_string())
        }
        (Some(_), _) => {
            return Err(refuse(
                "invalid_request",
                "code_challenge_method must be S256",
            ))
        }
        (None, Some(_)) => {
            return Err(refuse(
                "invalid_request",
                "code_challenge_method was sent without code_challenge",
            ))
        }
        (None, None) if native => {
            return Err(refuse(
                "invalid_request",
                "the native PKCE flow requires code_challenge with code_challenge_method=S256",
            ))
        }
        (None, None) => None,
    };
    Ok(code_challenge)
}

/// The scopes the request resolves to under the app's approved programs.
fn scopes_of(
    app: &Service,
    params: &Params,
    record: &AppRecord,
    approved: &[String],
) -> Result<ResolvedScopes, Refusal> {
    let today = scopegate_app::clock::date_of(app.now());
    let mut requested = match params.get("scope") {
        Some(s) => ScopeSet::parse(s).map_err(|e| refuse("invalid_scope", &e.to_string()))?,
        None => ScopeSet::default(),
    };
    // Seed 002: without `scope`, the app's default scopes apply only before the sunset or under
    // an extension a platform admin granted; otherwise the request is refused below.
    if requested.is_empty()
        && scopegate_core::oauth::default_scopes_allowed(
            app.catalog.platform.default_scope_sunset,
            today,
            record.extension_until.map(scopegate_app::clock::date_of),
        )
    {
        requested = record.default_scopes.clone();
    }
    let effective = effective_permissions(&app.catalog, approved);
    let resolved: ResolvedScopes =
        resolve_member_scopes(&app.catalog, &effective, &requested, today).map_err(|refusal| {
            let mut description = refusal.description();
            if app.config.compat == Compat::Linkedin {
                // LinkedIn sends the quotes HTML-escaped (reference 1.4).
                description = description.replace('"', "&quot;");
            }
            refuse("unauthorized_scope_error", &description)
        })?;
    Ok(resolved)
}

/// The OpenID Connect parameters of a request.
struct OidcParams {
    max_age: Option<i64>,
    nonce: Option<String>,
    prompt: Prompt,
    claims: Option<ClaimsRequest>,
    required_sub: Option<String>,
}

/// max_age, nonce, prompt, claims and id_token_hint (OIDC Core 3.1.2.1, 5.5).
async fn oidc_params(
    app: &Service,
    params: &Params,
    client_id: &str,
) -> Result<OidcParams, Refusal> {
    let max_age = match params.get("max_age") {
        None => None,
        Some(v) => match v.parse::<i64>() {
            Ok(n) if n >= 0 => Some(n),
            _ => {
                return Err(refuse(
                    "invalid_request",
                    "max_age must be a non-negative number of seconds",
                ))
            }
        },
    };
    let nonce = params.get("nonce").map(|n| n.chars().take(512).collect());
    let prompt = Prompt::parse(params.get("prompt"))
        .map_err(|e| refuse("invalid_request", &e.to_string()))?;
    // OIDC Core 5.5: malformed JSON is the client's error; a well-formed request for claims we
    // do not have is not.
    let claims = params
        .get("claims")
        .map(ClaimsRequest::parse)
        .transpose()
        .map_err(|e| refuse("invalid_request", &e.to_string()))?;
    if claims
        .as_ref()
        .is_some_and(|c| c.essential_acr_values().is_some())
    {
        // OIDC Core 5.5.1.1: an essential acr that cannot be met is a failed authentication.
        // scopegate has one way to sign in and asserts no acr value, so none can be met.
        return Err(refuse(
            "unmet_authentication_requirements",
            "the essential acr values requested cannot be met: this server asserts no acr",
        ));
    }
    let hinted = match params.get("id_token_hint") {
        None => None,
        Some(hint) => match verify_id_token_hint(app, hint, client_id).await {
            Ok(sub) => Some(sub),
            Err(HintFailure::Invalid(e)) => return Err(refuse("invalid_request", &e.to_string())),
            Err(HintFailure::Store) => {
                return Err(refuse("temporarily_unavailable", "Please try again"))
            }
        },
    };
    let required_sub =
        match (hinted, claims.as_ref().and_then(|c| c.required_sub())) {
            (Some(h), Some(c)) if h != c => return Err(refuse(
                "invalid_request",
                "id_token_hint and the sub value of the claims parameter name different End-Users",
            )),
            (Some(h), _) => Some(h),
            (None, c) => c.map(str::to_string),
        };
    Ok(OidcParams {
        max_age,
        nonce,
        prompt,
        claims,
        required_sub,
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
    State(state): State<ServiceState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    entry(&state, method, uri, headers, body, false).await
}

/// GET|POST /oauth/native-pkce/authorization
pub async fn authorize_native(
    State(state): State<ServiceState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    entry(&state, method, uri, headers, body, true).await
}

/// A request the strict parser refused (a repeated parameter, a control character) still goes
/// back to the client as `invalid_request` when its client and redirect URL are unambiguous and
/// registered (RFC 6749 4.1.2.1); otherwise it gets the error page. Only client_id, redirect_uri
/// and state are read, each only when given exactly once.
async fn unparseable(state: &ServiceState, raw: &str, e: &FormError, native: bool) -> Response {
    let page = || error_page(StatusCode::BAD_REQUEST, "Invalid request", &e.to_string());
    let once = |name: &str| {
        let mut values = url::form_urlencoded::parse(raw.as_bytes())
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned());
        // The lenient parser replaces invalid UTF-8 with U+FFFD: such a value is no usable name.
        match (values.next(), values.next()) {
            (Some(v), None) if !v.chars().any(|c| c.is_control() || c == '\u{FFFD}') => Some(v),
            _ => None,
        }
    };
    let (Some(client_id), Some(redirect_uri)) = (once("client_id"), once("redirect_uri")) else {
        return page();
    };
    let request_state = once("state");
    let mut query = format!(
        "client_id={}&redirect_uri={}",
        encode(&client_id),
        encode(&redirect_uri)
    );
    if let Some(s) = &request_state {
        query.push_str(&format!("&state={}", encode(s)));
    }
    let Ok(trusted) = Params::parse(&query) else {
        return page();
    };
    match validate(state, &trusted, native).await {
        Err(Rejection::Page(p)) => p,
        // The client and the redirect URL passed: the rest of the request is what failed.
        _ => error_redirect(
            state,
            &redirect_uri,
            request_state.as_deref(),
            "invalid_request",
            &e.to_string(),
        ),
    }
}

async fn entry(
    state: &ServiceState,
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
        Some(Err(e)) => return unparseable(state, raw.as_deref().unwrap_or(""), &e, native).await,
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
    let signed_in = match session::current(state, &headers).await {
        Ok(s) => s,
        Err(e) => return crate::web::layout::failure_page(&e),
    };
    let now = state.now();
    // OIDC Core 3.1.2.1: prompt=login always asks for a fresh sign-in, max_age when the last
    // one is older (max_age=0 is prompt=login, errata set 2), and an id_token_hint when someone
    // else is signed in.
    let usable = |s: &SignedIn| {
        !req.prompt.login
            && req
                .max_age
                // Whole seconds: an elapsed time of m seconds may really be up to m + 1, so
                // it counts as older than max_age (erring towards a fresh sign-in).
                .is_none_or(|m| m > 0 && now - s.session.auth_time < m)
            && is_required_member(state, &req, &s.member)
    };
    let Some(signed_in) = signed_in.filter(usable) else {
        return sign_in_first(state, &req);
    };
    // This request may come from any site the member visits (a navigation, a form: SameSite=Lax
    // lets both carry the session), so it never records consent: it either answers from the
    // grant as stored, or shows the screen whose Allow (a POST with the CSRF token) records it.
    let decision = consent_decision(state, &req, &signed_in.member).await;
    match decision {
        Ok(Consent::Skip) if !req.prompt.consent => {
            issue_code(state, &req, &signed_in, Answer::Covered).await
        }
        Ok(_) if req.prompt.none => consent_required(state, &req),
        Ok(Consent::Show { reauthorize }) => consent_page(state, &req, &signed_in, reauthorize),
        Ok(Consent::Skip) => consent_page(state, &req, &signed_in, false),
        Err(r) => r,
    }
}

/// No usable session: to the sign-in page, coming back to the request afterwards, or
/// `login_required` for `prompt=none` (OIDC Core 3.1.2.6).
fn sign_in_first(state: &Service, req: &AuthRequest) -> Response {
    if req.prompt.none {
        let description = if req.required_sub.is_some() {
            "The End-User the request names is not signed in"
        } else {
            "The member is not signed in"
        };
        return error_redirect(
            state,
            &req.redirect_uri,
            req.state.as_deref(),
            "login_required",
            description,
        );
    }
    let next = format!("{}?{}", endpoint(req.native), after_sign_in(&req.query));
    let mut res = StatusCode::FOUND.into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("/login?next={}", encode(&next))) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    res
}

/// OIDC Core 3.1.2.6: `prompt=none` and the request needs the consent screen.
fn consent_required(state: &Service, req: &AuthRequest) -> Response {
    error_redirect(
        state,
        &req.redirect_uri,
        req.state.as_deref(),
        "consent_required",
        "The member must consent to the requested permissions",
    )
}

/// True unless the request names another End-User than `member` (id_token_hint, or a `sub`
/// value in the claims parameter).
fn is_required_member(state: &Service, req: &AuthRequest, member: &Member) -> bool {
    req.required_sub
        .as_deref()
        .is_none_or(|sub| pairwise_sub(state, &req.app.client_id, &member.id) == sub)
}

/// The request to resume once the member has signed in. `prompt=login` and `max_age` have been
/// honoured by that sign-in, so they are dropped: kept, they would send the member back to the
/// sign-in page whenever the round trip crossed a second boundary (`max_age=0`). Other prompt
/// values (`consent`) and the id_token_hint stay: the hint is checked again against whoever
/// signed in.
fn after_sign_in(query: &str) -> String {
    let Ok(params) = Params::parse(query) else {
        return query.to_string();
    };
    params
        .iter()
        .filter(|(k, _)| *k != "max_age")
        .filter_map(|(k, v)| {
            if k != "prompt" {
                return Some((k, v.to_string()));
            }
            let rest: Vec<&str> = v.split(' ').filter(|p| *p != "login").collect();
            let rest = rest.join(" ");
            (!rest.trim().is_empty()).then_some((k, rest))
        })
        .map(|(k, v)| format!("{}={}", encode(k), encode(&v)))
        .collect::<Vec<_>>()
        .join("&")
}

async fn consent_decision(
    state: &Service,
    req: &AuthRequest,
    member: &Member,
) -> Result<Consent, Response> {
    scopegate_app::authorize::consent_decision(
        state,
        &req.app.client_id,
        &member.id,
        &req.resolved.scopes,
    )
    .await
    .map_err(|e| {
        crate::web::layout::unavailable_page(
            "authorization: reading the grant",
            &e,
            "Please try again in a moment.",
        )
    })
}

fn consent_page(
    state: &Service,
    req: &AuthRequest,
    signed_in: &SignedIn,
    reauthorize: bool,
) -> Response {
    let app = &req.app;
    let platform = &state.catalog.platform.name;
    let viewer = signed_in.viewer();
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
                        // No image from the app's site: the page that carries the authorization
                        // request loads nothing from elsewhere (RFC 9700 4.2.4, Referer leaks).
                        div.logo { (layout::initial(&app.name)) }
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
                    // Where the answer goes, so a member can tell a look-alike app (OIDC Core 11).
                    p.hint { "You will be sent back to " strong { (redirect_host(&req.redirect_uri)) } "." }
                    @if !app.privacy_policy_url.is_empty() {
                        // As text, not a link: this page links to nothing outside scopegate.
                        p.hint { (app.name) "'s privacy policy: " code { (app.privacy_policy_url) } }
                    }
                    p.hint { "You can stop its access at any time on " a href="/psettings/permitted-services" { "Permitted services" } "." }
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

/// The host (and port) of a redirect URL, as the consent page shows it.
fn redirect_host(uri: &str) -> String {
    url::Url::parse(uri)
        .ok()
        .and_then(|u| {
            u.host_str()
                .map(|h| u.port().map_or(h.to_string(), |p| format!("{h}:{p}")))
        })
        .unwrap_or_else(|| uri.to_string())
}

/// POST /oauth/v2/authorization/consent: Allow or Cancel.
pub async fn consent(
    State(state): State<ServiceState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
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
    let signed_in = match session::current(&state, &headers).await {
        Ok(s) => s,
        Err(e) => return crate::web::layout::failure_page(&e),
    };
    let Some(signed_in) = signed_in else {
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
    // The member may have switched accounts in another tab since the screen was shown.
    if !is_required_member(&state, &req, &signed_in.member) {
        return error_redirect(
            &state,
            &req.redirect_uri,
            req.state.as_deref(),
            "login_required",
            "The End-User the request names is not signed in",
        );
    }
    match form.get("action") {
        Some("allow") => issue_code(&state, &req, &signed_in, Answer::Consented).await,
        _ => error_redirect(
            &state,
            &req.redirect_uri,
            req.state.as_deref(),
            cancelled(&state, "user_cancelled_authorize"),
            "The member refused to authorize the permissions request from your application",
        ),
    }
}

/// The error code for a member who cancelled: RFC 6749 4.1.2.1's `access_denied`, or LinkedIn's
/// own code (`user_cancelled_login`, `user_cancelled_authorize`) in LinkedIn mode.
pub fn cancelled(state: &Service, linkedin: &'static str) -> &'static str {
    match state.config.compat {
        Compat::Standard => "access_denied",
        Compat::Linkedin => linkedin,
    }
}

/// Issues a code (`scopegate_app::authorize::issue_code`) and sends it to the client.
async fn issue_code(
    state: &Service,
    req: &AuthRequest,
    signed_in: &SignedIn,
    answer: Answer,
) -> Response {
    let input = IssueCode {
        client_id: &req.app.client_id,
        member: &signed_in.member,
        session: &signed_in.session,
        redirect_uri: &req.redirect_uri,
        scopes: &req.resolved.scopes,
        code_challenge: req.code_challenge.as_deref(),
        nonce: req.nonce.as_deref(),
        native: req.native,
        request: &req.query,
        ttl: scopegate_app::oauth::code_ttl(state.config.compat),
        answer,
    };
    let code = match scopegate_app::authorize::issue_code(state, input).await {
        Ok(Issued::Code(code)) => code,
        Ok(Issued::NotCovered) if req.prompt.none => return consent_required(state, req),
        Ok(Issued::NotCovered) => return consent_page(state, req, signed_in, false),
        Err(e) => {
            tracing::error!(error = %e, "authorization: storing the code failed");
            return error_redirect(
                state,
                &req.redirect_uri,
                req.state.as_deref(),
                "temporarily_unavailable",
                "Please try again",
            );
        }
    };
    let mut params = vec![("code", code.expose())];
    if let Some(s) = &req.state {
        params.push(("state", s));
    }
    redirect_to(state, &req.redirect_uri, &params)
}
