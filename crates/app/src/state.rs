//! The one value every handler and command works through.

use std::path::Path;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use scopegate_core::routes::{RouteTable, SANDBOX_TOML};
use scopegate_core::{Catalog, Entropy, HashKey};
use scopegate_store::Store;

use crate::clock::Clock;
use crate::config::Config;
use crate::metrics::Metrics;

/// Keys derived from the deployment's master secret.
pub struct Keys {
    /// Keys the hashes of tokens, codes, client secrets, sessions and API keys.
    pub token_hash: HashKey,
    /// Keys pairwise subject identifiers (OIDC `sub` per app).
    pub pairwise: HashKey,
    /// Encrypts private signing keys at rest.
    pub key_encryption: HashKey,
}

impl Keys {
    fn derive(master: &[u8]) -> Keys {
        Keys {
            token_hash: HashKey::derive(master, "scopegate token hash v1"),
            pairwise: HashKey::derive(master, "scopegate pairwise subject v1"),
            key_encryption: HashKey::derive(master, "scopegate key encryption v1"),
        }
    }
}

/// Config, store, catalog, keys, clock, randomness and metrics.
pub struct Service {
    pub config: Config,
    /// Only the application layer opens transactions: outside this crate the store is out of
    /// reach, so "a handler does not touch the store" is a compile error.
    pub(crate) store: Store,
    pub catalog: Arc<Catalog>,
    /// The route table the decision API, forward-auth and the sandbox enforce.
    pub routes: Arc<RouteTable>,
    /// Whether the sandbox API answers under /v2 and /rest.
    pub sandbox: bool,
    pub keys: Keys,
    pub clock: Arc<dyn Clock>,
    pub entropy: Arc<dyn Entropy>,
    pub metrics: Metrics,
    /// Recent client-authentication failures.
    pub auth_failures: crate::throttle::Throttle,
    /// Set when a shutdown began: /healthz answers 503 so a load balancer stops sending new
    /// requests while the listener still serves them (config `drain_seconds`).
    pub draining: std::sync::atomic::AtomicBool,
    /// The permissions each set of approved programs grants, computed once per set: the catalog
    /// does not change while the server runs, and every token answer narrows by it.
    effective: std::sync::Mutex<
        std::collections::HashMap<Vec<String>, Arc<scopegate_core::portal::EffectivePermissions>>,
    >,
}

/// A cheap handle on [`App`], the axum state.
#[derive(Clone)]
pub struct ServiceState(pub Arc<Service>);

impl std::ops::Deref for ServiceState {
    type Target = Service;
    fn deref(&self) -> &Service {
        &self.0
    }
}

/// A start-up failure.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Store(#[from] scopegate_store::StoreError),
    #[error("{0}")]
    Secret(String),
    #[error("{0}")]
    Routes(String),
}

/// Distinct approved-program sets kept; past this the memo starts over (it is only a cache).
const EFFECTIVE_MEMO: usize = 4096;

impl Service {
    /// The permissions `approved` programs grant (see `effective` above).
    pub fn effective_permissions(
        &self,
        approved: &[String],
    ) -> Arc<scopegate_core::portal::EffectivePermissions> {
        if let Some(e) = self
            .effective
            .lock()
            .ok()
            .and_then(|m| m.get(approved).cloned())
        {
            return e;
        }
        let e = Arc::new(scopegate_core::portal::effective_permissions(
            &self.catalog,
            approved,
        ));
        if let Ok(mut m) = self.effective.lock() {
            if m.len() >= EFFECTIVE_MEMO {
                m.clear();
            }
            m.insert(approved.to_vec(), e.clone());
        }
        e
    }

