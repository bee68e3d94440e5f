//! Test harness: the real `scopegate` binary, started on port 0 over TLS with its own data
//! folder, and an HTTPS client that trusts its self-signed certificate.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use scopegate_app::clock::Clock as _;

pub const BIN: &str = env!("CARGO_BIN_EXE_scopegate");

/// A temporary folder removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let mut b = [0u8; 8];
        getrandom::getrandom(&mut b).unwrap();
        let name: String = b.iter().map(|x| format!("{x:02x}")).collect();
        let p = std::env::temp_dir().join(format!("scopegate-{tag}-{name}"));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if self.0.as_os_str().is_empty() {
            return;
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The PostgreSQL URL for tests, with a fresh schema, or a failure saying why there is none.
pub fn postgres_url() -> String {
    let url = std::env::var("SCOPEGATE_TEST_DATABASE_URL").unwrap_or_default();
    assert!(
        !url.is_empty(),
        "SCOPEGATE_TEST_DATABASE_URL is not set: this test needs PostgreSQL (e.g. postgres://postgres@127.0.0.1:5432/test)"
    );
    let mut b = [0u8; 6];
    getrandom::getrandom(&mut b).unwrap();
    let schema: String = b.iter().map(|x| format!("{x:02x}")).collect();
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}schema=it_{schema}")
}

/// A running `scopegate serve`.
pub struct Server {
    pub child: Child,
    pub base: String,
    pub data: TempDir,
    pub database_url: String,
    pub stdout: Vec<String>,
    pub client: reqwest::Client,
    pub cert_pem: Vec<u8>,
}

impl Server {
    /// `scopegate serve --demo` on SQLite.
    pub async fn demo() -> Server {
        Server::start(&["--demo"], None).await
    }

    /// Starts the server with extra `serve` flags, on SQLite unless a database URL is given.
    pub async fn start(extra: &[&str], database_url: Option<String>) -> Server {
        let data = TempDir::new("it");
        let database_url = database_url
            .unwrap_or_else(|| format!("sqlite://{}/scopegate.db", data.path().display()));
        Server::start_in(data, database_url, extra).await
    }

    /// Starts the server on an existing data folder (for restarts).
    pub async fn start_in(data: TempDir, database_url: String, extra: &[&str]) -> Server {
        Server::start_with(data, database_url, extra, &[]).await
    }

