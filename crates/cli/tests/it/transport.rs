//! Transport limits: timeouts, connection caps and bounded bodies.
//!
//! Each test starts the real binary with short limits (1 s) and asserts that the server ends the
//! connection or the request *before* a generous bound (`CUT_WITHIN`), never an exact time, so a
//! loaded machine cannot make a test fail; before the fixes these connections stayed open for as
//! long as the client liked.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::support::*;

/// A server with 1-second limits must have cut the client well before this.
const CUT_WITHIN: Duration = Duration::from_secs(20);

fn addr(s: &Server) -> SocketAddr {
    s.base.trim_start_matches("https://").parse().unwrap()
}

fn tls_config(cert_pem: &[u8], alpn: &[u8]) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut &cert_pem[..]) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    Arc::new(config)
}

/// A TCP connection from `from` (another 127.0.0.x counts as another client address).
async fn tcp_from(from: Ipv4Addr, to: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(IpAddr::V4(from), 0))?;
    socket.connect(to).await
}

/// A TLS connection from `from` speaking `alpn` (b"h2" or b"http/1.1").
async fn tls_from(
    s: &Server,
    from: Ipv4Addr,
    alpn: &[u8],
) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = tcp_from(from, addr(s)).await?;
    let connector = tokio_rustls::TlsConnector::from(tls_config(&s.cert_pem, alpn));
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let mut tls = tokio::time::timeout(CUT_WITHIN, connector.connect(name, tcp))
        .await
        .map_err(|_| std::io::Error::other("TLS handshake did not finish"))??;
    // The client's TLS 1.3 handshake ends before the server has read its Finished; a server that
    // closes at once shows only on the next read. Flush so that a refusal is seen promptly.
    tls.flush().await?;
    Ok(tls)
}

/// True when the server ends a connection that was refused at accept: the handshake fails, or
/// the first read ends without data, before the bound.
async fn refused(s: &Server, from: Ipv4Addr) -> bool {
    let mut tls = match tls_from(s, from, b"http/1.1").await {
        Ok(t) => t,
        Err(_) => return true,
    };
    let mut buf = [0u8; 64];
    matches!(
        tokio::time::timeout(CUT_WITHIN, tls.read(&mut buf)).await,
        Ok(Ok(0)) | Ok(Err(_))
    )
}

// --- HTTP/2 frames (RFC 9113 4.1), written by hand: the tests need frames no client library
// sends on purpose, such as a header block that never ends.

const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const PING: u8 = 0x6;
const GOAWAY: u8 = 0x7;
const END_STREAM: u8 = 0x1;
const ACK: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut f = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// One HPACK literal without indexing, its name from the static table (RFC 7541 6.2.2).
fn literal(index: u8, value: &str) -> Vec<u8> {
    let mut out = if index < 15 {
        vec![index]
    } else {
        vec![0x0f, index - 15]
    };
    out.push(value.len() as u8);
    out.extend_from_slice(value.as_bytes());
    out
}

/// A POST to the token endpoint: :method POST, :scheme https, :path, :authority, content-type.
fn post_header_block() -> Vec<u8> {
    let mut block = vec![0x83, 0x87];
    block.extend(literal(4, "/oauth/v2/accessToken"));
    block.extend(literal(1, "127.0.0.1"));
    block.extend(literal(31, "application/x-www-form-urlencoded"));
    block
}

async fn read_frame<R: AsyncRead + Unpin>(r: &mut R) -> Option<(u8, u8, u32, Vec<u8>)> {
    let mut head = [0u8; 9];
    r.read_exact(&mut head).await.ok()?;
    let len = (usize::from(head[0]) << 16) | (usize::from(head[1]) << 8) | usize::from(head[2]);
    let stream = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload).await.ok()?;
    Some((head[3], head[4], stream, payload))
}

/// How the server ended what the client started.
#[derive(Debug, PartialEq)]
enum Cut {
    /// The connection was closed (EOF or reset).
    Closed,
    /// The request was answered (HTTP/2 HEADERS on the stream; HTTP/1.1: the status code).
    Answered(u16),
    /// The stream was reset (HTTP/2 RST_STREAM).
    Reset,
}

