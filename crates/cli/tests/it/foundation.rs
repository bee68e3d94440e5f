//! Issue: the foundation. HTTPS only, health, metrics, the catalog commands, CLI conventions,
//! first start and graceful shutdown.

use std::io::{Read, Write};
use std::process::Command;

use crate::support::*;

#[tokio::test]
async fn healthz_answers_over_https_with_hsts_and_security_headers() {
    let s = Server::start(&[], None).await;
    let res = s.client.get(s.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let h = res.headers().clone();
    assert!(h["strict-transport-security"]
        .to_str()
        .unwrap()
        .contains("max-age="));
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["referrer-policy"], "no-referrer");
    assert!(h["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("frame-ancestors 'none'"));
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["status"], "ok");
    // Unknown paths get a JSON 404, still with HSTS.
    let res = s.client.get(s.url("/no/such/path")).send().await.unwrap();
    assert_eq!(res.status(), 404);
    assert!(res.headers().contains_key("strict-transport-security"));
}

#[tokio::test]
async fn curl_with_the_printed_certificate_path_works() {
    let s = Server::start(&[], None).await;
    let printed = line_value(&s.stdout, "TLS certificate (self-signed):")
        .expect("the certificate path is printed");
    let out = Command::new("curl")
        .args(["-sS", "--cacert", &printed, &s.url("/healthz")])
        .output()
        .expect("curl runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"ok\""));
}

#[tokio::test]
async fn tls_1_1_and_1_0_handshakes_fail_and_1_2_and_1_3_succeed() {
    let s = Server::start(&[], None).await;
    let host = s.base.trim_start_matches("https://").to_string();
    let handshake = |flag: &str| {
        let mut child = Command::new("openssl")
            .args(["s_client", "-connect", &host, flag, "-CAfile"])
            .arg(s.cert_path())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("openssl runs");
        let mut out = String::new();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        let ok = child.wait().unwrap().success();
        (ok, out)
    };
    for old in ["-tls1_1", "-tls1"] {
        let (ok, out) = handshake(old);
        assert!(
            !ok || !out.contains("Cipher is ECDHE"),
            "{old} must fail: {out}"
        );
        assert!(
            !out.contains("Verify return code: 0 (ok)") || out.contains("Cipher is (NONE)"),
            "{old}: {out}"
        );
    }
    for new in ["-tls1_2", "-tls1_3"] {
        let (ok, out) = handshake(new);
        assert!(ok, "{new} must succeed: {out}");
        assert!(out.contains("Verify return code: 0 (ok)"), "{new}: {out}");
    }
}

#[tokio::test]
async fn plain_http_to_the_port_gets_no_service() {
    let s = Server::start(&[], None).await;
    let host = s.base.trim_start_matches("https://").to_string();
    let mut tcp = std::net::TcpStream::connect(&host).unwrap();
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut buf = Vec::new();
    let _ = tcp.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    assert!(
        !text.contains("HTTP/1.1 200"),
        "plain HTTP was served: {text}"
    );
    assert!(!text.contains("\"ok\""));
}

