//! The signed-in member and CSRF-checked forms of the pages, as extractors.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};

use crate::extract::form::StrictForm;
use crate::form::Params;
use crate::web::layout::to_login;
use crate::web::session::{self, SignedIn};
use crate::wire::page::PageError;
use scopegate_app::state::ServiceState;

/// The rejection of a page that needs a member: the sign-in page (coming back here after), or
/// the error page when the session store cannot answer (never "signed out").
pub enum NotSignedIn {
    SignIn(String),
    Failed(PageError),
}

impl IntoResponse for NotSignedIn {
    fn into_response(self) -> Response {
        match self {
            NotSignedIn::SignIn(here) => to_login(&here),
            NotSignedIn::Failed(e) => e.into_response(),
        }
    }
}

impl FromRequestParts<ServiceState> for SignedIn {
    type Rejection = NotSignedIn;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &ServiceState,
    ) -> Result<Self, Self::Rejection> {
        match session::current(state, &parts.headers).await {
            Ok(Some(s)) => Ok(s),
            Ok(None) => Err(NotSignedIn::SignIn(parts.uri.path().to_string())),
            Err(e) => Err(NotSignedIn::Failed(e.into())),
        }
    }
}

/// A form posted by the signed-in member with the session's CSRF token, parsed strictly, then
/// read into `T` (the fields themselves by default).
pub struct CsrfForm<T = Params> {
    pub signed_in: SignedIn,
    pub form: T,
}

/// What a page form is read into once its CSRF token checked out; a form `T` cannot be read
/// from is refused as invalid, before anything it asks for runs.
pub trait FromForm: Sized {
    fn from_form(form: Params) -> Result<Self, PageError>;
}

impl FromForm for Params {
    fn from_form(form: Params) -> Result<Self, PageError> {
        Ok(form)
    }
}

/// Why a CSRF-checked form was refused.
pub enum CsrfRejection {
    /// No member is signed in (or the session store cannot answer).
    NotSignedIn(NotSignedIn),
    /// The form is unreadable or its CSRF token is missing or wrong: 403, nothing done.
    Invalid(PageError),
}

impl CsrfRejection {
    /// The answer, with the sign-in page coming back to `here` (a page), not to the URL the
    /// form was posted to (which may answer only POSTs).
    pub fn returning_to(self, here: &str) -> Response {
        match self {
            CsrfRejection::NotSignedIn(NotSignedIn::SignIn(_)) => to_login(here),
            other => other.into_response(),
        }
    }
}

impl IntoResponse for CsrfRejection {
    fn into_response(self) -> Response {
        match self {
            CsrfRejection::NotSignedIn(r) => r.into_response(),
            CsrfRejection::Invalid(e) => e.into_response(),
        }
    }
}

impl<T: FromForm> FromRequest<ServiceState> for CsrfForm<T> {
    type Rejection = CsrfRejection;

    async fn from_request(req: Request, state: &ServiceState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let signed_in = SignedIn::from_request_parts(&mut parts, state)
            .await
            .map_err(CsrfRejection::NotSignedIn)?;
        let expired = || {
            CsrfRejection::Invalid(PageError::invalid_form(
                "The form expired. Reload the page and try again.",
            ))
        };
        // An unreadable form is refused like a missing token: nothing it asks for is done.
        let StrictForm(form) = StrictForm::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(|_| expired())?;
        if !session::csrf_ok(&signed_in, form.get("csrf")) {
            return Err(expired());
        }
        let form = T::from_form(form).map_err(CsrfRejection::Invalid)?;
        Ok(CsrfForm { signed_in, form })
    }
}
