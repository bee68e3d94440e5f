//! The client credentials of a token-style request (RFC 6749 2.3), as an extractor.
