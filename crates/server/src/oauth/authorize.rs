//! GET /oauth/v2/authorization (and the native PKCE variant): sign-in, consent, code.