#[tokio::test]
async fn metrics_are_exported_in_prometheus_format() {
    // /metrics is served on the admin listener (the public one answers 404 there by default).
    let s = Server::start(&["--admin-listen", "127.0.0.1:0"], None).await;
    s.client.get(s.url("/healthz")).send().await.unwrap();
    let admin = line_value(&s.stdout, "admin API on")
        .expect("the admin listener is announced")
        .trim_end_matches("/admin/v1")
        .to_string();
    let text = s
        .client
        .get(format!("{admin}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("# TYPE scopegate_http_requests_total counter"));
    let line = text
        .lines()
        .find(|l| l.starts_with("scopegate_http_responses_total{class=\"2xx\"}"))
        .unwrap();
    let n: u64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(n >= 1);
}

#[tokio::test]
async fn first_start_creates_only_the_admin_and_prints_its_password_once() {
    let s = Server::start(&[], None).await;
    let pw = line_value(
        &s.stdout,
        "Created the platform admin admin@scopegate.local with the one-time password:",
    )
    .expect("the one-time password is printed");
    assert!(pw.len() >= 16);
    let members = s.cli_json(&["member", "list"]);
    assert_eq!(members.as_array().unwrap().len(), 1);
    assert_eq!(members[0]["platform_admin"], true);
    assert_eq!(s.cli_json(&["app", "list"]).as_array().unwrap().len(), 0);
    // The password is not in the database file in the clear.
    assert!(!store_files_contain(s.data.path(), &pw));
    assert!(
        store_files_contain(s.data.path(), "admin@scopegate.local"),
        "the grep itself works"
    );
    // A restart on the same store prints no password again.
    let (data, database_url) = s.stop();
    let again = Server::start_in(data, database_url, &[]).await;
    assert!(
        !again.stdout.iter().any(|l| l.contains("one-time password")),
        "{:?}",
        again.stdout
    );
}

#[tokio::test]
async fn demo_data_covers_every_seed_role() {
    let s = Server::demo().await;
    assert!(s
        .stdout
        .iter()
        .any(|l| l.contains("client_id demoapp0000001")));
    let members = s.cli_json(&["member", "list"]);
    let emails: Vec<&str> = members
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["email"].as_str().unwrap())
        .collect();
    assert!(emails.contains(&"test-member@scopegate.local"));
    let app = s.cli_json(&["app", "show", "demoapp0000001"]);
    let member_perms: Vec<&str> = app["permissions"]["member"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for p in [
        "openid",
        "profile",
        "email",
        "w_member_social",
        "rw_ads",
        "r_ads",
        "w_organization_social",
    ] {
        assert!(
            member_perms.contains(&p),
            "{p} missing from {member_perms:?}"
        );
    }
    assert_eq!(app["client_credentials"], true);
    // Every organization and ad-account role of seed 000 is held by someone in the demo.
    let db = rusqlite_roles(&s);
    for role in [
        "ADMINISTRATOR",
        "DIRECT_SPONSORED_CONTENT_POSTER",
        "LEAD_GEN_FORMS_MANAGER",
        "ACCOUNT_BILLING_ADMIN",
        "ACCOUNT_MANAGER",
        "CAMPAIGN_MANAGER",
        "CREATIVE_MANAGER",
        "VIEWER",
    ] {
        assert!(
            db.contains(&role.to_string()),
            "{role} not held in the demo"
        );
    }
}

/// The roles held in the demo, read through the audit log (what the CLI recorded).
fn rusqlite_roles(s: &Server) -> Vec<String> {
    let events = s.cli_json(&["audit", "--limit", "1000"]);
    events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "role.grant")
        .map(|e| {
            e["detail"]
                .as_str()
                .unwrap()
                .split(' ')
                .nth(1)
                .unwrap()
                .to_string()
        })
        .collect()
}

#[tokio::test]
async fn sigterm_shuts_down_gracefully() {
    let mut s = Server::start(&[], None).await;
    assert_eq!(
        s.client
            .get(s.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let status = s.terminate();
    assert!(status.success(), "exit status {status:?}");
    assert!(s.log().contains("shutting down"));
}

#[tokio::test]
async fn serve_works_on_postgresql() {
    let s = Server::start(&["--demo"], Some(postgres_url())).await;
    let res = s.client.get(s.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(s.cli_json(&["app", "list"]).as_array().unwrap().len(), 1);
}

fn scopegate(args: &[&str]) -> std::process::Output {
    Command::new(BIN).args(args).output().unwrap()
}

#[test]
fn catalog_show_json_lists_every_permission_with_its_rules() {
    let out = scopegate(&["catalog", "show", "--json"]);
    assert!(out.status.success());
    let c: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let perms = c["permissions"].as_array().unwrap();
    let find = |n: &str| {
        perms
            .iter()
            .find(|p| p["name"] == n)
            .unwrap_or_else(|| panic!("{n} missing"))
            .clone()
    };
    assert_eq!(find("r_sales_nav_validation")["kind"], "application");
    assert_eq!(find("w_member_social")["kind"], "member");
    assert_eq!(
        find("r_ads")["consent"],
        "Retrieve your advertising accounts"
    );
    assert_eq!(find("r_ads")["role_restriction"]["resource"], "ad_account");
    assert_eq!(find("r_targeting")["auto_granted"], true);
    assert_eq!(
        find("w_share")["deprecated"]["replacements"],
        serde_json::json!(["w_organization_social", "w_member_social"])
    );
    assert_eq!(find("w_share")["deprecated"]["cutoff"], "2020-06-30");
    assert!(find("rw_ads")["programs"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p == "advertising-apis"));
    let programs = c["programs"].as_array().unwrap();
    assert!(programs
        .iter()
        .any(|p| p["id"] == "compliance" && p["access"] == "closed"));
    assert_eq!(c["platform"]["default_scope_sunset"], "2019-09-15");
}

#[test]
fn catalog_check_accepts_the_embedded_catalog() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../catalogs/linkedin.toml");
    let out = scopegate(&["catalog", "check", path]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn catalog_check_reports_each_mistake_with_file_and_line_and_exits_1() {
    let dir = TempDir::new("catalog");
    let file = dir.path().join("bad.toml");
    std::fs::write(
        &file,
        r#"[platform]
name = "Bad"

[roles]
organization = ["ADMINISTRATOR"]

[[program]]
id = "a"
name = "A"
area = "Sales"
access = "approval"
prerequisites = ["b"]
permissions = ["p1", "ghost"]

[[program]]
id = "b"
name = "B"
area = "Sales"
access = "approval"
prerequisites = ["a"]

[[permission]]
name = "p1"
kind = "member"
consent = "Do p1"
deprecated = { replacements = ["p_missing"], cutoff = 2020-01-01 }

[[permission]]
name = "p1"
kind = "member"
consent = "again"

[[permission]]
name = "app_perm"
kind = "application"
role_restriction = { resource = "organization", roles = ["ADMINISTRATOR"] }
"#,
    )
    .unwrap();
    let out = scopegate(&["catalog", "check", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let f = file.display().to_string();
    for (line, needle) in [
        (13, "unknown permission \"ghost\""),
        (8, "prerequisite cycle"),
        (26, "replacement \"p_missing\", which does not exist"),
        (29, "duplicate permission \"p1\""),
        (36, "cannot have a role restriction"),
    ] {
        let prefix = format!("{f}:{line}: ");
        assert!(
            err.lines()
                .any(|l| l.starts_with(&prefix) && l.contains(needle)),
            "missing {line}: {needle} in\n{err}"
        );
    }
    let json = scopegate(&["catalog", "check", file.to_str().unwrap(), "--json"]);
    assert_eq!(json.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["problems"].as_array().unwrap().len(), 5);
}

#[tokio::test]
async fn serve_runs_an_operators_own_catalog() {
    let dir = TempDir::new("own");
    let file = dir.path().join("own.toml");
    std::fs::write(&file, "[platform]\nname = \"Acme\"\n\n[[program]]\nid = \"basic\"\nname = \"Basic\"\narea = \"Consumer\"\naccess = \"open\"\npermissions = [\"read_things\"]\n\n[[permission]]\nname = \"read_things\"\nkind = \"member\"\nconsent = \"Read your things\"\n").unwrap();
    let s = Server::start(&["--catalog", file.to_str().unwrap()], None).await;
    assert_eq!(
        s.client
            .get(s.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let shown = s.cli_json(&["--catalog", file.to_str().unwrap(), "catalog", "show"]);
    assert_eq!(shown["platform"]["name"], "Acme");
}

#[test]
fn cli_errors_go_to_stderr_with_exit_1_and_change_nothing() {
    let dir = TempDir::new("cli");
    let db = format!("sqlite://{}/s.db", dir.path().display());
    let run = |args: &[&str]| {
        Command::new(BIN)
            .arg("--data-dir")
            .arg(dir.path())
            .arg("--database-url")
            .arg(&db)
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&["--json", "app", "show", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no app with client_id \"nope\""));
    let out = run(&[
        "app",
        "create",
        "--name",
        "X",
        "--owner",
        "ghost@example.com",
        "--redirect-uri",
        "https://x.example/cb",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let list = run(&["--json", "app", "list"]);
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&list.stdout).unwrap(),
        serde_json::json!([])
    );
}

#[test]
fn configuration_precedence_is_flag_then_environment_then_file() {
    let dir = TempDir::new("config");
    let catalog = |name: &str| {
        let f = dir.path().join(format!("{name}.toml"));
        std::fs::write(&f, format!("[platform]\nname = \"{name}\"\n")).unwrap();
        f.display().to_string()
    };
    let (from_file, from_env, from_flag) = (catalog("file"), catalog("env"), catalog("flag"));
    let config = dir.path().join("scopegate.toml");
    std::fs::write(&config, format!("catalog = \"{from_file}\"\n")).unwrap();
    let shown = |env: Option<&str>, flag: Option<&str>| {
        let mut cmd = Command::new(BIN);
        cmd.arg("--config")
            .arg(&config)
            .env_remove("SCOPEGATE_CATALOG");
        if let Some(e) = env {
            cmd.env("SCOPEGATE_CATALOG", e);
        }
        if let Some(f) = flag {
            cmd.args(["--catalog", f]);
        }
        let out = cmd.args(["--json", "catalog", "show"]).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["platform"]["name"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(shown(None, None), "file");
    assert_eq!(shown(Some(&from_env), None), "env");
    assert_eq!(shown(Some(&from_env), Some(&from_flag)), "flag");
    // An unknown key in the file is an error, not silence.
    std::fs::write(&config, "listen_port = 1\n").unwrap();
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .args(["catalog", "show"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown field"));
}

#[tokio::test]
async fn sslscan_finds_only_tls_1_2_and_1_3_with_aead_suites() {
    let s = Server::start(&[], None).await;
    let host = s.base.trim_start_matches("https://").to_string();
    let out = Command::new("sslscan")
        .args([
            "--no-colour",
            "--no-fallback",
            "--no-renegotiation",
            "--no-compression",
            "--no-heartbleed",
            "--no-groups",
            "--no-check-certificate",
            &host,
        ])
        .output()
        .expect("sslscan from Debian (scripts/test-deps installs it)");
    let text = String::from_utf8_lossy(&out.stdout);
    for old in ["SSLv2", "SSLv3", "TLSv1.0", "TLSv1.1"] {
        let line = text
            .lines()
            .find(|l| l.starts_with(old))
            .unwrap_or_else(|| panic!("sslscan printed no {old} line: {text}"));
        assert!(line.contains("disabled"), "{line}");
    }
    for new in ["TLSv1.2", "TLSv1.3"] {
        assert!(
            text.lines()
                .any(|l| l.starts_with(new) && l.contains("enabled")),
            "{new} not enabled: {text}"
        );
    }
    let suites: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("Preferred") || l.starts_with("Accepted"))
        .collect();
    assert!(!suites.is_empty(), "{text}");
    for s in suites {
        assert!(
            s.contains("GCM") || s.contains("CHACHA20"),
            "a non-AEAD suite is offered: {s}"
        );
        assert!(!s.contains("TLSv1.0") && !s.contains("TLSv1.1"), "{s}");
    }
}

#[tokio::test]
async fn no_token_code_or_secret_reaches_the_logs_or_the_store_in_the_clear() {
    // Debug logging on, so anything logged at all is in the file.
    let data = TempDir::new("logs");
    let db = format!("sqlite://{}/scopegate.db", data.path().display());
    let s = Server::start_with(data, db, &["--demo"], &[("SCOPEGATE_LOG", "debug")]).await;
    let b = crate::browser::Browser::new(&s.base, &s.cert_pem);
    let enc = |v: &str| -> String { url::form_urlencoded::byte_serialize(v.as_bytes()).collect() };
    let path = format!("/oauth/v2/authorization?response_type=code&client_id={DEMO_APP}&redirect_uri={}&state=s&scope=openid%20profile", enc(DEMO_REDIRECT));
    let url = b
        .consent(
            &b.authorize(&path, MEMBER, DEMO_PASSWORD).await.consent(),
            "allow",
        )
        .await;
    let code = crate::browser::param(&url, "code").unwrap();
    let (_, t) = s.redeem(&code, &[]).await;
    let access = t["access_token"].as_str().unwrap().to_string();
    let refresh = t["refresh_token"].as_str().unwrap().to_string();
    let (_, cc) = s.client_credentials(DEMO_APP, DEMO_SECRET).await;
    let app_token = cc["access_token"].as_str().unwrap().to_string();
    let rotated = s.cli_json(&["app", "secret", "rotate", DEMO_APP])["client_secret"]
        .as_str()
        .unwrap()
        .to_string();
    let log = s.log();
    assert!(
        log.contains("DEBUG") || log.contains("INFO"),
        "the log is being written"
    );
    for (what, secret) in [
        ("code", &code),
        ("access token", &access),
        ("refresh token", &refresh),
        ("2-legged token", &app_token),
        ("client secret", &DEMO_SECRET.to_string()),
        ("rotated secret", &rotated),
        ("password", &DEMO_PASSWORD.to_string()),
    ] {
        assert!(!log.contains(secret.as_str()), "the {what} is in the log");
        assert!(
            !store_files_contain(s.data.path(), secret),
            "the {what} is in the store files"
        );
    }
}
