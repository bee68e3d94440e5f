//! Sign-in and sign-out, with throttling of repeated failures.

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use maud::html;
use scopegate_app::session::{Credentials, SignInError};
use scopegate_core::Secret;

use crate::extract::form::StrictForm;
use crate::form::Params;
use crate::oauth::authorize::{pending_failure, request_id};
use crate::web::layout::{self, page, see_other, Viewer};
use crate::web::session::{
    self, anonymous_csrf, anonymous_csrf_ok, safe_next, session_cookie, SESSION_TTL,
};
use crate::wire::redirect::error_redirect;
use scopegate_app::authorize::{AuthorizeRequest, PendingError, RequestId};
use scopegate_app::state::{Service, ServiceState};

/// The answer when the sign-in throttle or the member store cannot be used: sign-in fails
/// closed (an open throttle would let guesses through unchecked).
fn unavailable(e: &dyn std::fmt::Display) -> Response {
    crate::wire::page::unavailable_page(
        "sign-in",
        e,
        "Sign-in is unavailable right now. Try again in a moment.",
    )
}

/// "Wait N seconds" in words a person reads.
fn wait_words(wait: i64) -> String {
    match wait {
        ..=1 => "a second".to_string(),
        2..=90 => format!("{wait} seconds"),
        _ => format!("{} minutes", (wait + 59) / 60),
    }
}

#[derive(serde::Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

/// The pending authorization request a `next` URL resumes, to say "Sign in to continue to X",
/// prefill the login hint and answer Cancel. Any other `next` is only a place to go back to.
/// An expired request is the page that says so (`Err`), not a sign-in without the request.
async fn authorization_of(
    app: &Service,
    next: &str,
) -> Result<Option<(RequestId, AuthorizeRequest)>, Response> {
    let Some(("/oauth/v2/authorization/continue", query)) = next.split_once('?') else {
        return Ok(None);
    };
    let Some(id) = request_id(Some(query)) else {
        return Err(pending_failure(&PendingError::Expired));
    };
    match scopegate_app::authorize::pending(app, &id).await {
        Ok(req) => Ok(Some((id, req))),
        Err(e) => Err(pending_failure(&e)),
    }
}

fn form_page(
    app: &Service,
    next: &str,
    auth: Option<&AuthorizeRequest>,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let for_app = auth.map(|r| r.app.name.as_str());
    let (csrf, cookie) = anonymous_csrf(app);
    let platform = &app.catalog.platform.name;
    // OIDC login_hint on the authorization request prefills the email.
    let hint = auth.and_then(|r| r.login_hint.as_deref()).unwrap_or("");
    // OIDC id_token_hint (or a claims `sub`): the app expects one particular account (checked
    // against whoever signs in; here it only explains why the member is asked to sign in).
    let expects_account = auth.is_some_and(|r| r.required_sub.is_some());
    let mut res = layout::respond(
        status,
        page(
            "Sign in",
            &Viewer::NOBODY,
            true,
            html! {
                div.card {
                    h1 { "Sign in" }
                    @if let Some(name) = for_app {
                        p.lede { "to continue to " strong { (name) } " with your " (platform) " account" }
                    } @else {
                        p.lede { "Manage your apps and the services you allowed" }
                    }
                    @if let Some(e) = error { div.notice.error role="alert" { (e) } }
                    @if expects_account && for_app.is_some() {
                        div.notice { "The app asked for the account you used with it before. Sign in with that account." }
                    }
                    form method="post" action="/login" {
                        input type="hidden" name="csrf" value=(csrf);
                        input type="hidden" name="next" value=(next);
                        label for="email" { "Email" }
                        input #email type="email" name="email" value=(hint) autocomplete="username" required autofocus;
                        label for="password" { "Password" }
                        input #password type="password" name="password" autocomplete="current-password" required;
                        div.actions {
                            button type="submit" name="action" value="signin" { "Sign in" }
                            @if for_app.is_some() {
                                button.secondary type="submit" name="action" value="cancel" formnovalidate { "Cancel" }
                            }
                        }
                    }
                }
            },
        ),
    );
    res.headers_mut().append(header::SET_COOKIE, cookie);
    res
}

