//! `scopegate catalog show|check`.

use std::fmt::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use scopegate_core::catalog::PermissionKind;
use scopegate_core::Catalog;

use super::{load_catalog, print};
use crate::settings::Global;

#[derive(Debug, Subcommand)]
pub enum CatalogCommand {
    /// List every program and permission.
    Show,
    /// Validate a catalog file; exit 1 on any problem.
    Check {
        /// The catalog file.
        file: PathBuf,
    },
}

pub fn run(global: &Global, command: CatalogCommand) -> anyhow::Result<ExitCode> {
    match command {
        CatalogCommand::Show => {
            let config = crate::settings::resolve(global, None)?;
            let catalog = load_catalog(config.catalog_path.as_deref())?;
            print(global.json, &catalog, || human(&catalog))?;
            Ok(ExitCode::SUCCESS)
        }
        CatalogCommand::Check { file } => check(global.json, &file),
    }
}

fn check(json: bool, file: &std::path::Path) -> anyhow::Result<ExitCode> {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) => anyhow::bail!("reading {}: {e}", file.display()),
    };
    let (problems, summary) = match Catalog::from_toml(&text) {
        Ok(c) => (
            Vec::new(),
            format!(
                "{}: ok ({} programs, {} permissions)",
                file.display(),
                c.programs.len(),
                c.permissions.len()
            ),
        ),
        Err(e) => {
            let n = e.problems.len();
            (e.problems, format!("{}: {n} problem(s)", file.display()))
        }
    };
    let ok = problems.is_empty();
    if json {
        crate::out!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "file": file.display().to_string(),
                "ok": ok,
                "problems": problems,
            }))?
        );
    } else {
        for p in &problems {
            eprintln!("{}:{}: {}", file.display(), p.line, p.reason);
        }
        if ok {
            crate::out!("{summary}");
        } else {
            eprintln!("{summary}");
        }
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn human(c: &Catalog) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "Catalog: {}", c.platform.name);
    if let Some(d) = c.platform.default_scope_sunset {
        let _ = writeln!(s, "Default scopes sunset: {d}");
    }
    let _ = writeln!(s, "\nPrograms:");
    for p in &c.programs {
        let _ = writeln!(s, "  {} ({}) [{}, {:?}]", p.name, p.id, p.area, p.access);
        if !p.prerequisites.is_empty() {
            let _ = writeln!(s, "    requires one of: {}", p.prerequisites.join(", "));
        }
        if !p.permissions.is_empty() {
            let _ = writeln!(s, "    grants: {}", p.permissions.join(", "));
        }
    }
    let _ = writeln!(s, "\nPermissions:");
    for p in &c.permissions {
        let kind = match p.kind {
            PermissionKind::Member => "member",
            PermissionKind::Application => "application",
        };
        let _ = writeln!(
            s,
            "  {} [{kind}]{}",
            p.name,
            if p.auto_granted { " auto-granted" } else { "" }
        );
        if !p.description.is_empty() {
            let _ = writeln!(s, "    {}", p.description);
        }
        if let Some(m) = &p.consent {
            let _ = writeln!(s, "    consent: \"{m}\"");
        }
        if !p.programs.is_empty() {
            let _ = writeln!(s, "    programs: {}", p.programs.join(", "));
        }
        if let Some(r) = &p.role_restriction {
            let _ = writeln!(
                s,
                "    restricted to {} roles: {}",
                r.resource.as_str(),
                r.roles.join(", ")
            );
        }
        if let Some(d) = &p.deprecated {
            let _ = writeln!(
                s,
                "    deprecated (cut-off {}): use {}",
                d.cutoff,
                d.replacements.join(", ")
            );
        }
    }
    s
}

#[derive(Debug, Subcommand)]
pub enum RoutesCommand {
    /// Validate a route table against the catalog; exit 1 on any problem.
    Check {
        /// The route table (TOML).
        file: PathBuf,
    },
    /// Print the route table in force (the sandbox's by default).
    Show,
}

pub fn run_routes(global: &Global, command: RoutesCommand) -> anyhow::Result<ExitCode> {
    let config = crate::settings::resolve(global, None)?;
    let catalog = load_catalog(config.catalog_path.as_deref())?;
    match command {
        RoutesCommand::Show => {
            let table = scopegate_core::routes::RouteTable::from_toml(
                scopegate_core::routes::SANDBOX_TOML,
                &catalog,
            )
            .map_err(|p| {
                anyhow::anyhow!(
                    "the sandbox routes do not fit this catalog ({} problems)",
                    p.len()
                )
            })?;
            print(global.json, &table, || {
                let mut s = String::new();
                for r in &table.routes {
                    let _ = writeln!(
                        s,
                        "{:<6} {:<45} {}",
                        r.method,
                        r.path,
                        r.permissions.join(" | ")
                    );
                }
                s
            })?;
            Ok(ExitCode::SUCCESS)
        }
        RoutesCommand::Check { file } => {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| anyhow::anyhow!("reading {}: {e}", file.display()))?;
            let problems = match scopegate_core::routes::RouteTable::from_toml(&text, &catalog) {
                Ok(_) => vec![],
                Err(p) => p,
            };
            let ok = problems.is_empty();
            if global.json {
                crate::out!(
                    "{}",
                    serde_json::to_string_pretty(
                        &serde_json::json!({"file": file.display().to_string(), "ok": ok, "problems": problems})
                    )?
                );
            } else {
                for p in &problems {
                    eprintln!("{}:{}: {}", file.display(), p.line, p.reason);
                }
                if ok {
                    crate::out!("{}: ok", file.display());
                }
            }
            Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}
