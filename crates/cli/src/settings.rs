//! Configuration: flags, then SCOPEGATE_* environment variables (clap reads both), then the
//! optional TOML file, then defaults. docs/configuration.md lists every key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use scopegate_app::{Compat, Config};
use scopegate_core::versions::{ApiVersion, ApiVersions};
use serde::Deserialize;

/// Options every command accepts.
#[derive(Debug, Clone, clap::Args)]
pub struct Global {
    /// A TOML configuration file.
    #[arg(long, env = "SCOPEGATE_CONFIG", global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The data folder (SQLite database, TLS certificate, master secret).
    #[arg(long, env = "SCOPEGATE_DATA_DIR", global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// sqlite://PATH or postgres://USER@HOST:PORT/DB.
    #[arg(
        long,
        env = "SCOPEGATE_DATABASE_URL",
        global = true,
        value_name = "URL"
    )]
    pub database_url: Option<String>,
    /// A permission catalog file instead of the embedded LinkedIn catalog.
    #[arg(long, env = "SCOPEGATE_CATALOG", global = true, value_name = "FILE")]
    pub catalog: Option<PathBuf>,
    /// Print one JSON document on stdout.
    #[arg(long, global = true)]
    pub json: bool,
}

/// Options of `serve`.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "SCOPEGATE_LISTEN", value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Public base URL (the issuer is this plus /oauth).
    #[arg(long, env = "SCOPEGATE_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,
    /// PEM certificate chain.
    #[arg(long, env = "SCOPEGATE_TLS_CERT", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key.
    #[arg(long, env = "SCOPEGATE_TLS_KEY", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// Wire behaviour: standard (RFC / OIDC exactly) or linkedin (LinkedIn's quirks).
    #[arg(long, env = "SCOPEGATE_COMPAT", value_name = "MODE", value_parser = parse_compat)]
    pub compat: Option<Compat>,
    /// On an empty store, create demo members, an organization, an ad account and an app.
    #[arg(long)]
    pub demo: bool,
    /// A route table for the decision API and forward-auth (default: the sandbox's).
    #[arg(long, env = "SCOPEGATE_ROUTES", value_name = "FILE")]
    pub routes: Option<PathBuf>,
    /// Serve the LinkedIn-shaped sandbox API: true or false (default: on with the embedded catalog).
    #[arg(long, env = "SCOPEGATE_SANDBOX", value_name = "BOOL")]
    pub sandbox: Option<bool>,
    /// The sandbox's active LinkedIn-Version values on /rest: a comma-separated list of YYYYMM
    /// versions, or "window:N" for the last N months of monthly versions (default: window:12,
    /// LinkedIn's published support window).
    #[arg(long, env = "SCOPEGATE_API_VERSIONS", value_name = "LIST")]
    pub api_versions: Option<String>,
    /// The ID-token signing algorithm: RS256 (default) or ES256.
    #[arg(long, env = "SCOPEGATE_ID_TOKEN_ALG", value_name = "ALG")]
    pub id_token_alg: Option<String>,
    /// Serve the admin API (/admin/v1) on this address only, not on the public listener.
    #[arg(long, env = "SCOPEGATE_ADMIN_LISTEN", value_name = "ADDR")]
    pub admin_listen: Option<SocketAddr>,
    /// On SIGTERM, keep serving this many seconds with /healthz answering 503 before closing.
    #[arg(long, env = "SCOPEGATE_DRAIN_SECONDS", value_name = "SECONDS")]
    pub drain_seconds: Option<u64>,
    /// A proxy whose X-Forwarded-For names the client (repeatable; the environment takes a
    /// comma-separated list). From other peers the header is ignored.
    #[arg(
        long = "trusted-proxy",
        env = "SCOPEGATE_TRUSTED_PROXIES",
        value_name = "IP",
        value_delimiter = ','
    )]
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// The gateway in front of /authz/v1/forward-auth: nginx, traefik or envoy. It names the one
    /// source of the original method and URI; without it forward-auth refuses every request.
    #[arg(long, env = "SCOPEGATE_FORWARD_AUTH_GATEWAY", value_name = "GATEWAY")]
    pub forward_auth_gateway: Option<scopegate_app::Gateway>,
    /// Seconds a client may take for the TLS handshake.
    #[arg(long, env = "SCOPEGATE_HANDSHAKE_TIMEOUT", value_name = "SECONDS")]
    pub handshake_timeout: Option<u64>,
    /// Seconds a client may take to send an HTTP/1.1 request head (also the keep-alive wait).
    #[arg(long, env = "SCOPEGATE_HEADER_TIMEOUT", value_name = "SECONDS")]
    pub header_timeout: Option<u64>,
    /// Seconds a client may take to send a whole request body (then 408).
    #[arg(long, env = "SCOPEGATE_BODY_TIMEOUT", value_name = "SECONDS")]
    pub body_timeout: Option<u64>,
    /// Seconds a connection with no request in flight stays open.
    #[arg(long, env = "SCOPEGATE_IDLE_TIMEOUT", value_name = "SECONDS")]
    pub idle_timeout: Option<u64>,
    /// Seconds between HTTP/2 PINGs; a peer silent for as long again is cut.
    #[arg(long, env = "SCOPEGATE_KEEPALIVE_INTERVAL", value_name = "SECONDS")]
    pub keepalive_interval: Option<u64>,
    /// Connections held at once per listener (default: from the open-file limit).
    #[arg(long, env = "SCOPEGATE_MAX_CONNECTIONS", value_name = "N")]
    pub max_connections: Option<usize>,
    /// Connections held at once from one client address (trusted proxies exempt).
    #[arg(long, env = "SCOPEGATE_MAX_CONNECTIONS_PER_ADDRESS", value_name = "N")]
    pub max_connections_per_address: Option<usize>,
}

