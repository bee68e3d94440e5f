//! scopegate's HTTPS face: router, extractors, handlers, pages, the admin API, serve and TLS. It
//! calls the application layer (`scopegate-app`) and renders what it returns.

pub mod admin;
pub mod http;
pub mod sandbox;
pub mod serve;
pub mod tls;

pub mod enforce;
pub mod extract;
pub mod form;
pub mod oauth;
pub mod oidc;
pub mod peer;
pub mod web;
pub mod wire;
