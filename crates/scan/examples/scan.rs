//! Runs the scan engine on the paths given, with seed 003's eight old permissions, and prints
//! one finding a line: `path:line:column: message` (or `--json` / `--sarif`). Used by
//! bench/scan/run, so the benchmark does not depend on the CLI.
//!
//! ```sh
//! cargo run --release -p scopegate-scan --example scan -- [--json|--sarif] PATH...
//! ```
//!
//! The `scopegate migrate scan` command takes the same rules from the permission catalog
//! (catalogs/linkedin.toml); they are written out here to keep the example self-contained.
//! Exit status: 0 no finding, 1 findings, 2 errors.

use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use scopegate_scan::{scan, to_json, to_sarif, Rule};

/// Seed 003's old-to-new mapping, replacements in the seed's order.
const RULES: [(&str, &[&str]); 8] = [
    (
        "rw_ad_campaigns",
        &["rw_ads", "r_ads_reporting", "r_targeting"],
    ),
    (
        "r_ad_campaigns",
        &["r_ads", "r_ads_reporting", "r_targeting"],
    ),
    (
        "rw_organization",
        &[
            "r_member_social",
            "w_member_social",
            "rw_organization_admin",
            "w_organization_social",
            "r_organization_social",
            "r_organization_lookup",
        ],
    ),
    (
        "r_organization",
        &[
            "r_member_social",
            "rw_organization_admin",
            "r_organization_social",
            "r_organization_lookup",
        ],
    ),
    ("rw_dmp_segments", &["r_ads", "rw_dmp_segments"]),
    (
        "r_ads_leadgen_automation",
        &["r_ads", "r_organization_social", "r_ads_leadgen_automation"],
    ),
    (
        "rw_company_admin",
        &[
            "rw_organization_admin",
            "r_organization_social",
            "w_organization_social",
        ],
    ),
    ("w_share", &["w_organization_social", "w_member_social"]),
];

fn main() -> ExitCode {
    let mut format = "text";
    let mut paths = Vec::new();
    for arg in std::env::args_os().skip(1) {
        match arg.to_str() {
            Some("--json") => format = "json",
            Some("--sarif") => format = "sarif",
            _ => paths.push(PathBuf::from(arg)),
        }
    }
    if paths.is_empty() {
        paths.push(PathBuf::from("."));
    }
    let rules: Vec<Rule> = RULES
        .iter()
        .map(|(name, replacements)| Rule {
            name: (*name).to_owned(),
            replacements: replacements.iter().map(|r| (*r).to_owned()).collect(),
            note: None,
        })
        .collect();

    let result = match scan(&paths, &rules) {
        Ok(result) => result,
        Err(e) => {
            eprintln!("scan: {e}");
            return ExitCode::from(2);
        }
    };
    let mut out = BufWriter::new(io::stdout().lock());
    let written = match format {
        "json" => writeln!(out, "{:#}", to_json(&result)),
        "sarif" => writeln!(out, "{:#}", to_sarif(&result, env!("CARGO_PKG_VERSION"))),
        _ => result
            .findings
            .iter()
            .try_for_each(|f| writeln!(out, "{f}")),
    };
    if let Err(e) = written.and_then(|()| out.flush()) {
        eprintln!("scan: {e}");
        return ExitCode::from(2);
    }
    for e in &result.errors {
        eprintln!("scan: {e}");
    }
    if !result.errors.is_empty() {
        ExitCode::from(2)
    } else if result.findings.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
