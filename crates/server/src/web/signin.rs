//! Sign-in and sign-out, with throttling of repeated failures.

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use maud::html;
use scopegate_store::{members, tokens};

use crate::form::Params;
use crate::oauth::authorize::{error_redirect, validate};
use crate::state::{App, AppState};
use crate::web::layout::{self, page, see_other, Viewer};
use crate::web::session::{
    self, anonymous_csrf, anonymous_csrf_ok, safe_next, session_cookie, SESSION_TTL,
};

/// Failed sign-ins allowed per account and per address in the window.
pub const MAX_FAILURES: i64 = 5;
pub const FAILURE_WINDOW: i64 = 15 * 60;

#[derive(serde::Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

/// The app an authorization `next` URL is for, to say "Sign in to continue to X".
async fn authorization_of(app: &App, next: &str) -> Option<crate::oauth::authorize::AuthRequest> {
    let (path, query) = next.split_once('?')?;
    let native = match path {
        "/oauth/v2/authorization" => false,
        "/oauth/native-pkce/authorization" => true,
        _ => return None,
    };
    let params = Params::parse(query).ok()?;
    validate(app, &params, native).await.ok()
}

fn form_page(
    app: &App,
    next: &str,
    for_app: Option<&str>,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let (csrf, cookie) = anonymous_csrf(app);
    let platform = &app.catalog.platform.name;
    // OIDC login_hint on the authorization request prefills the email.
    let carried = next
        .split_once('?')
        .and_then(|(_, q)| Params::parse(q).ok());
    let hint: String = carried
        .as_ref()
        .and_then(|p| p.get("login_hint").map(|h| h.chars().take(254).collect()))
        .unwrap_or_default();
    // OIDC id_token_hint: the app expects one particular account (the hint is verified by the
    // authorization endpoint; here it only explains why the member is asked to sign in).
    let expects_account = carried.as_ref().is_some_and(|p| p.has("id_token_hint"));
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
pub async fn page_handler(state: &AppState, next: Option<String>) -> Response {
    let next = safe_next(next.as_deref());
    let for_app = authorization_of(state, &next).await.map(|r| r.app.name);
    form_page(state, &next, for_app.as_deref(), None, StatusCode::OK)
}

pub async fn show(State(state): State<AppState>, Query(q): Query<NextQuery>) -> Response {
    page_handler(&state, q.next).await
}

/// POST /login: sign in, or cancel an authorization.
pub async fn submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    peer: crate::peer::Peer,
    body: Bytes,
) -> Response {
    let form = match std::str::from_utf8(&body).ok().map(Params::parse) {
        Some(Ok(f)) => f,
        _ => {
            return layout::error_page(
                StatusCode::BAD_REQUEST,
                "Invalid request",
                "The form could not be read.",
            )
        }
    };
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
    let auth = authorization_of(&state, &next).await;
    if form.get("action") == Some("cancel") {
        return match auth {
            Some(r) => error_redirect(
                &state,
                &r.redirect_uri,
                r.state.as_deref(),
                crate::oauth::authorize::cancelled(&state, "user_cancelled_login"),
                "The member declined to log in to their account",
            ),
            None => see_other("/login"),
        };
    }
    let for_app = auth.as_ref().map(|r| r.app.name.clone());
    let (Some(email), Some(password)) = (form.get("email"), form.get("password")) else {
        return form_page(
            &state,
            &next,
            for_app.as_deref(),
            Some("Enter your email and password."),
            StatusCode::BAD_REQUEST,
        );
    };
    let email = email.trim().to_lowercase();
    let password = password.to_string();
    let now = state.now();
    let ip = peer.0.map(|a| a.ip().to_string()).unwrap_or_default();
    let keys = [format!("email:{email}"), format!("ip:{ip}")];
    let k = keys.clone();
    let throttled = state
        .store
        .read(move |c| {
            Ok(k.iter()
                .map(|key| tokens::failures(c, key, now, FAILURE_WINDOW))
                .collect::<Result<Vec<_>, _>>()?
                .into_iter()
                .max()
                .unwrap_or(0))
        })
        .await
        .unwrap_or(0)
        >= MAX_FAILURES;
    if throttled {
        return form_page(
            &state,
            &next,
            for_app.as_deref(),
            Some("Too many failed attempts. Wait a few minutes and try again."),
            StatusCode::TOO_MANY_REQUESTS,
        );
    }
    let e = email.clone();
    let found = state
        .store
        .read(move |c| match members::by_email(c, &e)? {
            Some(m) => Ok(Some((
                m.clone(),
                members::password_hash(c, &m.id)?.unwrap_or_default(),
            ))),
            None => Ok(None),
        })
        .await
        .ok()
        .flatten();
    let stored = found
        .as_ref()
        .map(|(_, h)| h.clone())
        .unwrap_or_else(|| crate::password::dummy_hash().to_string());
    // Verify even for an unknown email, so the answer takes the same time.
    let verified = tokio::task::spawn_blocking(move || crate::password::verify(&password, &stored))
        .await
        .unwrap_or(false);
    let member = match (found, verified) {
        (Some((m, _)), true) => m,
        _ => {
            let k = keys.clone();
            let _ = state
                .store
                .write(move |c| {
                    for key in &k {
                        tokens::count_failure(c, key, now, FAILURE_WINDOW)?;
                    }
                    Ok(())
                })
                .await;
            return form_page(
                &state,
                &next,
                for_app.as_deref(),
                Some("That email and password do not match."),
                StatusCode::UNAUTHORIZED,
            );
        }
    };
    let k = keys[0].clone();
    let _ = state
        .store
        .write(move |c| tokens::clear_failures(c, &k))
        .await;
    let raw = match session::start(&state, &member.id).await {
        Ok(r) => r,
        Err(e) => {
            return layout::error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Temporarily unavailable",
                &e.public_message(),
            )
        }
    };
    let mut res = see_other(&next);
    res.headers_mut()
        .append(header::SET_COOKIE, session_cookie(&raw, SESSION_TTL));
    res
}

/// POST /logout
pub async fn logout(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let form = std::str::from_utf8(&body)
        .ok()
        .and_then(|b| Params::parse(b).ok())
        .unwrap_or_default();
    if let Some(s) = session::current(&state, &headers).await {
        if !session::csrf_ok(&s, form.get("csrf")) {
            return layout::error_page(
                StatusCode::FORBIDDEN,
                "Invalid form",
                "The form expired. Reload the page and try again.",
            );
        }
        session::end(&state, &headers).await;
    }
    let mut res = see_other("/login");
    res.headers_mut()
        .append(header::SET_COOKIE, session_cookie("", 0));
    res
}
