//! The authorization endpoint's answers to the client: RFC 6749 4.1.2's redirect with a code or
//! an error (plus `iss`, RFC 9207), and the error page shown on scopegate while the client or its
//! redirect URL cannot be trusted (4.1.2.1). The error codes are the app's
//! [`RedirectError`]; their words, in each dialect, are here.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use scopegate_app::authorize::{RedirectError, Refusal, Untrusted};
use scopegate_app::state::Service;
use scopegate_app::Compat;

use crate::web::layout::error_page;
use crate::wire::page::unavailable_page;

/// The `error` a client receives. LinkedIn names why a member cancelled
/// (`user_cancelled_login`, `user_cancelled_authorize`, reference 1.7) where RFC 6749 4.1.2.1
/// says `access_denied`.
pub fn code(compat: Compat, e: RedirectError) -> &'static str {
    match e {
        RedirectError::InvalidRequest => "invalid_request",
        RedirectError::InvalidScope => "invalid_scope",
        RedirectError::UnauthorizedScope => "unauthorized_scope_error",
        RedirectError::UnsupportedResponseType => "unsupported_response_type",
        RedirectError::RequestNotSupported => "request_not_supported",
        RedirectError::RequestUriNotSupported => "request_uri_not_supported",
        RedirectError::RegistrationNotSupported => "registration_not_supported",
        RedirectError::UnmetAuthenticationRequirements => "unmet_authentication_requirements",
        RedirectError::LoginRequired => "login_required",
        RedirectError::ConsentRequired => "consent_required",
        RedirectError::TemporarilyUnavailable => "temporarily_unavailable",
        RedirectError::CancelledLogin | RedirectError::CancelledAuthorization => match compat {
            Compat::Standard => "access_denied",
            Compat::Linkedin if e == RedirectError::CancelledLogin => "user_cancelled_login",
            Compat::Linkedin => "user_cancelled_authorize",
        },
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
    error: RedirectError,
    description: &str,
) -> Response {
    let code = code(app.config.compat, error);
    let mut params = vec![("error", code), ("error_description", description)];
    if let Some(s) = state {
        params.push(("state", s));
    }
    redirect_to(app, req_redirect, &params)
}

/// The answer to a refused request: the error page while the client or its redirect URL is
/// unverified, the error redirect after (RFC 6749 4.1.2.1). Page texts follow LinkedIn's.
pub fn refused(state: &Service, refusal: Refusal) -> Response {
    let (status, title, message) = match refusal {
        Refusal::Redirect(r) => {
            return error_redirect(
                state,
                &r.redirect_uri,
                r.state.as_deref(),
                r.error,
                &r.description,
            )
        }
        Refusal::Unavailable(e) => {
            return unavailable_page("authorization", &e, "Please try again in a moment.")
        }
        Refusal::Untrusted(u) => match u {
            Untrusted::NoClientId => (
                StatusCode::BAD_REQUEST,
                "Client_id doesn't match",
                "The request has no client_id.",
            ),
            Untrusted::UnknownClient => (
                StatusCode::UNAUTHORIZED,
                "Client_id doesn't match",
                "The client_id does not belong to any registered application.",
            ),
            Untrusted::NativeNotAllowed => (
                StatusCode::FORBIDDEN,
                "Not enough permissions",
                "Not enough permissions to access Native PKCE protocol.",
            ),
            Untrusted::NoRedirectUri => (
                StatusCode::BAD_REQUEST,
                "Redirect_uri doesn't match",
                "The request has no redirect_uri.",
            ),
            Untrusted::RedirectMismatch => (
                StatusCode::UNAUTHORIZED,
                "Redirect_uri doesn't match",
                "The redirect_uri does not match any redirect URL registered for this application.",
            ),
        },
    };
    error_page(status, title, message)
}
