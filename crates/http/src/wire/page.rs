//! Errors as HTML pages (the portal, sign-in, consent, Permitted services): one `PageError`
//! every page handler returns, rendered through the layout's error page.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use scopegate_app::Error;

use crate::web::layout::error_page;

/// A page answering a failed request: a status, a title and a message for people.
#[derive(Debug, Clone)]
pub struct PageError {
    pub status: StatusCode,
    pub title: &'static str,
    pub message: String,
}

impl PageError {
    /// A page with its own words.
    pub fn new(status: StatusCode, title: &'static str, message: impl Into<String>) -> Self {
        PageError {
            status,
            title,
            message: message.into(),
        }
    }

    /// 400 "Invalid request": a form or query that cannot be read.
    pub fn bad_request(message: impl Into<String>) -> Self {
        PageError::new(StatusCode::BAD_REQUEST, "Invalid request", message)
    }

    /// 403 "Invalid form": the CSRF token is missing or wrong.
    pub fn invalid_form(message: impl Into<String>) -> Self {
        PageError::new(StatusCode::FORBIDDEN, "Invalid form", message)
    }

    /// 503 "Temporarily unavailable" for a store that cannot be used: the detail logged once
    /// under `context`, a message for people (never an empty or default answer).
    pub fn unavailable(context: &str, e: &dyn std::fmt::Display, message: &str) -> Self {
        tracing::error!(error = %e, "{context}: store failed");
        PageError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Temporarily unavailable",
            message,
        )
    }

    /// The page for a failed operation; internal detail is logged once (`public_message`).
    pub fn of(e: &Error) -> Self {
        let title = match e {
            Error::Internal(_) | Error::Unavailable(_) => "Temporarily unavailable",
            Error::NotFound(_) => "Not found",
            Error::Forbidden(_) => "Not allowed",
            Error::Invalid(_) | Error::Conflict(_) => "Cannot do that",
        };
        let message = match e {
            Error::Internal(_) | Error::Unavailable(_) => {
                e.public_message();
                "scopegate cannot read its data right now. Try again in a moment.".to_string()
            }
            _ => e.public_message(),
        };
        PageError::new(status_of(e), title, message)
    }
}

/// The status of a page answering a failed operation.
pub fn status_of(e: &Error) -> StatusCode {
    match e {
        // The store failed: the page is unavailable, not broken (fail closed, never empty).
        Error::Internal(_) | Error::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
    }
}

impl From<Error> for PageError {
    fn from(e: Error) -> Self {
        PageError::of(&e)
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        error_page(self.status, self.title, &self.message)
    }
}

/// The error page for a failed operation.
pub fn failure_page(e: &Error) -> Response {
    PageError::of(e).into_response()
}

/// The page for a store that cannot be used (see [`PageError::unavailable`]).
pub fn unavailable_page(context: &str, e: &dyn std::fmt::Display, message: &str) -> Response {
    PageError::unavailable(context, e, message).into_response()
}
