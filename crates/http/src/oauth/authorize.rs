//! GET|POST /oauth/v2/authorization and /oauth/native-pkce/authorization: validate the request,
//! sign the member in, ask for consent, issue the code (DOMAIN.md, the authorization flow).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use maud::html;
use scopegate_app::authorize::{
    trusted_client, validate, Answer, AuthorizeRequest, BeginError, IssueCode, Issued,
    PendingError, RedirectError, RequestId, RequestParams, Seed,
};
use scopegate_core::model::Member;
use scopegate_core::oauth::Consent;

use std::net::IpAddr;

use crate::form::{encode, FormError, Params};
use crate::web::layout::{self, csrf_field, error_page, page};
use crate::web::session::{self, SignedIn};
use crate::wire::redirect::{error_redirect, redirect_to, refused};
use scopegate_app::signing::pairwise_sub;
use scopegate_app::state::{Service, ServiceState};

impl RequestParams for Params {
    fn get(&self, name: &str) -> Option<&str> {
        Params::get(self, name)
    }

    fn encoded(&self) -> String {
        self.iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect::<Vec<_>>()
            .join("&")
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
    match trusted_client(state, Some(&client_id), Some(&redirect_uri), native).await {
        Err(r) => refused(state, r),
        // The client and the redirect URL passed: the rest of the request is what failed.
        Ok(_) => error_redirect(
            state,
            &redirect_uri,
            request_state.as_deref(),
            RedirectError::InvalidRequest,
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
    match validate(state, &params, native).await {
        Ok(req) => answer(state, &req, None, &headers).await,
        Err(r) => refused(state, r),
    }
}

/// GET /oauth/v2/authorization/continue?request=ID: a pending request, resumed after sign-in.
pub async fn resume(State(state): State<ServiceState>, uri: Uri, headers: HeaderMap) -> Response {
    let Some(id) = request_id(uri.query()) else {
        return expired_page();
    };
    match scopegate_app::authorize::pending(&state, &id).await {
        Ok(req) => answer(&state, &req, Some(&id), &headers).await,
        Err(e) => pending_failure(&e),
    }
}

/// The pending request id in a query or form (`request=ID`): the only thing the browser
/// carries for a request through sign-in and consent. Missing, repeated or malformed is none.
pub fn request_id(query: Option<&str>) -> Option<RequestId> {
    let params = Params::parse(query?).ok()?;
    RequestId::parse(params.get("request")?)
}

/// Where the member goes back to after signing in for pending request `id`.
pub fn continue_path(id: &RequestId) -> String {
    format!("/oauth/v2/authorization/continue?request={}", id.expose())
}

/// A pending request that cannot be resumed: started again from the app, never guessed at.
pub fn pending_failure(e: &PendingError) -> Response {
    match e {
        PendingError::Expired => expired_page(),
        PendingError::Failed(e) => crate::wire::page::unavailable_page(
            "authorization: reading the pending request",
            e,
            "Please try again in a moment.",
        ),
    }
}

fn expired_page() -> Response {
    error_page(
        StatusCode::BAD_REQUEST,
        "Request expired",
        "This sign-in request expired. Start again from the app.",
    )
}

/// Answers a validated request for whoever is signed in: the code, the consent screen, the
/// sign-in page or a `prompt=none` error. `id` is the request's pending id once it has one.
async fn answer(
    state: &Service,
    req: &AuthorizeRequest,
    id: Option<&RequestId>,
    headers: &HeaderMap,
) -> Response {
    let signed_in = match session::current(state, headers).await {
        Ok(s) => s,
        Err(e) => return crate::wire::page::failure_page(&e),
    };
    // Where the request came from: what a stored pending request is counted against.
    let addr = crate::peer::from_headers(headers);
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
            && is_required_member(state, req, &s.member)
    };
    let Some(signed_in) = signed_in.filter(usable) else {
        return sign_in_first(state, req, id, addr).await;
    };
    // This request may come from any site the member visits (a navigation, a form: SameSite=Lax
    // lets both carry the session), so it never records consent: it either answers from the
    // grant as stored, or shows the screen whose Allow (a POST with the CSRF token) records it.
    let decision = consent_decision(state, req, &signed_in.member).await;
    match decision {
        Ok(Consent::Skip) if !req.prompt.consent => {
            issue_code(state, req, id, &signed_in, Answer::Covered, addr).await
        }
        Ok(_) if req.prompt.none => consent_required(state, req),
        Ok(Consent::Show { reauthorize }) => {
            consent_page(state, req, id, &signed_in, reauthorize, addr).await
        }
        Ok(Consent::Skip) => consent_page(state, req, id, &signed_in, false, addr).await,
        Err(r) => r,
    }
}

/// No usable session: to the sign-in page, coming back to the request afterwards, or
/// `login_required` for `prompt=none` (OIDC Core 3.1.2.6).
async fn sign_in_first(
    state: &Service,
    req: &AuthorizeRequest,
    id: Option<&RequestId>,
    addr: Option<IpAddr>,
) -> Response {
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
            RedirectError::LoginRequired,
            description,
        );
    }
    let id = match pending_id(state, req, id, addr).await {
        Ok(id) => id,
        Err(r) => return r,
    };
    let next = continue_path(&id);
    let mut res = StatusCode::FOUND.into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("/login?next={}", encode(&next))) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    res
}

