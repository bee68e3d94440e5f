//! Browser sessions: a random cookie (only its keyed hash is stored), a per-session CSRF token,
//! and a double-submit CSRF cookie for the sign-in form, which comes before any session.

use axum::http::{header, HeaderMap, HeaderValue};
use scopegate_core::model::{Member, Session};
use scopegate_core::secret::ct_eq_str;
use scopegate_core::Secret;

use scopegate_app::state::Service;

/// `__Host-` cookies must be Secure, on `/`, with no Domain: a sibling host cannot plant them.
pub const SESSION_COOKIE: &str = "__Host-sg_session";
pub const CSRF_COOKIE: &str = "__Host-sg_csrf";
/// How long a sign-in lasts.
pub const SESSION_TTL: i64 = scopegate_app::session::SESSION_TTL;

/// The signed-in member and their session.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub member: Member,
    pub session: Session,
}

impl SignedIn {
    /// Who the page header shows, with the sign-out form's CSRF token.
    pub fn viewer(&self) -> crate::web::layout::Viewer<'_> {
        crate::web::layout::Viewer {
            member: Some(&self.member),
            csrf: Some(&self.session.csrf),
        }
    }
}

/// Reads one cookie.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The session cookie's Set-Cookie value. SameSite=Lax: the authorization request arrives as a
/// top-level navigation from the app's site and must see the session.
pub fn session_cookie(value: &str, max_age: i64) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={value}; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age={max_age}"
    ))
    .unwrap_or_else(|_| {
        HeaderValue::from_static("__Host-sg_session=; Path=/; Secure; HttpOnly; Max-Age=0")
    })
}

/// Starts a session; returns the cookie value to set.
pub async fn start(app: &Service, member_id: &str) -> Result<String, scopegate_app::error::Error> {
    Ok(scopegate_app::session::start(app, member_id)
        .await?
        .expose()
        .to_string())
}

/// Ends the session named by the cookie.
pub async fn end(app: &Service, headers: &HeaderMap) -> Result<(), scopegate_app::error::Error> {
    match cookie(headers, SESSION_COOKIE) {
        Some(raw) => scopegate_app::session::end(app, raw).await,
        None => Ok(()),
    }
}

/// True when a form's CSRF token matches the session's.
pub fn csrf_ok(signed_in: &SignedIn, presented: Option<&str>) -> bool {
    presented.is_some_and(|p| ct_eq_str(p, &signed_in.session.csrf))
}

/// True when a form's CSRF token matches the double-submit cookie (forms before sign-in).
pub fn anonymous_csrf_ok(headers: &HeaderMap, presented: Option<&str>) -> bool {
    match (cookie(headers, CSRF_COOKIE), presented) {
        (Some(c), Some(p)) if c.len() >= 32 => ct_eq_str(c, p),
        _ => false,
    }
}

/// A fresh double-submit token and its Set-Cookie value.
pub fn anonymous_csrf(app: &Service) -> (String, HeaderValue) {
    let t = Secret::generate(app.entropy.as_ref(), "")
        .expose()
        .to_string();
    let v = HeaderValue::from_str(&format!(
        "{CSRF_COOKIE}={t}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=3600"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("__Host-sg_csrf=; Path=/; Secure; Max-Age=0"));
    (t, v)
}

/// A `next` target must be a path on this server, never another origin.
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.starts_with("/\\")
                && !n.chars().any(char::is_control) =>
        {
            n.to_string()
        }
        _ => "/developers/apps".to_string(),
    }
}

/// The current session, if the cookie names a live one. A store failure is an error, never
/// "signed out": a page shows it (503) instead of the sign-in page (fail closed).
pub async fn current(
    app: &Service,
    headers: &HeaderMap,
) -> Result<Option<SignedIn>, scopegate_app::error::Error> {
    let Some(raw) = cookie(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    Ok(scopegate_app::session::current(app, raw)
        .await?
        .map(|c| SignedIn {
            member: c.member,
            session: c.session,
        }))
}
