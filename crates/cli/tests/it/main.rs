//! scopegate's black-box tests: the real binary over HTTPS, the CLI on the same store.
//! One test binary, so the whole suite shares one build.

#![allow(clippy::unwrap_used)]

mod browser;
mod support;

mod authorize_pending;
mod consent;
mod enforce;
mod flow;
mod foundation;
mod gateway;
mod invariants;
mod migrate;
mod oidc;
mod ownership;
mod portal;
mod route_walk;
mod sandbox_marketing;
mod throttle;
mod transport;
