//! The client's socket address, as the listener recorded it.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;

/// A header the listener sets on every request to the connection's peer address (replacing any
/// value the client sent), so code that sees only the headers can throttle by address.
pub const PEER_HEADER: &str = "x-scopegate-peer-address";

/// The peer address recorded in the headers by the listener.
pub fn from_headers(headers: &axum::http::HeaderMap) -> Option<std::net::IpAddr> {
    headers.get(PEER_HEADER)?.to_str().ok()?.parse().ok()
}

/// The peer address, when known (tests that build requests by hand have none).
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub Option<SocketAddr>);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Peer(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0),
        ))
    }
}