/// OIDC Core 3.1.2.6: `prompt=none` and the request needs the consent screen.
fn consent_required(state: &Service, req: &AuthorizeRequest) -> Response {
    error_redirect(
        state,
        &req.redirect_uri,
        req.state.as_deref(),
        RedirectError::ConsentRequired,
        "The member must consent to the requested permissions",
    )
}

/// True unless the request names another End-User than `member` (id_token_hint, or a `sub`
/// value in the claims parameter).
fn is_required_member(state: &Service, req: &AuthorizeRequest, member: &Member) -> bool {
    req.required_sub
        .as_deref()
        .is_none_or(|sub| pairwise_sub(state, &req.app.client_id, &member.id) == sub)
}

/// The request's pending id: the one it was resumed by, or a new one (the request is stored).
async fn pending_id(
    state: &Service,
    req: &AuthorizeRequest,
    id: Option<&RequestId>,
    addr: Option<IpAddr>,
) -> Result<RequestId, Response> {
    if let Some(id) = id {
        return Ok(id.clone());
    }
    scopegate_app::authorize::begin(state, req, addr)
        .await
        .map_err(|e| match e {
            BeginError::Throttled(wait) => {
                let mut res = error_page(
                    StatusCode::TOO_MANY_REQUESTS,
                    "Too many sign-in requests",
                    "Too many sign-in requests came from your network. Please try again in a few minutes.",
                );
                if let Ok(v) = HeaderValue::from_str(&wait.to_string()) {
                    res.headers_mut().insert(header::RETRY_AFTER, v);
                }
                res
            }
            BeginError::Failed(e) => crate::wire::page::unavailable_page(
                "authorization: storing the pending request",
                &e,
                "Please try again in a moment.",
            ),
        })
}

async fn consent_decision(
    state: &Service,
    req: &AuthorizeRequest,
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
        crate::wire::page::unavailable_page(
            "authorization: reading the grant",
            &e,
            "Please try again in a moment.",
        )
    })
}

async fn consent_page(
    state: &Service,
    req: &AuthorizeRequest,
    id: Option<&RequestId>,
    signed_in: &SignedIn,
    reauthorize: bool,
    addr: Option<IpAddr>,
) -> Response {
    let id = match pending_id(state, req, id, addr).await {
        Ok(id) => id,
        Err(r) => return r,
    };
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
                        // Only the pending request's id: the request itself stays on the server.
                        input type="hidden" name="request" value=(id.expose());
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
        Err(e) => return crate::wire::page::failure_page(&e),
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
    // The id and the member's answer are all the form is read for: the request was validated
    // when it arrived and is read back from the store, not from hidden fields.
    let Some(id) = form.get("request").and_then(RequestId::parse) else {
        return expired_page();
    };
    let req = match scopegate_app::authorize::pending(&state, &id).await {
        Ok(r) => r,
        Err(e) => return pending_failure(&e),
    };
    // The member may have switched accounts in another tab since the screen was shown.
    if !is_required_member(&state, &req, &signed_in.member) {
        return error_redirect(
            &state,
            &req.redirect_uri,
            req.state.as_deref(),
            RedirectError::LoginRequired,
            "The End-User the request names is not signed in",
        );
    }
    match form.get("action") {
        Some("allow") => {
            let addr = crate::peer::from_headers(&headers);
            issue_code(&state, &req, Some(&id), &signed_in, Answer::Consented, addr).await
        }
        Some("cancel") => {
            if let Err(e) = scopegate_app::authorize::forget(&state, &id).await {
                return crate::wire::page::failure_page(&e);
            }
            error_redirect(
                &state,
                &req.redirect_uri,
                req.state.as_deref(),
                RedirectError::CancelledAuthorization,
                "The member refused to authorize the permissions request from your application",
            )
        }
        _ => error_page(
            StatusCode::BAD_REQUEST,
            "Invalid form",
            "The form did not say Allow or Cancel.",
        ),
    }
}

/// Issues a code (`scopegate_app::authorize::issue_code`) and sends it to the client.
async fn issue_code(
    state: &Service,
    req: &AuthorizeRequest,
    id: Option<&RequestId>,
    signed_in: &SignedIn,
    answer: Answer,
    addr: Option<IpAddr>,
) -> Response {
    let request = match id {
        Some(id) => Seed::Pending(id),
        None => Seed::Query(&req.query),
    };
    let input = IssueCode {
        client_id: &req.app.client_id,
        member: &signed_in.member,
        session: &signed_in.session,
        redirect_uri: &req.redirect_uri,
        scopes: &req.resolved.scopes,
        code_challenge: req.code_challenge.as_deref(),
        nonce: req.nonce.as_deref(),
        native: req.native,
        request,
        ttl: scopegate_app::oauth::code_ttl(state.config.compat),
        answer,
    };
    let code = match scopegate_app::authorize::issue_code(state, input).await {
        Ok(Issued::Code(code)) => code,
        Ok(Issued::NotCovered) if req.prompt.none => return consent_required(state, req),
        Ok(Issued::NotCovered) => {
            return consent_page(state, req, id, signed_in, false, addr).await
        }
        Ok(Issued::Answered) => {
            return error_page(
                StatusCode::BAD_REQUEST,
                "Request already answered",
                "This sign-in request was answered already. Start again from the app.",
            )
        }
        Err(e) => {
            tracing::error!(error = %e, "authorization: storing the code failed");
            return error_redirect(
                state,
                &req.redirect_uri,
                req.state.as_deref(),
                RedirectError::TemporarilyUnavailable,
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
