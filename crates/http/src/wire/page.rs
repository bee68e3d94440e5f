//! Errors as HTML pages (the portal, sign-in, consent, Permitted services).
