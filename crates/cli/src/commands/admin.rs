//! Administrative commands over the store: members, organizations, ad accounts, apps, reviews,
//! audit. They act as the operator ([`Actor::Cli`]).

use std::fmt::Write;
use std::io::Read;

use anyhow::{anyhow, bail};
use clap::{Args, Subcommand};
use scopegate_core::catalog::ResourceType;
use scopegate_core::model::Capability;
use scopegate_http::error::Error;
use scopegate_http::ops::apps::AppInput;
use scopegate_http::ops::members::MemberInput;
use scopegate_http::ops::{self, Actor};
use scopegate_http::Service;
use serde_json::json;

use super::{print, Command};

#[derive(Debug, Subcommand)]
pub enum MemberCommand {
    /// Create a member; the password is read from standard input.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long)]
        first_name: String,
        #[arg(long, default_value = "")]
        last_name: String,
        #[arg(long, default_value = "")]
        headline: String,
        #[arg(long, default_value = "")]
        picture_url: String,
        #[arg(long, default_value = "en-US")]
        locale: String,
        /// Read the password from standard input (required: never on the command line).
        #[arg(long, required = true)]
        password_stdin: bool,
        /// Mark the email as verified.
        #[arg(long)]
        email_verified: bool,
        /// Make the member a platform admin.
        #[arg(long)]
        platform_admin: bool,
    },
    /// List members.
    List,
}

