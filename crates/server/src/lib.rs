//! scopegate's HTTPS server: handlers, pages and TLS over the pure core and the store.

pub mod admin;
pub mod clock;
pub mod config;
pub mod http;
pub mod maintenance;
pub mod metrics;
pub mod password;
pub mod sandbox;
pub mod serve;
pub mod state;
pub mod throttle;
pub mod tls;

pub use config::{Compat, Config, TransportLimits};
pub use state::{App, AppState};
pub mod enforce;
pub mod error;
pub mod form;
pub mod oauth;
pub mod oidc;
pub mod ops;
pub mod peer;
pub mod web;
pub mod wire;
