//! The bearer token of an API call (RFC 6750 2.1), as an extractor.
