//! The HTTPS listener: TLS on every connection, HTTP/1.1 and HTTP/2, graceful shutdown, and the
//! transport limits (docs/configuration.md "Transport limits"): every part of a connection has a
//! deadline and the listener holds a bounded number of connections, in total and per address, so
//! no client can hold descriptors for ever or starve the others.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use scopegate_app::config::TransportLimits;
use scopegate_app::state::ServiceState;

/// How long in-flight requests get to finish after a shutdown signal.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a connection asked to close for idleness (HTTP/2: GOAWAY) gets before it is dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(5);
/// While shutting down, how often a connection looks whether its last request has ended.
const SHUTDOWN_POLL: Duration = Duration::from_millis(100);
/// Once it has, how long its GOAWAY (or its last answer) gets to reach the client.
const SHUTDOWN_FLUSH: Duration = Duration::from_millis(500);
/// The first and the longest pause after a failed accept.
const ACCEPT_PAUSE_MIN: Duration = Duration::from_millis(10);
const ACCEPT_PAUSE_MAX: Duration = Duration::from_secs(1);
/// At most one warning this often while accept keeps failing: the log must not become the flood.
const ACCEPT_WARN_EVERY: Duration = Duration::from_secs(60);
/// The largest default connection cap, whatever the open-file limit.
const MAX_CONNECTIONS_CEILING: usize = 10_000;

/// Serves HTTPS on `listener` until `shutdown` resolves, then drains open connections.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    state: ServiceState,
    routes: crate::http::Listener,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let caps = connection_caps(&state);
    let (closing_tx, closing_rx) = watch::channel(());
    let shared = Connection {
        acceptor: TlsAcceptor::from(tls),
        app: crate::http::router(state.clone(), routes),
        builder: Arc::new(builder(&state.config.transport)),
        state,
        closing: closing_rx,
    };
    accept_until_closed(&listener, &caps, &shared, shutdown).await;
    // Closed before the drain: a new client is refused at once instead of waiting in a backlog
    // that nobody reads any more.
    drop(listener);
    drain(&closing_tx, &caps).await;
    Ok(())
}

/// The listener's caps: the configured total (by default one derived from the open-file limit)
/// and the per-address cap.
fn connection_caps(state: &ServiceState) -> Arc<ConnectionCaps> {
    let limits = &state.config.transport;
    let max = limits
        .max_connections
        .unwrap_or_else(default_max_connections);
    tracing::info!(
        max_connections = max,
        max_connections_per_address = limits.max_connections_per_address,
        "listener limits"
    );
    Arc::new(ConnectionCaps::new(
        max,
        limits.max_connections_per_address,
        &state.config.trusted_proxies,
    ))
}

/// Accepts connections, each into its own task, until the shutdown signal and then for
/// drain_seconds more.
async fn accept_until_closed(
    listener: &TcpListener,
    caps: &Arc<ConnectionCaps>,
    shared: &Connection,
    shutdown: impl Future<Output = ()>,
) {
    let state = &shared.state;
    tokio::pin!(shutdown);
    // After the shutdown signal the listener keeps accepting for drain_seconds while /healthz
    // answers 503 (App::draining), so a load balancer moves away before connections close.
    let closing = tokio::time::sleep(Duration::from_secs(u64::from(u32::MAX)));
    tokio::pin!(closing);
    let mut draining = false;
    let mut backoff = AcceptBackoff::default();
    loop {
        let (tcp, peer): (tokio::net::TcpStream, SocketAddr) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => {
                    backoff.succeeded();
                    a
                }
                // The connection died in the backlog: nothing wrong with the listener.
                Err(e) if per_connection(&e) => continue,
                Err(e) => {
                    // Out of file descriptors and the like: the pending connection stays in the
                    // backlog and the socket stays readable, so retrying at once would spin.
                    state.metrics.accept_errors.fetch_add(1, Ordering::Relaxed);
                    let pause = backoff.failed(&e);
                    tokio::time::sleep(pause).await;
                    continue;
                }
            },
            () = &mut shutdown, if !draining => {
                let drain = Duration::from_secs(state.config.drain_seconds);
                if drain.is_zero() {
                    break;
                }
                draining = true;
                state.draining.store(true, Ordering::Relaxed);
                tracing::info!(seconds = drain.as_secs(), "shutting down: /healthz answers 503 until the listener closes");
                closing.as_mut().reset(Instant::now() + drain);
                continue;
            }
            () = &mut closing, if draining => break,
        };
        admit(tcp, peer, caps, shared);
    }
}