#[derive(Debug, Subcommand)]
pub enum ResourceCommand {
    /// Create one; prints its id.
    Create {
        #[arg(long)]
        name: String,
    },
    /// List them.
    List,
    /// Give a member a role on it.
    Grant {
        id: i64,
        member: String,
        role: String,
    },
    /// Take a role away.
    Revoke {
        id: i64,
        member: String,
        role: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum AppCommand {
    /// Create an app; prints its client_id and client_secret (shown once).
    Create {
        #[arg(long)]
        name: String,
        /// The owning member (id or email).
        #[arg(long)]
        owner: String,
        /// An authorized redirect URL (repeatable).
        #[arg(long = "redirect-uri")]
        redirect_uris: Vec<String>,
        /// The organization (company page) id the app belongs to.
        #[arg(long)]
        organization: Option<i64>,
        #[arg(long, default_value = "")]
        privacy_policy_url: String,
        #[arg(long, default_value = "")]
        logo_url: String,
    },
    /// List apps.
    List,
    /// Show one app: secrets, redirect URLs, products, effective permissions.
    Show { app: String },
    /// Delete an app and revoke every token and grant it holds.
    Delete { app: String },
    /// Client secrets.
    #[command(subcommand)]
    Secret(SecretCommand),
    /// Authorized redirect URLs.
    #[command(subcommand, name = "redirect-uri")]
    RedirectUri(RedirectCommand),
    /// Switch on a capability: client-credentials, refresh-tokens, native-pkce.
    Enable { app: String, capability: String },
    /// Switch off a capability.
    Disable { app: String, capability: String },
    /// Products and partner programs.
    #[command(subcommand)]
    Product(ProductCommand),
    /// Show (or with --set, replace) the app's default scopes.
    Defaults {
        app: String,
        /// Space- or comma-separated member permissions.
        #[arg(long)]
        set: Option<String>,
    },
    /// Default-scope extensions past the sunset (platform admins).
    #[command(subcommand)]
    Extension(ExtensionCommand),
}

#[derive(Debug, Subcommand)]
pub enum ExtensionCommand {
    /// Let the app use its default scopes until DATE (YYYY-MM-DD, inclusive).
    Grant {
        app: String,
        #[arg(long)]
        until: String,
    },
    /// End the app's extension now.
    Revoke { app: String },
}

#[derive(Debug, Subcommand)]
pub enum SecretCommand {
    /// Add a new secret; the old one stays valid until deleted (at most two).
    Rotate { app: String },
    /// Delete a secret by the id `app show` lists.
    Delete { app: String, id: i64 },
}

#[derive(Debug, Subcommand)]
pub enum RedirectCommand {
    Add { app: String, url: String },
    Remove { app: String, url: String },
}

#[derive(Debug, Subcommand)]
pub enum ProductCommand {
    /// Request a program (open ones are approved at once).
    Request { app: String, program: String },
    /// Remove a program from the app; takes effect at once.
    Remove { app: String, program: String },
}

#[derive(Debug, Subcommand)]
pub enum ReviewCommand {
    /// Pending requests, oldest first.
    List,
    /// Approve a pending request.
    Approve { app: String, program: String },
    /// Deny a pending request with a reason.
    Deny {
        app: String,
        program: String,
        /// One of LinkedIn's rejection reasons (see docs/portal.md) or free text.
        #[arg(long)]
        reason: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Add a new signing key; the old one stays published until ID tokens it signed expire.
    Rotate {
        /// RS256 or ES256.
        #[arg(long, default_value = "RS256")]
        alg: String,
        /// Seconds the new key is published before it signs (default: the JWKS cache time plus
        /// a minute, so relying parties have it before they meet its kid; 0: at once).
        #[arg(long, default_value_t = scopegate_http::oidc::KEY_PUBLISH_AHEAD)]
        activate_in: i64,
    },
    /// List the published keys.
    List,
}

#[derive(Debug, Subcommand)]
pub enum AdminKeyCommand {
    /// Create a key; printed once.
    Create {
        #[arg(long)]
        name: String,
    },
    /// Revoke the keys with this name.
    Revoke {
        #[arg(long)]
        name: String,
    },
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Only events on this target (client_id, member id, URN…).
    #[arg(long)]
    target: Option<String>,
    /// At most this many events, newest first.
    #[arg(long, default_value_t = 50)]
    limit: i64,
}

fn op<T>(r: Result<T, Error>) -> anyhow::Result<T> {
    r.map_err(|e| anyhow!(e.public_message()))
}

fn capability(s: &str) -> anyhow::Result<Capability> {
    Capability::parse(s).ok_or_else(|| {
        anyhow!("unknown capability \"{s}\": use client-credentials, refresh-tokens or native-pkce")
    })
}

fn when(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|d| {
            d.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| t.to_string())
}

pub async fn run(app: &Service, json: bool, command: Command) -> anyhow::Result<()> {
    let actor = Actor::Cli;
    match command {
        Command::Member(MemberCommand::Create {
            email,
            first_name,
            last_name,
            headline,
            picture_url,
            locale,
            password_stdin: _,
            email_verified,
            platform_admin,
        }) => {
            let mut password = String::new();
            std::io::stdin().read_to_string(&mut password)?;
            let password = password.trim_end_matches(['\r', '\n']).to_string();
            let m = op(ops::members::create(
                app,
                &actor,
                MemberInput {
                    email,
                    password,
                    first_name,
                    last_name,
                    headline,
                    picture_url,
                    locale,
                    email_verified,
                    platform_admin,
                },
            )
            .await)?;
            print(json, &m, || {
                format!("created member {} ({})", m.id, m.email)
            })
        }
        Command::Member(MemberCommand::List) => {
            let list = op(ops::members::list(app).await)?;
            print(json, &list, || {
                let mut s = String::new();
                for m in &list {
                    let _ = writeln!(
                        s,
                        "{}  {}  {}{}",
                        m.id,
                        m.email,
                        m.full_name(),
                        if m.platform_admin {
                            "  [platform admin]"
                        } else {
                            ""
                        }
                    );
                }
                s
            })
        }
        Command::Org(c) => resource(app, json, &actor, ResourceType::Organization, c).await,
        Command::AdAccount(c) => resource(app, json, &actor, ResourceType::AdAccount, c).await,
        Command::App(c) => app_command(app, json, &actor, c).await,
        Command::Review(ReviewCommand::List) => {
            let queue = op(ops::apps::review_queue(app, &actor).await)?;
            print(json, &queue, || {
                let mut s = String::new();
                for r in &queue {
                    let _ = writeln!(
                        s,
                        "{}  {}  requested {} by {}",
                        r.client_id,
                        r.program_id,
                        when(r.requested_at),
                        r.requested_by
                    );
                }
                if queue.is_empty() {
                    s.push_str("the review queue is empty");
                }
                s
            })
        }
        Command::Review(ReviewCommand::Approve { app: id, program }) => {
            op(ops::apps::decide(app, &actor, &id, &program, true, None).await)?;
            print(
                json,
                &json!({"client_id": id, "program": program, "status": "approved"}),
                || format!("approved {program} for {id}"),
            )
        }
        Command::Review(ReviewCommand::Deny {
            app: id,
            program,
            reason,
        }) => {
            op(ops::apps::decide(app, &actor, &id, &program, false, Some(reason.clone())).await)?;
            print(
                json,
                &json!({"client_id": id, "program": program, "status": "denied", "reason": reason}),
                || format!("denied {program} for {id}: {reason}"),
            )
        }
        Command::Audit(args) => {
            let target = args.target.clone();
            let limit = args.limit.clamp(1, 10_000);
            let events = app
                .store
                .read(move |c| scopegate_store::audit::list(c, target.as_deref(), limit))
                .await
                .map_err(|e| anyhow!(e.to_string()))?;
            print(json, &events, || {
                let mut s = String::new();
                for e in &events {
                    let _ = writeln!(
                        s,
                        "{}  {}  {}  {}  {}",
                        when(e.at),
                        e.actor,
                        e.action,
                        e.target,
                        e.detail
                    );
                }
                s
            })
        }
        Command::AdminKey(AdminKeyCommand::Create { name }) => {
            let key = op(ops::keys::create(app, &actor, &name, ops::keys::KeyKind::Admin).await)?;
            print(json, &json!({"name": name, "key": key.expose()}), || {
                format!(
                    "admin API key {name}: {}\n(shown once; use it as Authorization: Bearer …)",
                    key.expose()
                )
            })
        }
        Command::AdminKey(AdminKeyCommand::Revoke { name }) => {
            let n = op(ops::keys::revoke(app, &actor, &name, ops::keys::KeyKind::Admin).await)?;
            print(json, &json!({"name": name, "revoked": n}), || {
                format!("revoked {n} key(s) named {name}")
            })
        }
        Command::Keys(KeysCommand::Rotate { alg, activate_in }) => {
            let a = scopegate_http::oidc::Alg::parse(&alg)
                .ok_or_else(|| anyhow!("alg must be RS256 or ES256"))?;
            scopegate_http::oidc::ensure_keys(app)
                .await
                .map_err(|e| anyhow!(e))?;
            let kid = scopegate_http::oidc::rotate(app, a, activate_in)
                .await
                .map_err(|e| anyhow!(e))?;
            let now = app.now();
            let target = kid.clone();
            app.store
                .write(move |c| {
                    scopegate_store::audit::record(c, now, "cli", "keys.rotate", &target, "")
                })
                .await
                .map_err(|e| anyhow!(e.to_string()))?;
            let signs_from = now + activate_in.max(0);
            print(
                json,
                &json!({"kid": kid, "alg": alg, "signs_from": signs_from}),
                || {
                    format!("new {alg} signing key {kid}, published now, signing in {} s; the previous key signs until then and stays published until the ID tokens it signed expire", activate_in.max(0))
                },
            )
        }
        Command::Keys(KeysCommand::List) => {
            let since = app.now() - scopegate_http::oidc::ID_TOKEN_TTL;
            let keys = app
                .store
                .read(move |c| scopegate_store::keys::published_signing_keys(c, since))
                .await
                .map_err(|e| anyhow!(e.to_string()))?;
            let list: Vec<serde_json::Value> = keys.iter().map(|k| json!({"kid": k.kid, "alg": k.alg, "created_at": k.created_at, "retired_at": k.retired_at})).collect();
            print(json, &list, || {
                let mut s = String::new();
                for k in &keys {
                    let _ = writeln!(
                        s,
                        "{}  {}  created {}{}",
                        k.kid,
                        k.alg,
                        when(k.created_at),
                        k.retired_at
                            .map(|r| format!("  retired {}", when(r)))
                            .unwrap_or_else(|| "  (signing)".into())
                    );
                }
                s
            })
        }
        Command::RsKey(AdminKeyCommand::Create { name }) => {
            let key =
                op(
                    ops::keys::create(app, &actor, &name, ops::keys::KeyKind::ResourceServer).await,
                )?;
            print(json, &json!({"name": name, "key": key.expose()}), || {
                format!("resource-server key {name}: {}\n(shown once; send it as Authorization: Bearer … to /authz/v1/check)", key.expose())
            })
        }
        Command::RsKey(AdminKeyCommand::Revoke { name }) => {
            let n = op(
                ops::keys::revoke(app, &actor, &name, ops::keys::KeyKind::ResourceServer).await,
            )?;
            print(json, &json!({"name": name, "revoked": n}), || {
                format!("revoked {n} key(s) named {name}")
            })
        }
        Command::Serve(_) | Command::Catalog(_) | Command::Migrate(_) | Command::Routes(_) => {
            bail!("not an administrative command")
        }
    }
}

async fn resource(
    app: &Service,
    json: bool,
    actor: &Actor,
    rt: ResourceType,
    c: ResourceCommand,
) -> anyhow::Result<()> {
    match c {
        ResourceCommand::Create { name } => {
            let r = op(ops::members::create_resource(app, actor, rt, &name).await)?;
            print(
                json,
                &json!({"id": r.id, "urn": r.urn(), "name": r.name}),
                || r.id.to_string(),
            )
        }
        ResourceCommand::List => {
            let list = op(ops::members::resources(app, rt).await)?;
            print(json, &list, || {
                let mut s = String::new();
                for r in &list {
                    let _ = writeln!(s, "{}  {}  {}", r.id, r.urn(), r.name);
                }
                s
            })
        }
        ResourceCommand::Grant { id, member, role } => {
            role_change(app, json, actor, rt, id, &member, &role, true).await
        }
        ResourceCommand::Revoke { id, member, role } => {
            role_change(app, json, actor, rt, id, &member, &role, false).await
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn role_change(
    app: &Service,
    json: bool,
    actor: &Actor,
    rt: ResourceType,
    id: i64,
    member: &str,
    role: &str,
    on: bool,
) -> anyhow::Result<()> {
    let changed = op(ops::members::set_role(app, actor, rt, id, member, role, on).await)?;
    let urn = scopegate_core::model::urn(rt, id);
    let role = role.to_uppercase();
    print(
        json,
        &json!({"resource": urn, "member": member, "role": role, "granted": on, "changed": changed}),
        || match (on, changed) {
            (true, true) => format!("granted {role} on {urn} to {member}"),
            (true, false) => format!("{member} already holds {role} on {urn}"),
            (false, true) => format!("revoked {role} on {urn} from {member}"),
            (false, false) => format!("{member} did not hold {role} on {urn}"),
        },
    )
}

async fn app_command(
    app: &Service,
    json: bool,
    actor: &Actor,
    c: AppCommand,
) -> anyhow::Result<()> {
    match c {
        AppCommand::Create {
            name,
            owner,
            redirect_uris,
            organization,
            privacy_policy_url,
            logo_url,
        } => {
            let made = op(ops::apps::create(
                app,
                actor,
                AppInput {
                    name,
                    owner,
                    organization_id: organization,
                    privacy_policy_url,
                    logo_url,
                    redirect_uris,
                },
            )
            .await)?;
            let secret = made.client_secret.expose();
            print(
                json,
                &json!({"client_id": made.app.client_id, "client_secret": secret, "app": made.app}),
                || {
                    format!("client_id: {}\nclient_secret: {secret}\n(the secret is shown once; scopegate keeps only a hash)", made.app.client_id)
                },
            )
        }
        AppCommand::List => {
            let list = op(ops::apps::list(app, actor).await)?;
            print(json, &list, || {
                let mut s = String::new();
                for a in &list {
                    let _ = writeln!(s, "{}  {}  owner {}", a.client_id, a.name, a.owner_id);
                }
                s
            })
        }
        AppCommand::Show { app: id } => {
            let d = op(ops::apps::details(app, actor, &id).await)?;
            print(json, &d, || {
                let mut s = String::new();
                let _ = writeln!(s, "{} ({})", d.app.name, d.app.client_id);
                let caps: Vec<&str> = Capability::ALL
                    .iter()
                    .filter(|c| d.app.has(**c))
                    .map(|c| c.as_str())
                    .collect();
                let _ = writeln!(
                    s,
                    "capabilities: {}",
                    if caps.is_empty() {
                        "none".to_string()
                    } else {
                        caps.join(", ")
                    }
                );
                let _ = writeln!(s, "secrets:");
                for sec in &d.secrets {
                    let _ = writeln!(
                        s,
                        "  id {}  {}  created {}",
                        sec.id,
                        sec.hint,
                        when(sec.created_at)
                    );
                }
                let _ = writeln!(s, "redirect URLs:");
                for u in &d.redirect_uris {
                    let _ = writeln!(s, "  {u}");
                }
                let _ = writeln!(s, "products:");
                for p in &d.products {
                    let _ = writeln!(
                        s,
                        "  {} ({}): {}{}",
                        p.name,
                        p.program_id,
                        p.status.label(),
                        p.reason
                            .as_deref()
                            .map(|r| format!(" ({r})"))
                            .unwrap_or_default()
                    );
                }
                let join = |set: &std::collections::BTreeSet<String>| {
                    set.iter().cloned().collect::<Vec<_>>().join(" ")
                };
                let _ = writeln!(
                    s,
                    "member permissions (3-legged): {}",
                    join(&d.permissions.member)
                );
                let _ = writeln!(
                    s,
                    "application permissions (2-legged): {}",
                    join(&d.permissions.application)
                );
                let _ = writeln!(
                    s,
                    "granted automatically (never request these): {}",
                    join(&d.permissions.auto_granted)
                );
                s
            })
        }
        AppCommand::Delete { app: id } => {
            op(ops::apps::delete(app, actor, &id).await)?;
            print(json, &json!({"client_id": id, "deleted": true}), || {
                format!("deleted {id}; its grants and tokens are revoked")
            })
        }
        AppCommand::Secret(SecretCommand::Rotate { app: id }) => {
            let (secret, sid) = op(ops::apps::rotate_secret(app, actor, &id).await)?;
            print(
                json,
                &json!({"client_id": id, "id": sid, "client_secret": secret.expose()}),
                || {
                    format!("new client_secret (id {sid}): {}\nthe old secret stays valid until you delete it", secret.expose())
                },
            )
        }
        AppCommand::Secret(SecretCommand::Delete { app: id, id: sid }) => {
            op(ops::apps::delete_secret(app, actor, &id, sid).await)?;
            print(
                json,
                &json!({"client_id": id, "deleted_secret": sid}),
                || format!("deleted secret {sid} of {id}"),
            )
        }
        AppCommand::RedirectUri(RedirectCommand::Add { app: id, url }) => {
            let u = op(ops::apps::set_redirect_uri(app, actor, &id, &url, true).await)?;
            print(
                json,
                &json!({"client_id": id, "redirect_uri": u, "added": true}),
                || format!("registered {u}"),
            )
        }
        AppCommand::RedirectUri(RedirectCommand::Remove { app: id, url }) => {
            let u = op(ops::apps::set_redirect_uri(app, actor, &id, &url, false).await)?;
            print(
                json,
                &json!({"client_id": id, "redirect_uri": u, "removed": true}),
                || format!("removed {u}"),
            )
        }
        AppCommand::Enable {
            app: id,
            capability: cap,
        } => {
            let c = capability(&cap)?;
            op(ops::apps::set_capability(app, actor, &id, c, true).await)?;
            print(
                json,
                &json!({"client_id": id, "capability": c.as_str(), "enabled": true}),
                || format!("enabled {} for {id}", c.as_str()),
            )
        }
        AppCommand::Disable {
            app: id,
            capability: cap,
        } => {
            let c = capability(&cap)?;
            op(ops::apps::set_capability(app, actor, &id, c, false).await)?;
            print(
                json,
                &json!({"client_id": id, "capability": c.as_str(), "enabled": false}),
                || format!("disabled {} for {id}", c.as_str()),
            )
        }
        AppCommand::Product(ProductCommand::Request { app: id, program }) => {
            let status = op(ops::apps::request_product(app, actor, &id, &program).await)?;
            print(
                json,
                &json!({"client_id": id, "program": program, "status": status}),
                || {
                    format!(
                        "{program}: {}",
                        match status {
                            scopegate_core::model::RequestStatus::Approved => "approved",
                            scopegate_core::model::RequestStatus::Requested =>
                                "requested; waiting for a platform admin's review",
                            scopegate_core::model::RequestStatus::Denied => "denied",
                        }
                    )
                },
            )
        }
        AppCommand::Defaults { app: id, set } => {
            let d = match set {
                Some(scopes) => op(ops::migrate::set_defaults(app, actor, &id, &scopes).await)?,
                None => op(ops::migrate::defaults(app, actor, &id).await)?,
            };
            print(json, &d, || {
                format!(
                    "default scopes of {}: {}\nextension: {}\nused for requests without scope today: {}",
                    d.client_id,
                    if d.default_scopes.is_empty() { "none".to_string() } else { d.default_scopes.join(" ") },
                    d.extension_until.clone().map(|u| format!("until {u}")).unwrap_or_else(|| "none".into()),
                    if d.in_force { "yes" } else { "no (default scopes are sunset: request scopes explicitly)" }
                )
            })
        }
        AppCommand::Extension(ExtensionCommand::Grant { app: id, until }) => {
            let date = time::Date::parse(
                &until,
                time::macros::format_description!("[year]-[month]-[day]"),
            )
            .map_err(|_| anyhow!("--until must be a date like 2027-01-31"))?;
            let d = op(ops::migrate::set_extension(app, actor, &id, Some(date)).await)?;
            print(json, &d, || {
                format!("{id} may use its default scopes until {until}")
            })
        }
        AppCommand::Extension(ExtensionCommand::Revoke { app: id }) => {
            let d = op(ops::migrate::set_extension(app, actor, &id, None).await)?;
            print(json, &d, || format!("{id} has no default-scope extension"))
        }
        AppCommand::Product(ProductCommand::Remove { app: id, program }) => {
            op(ops::apps::remove_product(app, actor, &id, &program).await)?;
            print(
                json,
                &json!({"client_id": id, "program": program, "removed": true}),
                || format!("removed {program} from {id}"),
            )
        }
    }
}