/// A `--compat` value that names no mode.
#[derive(Debug, thiserror::Error)]
#[error("compat must be standard or linkedin, not {0}")]
pub struct UnknownCompat(String);

fn parse_compat(s: &str) -> Result<Compat, UnknownCompat> {
    match s {
        "standard" => Ok(Compat::Standard),
        "linkedin" => Ok(Compat::Linkedin),
        _ => Err(UnknownCompat(s.to_string())),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    public_url: Option<String>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    catalog: Option<PathBuf>,
    compat: Option<Compat>,
    secret_key: Option<scopegate_core::Secret>,
    id_token_alg: Option<String>,
    routes: Option<PathBuf>,
    sandbox: Option<bool>,
    admin_listen: Option<SocketAddr>,
    drain_seconds: Option<u64>,
    trusted_proxies: Option<Vec<std::net::IpAddr>>,
    forward_auth_gateway: Option<scopegate_app::Gateway>,
    handshake_timeout: Option<u64>,
    header_timeout: Option<u64>,
    body_timeout: Option<u64>,
    idle_timeout: Option<u64>,
    keepalive_interval: Option<u64>,
    max_connections: Option<usize>,
    max_connections_per_address: Option<usize>,
    metrics_token: Option<scopegate_core::Secret>,
    api_versions: Option<String>,
}

fn read_file(path: Option<&Path>) -> anyhow::Result<FileConfig> {
    let Some(path) = path else {
        return Ok(FileConfig::default());
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the config file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("in the config file {}", path.display()))
}

/// Merges flags/environment over the file over the defaults.
pub fn resolve(global: &Global, serve: Option<&ServeArgs>) -> anyhow::Result<Config> {
    let file = read_file(global.config.as_deref())?;
    let mut transport = scopegate_app::TransportLimits::default();
    resolve_transport(&mut transport, serve, &file)?;
    let data_dir = global
        .data_dir
        .clone()
        .or(file.data_dir)
        .unwrap_or_else(|| PathBuf::from("scopegate-data"));
    let mut config = Config::with_defaults(data_dir);
    if let Some(url) = global.database_url.clone().or(file.database_url) {
        config.database_url = url;
    }
    if let Some(l) = serve.and_then(|s| s.listen).or(file.listen) {
        config.listen = l;
        config.public_url = format!("https://{l}");
    }
    if let Some(u) = serve.and_then(|s| s.public_url.clone()).or(file.public_url) {
        let parsed = url::Url::parse(&u).with_context(|| format!("public URL {u}"))?;
        if parsed.scheme() != "https" {
            bail!("the public URL must be https (scopegate serves HTTPS only)");
        }
        config.public_url = u.trim_end_matches('/').to_string();
    }
    config.admin_listen = serve.and_then(|s| s.admin_listen).or(file.admin_listen);
    if let Some(d) = serve.and_then(|s| s.drain_seconds).or(file.drain_seconds) {
        config.drain_seconds = d;
    }
    config.trusted_proxies = match serve.map(|s| s.trusted_proxies.clone()) {
        Some(list) if !list.is_empty() => list,
        _ => file.trusted_proxies.unwrap_or_default(),
    };
    config.forward_auth_gateway = serve
        .and_then(|s| s.forward_auth_gateway)
        .or(file.forward_auth_gateway);
    config.tls_cert = serve.and_then(|s| s.tls_cert.clone()).or(file.tls_cert);
    config.tls_key = serve.and_then(|s| s.tls_key.clone()).or(file.tls_key);
    config.catalog_path = global.catalog.clone().or(file.catalog);
    config.compat = serve
        .and_then(|s| s.compat)
        .or(file.compat)
        .unwrap_or_default();
    match serve
        .and_then(|s| s.id_token_alg.clone())
        .or(file.id_token_alg)
        .as_deref()
    {
        None | Some("RS256") => {}
        Some("ES256") => config.es256 = true,
        Some(other) => bail!("id_token_alg must be RS256 or ES256, not {other}"),
    }
    config.routes_path = serve.and_then(|s| s.routes.clone()).or(file.routes);
    if let Some(raw) = serve.and_then(|s| s.api_versions.as_deref()) {
        config.api_versions = parse_api_versions(raw).context("--api-versions")?;
    } else if let Some(raw) = &file.api_versions {
        config.api_versions = parse_api_versions(raw).context("api_versions in the config file")?;
    }
    config.sandbox = serve.and_then(|s| s.sandbox).or(file.sandbox);
    config.secret_key = std::env::var("SCOPEGATE_SECRET_KEY")
        .ok()
        .filter(|s| !s.is_empty())
        .map(scopegate_core::Secret::new)
        .or(file.secret_key);
    config.transport = transport;
    // A token only from the environment or the file: a flag would show it in `ps`.
    if let Some(token) = std::env::var("SCOPEGATE_METRICS_TOKEN")
        .ok()
        .filter(|s| !s.is_empty())
        .map(scopegate_core::Secret::new)
        .or(file.metrics_token)
    {
        if token.expose().len() < MIN_METRICS_TOKEN {
            bail!("the metrics token must be at least {MIN_METRICS_TOKEN} characters");
        }
        config.metrics_token = Some(token);
    }
    Ok(config)
}

/// Why an `--api-versions` value was refused.
#[derive(Debug, thiserror::Error)]
pub enum BadApiVersions {
    #[error("\"{0}\" is not a LinkedIn version (YYYYMM)")]
    Version(String),
    #[error("window:N needs N between 1 and 120 months, not \"{0}\"")]
    Window(String),
    #[error("name at least one version, or window:N")]
    Empty,
}

/// `202511,202512` (exactly these) or `window:12` (the last 12 months on the service clock).
/// Anything unreadable is refused at start-up, never replaced by the default.
fn parse_api_versions(raw: &str) -> Result<ApiVersions, BadApiVersions> {
    if let Some(n) = raw.trim().strip_prefix("window:") {
        return match n.parse::<u32>() {
            Ok(months) if (1..=120).contains(&months) => Ok(ApiVersions::Window { months }),
            _ => Err(BadApiVersions::Window(n.to_string())),
        };
    }
    let mut listed = Vec::new();
    for v in raw.split(',').map(str::trim).filter(|v| !v.is_empty()) {
        let parsed = ApiVersion::parse(v).ok_or_else(|| BadApiVersions::Version(v.to_string()))?;
        listed.push(parsed.name());
    }
    if listed.is_empty() {
        return Err(BadApiVersions::Empty);
    }
    Ok(ApiVersions::Listed(listed))
}

/// A metrics token shorter than this is refused: it guards the public port.
const MIN_METRICS_TOKEN: usize = 16;

/// The listener's timeouts and connection caps: flag or environment, then file, then default.
/// Zero is refused: a zero timeout or cap would close every connection, and "no limit" is what
/// these settings exist to prevent.
fn resolve_transport(
    limits: &mut scopegate_app::TransportLimits,
    serve: Option<&ServeArgs>,
    file: &FileConfig,
) -> anyhow::Result<()> {
    let seconds =
        |name: &str, flag: Option<u64>, file: Option<u64>, slot: &mut std::time::Duration| {
            match flag.or(file) {
                Some(0) => bail!("{name} must be at least 1 second"),
                Some(n) => *slot = std::time::Duration::from_secs(n),
                None => {}
            }
            Ok(())
        };
    seconds(
        "handshake_timeout",
        serve.and_then(|s| s.handshake_timeout),
        file.handshake_timeout,
        &mut limits.handshake_timeout,
    )?;
    seconds(
        "header_timeout",
        serve.and_then(|s| s.header_timeout),
        file.header_timeout,
        &mut limits.header_timeout,
    )?;
    seconds(
        "body_timeout",
        serve.and_then(|s| s.body_timeout),
        file.body_timeout,
        &mut limits.body_timeout,
    )?;
    seconds(
        "idle_timeout",
        serve.and_then(|s| s.idle_timeout),
        file.idle_timeout,
        &mut limits.idle_timeout,
    )?;
    seconds(
        "keepalive_interval",
        serve.and_then(|s| s.keepalive_interval),
        file.keepalive_interval,
        &mut limits.keepalive_interval,
    )?;
    match serve
        .and_then(|s| s.max_connections)
        .or(file.max_connections)
    {
        Some(0) => bail!("max_connections must be at least 1"),
        Some(n) => limits.max_connections = Some(n),
        None => {}
    }
    match serve
        .and_then(|s| s.max_connections_per_address)
        .or(file.max_connections_per_address)
    {
        Some(0) => bail!("max_connections_per_address must be at least 1"),
        Some(n) => limits.max_connections_per_address = n,
        None => {}
    }
    Ok(())
}
