//! The scan engine end to end, on a fixture tree written to a fresh temporary directory.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use scopegate_scan::{scan, to_json, to_sarif, Finding, FindingKind, Rule, Scan, ScanError};
use serde_json::Value;

use FindingKind::{AuthorizationUrlWithoutScope as Url, OldPermission as Old};

/// A directory under the system temp dir, removed on drop.
struct TempTree(PathBuf);

impl TempTree {
    fn new() -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "scopegate-scan-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempTree(dir)
    }

    fn write(&self, rel: &str, contents: impl AsRef<[u8]>) {
        let path = self.0.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, contents).unwrap();
    }
}

impl Drop for TempTree {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn rule(name: &str, replacements: &[&str], note: Option<&str>) -> Rule {
    Rule {
        name: name.to_owned(),
        replacements: replacements.iter().map(|r| (*r).to_owned()).collect(),
        note: note.map(str::to_owned),
    }
}

/// Seed 003's eight old permissions (replacements in the seed's order).
fn seed_003_rules() -> Vec<Rule> {
    vec![
        rule(
            "rw_ad_campaigns",
            &["rw_ads", "r_ads_reporting", "r_targeting"],
            None,
        ),
        rule(
            "r_ad_campaigns",
            &["r_ads", "r_ads_reporting", "r_targeting"],
            None,
        ),
        rule(
            "rw_organization",
            &[
                "r_member_social",
                "w_member_social",
                "rw_organization_admin",
                "w_organization_social",
                "r_organization_social",
                "r_organization_lookup",
            ],
            None,
        ),
        rule(
            "r_organization",
            &[
                "r_member_social",
                "rw_organization_admin",
                "r_organization_social",
                "r_organization_lookup",
            ],
            None,
        ),
        rule("rw_dmp_segments", &["r_ads", "rw_dmp_segments"], None),
        rule(
            "r_ads_leadgen_automation",
            &["r_ads", "r_organization_social", "r_ads_leadgen_automation"],
            None,
        ),
        rule(
            "rw_company_admin",
            &[
                "rw_organization_admin",
                "r_organization_social",
                "w_organization_social",
            ],
            None,
        ),
        rule(
            "w_share",
            &["w_organization_social", "w_member_social"],
            Some("replace all old permissions in one change"),
        ),
    ]
}

const AUTH: &str = "https://www.linkedin.com/oauth/v2/authorization";

/// The fixture: old permissions in code and configuration of several kinds, and everything that
/// must not be found (ignored, hidden, binary, look-alike names, URLs that do have a scope).
fn fixture() -> TempTree {
    let t = TempTree::new();
    // A git repository, so that .gitignore applies (as with ripgrep).
    std::fs::create_dir_all(t.0.join(".git")).unwrap();
    t.write(".gitignore", "ignored/\n*.log\n");
    t.write(".ignore", "vendor/\n");

    t.write(
        "src/main.rs",
        "// Requests the old campaign permission.\n\
         const SCOPE: &str = \"r_ad_campaigns\";\n\
         fn f() { let w_shared = 1; let my_w_share = 2; let r_ads_reporting = 3; }\n",
    );
    // CRLF line endings, and multibyte characters before a match on its line.
    t.write(
        "app.py",
        format!(
            "# café ☕: w_share is gone\r\n\
             SCOPES = [\"rw_organization\", \"w_share\"]\r\n\
             AUTH = \"{AUTH}?response_type=code&client_id=abc&redirect_uri=https%3A%2F%2Fexample.com%2Fcb\"\r\n\
             OK = \"{AUTH}?response_type=code&client_id=abc&scope=r_liteprofile%20w_member_social\"\r\n"
        ),
    );
    t.write(
        "web/login.js",
        format!(
            "// Sign in with LinkedIn\n\
             const url = `{AUTH}?response_type=code&client_id=${{id}}&scope=r_liteprofile%20w_share`;\n\
             const old = \"{AUTH}?client_id=\" + id + \"&scope=\" + scopes;\n"
        ),
    );
    t.write(
        "config/app.yaml",
        "linkedin:\n  scope: \"r_ad_campaigns,w_share\"\n  other: w_shared\n",
    );
    t.write(
        "config/settings.json",
        "{\n  \"scope\": [\"w_share\"],\n  \"reporting\": \"r_ads_reporting\"\n}\n",
    );
    t.write(".env", "SCOPES=rw_organization r_basicprofile\n");
    t.write(".env.production", "LINKEDIN_SCOPE=rw_company_admin\n");
    t.write(
        "docs/auth.html",
        format!(
            "<a href=\"{AUTH}?response_type=code&amp;client_id=1&amp;scope=r_liteprofile\">ok</a>\n\
             <a href=\"/oauth/native-pkce/authorization?client_id=1\">no scope</a>\n"
        ),
    );

    // Never found: ignored by .gitignore and .ignore, hidden, binary.
    t.write("ignored/old.py", "SCOPE = 'w_share'\n");
    t.write("debug.log", "granted rw_organization\n");
    t.write("vendor/lib.js", "scope: 'w_share'\n");
    t.write(".hidden/notes.txt", "w_share\n");
    t.write(".github/workflows/ci.yml", "env:\n  SCOPE: w_share\n");
    t.write("tools/.env/lib/site.py", "w_share\n"); // a virtualenv named .env: a hidden directory
    let mut binary = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    binary.extend_from_slice(b" w_share rw_organization ");
    t.write("assets/logo.png", binary);
    t
}

/// `(path relative to the root, line, column, kind, text)` of each finding.
fn summary(root: &Path, findings: &[Finding]) -> Vec<(String, usize, usize, FindingKind, String)> {
    findings
        .iter()
        .map(|f| {
            let rel = f.path.strip_prefix(root).unwrap();
            (
                rel.to_string_lossy().into_owned(),
                f.line,
                f.column,
                f.kind,
                f.text.clone(),
            )
        })
        .collect()
}

fn run(paths: &[PathBuf]) -> Scan {
    scan(paths, &seed_003_rules()).unwrap()
}

#[test]
fn finds_exactly_the_old_permissions_and_scopeless_urls() {
    let t = fixture();
    let s = run(std::slice::from_ref(&t.0));
    assert!(s.errors.is_empty(), "{:?}", s.errors);
    let got = summary(&t.0, &s.findings);
    let f = |p: &str, l, c, k, x: &str| (p.to_owned(), l, c, k, x.to_owned());
    let want = vec![
        f(".env", 1, 8, Old, "rw_organization"),
        f(".env.production", 1, 16, Old, "rw_company_admin"),
        // "# café ☕: " is 13 bytes (10 characters).
        f("app.py", 1, 14, Old, "w_share"),
        f("app.py", 2, 12, Old, "rw_organization"),
        f("app.py", 2, 31, Old, "w_share"),
        f(
            "app.py",
            3,
            9,
            Url,
            &format!("{AUTH}?response_type=code&client_id=abc&redirect_uri=https%3A%2F%2Fexample.com%2Fcb"),
        ),
        f("config/app.yaml", 2, 11, Old, "r_ad_campaigns"),
        f("config/app.yaml", 2, 26, Old, "w_share"),
        f("config/settings.json", 2, 14, Old, "w_share"),
        f("docs/auth.html", 2, 10, Url, "/oauth/native-pkce/authorization?client_id=1"),
        f("src/main.rs", 2, 22, Old, "r_ad_campaigns"),
        f("web/login.js", 2, 119, Old, "w_share"),
    ];
    assert_eq!(got, want);
    // 10 text files (.gitignore and .ignore are hidden), the PNG skipped as binary.
    assert_eq!((s.files_scanned, s.binary_files), (8, 1));
}

#[test]
fn columns_count_bytes_and_characters() {
    let t = fixture();
    let s = run(&[t.0.join("app.py")]);
    let first = &s.findings[0];
    assert_eq!((first.line, first.column, first.char_column), (1, 14, 11));
    // CRLF: the `\r` ends up at the end of the previous line, not in the column.
    let second = &s.findings[1];
    assert_eq!(
        (second.line, second.column, second.char_column),
        (2, 12, 12)
    );
}

#[test]
fn findings_carry_the_rules_replacements_and_note() {
    let t = fixture();
    let s = run(&[t.0.join("config")]);
    let w_share = s.findings.iter().find(|f| f.text == "w_share").unwrap();
    assert_eq!(
        w_share.replacements,
        ["w_organization_social", "w_member_social"]
    );
    assert_eq!(
        w_share.to_string(),
        format!(
            "{}:2:26: old permission w_share: use w_organization_social, w_member_social \
             (replace all old permissions in one change)",
            t.0.join("config/app.yaml").display()
        )
    );
    let campaigns = &s.findings[0];
    assert_eq!(
        campaigns.message(),
        "old permission r_ad_campaigns: use r_ads, r_ads_reporting, r_targeting"
    );
}

#[test]
fn a_path_given_explicitly_is_scanned_even_if_ignored_or_hidden() {
    let t = fixture();
    let s = run(&[t.0.join("ignored/old.py"), t.0.join(".hidden")]);
    assert_eq!(
        summary(&t.0, &s.findings),
        [
            (
                ".hidden/notes.txt".to_owned(),
                1,
                1,
                Old,
                "w_share".to_owned()
            ),
            (
                "ignored/old.py".to_owned(),
                1,
                10,
                Old,
                "w_share".to_owned()
            ),
        ]
    );
}

#[test]
fn scans_are_deterministic_and_overlapping_roots_do_not_duplicate() {
    let t = fixture();
    let once = run(std::slice::from_ref(&t.0));
    let twice = run(&[t.0.clone(), t.0.join("config")]);
    assert_eq!(once.findings, twice.findings);
}

#[test]
fn bad_input_is_refused_before_scanning() {
    let t = fixture();
    assert!(matches!(
        scan(&[], &seed_003_rules()),
        Err(ScanError::NoPaths)
    ));
    assert!(matches!(
        scan(&[t.0.join("missing")], &seed_003_rules()),
        Err(ScanError::Io { .. })
    ));
    for bad in ["", "w share", "w-share"] {
        assert!(matches!(
            scan(std::slice::from_ref(&t.0), &[rule(bad, &[], None)]),
            Err(ScanError::InvalidRule { .. })
        ));
    }
    let twice = [rule("w_share", &[], None), rule("w_share", &[], None)];
    assert!(matches!(
        scan(std::slice::from_ref(&t.0), &twice),
        Err(ScanError::InvalidRule { .. })
    ));
}

#[test]
fn json_lists_findings_with_their_kind() {
    let t = fixture();
    let s = run(&[t.0.join("docs"), t.0.join("src")]);
    let v = to_json(&s);
    assert_eq!(v["files_scanned"], 2);
    assert_eq!(v["errors"], serde_json::json!([]));
    let kinds: Vec<&str> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["authorization_url_without_scope", "old_permission"]);
    let old = &v["findings"][1];
    assert_eq!(old["text"], "r_ad_campaigns");
    assert_eq!(
        (old["line"].as_u64(), old["column"].as_u64()),
        (Some(2), Some(22))
    );
    assert_eq!(old["replacements"][0], "r_ads");
}

