//! The server's resolved configuration (flags, environment and file are merged by the binary).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Which wire behaviour to reproduce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Compat {
    /// RFC 6749 / OpenID Connect Core exactly.
    #[default]
    Standard,
    /// LinkedIn's observed quirks (comma-separated scope, 30-minute codes, …).
    Linkedin,
}

/// Everything `serve` needs.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub database_url: String,
    /// The public base URL, e.g. `https://127.0.0.1:8443`; the issuer is this plus `/oauth`.
    pub public_url: String,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub catalog_path: Option<PathBuf>,
    pub compat: Compat,
    /// The master secret (32 bytes) that keys token hashes; from the environment or the data
    /// folder. A `Secret`, so a logged or printed Config never shows it.
    pub secret_key: Option<scopegate_core::Secret>,
    /// Sign ID tokens with ES256 (RS256 keys stay published for clients that need them).
    pub es256: bool,
    /// A route table for the decision API and forward-auth (default: the sandbox's, with the
    /// embedded catalog).
    pub routes_path: Option<PathBuf>,
    /// Serve the LinkedIn-shaped sandbox API (default: on with the embedded catalog only).
    pub sandbox: Option<bool>,
    /// Serve the admin API on this address only, off the public listener (RFC 9700's advice,
    /// as Hydra splits 4444/4445); None serves it on the public listener.
    pub admin_listen: Option<SocketAddr>,
    /// Seconds between a shutdown signal and closing the listener, with /healthz answering 503
    /// meanwhile, so a load balancer moves traffic away before connections close (0: none).
    pub drain_seconds: u64,
    /// Proxies (load balancers) whose `X-Forwarded-For` names the client; from any other peer the
    /// header is ignored. Throttles and sign-in limits key on the client so found.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// The gateway in front of forward-auth, which names where the original request's method and
    /// URI are read (docs/routes.md). None: forward-auth refuses every request.
    pub forward_auth_gateway: Option<Gateway>,
    /// Timeouts and connection caps of the HTTPS listeners.
    pub transport: TransportLimits,
    /// A bearer token that opens `/metrics` on the public listener. Without one, `/metrics` is
    /// served only on the admin listener (`admin_listen`), never to whoever reaches the public port.
    pub metrics_token: Option<scopegate_core::Secret>,
    /// The active `LinkedIn-Version`s of the sandbox's /rest API (default: LinkedIn's window).
    pub api_versions: scopegate_core::versions::ApiVersions,
}

/// How long a client may take over each part of a connection, and how many connections the
/// listener holds at once (docs/configuration.md "Transport limits"). Every slow or idle client
/// is cut after a bounded time, so none can hold a descriptor for ever.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportLimits {
    /// From accept to the end of the TLS handshake.
    pub handshake_timeout: Duration,
    /// For an HTTP/1.1 request head, from the moment the server waits for it (so also how long a
    /// keep-alive connection may sit between requests).
    pub header_timeout: Duration,
    /// For a whole request body, from the end of its head; past it the answer is 408.
    pub body_timeout: Duration,
    /// A connection with no request in flight (either protocol, including an HTTP/2 header
    /// block that never ends) is closed after this.
    pub idle_timeout: Duration,
    /// HTTP/2 PING interval; a peer that does not answer within the same time is cut.
    pub keepalive_interval: Duration,
    /// Connections held at once per listener; None: derived from the open-file limit.
    pub max_connections: Option<usize>,
    /// Connections held at once from one client address (an IPv6 /64 counts as one address);
    /// trusted proxies are exempt (they carry everyone's connections).
    pub max_connections_per_address: usize,
}

impl Default for TransportLimits {
    fn default() -> TransportLimits {
        TransportLimits {
            handshake_timeout: Duration::from_secs(10),
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            keepalive_interval: Duration::from_secs(20),
            max_connections: None,
            max_connections_per_address: 100,
        }
    }
}

impl Config {
    /// The defaults: 127.0.0.1:8443, ./scopegate-data, SQLite in the data folder.
    pub fn with_defaults(data_dir: PathBuf) -> Config {
        let listen: SocketAddr = ([127, 0, 0, 1], 8443).into();
        Config {
            database_url: format!("sqlite://{}", data_dir.join("scopegate.db").display()),
            public_url: format!("https://{listen}"),
            listen,
            data_dir,
            tls_cert: None,
            tls_key: None,
            catalog_path: None,
            compat: Compat::Standard,
            secret_key: None,
            es256: false,
            routes_path: None,
            sandbox: None,
            admin_listen: None,
            drain_seconds: 0,
            trusted_proxies: Vec::new(),
            forward_auth_gateway: None,
            transport: TransportLimits::default(),
            metrics_token: None,
            api_versions: scopegate_core::versions::ApiVersions::default(),
        }
    }

    /// The OAuth issuer: the public base URL + `/oauth`, as LinkedIn's live issuer is.
    pub fn issuer(&self) -> String {
        format!("{}/oauth", self.public_url.trim_end_matches('/'))
    }
}

/// The gateway in front of forward-auth, which decides where the original request's method and
/// URI are read from. Only that one source is trusted: a client can add any header the gateway
/// does not overwrite, so every other route-naming header is ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Gateway {
    /// nginx `auth_request`: `X-Original-Method` and `X-Original-URI`, set in the auth location
    /// (nginx then drops client headers of the same names).
    Nginx,
    /// Traefik ForwardAuth (and others that send the same pair, e.g. Caddy's `forward_auth`):
    /// `X-Forwarded-Method` and `X-Forwarded-Uri`, written by the gateway.
    Traefik,
    /// Envoy HTTP `ext_authz` with `path_prefix: /authz/v1/forward-auth`: the check request's own
    /// method and path.
    Envoy,
}

/// A `--gateway` value that names no gateway scopegate knows (clap shows the message).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the forward-auth gateway is nginx, traefik or envoy, not {0}")]
pub struct UnknownGateway(pub String);

impl std::str::FromStr for Gateway {
    type Err = UnknownGateway;
    fn from_str(s: &str) -> Result<Self, UnknownGateway> {
        match s {
            "nginx" => Ok(Gateway::Nginx),
            "traefik" => Ok(Gateway::Traefik),
            "envoy" => Ok(Gateway::Envoy),
            _ => Err(UnknownGateway(s.to_string())),
        }
    }
}
