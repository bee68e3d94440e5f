//! `scopegate migrate plan|tokens|report` (and `scan`, over the scanner crate).

use std::fmt::Write;
use std::process::ExitCode;

use anyhow::anyhow;
use clap::Subcommand;
use scopegate_app::ops::{self, Actor};
use scopegate_core::oauth::migration_plan;
use scopegate_core::ScopeSet;
use serde_json::json;

use super::{load_catalog, open_app, print};
use crate::settings::{self, Global};

#[derive(Debug, Subcommand)]
pub enum MigrateCommand {
    /// The new scope string for an old one, with a note per old permission.
    Plan {
        /// The scopes the app requests today (space- or comma-separated).
        scopes: String,
    },
    /// Live tokens issued before a time, per app (seed 003 step 8); --revoke revokes them.
    Tokens {
        /// Unix seconds, or an RFC 3339 time like 2026-11-27T00:00:00Z.
        #[arg(long)]
        issued_before: String,
        #[arg(long)]
        app: Option<String>,
        #[arg(long)]
        revoke: bool,
    },
    /// Apps still on deprecated permissions or default scopes, and members to re-authorize.
    Report,
    /// Find old permissions and authorization URLs without scope in source and configuration
    /// files (honouring .gitignore); exit 1 when anything is found, so it can gate a CI.
    Scan {
        /// Files or folders (default: the current folder).
        paths: Vec<std::path::PathBuf>,
        /// SARIF 2.1.0 for code-scanning tools.
        #[arg(long, conflicts_with = "json")]
        sarif: bool,
    },
}

fn parse_time(s: &str) -> anyhow::Result<i64> {
    if let Ok(n) = s.parse::<i64>() {
        return Ok(n);
    }
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map(|t| t.unix_timestamp())
        .map_err(|_| anyhow!("--issued-before must be Unix seconds or an RFC 3339 time, e.g. 2026-11-27T00:00:00Z"))
}

/// The catalog's deprecated permissions as scan rules (replacements and notes from the catalog).
fn scan_rules(catalog: &scopegate_core::Catalog) -> Vec<scopegate_scan::Rule> {
    catalog
        .permissions
        .iter()
        .filter_map(|p| {
            p.deprecated.as_ref().map(|d| scopegate_scan::Rule {
                name: p.name.clone(),
                replacements: d.replacements.clone(),
                note: d.note.clone(),
            })
        })
        .collect()
}

pub async fn run(global: &Global, command: MigrateCommand) -> anyhow::Result<ExitCode> {
    match command {
        MigrateCommand::Scan { paths, sarif } => scan(global, paths, sarif),
        MigrateCommand::Plan { scopes } => plan(global, &scopes),
        MigrateCommand::Tokens {
            issued_before,
            app: client,
            revoke,
        } => tokens(global, &issued_before, client.as_deref(), revoke).await,
        MigrateCommand::Report => report(global).await,
    }
}

fn scan(global: &Global, paths: Vec<std::path::PathBuf>, sarif: bool) -> anyhow::Result<ExitCode> {
    let config = settings::resolve(global, None)?;
    let catalog = load_catalog(config.catalog_path.as_deref())?;
    let paths = if paths.is_empty() {
        vec![std::path::PathBuf::from(".")]
    } else {
        paths
    };
    let result =
        scopegate_scan::scan(&paths, &scan_rules(&catalog)).map_err(|e| anyhow!(e.to_string()))?;
    if sarif {
        crate::out!(
            "{:#}",
            scopegate_scan::to_sarif(&result, env!("CARGO_PKG_VERSION"))
        );
    } else if global.json {
        crate::out!("{:#}", scopegate_scan::to_json(&result));
    } else {
        for f in &result.findings {
            crate::out!("{f}");
        }
        eprintln!(
            "{} findings in {} files",
            result.findings.len(),
            result.files_scanned
        );
    }
    for e in &result.errors {
        eprintln!("error: {e}");
    }
    // A file that could not be read may hold an old permission: that is not a pass.
    Ok(if result.findings.is_empty() && result.errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn plan(global: &Global, scopes: &str) -> anyhow::Result<ExitCode> {
    let config = settings::resolve(global, None)?;
    let catalog = load_catalog(config.catalog_path.as_deref())?;
    let requested = ScopeSet::parse(scopes).map_err(|e| anyhow!(e.to_string()))?;
    let plan = migration_plan(&catalog, &requested);
    print(
        global.json,
        &json!({"scope": plan.scopes.join(" "), "plan": plan}),
        || {
            let mut s = format!("scope={}\n", plan.scopes.join(" "));
            for c in &plan.changes {
                let _ = write!(s, "\n{} -> {}", c.old, c.request.join(" "));
                if !c.auto_granted.is_empty() {
                    let _ = write!(
                        s,
                        "\n  granted automatically with the program, do not request: {}",
                        c.auto_granted.join(", ")
                    );
                }
                if let Some(n) = &c.note {
                    let _ = write!(s, "\n  note: {n}");
                }
            }
            for u in &plan.unknown {
                let _ = write!(s, "\n{u}: not a permission of this catalog (kept as is)");
            }
            if plan.changes.is_empty() {
                s.push_str("\nno old permissions: nothing to migrate");
            }
            s
        },
    )?;
    Ok(ExitCode::SUCCESS)
}

async fn tokens(
    global: &Global,
    issued_before: &str,
    client: Option<&str>,
    revoke: bool,
) -> anyhow::Result<ExitCode> {
    let before = parse_time(issued_before)?;
    let app = open_app(global).await?;
    let (rows, revoked) = ops::migrate::tokens_before(&app, &Actor::Cli, before, client, revoke)
        .await
        .map_err(|e| anyhow!(e.public_message()))?;
    print(
        global.json,
        &json!({"issued_before": before, "apps": rows, "revoked": revoked}),
        || {
            let mut s = String::new();
            for r in &rows {
                let _ = writeln!(s, "{}: {} live tokens issued before the migration ({} members, {} application tokens)", r.client_id, r.tokens, r.members.len(), r.application_tokens);
            }
            if rows.is_empty() {
                s.push_str(
                    "no live token was issued before that time: the migration is complete\n",
                );
            }
            if revoke {
                let _ = writeln!(s, "revoked {revoked} tokens");
            }
            s
        },
    )?;
    Ok(ExitCode::SUCCESS)
}

async fn report(global: &Global) -> anyhow::Result<ExitCode> {
    let app = open_app(global).await?;
    let rows = ops::migrate::report(&app, &Actor::Cli)
        .await
        .map_err(|e| anyhow!(e.public_message()))?;
    print(global.json, &rows, || {
        let mut s = String::new();
        for r in &rows {
            let deprecated = if r.deprecated_permissions.is_empty() {
                "none".into()
            } else {
                r.deprecated_permissions.join(", ")
            };
            let defaults = if r.default_scopes.is_empty() {
                String::new()
            } else {
                format!(
                    " · default scopes {} until {}",
                    r.default_scopes.join(" "),
                    r.extension_until.clone().unwrap_or_default()
                )
            };
            let _ = writeln!(
                s,
                "{} ({}): deprecated {deprecated} · {} members to re-authorize{defaults}",
                r.name, r.client_id, r.members_to_reauthorize
            );
        }
        if rows.is_empty() {
            s.push_str("no app relies on deprecated permissions or default scopes\n");
        }
        s
    })?;
    Ok(ExitCode::SUCCESS)
}
