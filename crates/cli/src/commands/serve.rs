//! `scopegate serve`.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use scopegate_app::clock::{OsEntropy, SystemClock};
use scopegate_app::ops::bootstrap::{self, Bootstrap};
use scopegate_app::{Service, ServiceState};

use super::load_catalog;
use crate::settings::{self, Global, ServeArgs};

pub async fn run(global: &Global, args: &ServeArgs) -> anyhow::Result<ExitCode> {
    let mut config = settings::resolve(global, Some(args))?;
    let catalog = load_catalog(config.catalog_path.as_deref())?;
    let tls = scopegate_http::tls::setup(
        config.tls_cert.as_deref(),
        config.tls_key.as_deref(),
        &config.data_dir,
    )?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("listening on {}", config.listen))?;
    let local = listener.local_addr()?;
    // With --listen …:0 the kernel picks the port; the public URL must name the real one.
    if config.public_url == format!("https://{}", config.listen) {
        config.public_url = format!("https://{local}");
    }
    let app = Service::open(config, catalog, Arc::new(SystemClock), Arc::new(OsEntropy))
        .await
        .context("opening the store")?;
    let boot = bootstrap::first_start(&app, args.demo)
        .await
        .map_err(|e| anyhow::anyhow!("first start: {}", e.public_message()))?;
    announce(
        &app,
        &boot,
        local,
        &tls.cert_path,
        tls.self_signed,
        args.demo,
    );
    let state = ServiceState(Arc::new(app));
    // Signing keys are made once per deployment; RSA generation takes a moment, so it runs in
    // the background while the server already answers (ID tokens wait for it if they must).
    let keys_state = state.clone();
    tokio::spawn(async move {
        if let Err(e) = scopegate_app::signing::ensure_keys(&keys_state).await {
            tracing::error!(error = %e, "creating the signing keys failed");
        }
    });
    tokio::spawn(scopegate_app::maintenance::purge_loop(
        state.0.clone(),
        std::time::Duration::from_secs(60),
    ));
    use scopegate_http::http::Listener;
    let public = match state.config.admin_listen {
        Some(addr) => {
            let admin = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("listening on {addr} (admin API)"))?;
            crate::out!("admin API on https://{}/admin/v1", admin.local_addr()?);
            tokio::spawn(scopegate_http::serve::serve(
                admin,
                tls.config.clone(),
                state.clone(),
                Listener::Admin,
                scopegate_http::serve::shutdown_signal(),
            ));
            Listener::Public
        }
        None => Listener::All,
    };
    scopegate_http::serve::serve(
        listener,
        tls.config,
        state,
        public,
        scopegate_http::serve::shutdown_signal(),
    )
    .await?;
    Ok(ExitCode::SUCCESS)
}

fn announce(
    app: &Service,
    boot: &Bootstrap,
    local: std::net::SocketAddr,
    cert: &std::path::Path,
    self_signed: bool,
    demo: bool,
) {
    let base = &app.config.public_url;
    crate::out!(
        "scopegate is serving https://{local} (public URL {base}, issuer {})",
        app.config.issuer()
    );
    if self_signed {
        crate::out!("TLS certificate (self-signed): {}", cert.display());
        crate::out!(
            "  try: curl --cacert {} https://{local}/healthz",
            cert.display()
        );
    }
    if let Some(pw) = &boot.admin_password {
        crate::out!(
            "Created the platform admin {} with the one-time password: {}",
            bootstrap::ADMIN_EMAIL,
            pw.expose()
        );
        crate::out!("  (shown once; it is stored only as an argon2id hash)");
    }
    if let Some(d) = &boot.demo {
        crate::out!("Demo data created:");
        for (email, password) in &d.members {
            crate::out!("  member {email} / {}", password.expose());
        }
        crate::out!("  organization urn:li:organization:{}", d.organization_id);
        crate::out!("  ad account urn:li:sponsoredAccount:{}", d.ad_account_id);
        crate::out!(
            "  app client_id {} client_secret {}",
            d.client_id,
            d.client_secret.expose()
        );
        crate::out!("  (demo credentials are public: never use --demo for real users)");
    } else if demo {
        crate::out!("--demo: the store already has data, so no demo data was created");
    }
    use std::io::Write;
    let _ = std::io::stdout().flush();
}
