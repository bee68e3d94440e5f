//! The application layer's typed failure. Each wire format (OAuth JSON, LinkedIn API JSON, admin
//! JSON, HTML pages, CLI) maps it in one place (`scopegate-http`'s `wire` modules, the CLI's
//! report); internal detail is logged once and never sent.

use scopegate_store::StoreError;

/// An operation's failure, in domain terms.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The thing named does not exist (an unknown app, program, member…).
    #[error("{0}")]
    NotFound(String),
    /// The input is malformed or breaks a rule.
    #[error("{0}")]
    Invalid(String),
    /// The change conflicts with the current state (a third secret, a duplicate email…).
    #[error("{0}")]
    Conflict(String),
    /// The actor may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// The store (or another dependency) cannot answer now: the caller may retry later. The
    /// detail is logged, not shown; the wire says 503.
    #[error("temporarily unavailable")]
    Unavailable(String),
    /// A bug or a broken invariant; the detail is logged, not shown.
    #[error("internal error")]
    Internal(String),
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(m) => Error::Conflict(m),
            StoreError::NotFound => Error::NotFound("not found".into()),
            StoreError::Retry | StoreError::Backend(_) => Error::Unavailable(e.to_string()),
            StoreError::Config(_) => Error::Internal(e.to_string()),
        }
    }
}

impl Error {
    /// Logs internal detail once and returns the message safe to show.
    pub fn public_message(&self) -> String {
        match self {
            Error::Internal(detail) => tracing::error!(error = %detail, "internal error"),
            Error::Unavailable(detail) => tracing::error!(error = %detail, "store unavailable"),
            _ => {}
        }
        self.to_string()
    }

    /// The HTTP status for JSON APIs.
    pub fn status(&self) -> u16 {
        match self {
            Error::NotFound(_) => 404,
            Error::Invalid(_) => 400,
            Error::Conflict(_) => 409,
            Error::Forbidden(_) => 403,
            Error::Unavailable(_) => 503,
            Error::Internal(_) => 500,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
