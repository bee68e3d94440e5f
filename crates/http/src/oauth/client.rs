//! Client authentication at the token, introspection and revocation endpoints: the credentials
//! are read by `extract::client::ClientRequest` and checked by
//! `scopegate_app::oauth::authenticate_client`.

pub use crate::extract::client::ClientRequest;
pub use scopegate_app::oauth::{authenticate_client, Client, Credentials};