/// Starts serving an accepted connection, or closes it when it is over a cap: at once, before
/// the TLS handshake costs anything.
fn admit(
    tcp: tokio::net::TcpStream,
    peer: SocketAddr,
    caps: &Arc<ConnectionCaps>,
    shared: &Connection,
) {
    let admission = match caps.admit(peer.ip()) {
        Ok(a) => a,
        Err(refusal) => {
            let metrics = &shared.state.metrics;
            let counter = match refusal {
                Refusal::Total => &metrics.connections_refused_total_cap,
                Refusal::PerAddress => &metrics.connections_refused_per_address,
            };
            counter.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(%peer, ?refusal, "connection refused: cap reached");
            drop(tcp);
            return;
        }
    };
    let _ = tcp.set_nodelay(true);
    tokio::spawn(connection(tcp, peer, admission, shared.clone()));
}

/// Once the listener is closed: asks every open connection to close, and waits for them at most
/// DRAIN_TIMEOUT.
async fn drain(closing: &watch::Sender<()>, caps: &ConnectionCaps) {
    tracing::info!("shutting down: draining open connections");
    let _ = closing.send(());
    if tokio::time::timeout(DRAIN_TIMEOUT, caps.all_closed())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the drain timeout; closing them");
    }
}

/// The HTTP/1.1 and HTTP/2 settings of every connection.
fn builder(limits: &TransportLimits) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // hyper starts the HTTP/1.1 header timer whenever it waits for a request head, so it also
    // bounds the wait between keep-alive requests.
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(64 * 1024);
    // RFC 9113 6.7: PINGs find a peer that vanished (a half-open connection); one that does not
    // answer within the interval is cut. A live but idle peer is cut by the idle timeout.
    builder
        .http2()
        .timer(TokioTimer::new())
        // Each stream may buffer a 64 KiB body before a handler runs: 32 streams bound that to
        // 2 MiB a connection (256 allowed 16 MiB), still more parallelism than any browser uses.
        .max_concurrent_streams(32)
        .keep_alive_interval(limits.keepalive_interval)
        .keep_alive_timeout(limits.keepalive_interval);
    builder
}

/// What every connection task shares.
#[derive(Clone)]
struct Connection {
    acceptor: TlsAcceptor,
    app: axum::Router,
    builder: Arc<auto::Builder<TokioExecutor>>,
    state: ServiceState,
    closing: watch::Receiver<()>,
}

/// One connection: the TLS handshake under its deadline, then HTTP until the client closes, the
/// connection sits idle past the idle timeout, or the server shuts down.
async fn connection(
    tcp: tokio::net::TcpStream,
    peer: SocketAddr,
    admission: Admission,
    shared: Connection,
) {
    let Connection {
        acceptor,
        app,
        builder,
        state,
        mut closing,
    } = shared;
    let _open = OpenConnection::new(&state, admission);
    let Some(tls) = handshake(&acceptor, tcp, peer, &state, &mut closing).await else {
        return;
    };
    let activity = Arc::new(Activity::new());
    let trusted = state.config.trusted_proxies.clone();
    let requests = activity.clone();
    let service =
        hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
            let in_flight = requests.begin();
            set_client_address(&mut req, peer, &trusted);
            let answer = app.clone().oneshot(req);
            async move {
                let res = answer.await;
                drop(in_flight);
                res
            }
        });
    // HTTP/1.1 or HTTP/2, as the client chose in the handshake (ALPN).
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(tls), service);
    serve_until_closed(
        conn,
        |conn| conn.graceful_shutdown(),
        peer,
        &state,
        &activity,
        closing,
    )
    .await;
}

