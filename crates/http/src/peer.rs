//! The client's address: the connection's peer, or, behind a trusted proxy, the address that proxy
//! saw (X-Forwarded-For).

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;

/// A header the listener sets on every request to the connection's peer address (replacing any
/// value the client sent), so code that sees only the headers can throttle by address.
pub const PEER_HEADER: &str = "x-scopegate-peer-address";

/// The client's address for a connection from `peer`. A peer in `trusted` is a proxy: the client
/// is then the rightmost `X-Forwarded-For` entry that is not itself a trusted proxy (entries left
/// of it were written by the client and prove nothing). An unreadable entry stops the walk at the
/// proxy that appended it, so a forged header can only make the client look like that proxy.
pub fn client_address(peer: IpAddr, headers: &axum::http::HeaderMap, trusted: &[IpAddr]) -> IpAddr {
    // On a dual-stack listener an IPv4 peer arrives as ::ffff:a.b.c.d: every comparison is made
    // on the canonical form, as the connection caps make it, or a configured IPv4 proxy would
    // not be recognised and every client would share the proxy's throttles.
    let peer = peer.to_canonical();
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|t| t.to_canonical() == *ip);
    if !is_trusted(&peer) {
        return peer;
    }
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        match hop.parse::<IpAddr>().map(|ip| ip.to_canonical()) {
            Ok(ip) if is_trusted(&ip) => client = ip,
            Ok(ip) => return ip,
            Err(_) => return client,
        }
    }
    client
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderMap;

    fn xff(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    #[test]
    fn forwarded_for_counts_only_from_a_trusted_proxy() {
        let proxy: IpAddr = "10.0.0.2".parse().unwrap();
        let other: IpAddr = "10.0.0.3".parse().unwrap();
        let trusted = [proxy, "10.0.0.9".parse().unwrap()];
        let h = xff(&["198.51.100.7"]);
        assert_eq!(
            client_address(other, &h, &trusted),
            other,
            "not a proxy: the header is ignored"
        );
        assert_eq!(
            client_address(proxy, &h, &trusted).to_string(),
            "198.51.100.7"
        );
        // The client may write its own X-Forwarded-For: only the entry the proxy appended counts.
        let h = xff(&["1.2.3.4, 198.51.100.7"]);
        assert_eq!(
            client_address(proxy, &h, &trusted).to_string(),
            "198.51.100.7"
        );
        // Two trusted proxies in a row, and several header lines.
        let h = xff(&["1.2.3.4", "198.51.100.7, 10.0.0.9"]);
        assert_eq!(
            client_address(proxy, &h, &trusted).to_string(),
            "198.51.100.7"
        );
        // Garbage stops the walk at the proxy that appended it; no header: the proxy itself.
        let h = xff(&["198.51.100.7, not-an-ip"]);
        assert_eq!(client_address(proxy, &h, &trusted), proxy);
        assert_eq!(client_address(proxy, &HeaderMap::new(), &trusted), proxy);
    }

    #[test]
    fn a_dual_stack_listener_recognises_an_ipv4_proxy() {
        let trusted: [IpAddr; 1] = ["10.0.0.2".parse().unwrap()];
        let mapped: IpAddr = "::ffff:10.0.0.2".parse().unwrap();
        let h = xff(&["198.51.100.7"]);
        assert_eq!(
            client_address(mapped, &h, &trusted).to_string(),
            "198.51.100.7"
        );
        // A mapped hop is the same proxy too, and a mapped client is reported in IPv4 form.
        let h = xff(&["::ffff:198.51.100.7, ::ffff:10.0.0.2"]);
        assert_eq!(
            client_address(mapped, &h, &trusted).to_string(),
            "198.51.100.7"
        );
    }
}
