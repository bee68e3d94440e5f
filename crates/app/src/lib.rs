//! scopegate's application layer. Everything a request or a command can cause is one function
//! here: typed input in, the core's decisions, its own transaction(s) and audit event, a typed
//! outcome out. It knows nothing of HTTP; `scopegate-http` and the CLI call it and never the store.

pub mod audit;
pub mod authorize;
pub mod clock;
pub mod config;
pub mod enforce;
pub mod error;
pub mod files;
pub mod grants;
pub mod health;
pub mod maintenance;
pub mod metrics;
pub mod oauth;
pub mod ops;
pub mod password;
pub mod sandbox;
pub mod session;
pub mod signing;
pub mod state;
pub mod throttle;
pub mod userinfo;

pub use config::{Compat, Config, Gateway, TransportLimits};

/// For the black-box tests only (the `test-support` feature, which only the CLI's
/// dev-dependencies turn on): the store, to arrange rows (an old token, a dropped table) and to
/// check what is stored (a key encrypted at rest). The binary is built without it, so nothing
/// outside this crate can open a transaction.
#[cfg(feature = "test-support")]
pub mod testing {
    pub use scopegate_store as store;
}
pub use error::{Error, Result};
pub use state::{Service, ServiceState, StartError};