/// The TLS handshake under its deadline; None when it failed or took too long, or the server
/// began shutting down first.
async fn handshake(
    acceptor: &TlsAcceptor,
    tcp: tokio::net::TcpStream,
    peer: SocketAddr,
    state: &ServiceState,
    closing: &mut watch::Receiver<()>,
) -> Option<TlsStream<tokio::net::TcpStream>> {
    let limits = &state.config.transport;
    // A shutdown does not wait for handshakes: nothing was asked of this connection yet.
    let handshake = tokio::select! {
        done = tokio::time::timeout(limits.handshake_timeout, acceptor.accept(tcp)) => done,
        _ = closing.changed() => return None,
    };
    match handshake {
        Ok(Ok(tls)) => Some(tls),
        // Plain HTTP, TLS 1.0/1.1 and scanners end here: no service without TLS 1.2+.
        Ok(Err(e)) => {
            state
                .metrics
                .tls_handshake_failures
                .fetch_add(1, Ordering::Relaxed);
            tracing::debug!(%peer, error = %e, "TLS handshake failed");
            None
        }
        Err(_) => {
            state
                .metrics
                .tls_handshake_failures
                .fetch_add(1, Ordering::Relaxed);
            tracing::debug!(%peer, "TLS handshake timed out");
            None
        }
    }
}

/// Tells the handlers who the client is: as ConnectInfo, and in the peer header.
fn set_client_address(
    req: &mut hyper::Request<hyper::body::Incoming>,
    peer: SocketAddr,
    trusted: &[IpAddr],
) {
    // Behind a trusted proxy, the client is who the proxy says it is.
    let client = crate::peer::client_address(peer.ip(), req.headers(), trusted);
    let peer = SocketAddr::new(client, peer.port());
    req.extensions_mut()
        .insert(axum::extract::ConnectInfo(peer));
    // The peer address, for code that sees only headers (client-authentication
    // throttling). Whatever the client sent under this name is replaced.
    if let Ok(v) = hyper::header::HeaderValue::from_str(&peer.ip().to_string()) {
        req.headers_mut().insert(crate::peer::PEER_HEADER, v);
    }
}

/// Runs the HTTP connection `conn` until it ends, it has been idle for the idle timeout, or the
/// server shuts down; `close` asks it to close (HTTP/2: GOAWAY, HTTP/1.1: close after the
/// answer in flight), and one that does not finish closing in time is dropped.
async fn serve_until_closed<C, E>(
    conn: C,
    close: impl Fn(Pin<&mut C>),
    peer: SocketAddr,
    state: &ServiceState,
    activity: &Activity,
    mut closing: watch::Receiver<()>,
) where
    C: Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    let limits = &state.config.transport;
    tokio::pin!(conn);
    // Set once the connection was asked to close: past it, it is dropped (the socket closes).
    let mut give_up: Option<Instant> = None;
    // Set once a connection asked to close has no request left in flight.
    let mut closing_idle = false;
    loop {
        let wake = give_up.unwrap_or_else(|| activity.idle_deadline(limits.idle_timeout));
        tokio::select! {
            ended = conn.as_mut() => {
                if let Err(e) = ended {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                break;
            }
            _ = closing.changed(), if give_up.is_none() => {
                close(conn.as_mut());
                give_up = Some(Instant::now() + DRAIN_TIMEOUT);
            }
            // Shutting down: once no request is in flight there is nothing left to deliver. An
            // HTTP/2 client may keep its idle connection open after the GOAWAY (browsers and
            // pooled clients do), which would otherwise hold the whole drain for DRAIN_TIMEOUT.
            () = tokio::time::sleep(SHUTDOWN_POLL), if give_up.is_some() && !closing_idle => {
                if activity.in_flight.load(Ordering::SeqCst) == 0 {
                    closing_idle = true;
                    give_up = Some(Instant::now() + SHUTDOWN_FLUSH);
                }
            }
            () = tokio::time::sleep_until(wake) => {
                if give_up.is_some() {
                    tracing::debug!(%peer, "connection did not finish closing; dropped");
                    break;
                }
                // No request in flight for the idle timeout: an idle keep-alive connection, a
                // TLS connection that never sent a request, or an HTTP/2 header block that never
                // ended (RFC 9113 6.10: nothing else may come until it does). HTTP/2 gets a
                // GOAWAY (RFC 9113 6.8), HTTP/1.1 a close.
                if activity.idle_deadline(limits.idle_timeout) <= Instant::now() {
                    state
                        .metrics
                        .connections_idle_closed
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(%peer, "idle connection closed");
                    close(conn.as_mut());
                    give_up = Some(Instant::now() + CLOSE_GRACE.min(limits.idle_timeout));
                }
            }
        }
    }
}

