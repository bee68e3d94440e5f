//! Strict forms: a repeated parameter is refused (RFC 6749 3.1), never first-or-last wins.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};

use crate::form::Params;
use crate::wire::page::PageError;

/// A page form body parsed by the strict parser (repeats, invalid UTF-8 and control characters
/// refused). The rejection is our 400 page.
#[derive(Debug, Clone)]
pub struct StrictForm(pub Params);

impl<S: Send + Sync> FromRequest<S> for StrictForm {
    type Rejection = PageError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let body = Bytes::from_request(req, state)
            .await
            .map_err(|_| PageError::bad_request("The form could not be read."))?;
        let text = std::str::from_utf8(&body)
            .map_err(|_| PageError::bad_request("The form could not be read."))?;
        Params::parse(text)
            .map(StrictForm)
            .map_err(|_| PageError::bad_request("The form could not be read."))
    }
}