    /// Starts the server with extra environment variables (e.g. a shared SCOPEGATE_SECRET_KEY).
    pub async fn start_with(
        data: TempDir,
        database_url: String,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Server {
        let log = std::fs::File::create(data.path().join("server.log")).unwrap();
        let mut child = Command::new(BIN)
            .arg("--data-dir")
            .arg(data.path())
            .arg("--database-url")
            .arg(&database_url)
            .arg("serve")
            .arg("--listen")
            .arg("127.0.0.1:0")
            .args(extra)
            .env("SCOPEGATE_LOG", "info")
            .env_remove("SCOPEGATE_SECRET_KEY")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("scopegate starts");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut lines = Vec::new();
        let base = loop {
            let line = rx
                .recv_timeout(Duration::from_secs(60))
                .unwrap_or_else(|_| {
                    let log =
                        std::fs::read_to_string(data.path().join("server.log")).unwrap_or_default();
                    panic!("scopegate did not start; stdout: {lines:?}; log: {log}")
                });
            lines.push(line.clone());
            if let Some(rest) = line.strip_prefix("scopegate is serving ") {
                break rest.split_whitespace().next().unwrap().to_string();
            }
        };
        // The rest of the start-up message (demo data, admin password) follows at once.
        while let Ok(line) = rx.recv_timeout(Duration::from_millis(300)) {
            lines.push(line);
        }
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || while rx.recv().is_ok() {});
        let cert_pem = std::fs::read(data.path().join("tls-cert.pem")).unwrap();
        let client = client(&cert_pem, true);
        Server {
            child,
            base,
            data,
            database_url,
            stdout: lines,
            client,
            cert_pem,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn cert_path(&self) -> PathBuf {
        self.data.path().join("tls-cert.pem")
    }

    /// A client that does not follow redirects and keeps cookies (a browser-like session).
    pub fn session(&self) -> reqwest::Client {
        client(&self.cert_pem, false)
    }

    /// Runs a CLI command on the same store.
    pub fn cli(&self, args: &[&str]) -> Output {
        self.cli_stdin(args, "")
    }

    /// Runs a CLI command on the same store with standard input.
    pub fn cli_stdin(&self, args: &[&str], stdin: &str) -> Output {
        let mut child = Command::new(BIN)
            .arg("--data-dir")
            .arg(self.data.path())
            .arg("--database-url")
            .arg(&self.database_url)
            .args(args)
            .env_remove("SCOPEGATE_SECRET_KEY")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }

    /// Runs a CLI command with --json and parses its output; panics if it failed.
    pub fn cli_json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = self.cli(&all);
        assert!(
            out.status.success(),
            "{args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "{args:?} printed no JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    /// Kills the server (like a crash) and hands back its data folder and database URL.
    pub fn stop(mut self) -> (TempDir, String) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let data = std::mem::replace(&mut self.data, TempDir(PathBuf::new()));
        (data, std::mem::take(&mut self.database_url))
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data.path().join("server.log")).unwrap_or_default()
    }

    /// Sends SIGTERM and waits for the process to exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        for _ in 0..200 {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("scopegate did not stop within 10 s of SIGTERM");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTPS client trusting only the given certificate.
pub fn client(cert_pem: &[u8], follow_redirects: bool) -> reqwest::Client {
    let cert = reqwest::Certificate::from_pem(cert_pem).unwrap();
    reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(cert)
        .cookie_store(true)
        .redirect(if follow_redirects {
            reqwest::redirect::Policy::limited(5)
        } else {
            reqwest::redirect::Policy::none()
        })
        .timeout(Duration::from_secs(30))
        // The suite's default: HTTP/1.1, as before reqwest could speak HTTP/2 (throttle.rs
        // chooses HTTP/2 where it tests it).
        .http1_only()
        .build()
        .unwrap()
}

/// The value after `prefix` on the first stdout line that has it.
pub fn line_value(lines: &[String], prefix: &str) -> Option<String> {
    lines
        .iter()
        .find_map(|l| l.trim().strip_prefix(prefix).map(|s| s.trim().to_string()))
}

/// A server running inside the test process, so a test can move its clock.
pub struct InProc {
    pub base: String,
    pub data: TempDir,
    pub database_url: String,
    pub clock: std::sync::Arc<scopegate_app::clock::OffsetClock>,
    pub state: scopegate_app::ServiceState,
    pub client: reqwest::Client,
    pub cert_pem: Vec<u8>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl InProc {
    /// The demo data set, standard mode.
    pub async fn demo() -> InProc {
        InProc::start(scopegate_app::Compat::Standard).await
    }

    pub async fn start(compat: scopegate_app::Compat) -> InProc {
        InProc::with_catalog(compat, scopegate_core::Catalog::linkedin()).await
    }

    /// The demo data set over a given catalog.
    pub async fn with_catalog(
        compat: scopegate_app::Compat,
        catalog: scopegate_core::Catalog,
    ) -> InProc {
        InProc::with_config(catalog, move |c| c.compat = compat).await
    }

    /// The demo data set with a configuration tweak.
    pub async fn with_config(
        catalog: scopegate_core::Catalog,
        tweak: impl FnOnce(&mut scopegate_app::Config),
    ) -> InProc {
        use std::sync::Arc;
        let data = TempDir::new("inproc");
        let database_url = format!("sqlite://{}/scopegate.db", data.path().display());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut config = scopegate_app::Config::with_defaults(data.path().to_path_buf());
        config.database_url = database_url.clone();
        config.listen = addr;
        config.public_url = format!("https://{addr}");
        tweak(&mut config);
        let tls = scopegate_http::tls::setup(None, None, data.path()).unwrap();
        let clock = Arc::new(scopegate_app::clock::OffsetClock::default());
        let app = scopegate_app::Service::open(
            config,
            catalog,
            clock.clone(),
            Arc::new(scopegate_app::clock::OsEntropy),
        )
        .await
        .unwrap();
        scopegate_app::ops::bootstrap::first_start(&app, true)
            .await
            .unwrap();
        let state = scopegate_app::ServiceState(Arc::new(app));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let s = state.clone();
        tokio::spawn(async move {
            let _ = scopegate_http::serve::serve(
                listener,
                tls.config,
                s,
                scopegate_http::http::Listener::All,
                async {
                    let _ = rx.await;
                },
            )
            .await;
        });
        let cert_pem = std::fs::read(data.path().join("tls-cert.pem")).unwrap();
        InProc {
            base: format!("https://{addr}"),
            client: client(&cert_pem, true),
            data,
            database_url,
            clock,
            state,
            cert_pem,
            shutdown: Some(tx),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn browser(&self) -> crate::browser::Browser {
        crate::browser::Browser::new(&self.base, &self.cert_pem)
    }

    /// Runs SQL on this server's SQLite file through the sqlite3 CLI in a child process, and
    /// returns what it printed. A connection opened in this process would drop the server's
    /// POSIX locks on the file when it closes (see `store_files_contain`).
    pub fn sql(&self, statement: &str) -> String {
        let out = Command::new("sqlite3")
            .arg("-cmd")
            .arg(".timeout 20000")
            .arg(self.data.path().join("scopegate.db"))
            .arg(statement)
            .output()
            .expect("the sqlite3 CLI (scripts/test-deps installs Debian's sqlite3)");
        assert!(
            out.status.success(),
            "sqlite3 {statement:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Makes a table unreadable to the server (a store outage of that table), until
    /// [`InProc::mend_table`].
    pub fn break_table(&self, table: &str) {
        self.sql(&format!("ALTER TABLE {table} RENAME TO {table}_broken"));
    }

    /// Undoes [`InProc::break_table`].
    pub fn mend_table(&self, table: &str) {
        self.sql(&format!("ALTER TABLE {table}_broken RENAME TO {table}"));
    }

    /// Runs a CLI command on the same store and clock; panics if it failed, returns its JSON.
    pub fn cli_json(&self, args: &[&str]) -> serde_json::Value {
        let out = Command::new(BIN)
            .arg("--data-dir")
            .arg(self.data.path())
            .arg("--database-url")
            .arg(&self.database_url)
            .arg("--json")
            .args(args)
            .env_remove("SCOPEGATE_SECRET_KEY")
            // The CLI runs on this server's (moved) clock, never on wall time: a step's
            // timestamps then do not depend on how fast the machine ran the steps before it.
            .env("SCOPEGATE_TEST_NOW", self.clock.now().to_string())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

impl Drop for InProc {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

pub const DEMO_APP: &str = "demoapp0000001";
pub const DEMO_SECRET: &str = "demo-secret-not-for-production";
pub const DEMO_REDIRECT: &str = "http://127.0.0.1:8080/callback";
pub const DEMO_PASSWORD: &str = "scopegate-demo";
pub const MEMBER: &str = "test-member@scopegate.local";

/// True when any of the store's files (database, WAL, journal) holds `needle` as raw bytes.
///
/// Runs grep in a child process on purpose: opening and closing an SQLite file in a process that
/// holds a live connection to it drops that process's POSIX locks on it, after which another
/// process may checkpoint and delete the WAL under the live connection ("How To Corrupt An
/// SQLite Database", 2.2). Tests must never do that to an in-process server.
pub fn store_files_contain(dir: &Path, needle: &str) -> bool {
    let files: Vec<PathBuf> = ["scopegate.db", "scopegate.db-wal", "scopegate.db-journal"]
        .iter()
        .map(|f| dir.join(f))
        .filter(|p| p.exists())
        .collect();
    assert!(!files.is_empty(), "no store files in {}", dir.display());
    let status = Command::new("grep")
        .arg("-q")
        .arg("-a")
        .arg("-F")
        .arg("--")
        .arg(needle)
        .args(&files)
        .status()
        .unwrap();
    status.success()
}

impl InProc {
    /// Stores an access token with exactly these scopes (bypassing the flows, to test
    /// enforcement of every permission) and returns it.
    pub async fn mint(&self, client_id: &str, member_id: Option<&str>, scopes: &str) -> String {
        let token = scopegate_core::Secret::generate(self.state.entropy.as_ref(), "AQ");
        let now = self.state.now();
        let client = client_id.to_string();
        let member = member_id.map(str::to_string);
        let scopes = scopegate_core::ScopeSet::parse(scopes).unwrap();
        let record = scopegate_core::model::TokenRecord {
            hash: self.state.keys.token_hash.hash(&token),
            kind: scopegate_core::model::TokenKind::Access,
            client_id: client.clone().into(),
            grant_id: None,
            member_id: member.clone().map(Into::into),
            scopes: scopes.clone(),
            created_at: now,
            authorized_at: now,
            expires_at: now + 3600,
            revoked_at: None,
            refresh_hash: None,
            code_hash: None,
            rotated_at: None,
            nonce: None,
            public_client: false,
            auth_time: now,
        };
        self.state
            .store_for_tests()
            .write(move |c| {
                let mut r = record.clone();
                if let Some(m) = &member {
                    r.grant_id = Some(
                        scopegate_app::testing::store::tokens::consent(
                            c, &client, m, &scopes, now,
                        )?
                        .id,
                    );
                }
                scopegate_app::testing::store::tokens::insert(c, &r)
            })
            .await
            .unwrap();
        token.expose().to_string()
    }

    /// A member's id by email.
    pub fn member_id(&self, email: &str) -> String {
        self.cli_json(&["member", "list"])
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["email"] == email)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    }
}

/// The token-style endpoints, the same on the real binary ([`Server`]) and in-process
/// ([`InProc`]).
pub trait TokenEndpoints {
    fn http(&self) -> &reqwest::Client;
    fn endpoint(&self, path: &str) -> String;

    /// POSTs a form to a token-style endpoint and returns (status, JSON).
    async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> (u16, serde_json::Value) {
        let res = self
            .http()
            .post(self.endpoint(path))
            .form(form)
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// A client-credentials token request; (status, JSON).
    async fn client_credentials(&self, client_id: &str, secret: &str) -> (u16, serde_json::Value) {
        self.post_form(
            "/oauth/v2/accessToken",
            &[
                ("grant_type", "client_credentials"),
                ("client_id", client_id),
                ("client_secret", secret),
            ],
        )
        .await
    }

    /// Redeems a code of the demo app at its registered redirect URL, with `extra` fields
    /// (a code_verifier, a second parameter); (status, JSON).
    async fn redeem(&self, code: &str, extra: &[(&str, &str)]) -> (u16, serde_json::Value) {
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", DEMO_REDIRECT),
            ("client_id", DEMO_APP),
            ("client_secret", DEMO_SECRET),
        ];
        form.extend_from_slice(extra);
        self.post_form("/oauth/v2/accessToken", &form).await
    }

    /// Introspects a token as the demo app; (status, JSON).
    async fn introspect_demo(&self, token: &str) -> (u16, serde_json::Value) {
        self.post_form(
            "/oauth/v2/introspectToken",
            &[
                ("client_id", DEMO_APP),
                ("client_secret", DEMO_SECRET),
                ("token", token),
            ],
        )
        .await
    }
}

impl TokenEndpoints for Server {
    fn http(&self) -> &reqwest::Client {
        &self.client
    }
    fn endpoint(&self, path: &str) -> String {
        self.url(path)
    }
}

impl TokenEndpoints for InProc {
    fn http(&self) -> &reqwest::Client {
        &self.client
    }
    fn endpoint(&self, path: &str) -> String {
        self.url(path)
    }
}

impl InProc {
    /// The newest `LinkedIn-Version` this server accepts now (its version table, on its clock):
    /// what a client written today sends on /rest.
    pub fn linkedin_version(&self) -> String {
        self.state.config.api_versions.active(self.state.now())[0].clone()
    }

    /// A request to this server with the headers LinkedIn's versioned API needs on /rest.
    pub fn api(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let r = self.client.request(method, self.url(path));
        if path.starts_with("/rest/") {
            r.header("LinkedIn-Version", self.linkedin_version())
                .header("X-Restli-Protocol-Version", "2.0.0")
        } else {
            r
        }
    }
}

/// The newest `LinkedIn-Version` a server with the default version table accepts at wall-clock
/// time (for the real binary, which runs on the system clock).
pub fn wall_clock_linkedin_version() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    scopegate_app::sandbox::ApiVersions::default().active(now)[0].clone()
}
