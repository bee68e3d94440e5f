//! OAuth 2.0 endpoints on LinkedIn's paths. The flows are in `scopegate_app::oauth`; these
//! handlers parse, call them and render.

pub mod authorize;
pub mod introspect;
pub mod token;