    /// Opens the store and loads the master secret. Used by `serve` and by every CLI command, so
    /// both work on the same store with the same keys.
    pub async fn open(
        config: Config,
        catalog: Catalog,
        clock: Arc<dyn Clock>,
        entropy: Arc<dyn Entropy>,
    ) -> Result<Service, StartError> {
        let master = master_secret(&config, entropy.as_ref())?;
        let (routes, sandbox) = load_routes(&config, &catalog)?;
        let store = Store::open(&config.database_url).await?;
        Ok(Service {
            keys: Keys::derive(&master),
            config,
            store,
            catalog: Arc::new(catalog),
            routes: Arc::new(routes),
            sandbox,
            clock,
            entropy,
            metrics: Metrics::default(),
            auth_failures: Default::default(),
            draining: Default::default(),
            effective: Default::default(),
        })
    }

    /// Now, from the injected clock.
    pub fn now(&self) -> i64 {
        self.clock.now()
    }
}

/// The master secret: from configuration (SCOPEGATE_SECRET_KEY), else `secret.key` in the data
/// folder, created on first start. Every node of a deployment must use the same one.
fn master_secret(config: &Config, entropy: &dyn Entropy) -> Result<Vec<u8>, StartError> {
    let decode = |s: &str| {
        URL_SAFE_NO_PAD
            .decode(s.trim().trim_end_matches('='))
            .ok()
            .filter(|b| b.len() >= 32)
    };
    if let Some(s) = &config.secret_key {
        return decode(s.expose()).ok_or_else(|| {
            StartError::Secret(
                "SCOPEGATE_SECRET_KEY must be at least 32 bytes, base64url-encoded".into(),
            )
        });
    }
    let path = config.data_dir.join("secret.key");
    match std::fs::read_to_string(&path) {
        Ok(s) => decode(&s).ok_or_else(|| {
            StartError::Secret(format!(
                "{} does not hold a base64url key of 32 bytes or more",
                path.display()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => create_secret(&path, entropy),
        Err(e) => Err(StartError::Secret(format!("{}: {e}", path.display()))),
    }
}

fn create_secret(path: &Path, entropy: &dyn Entropy) -> Result<Vec<u8>, StartError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| StartError::Secret(format!("{}: {e}", dir.display())))?;
    }
    let mut key = [0u8; 32];
    entropy.fill(&mut key);
    crate::files::write_private(path, URL_SAFE_NO_PAD.encode(key).as_bytes())
        .map_err(|e| StartError::Secret(e.to_string()))?;
    tracing::warn!(
        path = %path.display(),
        "created a new master secret in the data folder; set SCOPEGATE_SECRET_KEY to keep it elsewhere (several nodes must share it)"
    );
    Ok(key.to_vec())
}

#[cfg(feature = "test-support")]
impl Service {
    /// The store, for the black-box tests' arranging and checking of rows (see Cargo.toml).
    pub fn store_for_tests(&self) -> &Store {
        &self.store
    }
}

/// The route table in force, and whether the sandbox serves it. With the embedded catalog the
/// sandbox's table is the default and the sandbox is on; with an operator's catalog there is no
/// default table (its permissions are the operator's) and the sandbox is off. Both switchable.
pub fn load_routes(config: &Config, catalog: &Catalog) -> Result<(RouteTable, bool), StartError> {
    let problems = |path: &str, p: Vec<scopegate_core::Problem>| {
        StartError::Routes(format!(
            "the route table is invalid:\n{}",
            p.iter()
                .map(|x| format!("{path}:{}: {}", x.line, x.reason))
                .collect::<Vec<_>>()
                .join("\n")
        ))
    };
    let embedded = config.catalog_path.is_none();
    let table = match &config.routes_path {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .map_err(|e| StartError::Routes(format!("{}: {e}", p.display())))?;
            RouteTable::from_toml(&text, catalog)
                .map_err(|e| problems(&p.display().to_string(), e))?
        }
        None if embedded => RouteTable::from_toml(SANDBOX_TOML, catalog)
            .map_err(|e| problems("linkedin-routes.toml", e))?,
        None => RouteTable {
            name: "none".into(),
            default_version: "NO_VERSION".into(),
            routes: vec![],
        },
    };
    let sandbox = config
        .sandbox
        .unwrap_or(embedded && config.routes_path.is_none());
    Ok((table, sandbox))
}
