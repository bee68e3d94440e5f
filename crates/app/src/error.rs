//! scopegate's typed errors. Each wire format (OAuth JSON, LinkedIn API JSON, admin JSON, HTML
//! pages, CLI) maps these in one place; internal detail is logged once and never sent.

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
    /// The store failed; the detail is logged, not shown.
    #[error("internal error")]
    Internal(String),
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(m) => Error::Conflict(m),
            StoreError::NotFound => Error::NotFound("not found".into()),
            other => Error::Internal(other.to_string()),
        }
    }
}

impl Error {
    /// Logs internal detail once and returns the message safe to show.
    pub fn public_message(&self) -> String {
        if let Error::Internal(detail) = self {
            tracing::error!(error = %detail, "internal error");
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
            Error::Internal(_) => 500,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
