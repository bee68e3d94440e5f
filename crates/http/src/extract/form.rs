//! Strict forms: a repeated parameter is refused (RFC 6749 3.1), never first-or-last wins.