/// Plays a well-behaved, idle HTTP/2 client (it acknowledges SETTINGS and PINGs, so keep-alive
/// pings alone never end it; with `quiet` it writes nothing, as inside an open header block)
/// until the server closes the connection, or, with `answer`, until it answers or resets
/// stream 1; None when neither happened before the bound.
async fn h2_until_cut<W: AsyncWrite + Unpin + Send + 'static>(
    mut r: impl AsyncRead + Unpin,
    w: Arc<tokio::sync::Mutex<W>>,
    answer: bool,
    quiet: bool,
) -> Option<Cut> {
    let watch = async {
        loop {
            let Some((kind, flags, stream, payload)) = read_frame(&mut r).await else {
                return Cut::Closed;
            };
            match kind {
                SETTINGS if flags & ACK == 0 && !quiet => {
                    let _ = w
                        .lock()
                        .await
                        .write_all(&frame(SETTINGS, ACK, 0, &[]))
                        .await;
                }
                PING if flags & ACK == 0 && !quiet => {
                    let _ = w
                        .lock()
                        .await
                        .write_all(&frame(PING, ACK, 0, &payload))
                        .await;
                }
                HEADERS if answer && stream == 1 => return Cut::Answered(0),
                RST_STREAM if answer && stream == 1 => return Cut::Reset,
                // GOAWAY announces the close; the test waits for the close itself.
                GOAWAY => {}
                _ => {}
            }
        }
    };
    tokio::time::timeout(CUT_WITHIN, watch).await.ok()
}

async fn h2_open(
    s: &Server,
) -> (
    tokio::io::ReadHalf<TlsStream<TcpStream>>,
    Arc<tokio::sync::Mutex<tokio::io::WriteHalf<TlsStream<TcpStream>>>>,
) {
    let mut tls = tls_from(s, Ipv4Addr::LOCALHOST, b"h2").await.unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    tls.write_all(PREFACE).await.unwrap();
    tls.write_all(&frame(SETTINGS, 0, 0, &[])).await.unwrap();
    // Finish the SETTINGS exchange first: once a header block is open, RFC 9113 6.10 allows no
    // other frame (not even an ACK) until it ends.
    loop {
        let (kind, flags, _, _) = read_frame(&mut tls).await.expect("the server's SETTINGS");
        if kind == SETTINGS && flags & ACK == 0 {
            tls.write_all(&frame(SETTINGS, ACK, 0, &[])).await.unwrap();
            break;
        }
    }
    let (r, w) = tokio::io::split(tls);
    (r, Arc::new(tokio::sync::Mutex::new(w)))
}

