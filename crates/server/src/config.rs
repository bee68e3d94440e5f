//! The server's resolved configuration (flags, environment and file are merged by the binary).

use std::net::SocketAddr;
use std::path::PathBuf;

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
    /// The master secret (32 bytes) that keys token hashes; from the environment or the data folder.
    pub secret_key: Option<String>,
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
    pub forward_auth_gateway: Option<crate::enforce::Gateway>,
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
        }
    }

    /// The OAuth issuer: the public base URL + `/oauth`, as LinkedIn's live issuer is.
    pub fn issuer(&self) -> String {
        format!("{}/oauth", self.public_url.trim_end_matches('/'))
    }
}