/// The SARIF 2.1.0 schema, `sarif-2.1.0.json` from the npm package
/// `@microsoft/sarif-multitool-linux` 5.7.0 (Microsoft's SARIF SDK, by the spec's editors; MIT),
/// unchanged: sha256 1c49a0f2b60444c71bb14878e21e0d882198eff4c539861b133093ad89ed798c. It
/// declares the 2020-12 meta-schema; the OASIS copy declares draft-04, with the same
/// definitions. Validated with `boon`, a small compliant validator, with format assertions on
/// (so `uri` and `uri-reference` values are checked too).
fn sarif_schema() -> (boon::Schemas, boon::SchemaIndex) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sarif-schema-2.1.0.json");
    let schema: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let mut schemas = boon::Schemas::new();
    let mut compiler = boon::Compiler::new();
    compiler.enable_format_assertions();
    let url = "https://scopegate.invalid/sarif-schema-2.1.0.json";
    compiler.add_resource(url, schema).unwrap();
    let index = compiler.compile(url, &mut schemas).unwrap();
    (schemas, index)
}

#[test]
fn sarif_output_is_valid_against_the_sarif_2_1_0_schema() {
    let t = fixture();
    let s = run(std::slice::from_ref(&t.0));
    let sarif = to_sarif(&s, "0.1.0");
    let (schemas, index) = sarif_schema();
    if let Err(e) = schemas.validate(&sarif, index) {
        panic!("invalid SARIF: {e:#}\n{sarif:#}");
    }
    // The validator does reject what the schema forbids.
    let mut broken = sarif.clone();
    broken["runs"][0]["results"][0]["level"] = "fatal".into();
    assert!(schemas.validate(&broken, index).is_err());
    let mut broken = sarif.clone();
    broken["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]
        ["uri"] = "a b".into();
    assert!(schemas.validate(&broken, index).is_err());

    let run = &sarif["runs"][0];
    assert_eq!(run["tool"]["driver"]["name"], "scopegate");
    assert_eq!(run["invocations"][0]["executionSuccessful"], true);
    let rule_ids: Vec<&str> = run["tool"]["driver"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        rule_ids,
        [
            "authorization-url-without-scope",
            "old-permission/r_ad_campaigns",
            "old-permission/rw_company_admin",
            "old-permission/rw_organization",
            "old-permission/w_share",
        ]
    );
    let w_share_help = run["tool"]["driver"]["rules"][4]["help"]["text"]
        .as_str()
        .unwrap();
    assert!(
        w_share_help.contains("w_organization_social, w_member_social"),
        "{w_share_help}"
    );

    let results = run["results"].as_array().unwrap();
    assert_eq!(results.len(), s.findings.len());
    // app.py line 1: the third finding; columns in characters, relative URI, SRCROOT base.
    let r = &results[2];
    assert_eq!(r["ruleId"], "old-permission/w_share");
    assert_eq!(r["ruleIndex"], 4);
    assert_eq!(r["level"], "error");
    let loc = &r["locations"][0]["physicalLocation"];
    assert_eq!(loc["artifactLocation"]["uri"], "app.py");
    assert_eq!(loc["artifactLocation"]["uriBaseId"], "SRCROOT");
    assert_eq!(loc["region"]["startLine"], 1);
    assert_eq!(loc["region"]["startColumn"], 11);
    assert_eq!(loc["region"]["endColumn"], 18);
    let uris: Vec<&str> = results
        .iter()
        .map(|r| {
            r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert!(uris.contains(&"config/settings.json"), "{uris:?}");
    let base = run["originalUriBaseIds"]["SRCROOT"]["uri"]
        .as_str()
        .unwrap();
    assert!(
        base.starts_with("file:///") && base.ends_with('/'),
        "{base}"
    );
}

#[test]
fn sarif_reports_unreadable_parts_as_notifications() {
    let t = fixture();
    // An ignore file that cannot be parsed is reported, and the rest is still scanned.
    t.write("src/.gitignore", "[z-a]\n"); // an invalid range
    let s = run(std::slice::from_ref(&t.0));
    assert!(!s.errors.is_empty());
    assert!(s.findings.iter().any(|f| f.path.ends_with("src/main.rs")));
    let sarif = to_sarif(&s, "0.1.0");
    let (schemas, index) = sarif_schema();
    assert!(schemas.validate(&sarif, index).is_ok());
    let invocation = &sarif["runs"][0]["invocations"][0];
    assert_eq!(invocation["executionSuccessful"], false);
    assert!(!invocation["toolExecutionNotifications"]
        .as_array()
        .unwrap()
        .is_empty());
}

#[test]
fn empty_sarif_is_valid_too() {
    let t = TempTree::new();
    t.write("a.txt", "nothing here\n");
    let sarif = to_sarif(&run(std::slice::from_ref(&t.0)), "0.1.0");
    let (schemas, index) = sarif_schema();
    assert!(schemas.validate(&sarif, index).is_ok(), "{sarif:#}");
    assert_eq!(sarif["runs"][0]["results"], serde_json::json!([]));
}