#[tokio::test]
async fn idle_connections_are_closed_on_both_protocols() {
    let s = Server::start(
        &[
            "--idle-timeout",
            "1",
            "--keepalive-interval",
            "1",
            "--header-timeout",
            "1",
        ],
        None,
    )
    .await;
    // HTTP/2: a live client that answers every PING but sends no request.
    let (r, w) = h2_open(&s).await;
    let started = Instant::now();
    assert_eq!(
        h2_until_cut(r, w, false, false).await,
        Some(Cut::Closed),
        "an idle HTTP/2 connection was still open after {:?}",
        started.elapsed()
    );
    // HTTP/1.1, and a TLS connection that never says which protocol it speaks.
    for alpn in [&b"http/1.1"[..], b"h2"] {
        let mut tls = tls_from(&s, Ipv4Addr::LOCALHOST, alpn).await.unwrap();
        let mut buf = [0u8; 256];
        let read = tokio::time::timeout(CUT_WITHIN, tls.read(&mut buf)).await;
        assert!(
            matches!(read, Ok(Ok(0)) | Ok(Err(_))),
            "{} connection that sent nothing: {read:?}",
            String::from_utf8_lossy(alpn)
        );
    }
    // The server still serves.
    let res = s.client.get(s.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn http2_header_block_without_end_headers_is_closed() {
    let s = Server::start(&["--idle-timeout", "1", "--header-timeout", "1"], None).await;
    // Every way of leaving a header block open: END_STREAM or not, one byte or a full block.
    let blocks: [(&[u8], u8); 3] = [
        (&[0x82], END_STREAM),
        (&[0x82, 0x87], 0),
        (&post_header_block(), 0),
    ];
    for (block, flags) in blocks {
        let (r, w) = h2_open(&s).await;
        // HEADERS without END_HEADERS: RFC 9113 6.2 says CONTINUATION must follow; none does.
        w.lock()
            .await
            .write_all(&frame(HEADERS, flags, 1, block))
            .await
            .unwrap();
        let started = Instant::now();
        assert_eq!(
            h2_until_cut(r, w, false, true).await,
            Some(Cut::Closed),
            "a header block {block:02x?} left open kept the connection for {:?}",
            started.elapsed()
        );
    }
}

#[tokio::test]
async fn slow_request_bodies_are_cut_on_both_protocols() {
    let s = Server::start(&["--body-timeout", "1"], None).await;
    // HTTP/2: the body trickles in one byte every 250 ms and never ends.
    let (r, w) = h2_open(&s).await;
    w.lock()
        .await
        .write_all(&frame(HEADERS, END_HEADERS, 1, &post_header_block()))
        .await
        .unwrap();
    let trickle_to = w.clone();
    let trickle = tokio::spawn(async move {
        loop {
            if trickle_to
                .lock()
                .await
                .write_all(&frame(DATA, 0, 1, b"a"))
                .await
                .is_err()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    });
    let cut = h2_until_cut(r, w, true, false).await;
    trickle.abort();
    assert!(
        cut.is_some(),
        "an HTTP/2 body sent at 4 bytes/s was never cut"
    );

    // HTTP/1.1: the same body; the answer is 408 or a closed connection.
    let tls = tls_from(&s, Ipv4Addr::LOCALHOST, b"http/1.1")
        .await
        .unwrap();
    let (mut r, mut w) = tokio::io::split(tls);
    w.write_all(
        b"POST /oauth/v2/accessToken HTTP/1.1\r\nHost: 127.0.0.1\r\n\
          Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000000\r\n\r\n",
    )
    .await
    .unwrap();
    let trickle = tokio::spawn(async move {
        loop {
            if w.write_all(b"a").await.is_err() || w.flush().await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    });
    let read = async {
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        loop {
            match r.read(&mut buf).await {
                Ok(0) | Err(_) => return (Cut::Closed, got),
                Ok(n) => {
                    got.extend_from_slice(&buf[..n]);
                    if let Some(status) = std::str::from_utf8(&got)
                        .ok()
                        .and_then(|t| t.strip_prefix("HTTP/1.1 "))
                        .and_then(|t| t.get(..3))
                        .and_then(|t| t.parse::<u16>().ok())
                    {
                        return (Cut::Answered(status), got);
                    }
                }
            }
        }
    };
    let cut = tokio::time::timeout(CUT_WITHIN, read).await;
    trickle.abort();
    match cut {
        Ok((Cut::Closed, _)) | Ok((Cut::Answered(408), _)) => {}
        other => panic!("an HTTP/1.1 body sent at 4 bytes/s: {other:?}"),
    }
}

/// An HTTPS client whose connections come from `from`.
fn client_from(s: &Server, from: Ipv4Addr) -> reqwest::Client {
    reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&s.cert_pem).unwrap())
        .local_address(IpAddr::V4(from))
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// Polls `/healthz` from `from` until it answers 200, for at most the bound.
async fn healthy_from(s: &Server, from: Ipv4Addr) -> bool {
    let deadline = Instant::now() + CUT_WITHIN;
    while Instant::now() < deadline {
        let c = client_from(s, from);
        if let Ok(res) = c.get(s.url("/healthz")).send().await {
            if res.status() == 200 {
                return true;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test]
async fn connections_over_the_caps_are_refused_at_once_while_others_are_served() {
    // (flags, the addresses that fill the cap, the address refused, an address still served)
    let cases: [(&[&str], Vec<Ipv4Addr>, Ipv4Addr, Ipv4Addr); 2] = [
        (
            &["--max-connections-per-address", "4"],
            vec![Ipv4Addr::new(127, 0, 0, 2); 4],
            Ipv4Addr::new(127, 0, 0, 2),
            Ipv4Addr::new(127, 0, 0, 3),
        ),
        (
            &["--max-connections", "3"],
            (4..7).map(|i| Ipv4Addr::new(127, 0, 0, i)).collect(),
            Ipv4Addr::new(127, 0, 0, 7),
            // A freed place serves anyone.
            Ipv4Addr::new(127, 0, 0, 8),
        ),
    ];
    for (flags, fill, over, other) in cases {
        let mut args = vec!["--idle-timeout", "120", "--header-timeout", "120"];
        args.extend_from_slice(flags);
        let s = Server::start(&args, None).await;
        let mut held = Vec::new();
        for from in &fill {
            held.push(tls_from(&s, *from, b"http/1.1").await.unwrap());
        }
        assert!(
            refused(&s, over).await,
            "{flags:?}: a connection over the cap from {over} was served"
        );
        if flags[0] == "--max-connections-per-address" {
            assert!(
                healthy_from(&s, other).await,
                "{flags:?}: {other} was not served"
            );
        }
        // Closing one held connection frees its place.
        drop(held.pop());
        assert!(
            healthy_from(
                &s,
                if flags[0] == "--max-connections" {
                    other
                } else {
                    over
                }
            )
            .await,
            "{flags:?}: a freed place was not reused"
        );
        drop(held);
    }
}

fn open_descriptors(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

#[tokio::test]
async fn descriptor_exhaustion_backs_off_and_recovers() {
    let mut s = Server::start(
        &[
            "--max-connections",
            "100000",
            "--max-connections-per-address",
            "100000",
            "--handshake-timeout",
            "120",
        ],
        None,
    )
    .await;
    assert_eq!(
        s.client
            .get(s.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // Leave the server a handful of descriptors, then hold more connections than that.
    let pid = s.child.id();
    let limit = open_descriptors(pid) + 8;
    let status = std::process::Command::new("prlimit")
        .arg(format!("--pid={pid}"))
        .arg(format!("--nofile={limit}:{limit}"))
        .status()
        .unwrap();
    assert!(status.success(), "prlimit failed");
    let mut held = Vec::new();
    for _ in 0..40 {
        held.push(
            tcp_from(Ipv4Addr::new(127, 0, 0, 9), addr(&s))
                .await
                .unwrap(),
        );
    }
    let warnings = |log: &str| log.lines().filter(|l| l.contains("accept failed")).count();
    let deadline = Instant::now() + CUT_WITHIN;
    while warnings(&s.log()) == 0 {
        assert!(
            Instant::now() < deadline,
            "the server never ran out of descriptors: {}",
            s.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Out of descriptors for at least 2 s: a server that backs off logs a few lines, not one
    // per failed accept (a spinning loop writes thousands).
    let before = warnings(&s.log());
    tokio::time::sleep(Duration::from_secs(2)).await;
    let during = warnings(&s.log()) - before;
    assert!(
        during <= 3,
        "{during} accept warnings in 2 s: the loop spins"
    );
    // Once the connections close, it serves again.
    drop(held);
    assert!(
        healthy_from(&s, Ipv4Addr::LOCALHOST).await,
        "no recovery: {}",
        s.log()
    );
    assert!(s.child.try_wait().unwrap().is_none(), "the server exited");
    let _ = s.terminate();
}

#[tokio::test]
async fn oversized_bodies_get_a_413_the_client_reads() {
    let s = Server::start(&[], None).await;
    for size in [3 * 1024 * 1024, 1024 * 1024, 64 * 1024 + 1] {
        for path in ["/oauth/v2/accessToken", "/login", "/no/such/path"] {
            let body = format!("grant_type={}", "a".repeat(size));
            let res = s
                .client
                .post(s.url(path))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
                .await
                .unwrap_or_else(|e| panic!("{size} bytes to {path}: no answer: {e}"));
            assert_eq!(res.status(), 413, "{size} bytes to {path}");
        }
    }
    // The framings reqwest does not send: chunked (no declared size), and a client that waits
    // for 100 Continue before sending anything.
    let three_mb = 3 * 1024 * 1024;
    let chunked_body = {
        let chunk = format!("{:x}\r\n{}\r\n", 64 * 1024, "a".repeat(64 * 1024));
        let mut b = chunk.repeat(three_mb / (64 * 1024)).into_bytes();
        b.extend_from_slice(b"0\r\n\r\n");
        b
    };
    let cases: [(String, Vec<u8>); 2] = [
        ("Transfer-Encoding: chunked".into(), chunked_body),
        (
            format!("Content-Length: {three_mb}\r\nExpect: 100-continue"),
            Vec::new(),
        ),
    ];
    for (framing, body) in cases {
        let tls = tls_from(&s, Ipv4Addr::LOCALHOST, b"http/1.1")
            .await
            .unwrap();
        let (mut r, mut w) = tokio::io::split(tls);
        let head = format!(
            "POST /oauth/v2/accessToken HTTP/1.1\r\nHost: 127.0.0.1\r\n\
             Content-Type: application/x-www-form-urlencoded\r\n{framing}\r\n\r\n"
        );
        let send = tokio::spawn(async move {
            let _ = w.write_all(head.as_bytes()).await;
            let _ = w.write_all(&body).await;
            let _ = w.flush().await;
            w
        });
        let mut got = Vec::new();
        let read = tokio::time::timeout(CUT_WITHIN, async {
            let mut buf = [0u8; 4096];
            while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                match r.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
        })
        .await;
        let text = String::from_utf8_lossy(&got);
        assert!(
            read.is_ok() && text.starts_with("HTTP/1.1 413"),
            "{framing}: {text:?}"
        );
        let _ = send.await;
    }
    // The server still serves.
    assert_eq!(
        s.client
            .get(s.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

/// The admin listener's base URL from the start-up message.
fn admin_base(s: &Server) -> String {
    let line = line_value(&s.stdout, "admin API on").expect("the admin listener is announced");
    line.trim_end_matches("/admin/v1").to_string()
}

#[tokio::test]
async fn metrics_are_served_only_on_the_admin_listener_or_with_the_token() {
    // Default: not on the public port.
    let s = Server::start(&[], None).await;
    let res = s.client.get(s.url("/metrics")).send().await.unwrap();
    assert_eq!(
        res.status(),
        404,
        "/metrics is open to anyone on the public port"
    );

    // With an admin listener: there, and still not on the public port.
    let s = Server::start(&["--admin-listen", "127.0.0.1:0"], None).await;
    let admin = admin_base(&s);
    let res = s
        .client
        .get(format!("{admin}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res
        .text()
        .await
        .unwrap()
        .contains("scopegate_http_requests_total"));
    let res = s.client.get(s.url("/metrics")).send().await.unwrap();
    assert_eq!(res.status(), 404);

    // With a token: on the public port for that bearer token only.
    let token = "metrics-token-0123456789abcdef";
    let data = TempDir::new("it");
    let url = format!("sqlite://{}/scopegate.db", data.path().display());
    let s = Server::start_with(data, url, &[], &[("SCOPEGATE_METRICS_TOKEN", token)]).await;
    let wrong = format!("{token}x");
    let short = &token[..token.len() - 1];
    for presented in [
        None,
        Some(""),
        Some(short),
        Some(wrong.as_str()),
        Some("Basic"),
    ] {
        let mut req = s.client.get(s.url("/metrics"));
        if let Some(p) = presented {
            req = req.header("authorization", format!("Bearer {p}"));
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), 401, "token {presented:?}");
        assert!(res.headers().contains_key("www-authenticate"));
    }
    let res = s
        .client
        .get(s.url("/metrics"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // Refused: a token too short to guard the port.
    let out = std::process::Command::new(BIN)
        .args(["--data-dir"])
        .arg(s.data.path())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("SCOPEGATE_METRICS_TOKEN", "short")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("metrics token"));
}

#[tokio::test]
async fn zero_limits_are_refused_at_start() {
    let data = TempDir::new("it");
    for flag in [
        "--handshake-timeout",
        "--header-timeout",
        "--body-timeout",
        "--idle-timeout",
        "--keepalive-interval",
        "--max-connections",
        "--max-connections-per-address",
    ] {
        let out = std::process::Command::new(BIN)
            .arg("--data-dir")
            .arg(data.path())
            .args(["serve", "--listen", "127.0.0.1:0", flag, "0"])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{flag} 0 was accepted");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("at least 1"),
            "{flag} 0: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[tokio::test]
async fn an_idle_http2_client_does_not_hold_the_shutdown() {
    // Browsers and pooled clients keep an HTTP/2 connection open after the server's GOAWAY; the
    // drain must not wait for them once nothing is in flight.
    let mut s = Server::start(&[], None).await;
    let c = client_from(&s, Ipv4Addr::LOCALHOST);
    let res = c.get(s.url("/healthz")).send().await.unwrap();
    assert_eq!(
        res.version(),
        reqwest::Version::HTTP_2,
        "the client must speak HTTP/2"
    );
    assert_eq!(res.status(), 200);
    // `terminate` allows 10 s; the drain timeout for requests in flight is 20 s.
    let status = s.terminate();
    assert!(status.success(), "{status:?}");
    drop(c);
}