/// The requests in flight on one connection, and since when it has had none.
struct Activity {
    born: Instant,
    in_flight: AtomicUsize,
    /// Milliseconds after `born` when the last request ended.
    idle_since_ms: AtomicU64,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            born: Instant::now(),
            in_flight: AtomicUsize::new(0),
            idle_since_ms: AtomicU64::new(0),
        }
    }

    fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        InFlight(self.clone())
    }

    /// When the connection will have been idle for `idle`; while a request is in flight, a
    /// time to look again.
    fn idle_deadline(&self, idle: Duration) -> Instant {
        if self.in_flight.load(Ordering::SeqCst) > 0 {
            return Instant::now() + idle;
        }
        self.born + Duration::from_millis(self.idle_since_ms.load(Ordering::SeqCst)) + idle
    }
}

/// A request in flight; its end restarts the idle clock.
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let ms = u64::try_from(self.0.born.elapsed().as_millis()).unwrap_or(u64::MAX);
        // The idle clock is set before the count drops, so nobody sees "idle since long ago".
        self.0.idle_since_ms.store(ms, Ordering::SeqCst);
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Why a connection was refused at accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    Total,
    PerAddress,
}

/// The listener's connection caps: a semaphore for the total, a count per client address.
struct ConnectionCaps {
    total: Arc<Semaphore>,
    max_total: u32,
    per_address: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
    trusted: Vec<IpAddr>,
}

impl ConnectionCaps {
    fn new(max_total: usize, per_address: usize, trusted: &[IpAddr]) -> ConnectionCaps {
        let max_total = max_total
            .clamp(1, Semaphore::MAX_PERMITS)
            .min(u32::MAX as usize);
        ConnectionCaps {
            total: Arc::new(Semaphore::new(max_total)),
            max_total: u32::try_from(max_total).unwrap_or(u32::MAX),
            per_address,
            open: Mutex::new(HashMap::new()),
            trusted: trusted.iter().map(|ip| ip.to_canonical()).collect(),
        }
    }

    /// A place for a connection from `peer`, or why there is none. Trusted proxies count only
    /// against the total: they carry every client's connections.
    fn admit(self: &Arc<Self>, peer: IpAddr) -> Result<Admission, Refusal> {
        let permit = self
            .total
            .clone()
            .try_acquire_owned()
            .map_err(|_| Refusal::Total)?;
        let peer = peer.to_canonical();
        let address = if self.trusted.contains(&peer) {
            None
        } else {
            let key = address_key(peer);
            let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
            let n = open.entry(key).or_insert(0);
            if *n >= self.per_address {
                return Err(Refusal::PerAddress);
            }
            *n += 1;
            Some(key)
        };
        Ok(Admission {
            _permit: permit,
            address,
            caps: self.clone(),
        })
    }

    /// Resolves when every connection has closed.
    async fn all_closed(&self) {
        let _ = self.total.acquire_many(self.max_total).await;
    }
}