/// GET /login
pub async fn page_handler(state: &ServiceState, next: Option<String>) -> Response {
    let next = safe_next(next.as_deref());
    match authorization_of(state, &next).await {
        Ok(auth) => form_page(
            state,
            &next,
            auth.as_ref().map(|(_, r)| r),
            None,
            StatusCode::OK,
        ),
        Err(page) => page,
    }
}

pub async fn show(State(state): State<ServiceState>, Query(q): Query<NextQuery>) -> Response {
    page_handler(&state, q.next).await
}

/// Cancel on the sign-in page: the pending request ends and the client hears why.
async fn cancel(state: &Service, auth: Option<(RequestId, AuthorizeRequest)>) -> Response {
    let Some((id, r)) = auth else {
        return see_other("/login");
    };
    if let Err(e) = scopegate_app::authorize::forget(state, &id).await {
        return crate::wire::page::failure_page(&e);
    }
    error_redirect(
        state,
        &r.redirect_uri,
        r.state.as_deref(),
        scopegate_app::authorize::RedirectError::CancelledLogin,
        "The member declined to log in to their account",
    )
}

/// POST /login: sign in, or cancel an authorization.
pub async fn submit(
    State(state): State<ServiceState>,
    headers: HeaderMap,
    peer: crate::peer::Peer,
    StrictForm(form): StrictForm,
) -> Response {
    let next = safe_next(form.get("next"));
    if !anonymous_csrf_ok(&headers, form.get("csrf")) {
        return form_page(
            &state,
            &next,
            None,
            Some("The form expired. Please sign in again."),
            StatusCode::FORBIDDEN,
        );
    }
    let auth = match authorization_of(&state, &next).await {
        Ok(auth) => auth,
        Err(page) => return page,
    };
    if form.get("action") == Some("cancel") {
        return cancel(&state, auth).await;
    }
    let retry = |message: &str, status: StatusCode| {
        form_page(
            &state,
            &next,
            auth.as_ref().map(|(_, r)| r),
            Some(message),
            status,
        )
    };
    let (Some(email), Some(password)) = (form.get("email"), form.get("password")) else {
        return retry("Enter your email and password.", StatusCode::BAD_REQUEST);
    };
    let credentials = Credentials {
        email: email.to_string(),
        password: Secret::new(password),
        source: peer.0.map(|a| a.ip()),
    };
    match scopegate_app::session::sign_in(&state, credentials).await {
        Ok(signed_in) => {
            let mut res = see_other(&next);
            res.headers_mut().append(
                header::SET_COOKIE,
                session_cookie(signed_in.cookie.expose(), SESSION_TTL),
            );
            res
        }
        Err(SignInError::Throttled { wait }) => {
            let message = format!(
                "Too many failed attempts. Wait {} and try again.",
                wait_words(wait)
            );
            let mut res = retry(&message, StatusCode::TOO_MANY_REQUESTS);
            if let Ok(v) = header::HeaderValue::from_str(&wait.to_string()) {
                res.headers_mut().insert(header::RETRY_AFTER, v);
            }
            res
        }
        // The attempt was counted as a failure when it was reserved.
        Err(SignInError::Mismatch) => retry(
            "That email and password do not match.",
            StatusCode::UNAUTHORIZED,
        ),
        // Sign-in fails closed: an open throttle would let guesses through unchecked, and a
        // session that could not be stored leaves the member signed out, told why.
        Err(SignInError::Failed(e)) => unavailable(&e),
    }
}

/// POST /logout
pub async fn logout(
    State(state): State<ServiceState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = std::str::from_utf8(&body)
        .ok()
        .and_then(|b| Params::parse(b).ok())
        .unwrap_or_default();
    let current = match session::current(&state, &headers).await {
        Ok(s) => s,
        // Signing out while the store is down: the session cannot be ended, so say so.
        Err(e) => return crate::wire::page::failure_page(&e),
    };
    if let Some(s) = current {
        if !session::csrf_ok(&s, form.get("csrf")) {
            return layout::error_page(
                StatusCode::FORBIDDEN,
                "Invalid form",
                "The form expired. Reload the page and try again.",
            );
        }
        if let Err(e) = session::end(&state, &headers).await {
            return crate::wire::page::failure_page(&e);
        }
    }
    let mut res = see_other("/login");
    res.headers_mut()
        .append(header::SET_COOKIE, session_cookie("", 0));
    res
}
