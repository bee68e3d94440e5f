//! The subcommands. Each one resolves the configuration, opens the same store as `serve`
//! (safe while it runs) and calls the application layer's operations: one implementation of each rule.

mod admin;
mod catalog;
mod migrate;
mod serve;

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Subcommand;
use scopegate_app::clock::{Clock, OffsetClock, OsEntropy, SystemClock};
use scopegate_app::Service;
use scopegate_core::Catalog;

use crate::settings::{self, Global};

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve HTTPS (the embedded LinkedIn catalog unless --catalog is given).
    // Boxed: the serve flags outweigh every other command's (clippy::large_enum_variant).
    Serve(Box<settings::ServeArgs>),
    /// Show or check a permission catalog.
    #[command(subcommand)]
    Catalog(catalog::CatalogCommand),
    /// Members.
    #[command(subcommand)]
    Member(admin::MemberCommand),
    /// Organizations (company pages) and member roles on them.
    #[command(subcommand)]
    Org(admin::ResourceCommand),
    /// Ad accounts and member roles on them.
    #[command(subcommand, name = "ad-account")]
    AdAccount(admin::ResourceCommand),
    /// Apps: credentials, redirect URLs, capabilities, products.
    #[command(subcommand)]
    App(admin::AppCommand),
    /// The partner-program review queue.
    #[command(subcommand)]
    Review(admin::ReviewCommand),
    /// The audit log of every change.
    Audit(admin::AuditArgs),
    /// Permission migrations: plans, a source scanner, the token audit, the report.
    #[command(subcommand)]
    Migrate(migrate::MigrateCommand),
    /// ID-token signing keys.
    #[command(subcommand)]
    Keys(admin::KeysCommand),
    /// Route tables for the decision API, forward-auth and the sandbox.
    #[command(subcommand)]
    Routes(catalog::RoutesCommand),
    /// Resource-server keys for the decision API (/authz/v1/check).
    #[command(subcommand, name = "rs-key")]
    RsKey(admin::AdminKeyCommand),
    /// Admin API keys for /admin/v1.
    #[command(subcommand, name = "admin-key")]
    AdminKey(admin::AdminKeyCommand),
}

pub async fn run(global: Global, command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Serve(args) => serve::run(&global, &args).await,
        Command::Catalog(c) => catalog::run(&global, c),
        Command::Routes(c) => catalog::run_routes(&global, c),
        Command::Migrate(c) => migrate::run(&global, c).await,
        other => {
            let app = open_app(&global).await?;
            admin::run(&app, global.json, other).await?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Loads the catalog named by the configuration, or the embedded LinkedIn catalog.
pub fn load_catalog(path: Option<&std::path::Path>) -> anyhow::Result<Catalog> {
    match path {
        None => Ok(Catalog::linkedin()),
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("reading the catalog {}", p.display()))?;
            Catalog::from_toml(&text).map_err(|e| {
                let lines: Vec<String> = e
                    .problems
                    .iter()
                    .map(|pr| format!("{}:{}: {}", p.display(), pr.line, pr.reason))
                    .collect();
                anyhow::anyhow!("the catalog is invalid:\n{}", lines.join("\n"))
            })
        }
    }
}

/// Opens the store and keys as `serve` does.
pub async fn open_app(global: &Global) -> anyhow::Result<Service> {
    let config = settings::resolve(global, None)?;
    let catalog = load_catalog(config.catalog_path.as_deref())?;
    Service::open(config, catalog, command_clock()?, Arc::new(OsEntropy))
        .await
        .context("opening the store")
}

/// The environment variable through which the black-box tests pin a command's clock.
pub const TEST_NOW_VAR: &str = "SCOPEGATE_TEST_NOW";

/// The clock of an administrative command: the system clock, except in debug builds, where
/// `SCOPEGATE_TEST_NOW` (Unix seconds) freezes it. The tests run the CLI beside an in-process
/// server whose clock they move; without this, a step such as `keys rotate` would stamp real
/// time while the server reads the test's time, and the verdict would depend on how fast the
/// machine ran the steps in between. Release builds never read the variable.
fn command_clock() -> anyhow::Result<Arc<dyn Clock>> {
    if cfg!(debug_assertions) {
        if let Ok(v) = std::env::var(TEST_NOW_VAR) {
            let t: i64 = v
                .parse()
                .with_context(|| format!("{TEST_NOW_VAR} must be Unix seconds, got {v:?}"))?;
            return Ok(Arc::new(OffsetClock::at(t)));
        }
    }
    Ok(Arc::new(SystemClock))
}

/// Prints `value` as JSON, or `human` for a person.
pub fn print(
    json: bool,
    value: &impl serde::Serialize,
    human: impl FnOnce() -> String,
) -> anyhow::Result<()> {
    if json {
        crate::out!("{}", serde_json::to_string_pretty(value)?);
    } else {
        let text = human();
        if !text.is_empty() {
            crate::out!("{}", text.trim_end());
        }
    }
    Ok(())
}
