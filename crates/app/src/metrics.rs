//! Prometheus metrics, kept as atomics: no registry crate for a handful of counters.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counters exported at `/metrics`.
#[derive(Default)]
pub struct Metrics {
    pub requests: AtomicU64,
    pub responses_2xx: AtomicU64,
    pub responses_3xx: AtomicU64,
    pub responses_4xx: AtomicU64,
    pub responses_5xx: AtomicU64,
    pub tls_handshake_failures: AtomicU64,
    pub tokens_issued: AtomicU64,
    pub codes_issued: AtomicU64,
    pub token_requests_refused: AtomicU64,
    pub introspections: AtomicU64,
    pub revocations: AtomicU64,
    /// Connections open now (a gauge), over every listener.
    pub connections_open: AtomicU64,
    /// Connections closed at accept because the listener held its maximum.
    pub connections_refused_total_cap: AtomicU64,
    /// Connections closed at accept because their address held its maximum.
    pub connections_refused_per_address: AtomicU64,
    /// Connections closed for having no request in flight for the idle timeout.
    pub connections_idle_closed: AtomicU64,
    /// `accept` failures (out of descriptors and the like), each followed by a pause.
    pub accept_errors: AtomicU64,
    /// Request bodies not received within the body timeout (answered 408).
    pub request_bodies_timed_out: AtomicU64,
    /// Request bodies over the size limit (answered 413).
    pub request_bodies_too_large: AtomicU64,
}

impl Metrics {
    /// Counts one response by its status class.
    pub fn count_status(&self, status: u16) {
        let c = match status {
            200..=299 => &self.responses_2xx,
            300..=399 => &self.responses_3xx,
            400..=499 => &self.responses_4xx,
            _ => &self.responses_5xx,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        self.render_oauth(&mut out);
        self.render_connections(&mut out);
        out
    }

    /// Requests, responses and what the OAuth endpoints issued or refused.
    fn render_oauth(&self, out: &mut String) {
        counter(
            out,
            "scopegate_http_requests_total",
            "HTTP requests received.",
            &self.requests,
        );
        let _ = writeln!(out, "# HELP scopegate_http_responses_total HTTP responses by status class.\n# TYPE scopegate_http_responses_total counter");
        for (class, v) in [
            ("2xx", &self.responses_2xx),
            ("3xx", &self.responses_3xx),
            ("4xx", &self.responses_4xx),
            ("5xx", &self.responses_5xx),
        ] {
            let _ = writeln!(
                out,
                "scopegate_http_responses_total{{class=\"{class}\"}} {}",
                v.load(Ordering::Relaxed)
            );
        }
        counter(
            out,
            "scopegate_tls_handshake_failures_total",
            "TLS handshakes that failed (plain HTTP, old TLS versions, probes).",
            &self.tls_handshake_failures,
        );
        counter(
            out,
            "scopegate_tokens_issued_total",
            "Access and refresh tokens issued.",
            &self.tokens_issued,
        );
        counter(
            out,
            "scopegate_authorization_codes_issued_total",
            "Authorization codes issued.",
            &self.codes_issued,
        );
        counter(
            out,
            "scopegate_token_requests_refused_total",
            "Token endpoint requests refused.",
            &self.token_requests_refused,
        );
        counter(
            out,
            "scopegate_introspections_total",
            "Token introspection requests.",
            &self.introspections,
        );
        counter(
            out,
            "scopegate_revocations_total",
            "Token revocation requests.",
            &self.revocations,
        );
    }

    /// Connections and request bodies: what the transport's caps and timeouts did.
    fn render_connections(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "# HELP scopegate_connections_open Connections open now.\n# TYPE scopegate_connections_open gauge\nscopegate_connections_open {}",
            self.connections_open.load(Ordering::Relaxed)
        );
        let _ = writeln!(out, "# HELP scopegate_connections_refused_total Connections closed at accept, by the cap that was full.\n# TYPE scopegate_connections_refused_total counter");
        for (cap, v) in [
            ("total", &self.connections_refused_total_cap),
            ("per_address", &self.connections_refused_per_address),
        ] {
            let _ = writeln!(
                out,
                "scopegate_connections_refused_total{{cap=\"{cap}\"}} {}",
                v.load(Ordering::Relaxed)
            );
        }
        counter(
            out,
            "scopegate_connections_idle_closed_total",
            "Connections closed after the idle timeout with no request in flight.",
            &self.connections_idle_closed,
        );
        counter(
            out,
            "scopegate_accept_errors_total",
            "Failed accepts (e.g. out of file descriptors); each is followed by a pause.",
            &self.accept_errors,
        );
        counter(
            out,
            "scopegate_request_bodies_timed_out_total",
            "Request bodies not received within the body timeout (408).",
            &self.request_bodies_timed_out,
        );
        counter(
            out,
            "scopegate_request_bodies_too_large_total",
            "Request bodies over the size limit (413).",
            &self.request_bodies_too_large,
        );
    }
}

/// One counter with its HELP and TYPE lines. Writing to a String cannot fail.
fn counter(out: &mut String, name: &str, help: &str, v: &AtomicU64) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
        v.load(Ordering::Relaxed)
    );
}
