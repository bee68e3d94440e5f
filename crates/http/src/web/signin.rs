//! Sign-in and sign-out, with throttling of repeated failures.

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use maud::html;
use scopegate_store::{members, tokens};
use std::net::IpAddr;

use crate::throttle::{self, Schedule};

use crate::form::Params;
use crate::oauth::authorize::{error_redirect, validate};
use crate::state::{Service, ServiceState};
use crate::web::layout::{self, page, see_other, Viewer};
use crate::web::session::{
    self, anonymous_csrf, anonymous_csrf_ok, safe_next, session_cookie, SESSION_TTL,
};

/// The counters a sign-in attempt is made under, in the order they are taken (always the same
/// order, so concurrent transactions on PostgreSQL lock their rows alike): this account from
/// this address, then this address. There is deliberately no counter of the account alone: an
/// attacker could then lock the member out of every address; a member signing in from an
/// address with no failures is never delayed.
fn sign_in_counters(email: &str, addr: Option<IpAddr>) -> [(String, Schedule); 2] {
    let source = addr.map_or_else(|| "unknown".to_string(), throttle::source);
    // A digest of the account keeps every key small whatever was typed as the email (the
    // counters are stored rows).
    use sha2::Digest;
    let digest = sha2::Sha256::digest(email.to_lowercase().as_bytes());
    let account: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    [
        (
            format!("sign-in|pair|{account}|{source}"),
            throttle::SIGN_IN_PER_ACCOUNT_AND_ADDRESS,
        ),
        (
            format!("sign-in|addr|{source}"),
            throttle::SIGN_IN_PER_ADDRESS,
        ),
    ]
}

/// Compare-and-set rounds before a contended counter answers "wait a second".
const CAS_ROUNDS: usize = 32;

/// Takes one attempt under every counter before the password is checked, so parallel guesses
/// cannot all be checked before the first failure is counted: each attempt counts as a failure
/// until it succeeds. `Ok(Err(wait))` when a counter's delay has not passed yet (nothing is
/// taken then).
fn reserve(
    c: &mut dyn scopegate_store::Conn,
    counters: &[(String, Schedule)],
    now: i64,
) -> scopegate_store::Result<Result<(), i64>> {
    // Every delay is looked at before anything is taken: an attempt refused by the address's
    // delay writes nothing (otherwise each refused guess at a new account would leave a row).
    for (key, schedule) in counters {
        if let Some((n, last)) = tokens::attempts(c, key)? {
            if let Some(w) = schedule.wait(n, last, now) {
                return Ok(Err(w));
            }
        }
    }
    for (i, (key, schedule)) in counters.iter().enumerate() {
        let mut taken = false;
        let mut wait = None;
        for _ in 0..CAS_ROUNDS {
            let seen = tokens::attempts(c, key)?;
            let (n, last) = seen.unwrap_or((0, now));
            if let Some(w) = schedule.wait(n, last, now) {
                wait = Some(w);
                break;
            }
            if tokens::take_attempt(c, key, seen, schedule.next_count(n, last, now), now)? {
                taken = true;
                break;
            }
        }
        if !taken {
            for (k, _) in &counters[..i] {
                tokens::give_back_attempt(c, k)?;
            }
            return Ok(Err(wait.unwrap_or(1)));
        }
    }
    Ok(Ok(()))
}

/// The answer when the sign-in throttle or the member store cannot be used: sign-in fails
/// closed (an open throttle would let guesses through unchecked).
fn unavailable(e: &dyn std::fmt::Display) -> Response {
    layout::unavailable_page(
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

/// The app an authorization `next` URL is for, to say "Sign in to continue to X".
async fn authorization_of(
    app: &Service,
    next: &str,
) -> Option<crate::oauth::authorize::AuthRequest> {
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
    app: &Service,
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
pub async fn page_handler(state: &ServiceState, next: Option<String>) -> Response {
    let next = safe_next(next.as_deref());
    let for_app = authorization_of(state, &next).await.map(|r| r.app.name);
    form_page(state, &next, for_app.as_deref(), None, StatusCode::OK)
}

pub async fn show(State(state): State<ServiceState>, Query(q): Query<NextQuery>) -> Response {
    page_handler(&state, q.next).await
}

/// POST /login: sign in, or cancel an authorization.
pub async fn submit(
    State(state): State<ServiceState>,
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
    let counters = sign_in_counters(&email, peer.0.map(|a| a.ip()));
    let reserving = counters.clone();
    let reserved = state
        .store
        .write(move |c| reserve(c, &reserving, now))
        .await;
    match reserved {
        Ok(Ok(())) => {}
        Ok(Err(wait)) => {
            let mut res = form_page(
                &state,
                &next,
                for_app.as_deref(),
                Some(&format!(
                    "Too many failed attempts. Wait {} and try again.",
                    wait_words(wait)
                )),
                StatusCode::TOO_MANY_REQUESTS,
            );
            if let Ok(v) = header::HeaderValue::from_str(&wait.to_string()) {
                res.headers_mut().insert(header::RETRY_AFTER, v);
            }
            return res;
        }
        Err(e) => return unavailable(&e),
    }
    let e = email.clone();
    let found = match state
        .store
        .read(move |c| match members::by_email(c, &e)? {
            Some(m) => Ok(Some((
                m.clone(),
                members::password_hash(c, &m.id)?.unwrap_or_default(),
            ))),
            None => Ok(None),
        })
        .await
    {
        Ok(f) => f,
        Err(e) => return unavailable(&e),
    };
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
        // The attempt was counted as a failure when it was reserved.
        _ => {
            return form_page(
                &state,
                &next,
                for_app.as_deref(),
                Some("That email and password do not match."),
                StatusCode::UNAUTHORIZED,
            );
        }
    };
    // A success was no guess: this account's failures from this address are forgotten, and the
    // address gets its attempt back (its other failures stay: they may be guesses at others).
    let [(pair, _), (addr, _)] = counters;
    if let Err(e) = state
        .store
        .write(move |c| {
            tokens::clear_failures(c, &pair)?;
            tokens::give_back_attempt(c, &addr)
        })
        .await
    {
        return unavailable(&e);
    }
    let raw = match session::start(&state, &member.id).await {
        Ok(r) => r,
        // The session could not be stored: the member is not signed in, and is told why.
        Err(e) => return unavailable(&e),
    };
    let mut res = see_other(&next);
    res.headers_mut()
        .append(header::SET_COOKIE, session_cookie(&raw, SESSION_TTL));
    res
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
        Err(e) => return layout::failure_page(&e),
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
            return layout::failure_page(&e);
        }
    }
    let mut res = see_other("/login");
    res.headers_mut()
        .append(header::SET_COOKIE, session_cookie("", 0));
    res
}