/// What one client address is counted as: an IPv4 address, or an IPv6 /64 (one subscriber's
/// network; counting single IPv6 addresses would give every attacker 2^64 caps).
fn address_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
    }
}

/// A connection's place under the caps, given back when it closes.
struct Admission {
    _permit: OwnedSemaphorePermit,
    address: Option<IpAddr>,
    caps: Arc<ConnectionCaps>,
}

impl Drop for Admission {
    fn drop(&mut self) {
        let Some(key) = self.address else { return };
        let mut open = self
            .caps
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = open.get_mut(&key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&key);
            }
        }
    }
}

/// An open connection: its place under the caps and the open-connections gauge.
struct OpenConnection {
    state: ServiceState,
    _admission: Admission,
}

impl OpenConnection {
    fn new(state: &ServiceState, admission: Admission) -> OpenConnection {
        state
            .metrics
            .connections_open
            .fetch_add(1, Ordering::Relaxed);
        OpenConnection {
            state: state.clone(),
            _admission: admission,
        }
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.state
            .metrics
            .connections_open
            .fetch_sub(1, Ordering::Relaxed);
    }
}

/// Accept errors that concern one connection only (it was reset while in the backlog).
fn per_connection(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(e.kind(), ConnectionAborted | ConnectionReset | Interrupted)
}

/// Growing pauses while accept fails, and a warning at most once a minute.
#[derive(Default)]
struct AcceptBackoff {
    pause: Duration,
    failures: u64,
    last_warning: Option<Instant>,
}

impl AcceptBackoff {
    fn failed(&mut self, e: &std::io::Error) -> Duration {
        self.failures += 1;
        self.pause = (self.pause * 2).clamp(ACCEPT_PAUSE_MIN, ACCEPT_PAUSE_MAX);
        if self
            .last_warning
            .is_none_or(|t| t.elapsed() >= ACCEPT_WARN_EVERY)
        {
            tracing::warn!(error = %e, failures = self.failures, "accept failed (out of file descriptors?); pausing accepts");
            self.last_warning = Some(Instant::now());
        }
        self.pause
    }

    fn succeeded(&mut self) {
        if self.failures > 0 {
            tracing::info!(failures = self.failures, "accepting connections again");
            self.failures = 0;
        }
        self.pause = Duration::ZERO;
    }
}

/// The default total connection cap: the open-file limit less a quarter (at least 64) for the
/// store, the log and the files the server opens, within 16..=10,000. Read from
/// /proc/self/limits; where that is missing, the cap for the common 1,024 limit.
fn default_max_connections() -> usize {
    let soft = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("Max open files"))
                .and_then(|rest| rest.split_whitespace().next())
                .map(|v| v.parse::<usize>().unwrap_or(usize::MAX))
        })
        .unwrap_or(1024);
    soft.saturating_sub((soft / 4).max(64))
        .clamp(16, MAX_CONNECTIONS_CEILING)
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ipv6_network_counts_as_one_address() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(address_key(a), address_key(b));
        assert_ne!(address_key(a), address_key(c));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(address_key(mapped), "192.0.2.7".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn caps_refuse_past_the_limit_and_free_on_drop() {
        let proxy: IpAddr = "10.0.0.2".parse().unwrap();
        let caps = Arc::new(ConnectionCaps::new(3, 1, &[proxy]));
        let client: IpAddr = "192.0.2.1".parse().unwrap();
        let first = caps.admit(client).unwrap();
        assert_eq!(caps.admit(client).err(), Some(Refusal::PerAddress));
        // A trusted proxy is not held to the per-address cap, only to the total.
        let p1 = caps.admit(proxy).unwrap();
        let _p2 = caps.admit(proxy).unwrap();
        assert_eq!(caps.admit(proxy).err(), Some(Refusal::Total));
        // A closed connection gives back both its places.
        drop(first);
        let again = caps.admit(client).unwrap();
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        assert_eq!(caps.admit(other).err(), Some(Refusal::Total));
        drop(p1);
        assert!(caps.admit(other).is_ok());
        drop(again);
    }
}
