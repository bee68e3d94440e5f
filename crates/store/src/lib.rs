//! scopegate's storage: one interface, two backends (SQLite embedded, PostgreSQL for several nodes).
//!
//! Each query is written once, against [`Conn`], with `$n` placeholders; the backends differ only
//! in their migrations (DDL) and in how they run a transaction. That keeps the SQLite-or-PostgreSQL
//! choice in one place ([`Store`]) instead of scattered through the code.

mod conn;
mod migrate;
mod postgres;
mod sqlite;
mod value;

pub mod apps;
pub mod audit;
pub mod keys;
pub mod members;
pub mod pending;
pub mod sandbox;
pub mod settings;
pub mod tokens;

use std::sync::Arc;

pub use conn::{Conn, Dialect};
pub use value::{unknown, Col, Row, Value};

/// A storage failure.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness or foreign-key rule refused the change.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The row asked for does not exist.
    #[error("not found")]
    NotFound,
    /// A serialization failure or deadlock; the transaction is retried.
    #[error("transaction conflict, retry")]
    Retry,
    /// The database URL or settings are wrong.
    #[error("configuration: {0}")]
    Config(String),
    /// Anything else from the database.
    #[error("database: {0}")]
    Backend(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

enum Backend {
    Sqlite(sqlite::SqliteBackend),
    Postgres(Box<postgres::PgBackend>),
}

/// A handle on the store; cheap to clone.
#[derive(Clone)]
pub struct Store {
    backend: Arc<Backend>,
}

impl Store {
    /// Opens `sqlite://PATH` or `postgres://…` and applies pending migrations.
    pub async fn open(url: &str) -> Result<Store> {
        let url = url.to_string();
        let store = tokio::task::spawn_blocking(move || Store::open_blocking(&url))
            .await
            .map_err(|e| StoreError::Backend(format!("opening the store: {e}")))??;
        store.write(migrate::apply).await?;
        Ok(store)
    }

    fn open_blocking(url: &str) -> Result<Store> {
        let backend = if let Some(path) = url.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err(StoreError::Config("sqlite:// needs a file path".into()));
            }
            Backend::Sqlite(sqlite::SqliteBackend::open(std::path::Path::new(path))?)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres(Box::new(postgres::PgBackend::open(url)?))
        } else {
            return Err(StoreError::Config(
                "the database URL must start with sqlite:// or postgres://".into(),
            ));
        };
        Ok(Store {
            backend: Arc::new(backend),
        })
    }

    /// Which backend this store uses.
    pub fn dialect(&self) -> Dialect {
        match &*self.backend {
            Backend::Sqlite(_) => Dialect::Sqlite,
            Backend::Postgres(_) => Dialect::Postgres,
        }
    }

    /// Runs `f` in a read-only transaction (one consistent snapshot).
    pub async fn read<T, F>(&self, mut f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnMut(&mut dyn Conn) -> Result<T> + Send + 'static,
    {
        match &*self.backend {
            // SQLite point reads take microseconds: run them in place rather than pay a thread hop.
            Backend::Sqlite(db) => db.read(f),
            Backend::Postgres(_) => {
                let backend = self.backend.clone();
                tokio::task::spawn_blocking(move || match &*backend {
                    Backend::Postgres(db) => db.run(false, &mut f),
                    Backend::Sqlite(db) => db.read(&mut f),
                })
                .await
                .map_err(|e| StoreError::Backend(format!("read task: {e}")))?
            }
        }
    }

    /// Runs `f` in a write transaction and returns once it is durable.
    ///
    /// On PostgreSQL `f` may run more than once (serialization retries), so it must not have side
    /// effects outside the transaction.
    pub async fn write<T, F>(&self, mut f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnMut(&mut dyn Conn) -> Result<T> + Send + 'static,
    {
        match &*self.backend {
            Backend::Sqlite(db) => {
                let (tx, rx) = tokio::sync::oneshot::channel();
                db.submit(Box::new(move |conn: &mut dyn Conn| {
                    let result = f(conn);
                    let ok = result.is_ok();
                    let done: sqlite::Completion = Box::new(move |commit| {
                        let _ = tx.send(commit.and(result));
                    });
                    (ok, done)
                }))?;
                rx.await.map_err(|_| {
                    StoreError::Backend("the write was not committed (writer stopped)".into())
                })?
            }
            Backend::Postgres(_) => {
                let backend = self.backend.clone();
                tokio::task::spawn_blocking(move || match &*backend {
                    Backend::Postgres(db) => db.run(true, &mut f),
                    Backend::Sqlite(_) => Err(StoreError::Backend("backend changed".into())),
                })
                .await
                .map_err(|e| StoreError::Backend(format!("write task: {e}")))?
            }
        }
    }
}

/// The schema versions applied to this store, oldest first.
pub fn schema_versions(c: &mut dyn Conn) -> Result<Vec<i64>> {
    c.query(
        "SELECT version FROM schema_migrations ORDER BY version",
        params![],
    )?
    .iter()
    .map(|r| r.int(0))
    .collect()
}
