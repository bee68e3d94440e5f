//! The HTTPS listener: TLS on every connection, HTTP/1.1 and HTTP/2, graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::state::AppState;

/// How long a client may take to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long in-flight requests get to finish after a shutdown signal.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(20);

/// Serves HTTPS on `listener` until `shutdown` resolves, then drains open connections.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    state: AppState,
    routes: crate::http::Listener,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let acceptor = TlsAcceptor::from(tls);
    let app = crate::http::router(state.clone(), routes);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(Duration::from_secs(30))
        .max_buf_size(64 * 1024);
    builder.http2().max_concurrent_streams(256);
    let builder = Arc::new(builder);
    tokio::pin!(shutdown);
    // After the shutdown signal the listener keeps accepting for drain_seconds while /healthz
    // answers 503 (App::draining), so a load balancer moves away before connections close.
    let closing = tokio::time::sleep(Duration::from_secs(u64::from(u32::MAX)));
    tokio::pin!(closing);
    let mut draining = false;
    loop {
        let (tcp, peer): (tokio::net::TcpStream, SocketAddr) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
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
                closing.as_mut().reset(tokio::time::Instant::now() + drain);
                continue;
            }
            () = &mut closing, if draining => break,
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let app = app.clone();
        let builder = builder.clone();
        let state = state.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => tls,
                // Plain HTTP, TLS 1.0/1.1 and scanners end here: no service without TLS 1.2+.
                Ok(Err(e)) => {
                    state
                        .metrics
                        .tls_handshake_failures
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    state
                        .metrics
                        .tls_handshake_failures
                        .fetch_add(1, Ordering::Relaxed);
                    return;
                }
            };
            let trusted = state.config.trusted_proxies.clone();
            let service = TowerToHyperService::new(app.map_request(
                move |mut req: hyper::Request<hyper::body::Incoming>| {
                    // Behind a trusted proxy, the client is who the proxy says it is.
                    let client = crate::peer::client_address(peer.ip(), req.headers(), &trusted);
                    let peer = SocketAddr::new(client, peer.port());
                    req.extensions_mut()
                        .insert(axum::extract::ConnectInfo(peer));
                    // The peer address, for code that sees only headers (client-authentication
                    // throttling). Whatever the client sent under this name is replaced.
                    if let Ok(v) = hyper::header::HeaderValue::from_str(&peer.ip().to_string()) {
                        req.headers_mut().insert(crate::peer::PEER_HEADER, v);
                    }
                    req
                },
            ));
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(tls), service);
            if let Err(e) = watcher.watch(conn.into_owned()).await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tracing::info!("shutting down: draining open connections");
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the drain timeout; closing them");
    }
    Ok(())
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
