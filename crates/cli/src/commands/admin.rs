//! Administrative commands over the store: members, organizations, ad accounts, apps, reviews,
//! audit. They act as the operator ([`Actor::Cli`]).

use std::fmt::Write;
use std::io::Read;

use anyhow::{anyhow, bail};
use clap::{Args, Subcommand};
use scopegate_app::error::Error;
use scopegate_app::ops::apps::AppInput;
use scopegate_app::ops::keys::KeyKind;
use scopegate_app::ops::members::MemberInput;
use scopegate_app::ops::{self, Actor};
use scopegate_app::signing;
use scopegate_app::Service;
use scopegate_core::catalog::ResourceType;
use scopegate_core::model::Capability;
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
        #[arg(long, default_value_t = signing::KEY_PUBLISH_AHEAD)]
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
        Command::Member(c) => member_command(app, json, &actor, c).await,
        Command::Org(c) => resource(app, json, &actor, ResourceType::Organization, c).await,
        Command::AdAccount(c) => resource(app, json, &actor, ResourceType::AdAccount, c).await,
        Command::App(c) => app_command(app, json, &actor, c).await,
        Command::Review(c) => review_command(app, json, &actor, c).await,
        Command::Audit(args) => audit(app, json, &actor, args).await,
        Command::AdminKey(c) => api_key_command(app, json, &actor, KeyKind::Admin, c).await,
        Command::RsKey(c) => api_key_command(app, json, &actor, KeyKind::ResourceServer, c).await,
        Command::Keys(c) => keys_command(app, json, &actor, c).await,
        Command::Serve(_) | Command::Catalog(_) | Command::Migrate(_) | Command::Routes(_) => {
            bail!("not an administrative command")
        }
    }
}

async fn member_command(
    app: &Service,
    json: bool,
    actor: &Actor,
    c: MemberCommand,
) -> anyhow::Result<()> {
    match c {
        MemberCommand::Create {
            email,
            first_name,
            last_name,
            headline,
            picture_url,
            locale,
            password_stdin: _,
            email_verified,
            platform_admin,
        } => {
            let mut password = String::new();
            std::io::stdin().read_to_string(&mut password)?;
            let password = scopegate_core::Secret::new(password.trim_end_matches(['\r', '\n']));
            let input = MemberInput {
                email,
                password,
                first_name,
                last_name,
                headline,
                picture_url,
                locale,
                email_verified,
                platform_admin,
            };
            let m = op(ops::members::create(app, actor, input).await)?;
            print(json, &m, || {
                format!("created member {} ({})", m.id, m.email)
            })
        }
        MemberCommand::List => {
            let list = op(ops::members::list(app).await)?;
            print(json, &list, || {
                let mut s = String::new();
                for m in &list {
                    let admin = if m.platform_admin {
                        "  [platform admin]"
                    } else {
                        ""
                    };
                    let _ = writeln!(s, "{}  {}  {}{admin}", m.id, m.email, m.full_name());
                }
                s
            })
        }
    }
}

async fn review_command(
    app: &Service,
    json: bool,
    actor: &Actor,
    c: ReviewCommand,
) -> anyhow::Result<()> {
    match c {
        ReviewCommand::List => {
            let queue = op(ops::apps::review_queue(app, actor).await)?;
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
        ReviewCommand::Approve { app: id, program } => {
            op(ops::apps::decide(app, actor, &id, &program, true, None).await)?;
            print(
                json,
                &json!({"client_id": id, "program": program, "status": "approved"}),
                || format!("approved {program} for {id}"),
            )
        }
        ReviewCommand::Deny {
            app: id,
            program,
            reason,
        } => {
            op(ops::apps::decide(app, actor, &id, &program, false, Some(reason.clone())).await)?;
            print(
                json,
                &json!({"client_id": id, "program": program, "status": "denied", "reason": reason}),
                || format!("denied {program} for {id}: {reason}"),
            )
        }
    }
}

async fn audit(app: &Service, json: bool, actor: &Actor, args: AuditArgs) -> anyhow::Result<()> {
    let events =
        op(scopegate_app::audit::list(app, actor, args.target.as_deref(), args.limit).await)?;
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

/// `admin-key` and `rs-key`: the same commands over two kinds of key.
async fn api_key_command(
    app: &Service,
    json: bool,
    actor: &Actor,
    kind: KeyKind,
    c: AdminKeyCommand,
) -> anyhow::Result<()> {
    match c {
        AdminKeyCommand::Create { name } => {
            let key = op(ops::keys::create(app, actor, &name, kind).await)?;
            print(json, &json!({"name": name, "key": key.expose()}), || {
                match kind {
                KeyKind::Admin => format!(
                    "admin API key {name}: {}\n(shown once; use it as Authorization: Bearer …)",
                    key.expose()
                ),
                KeyKind::ResourceServer => format!("resource-server key {name}: {}\n(shown once; send it as Authorization: Bearer … to /authz/v1/check)", key.expose()),
            }
            })
        }
        AdminKeyCommand::Revoke { name } => {
            let n = op(ops::keys::revoke(app, actor, &name, kind).await)?;
            print(json, &json!({"name": name, "revoked": n}), || {
                format!("revoked {n} key(s) named {name}")
            })
        }
    }
}

async fn keys_command(
    app: &Service,
    json: bool,
    actor: &Actor,
    c: KeysCommand,
) -> anyhow::Result<()> {
    match c {
        KeysCommand::Rotate { alg, activate_in } => {
            let a =
                signing::Alg::parse(&alg).ok_or_else(|| anyhow!("alg must be RS256 or ES256"))?;
            let r = op(signing::rotate(app, actor, a, activate_in).await)?;
            let kid = &r.kid;
            print(
                json,
                &json!({"kid": kid, "alg": alg, "signs_from": r.signs_from}),
                || {
                    format!("new {alg} signing key {kid}, published now, signing in {} s; the previous key signs until then and stays published until the ID tokens it signed expire", activate_in.max(0))
                },
            )
        }
        KeysCommand::List => {
            let keys = op(signing::published_keys(app, actor).await)?;
            print(json, &keys, || {
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
            let input = AppInput {
                name,
                owner,
                organization_id: organization,
                privacy_policy_url,
                logo_url,
                redirect_uris,
            };
            app_create(app, json, actor, input).await
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
            print(json, &d, || show_text(&d))
        }
        AppCommand::Delete { app: id } => {
            op(ops::apps::delete(app, actor, &id).await)?;
            print(json, &json!({"client_id": id, "deleted": true}), || {
                format!("deleted {id}; its grants and tokens are revoked")
            })
        }
        AppCommand::Secret(c) => secret_command(app, json, actor, c).await,
        AppCommand::RedirectUri(c) => redirect_command(app, json, actor, c).await,
        AppCommand::Enable {
            app: id,
            capability: cap,
        } => capability_change(app, json, actor, &id, &cap, true).await,
        AppCommand::Disable {
            app: id,
            capability: cap,
        } => capability_change(app, json, actor, &id, &cap, false).await,
        AppCommand::Product(c) => product_command(app, json, actor, c).await,
        AppCommand::Defaults { app: id, set } => defaults(app, json, actor, &id, set).await,
        AppCommand::Extension(c) => extension_command(app, json, actor, c).await,
    }
}

async fn app_create(
    app: &Service,
    json: bool,
    actor: &Actor,
    input: AppInput,
) -> anyhow::Result<()> {
    let made = op(ops::apps::create(app, actor, input).await)?;
    let secret = made.client_secret.expose();
    print(
        json,
        &json!({"client_id": made.app.client_id, "client_secret": secret, "app": made.app}),
        || {
            format!("client_id: {}\nclient_secret: {secret}\n(the secret is shown once; scopegate keeps only a hash)", made.app.client_id)
        },
    )
}

/// `app show` for a person: capabilities, secrets, redirect URLs, products, permissions.
fn show_text(d: &ops::apps::AppDetails) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{} ({})", d.app.name, d.app.client_id);
    let caps: Vec<&str> = Capability::ALL
        .iter()
        .filter(|c| d.app.has(**c))
        .map(|c| c.as_str())
        .collect();
    let caps = if caps.is_empty() {
        "none".to_string()
    } else {
        caps.join(", ")
    };
    let _ = writeln!(s, "capabilities: {caps}");
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
        let reason = p
            .reason
            .as_deref()
            .map(|r| format!(" ({r})"))
            .unwrap_or_default();
        let _ = writeln!(
            s,
            "  {} ({}): {}{reason}",
            p.name,
            p.program_id,
            p.status.label()
        );
    }
    let join = |set: &std::collections::BTreeSet<String>| {
        set.iter().cloned().collect::<Vec<_>>().join(" ")
    };
    let perms = &d.permissions;
    let _ = writeln!(s, "member permissions (3-legged): {}", join(&perms.member));
    let _ = writeln!(
        s,
        "application permissions (2-legged): {}",
        join(&perms.application)
    );
    let _ = writeln!(
        s,
        "granted automatically (never request these): {}",
        join(&perms.auto_granted)
    );
    s
}

async fn secret_command(
    app: &Service,
    json: bool,
    actor: &Actor,
    c: SecretCommand,
) -> anyhow::Result<()> {
    match c {
        SecretCommand::Rotate { app: id } => {
            let (secret, sid) = op(ops::apps::rotate_secret(app, actor, &id).await)?;
            print(
                json,
                &json!({"client_id": id, "id": sid, "client_secret": secret.expose()}),
                || {
                    format!("new client_secret (id {sid}): {}\nthe old secret stays valid until you delete it", secret.expose())
                },
            )
        }
        SecretCommand::Delete { app: id, id: sid } => {
            op(ops::apps::delete_secret(app, actor, &id, sid).await)?;
            print(
                json,
                &json!({"client_id": id, "deleted_secret": sid}),
                || format!("deleted secret {sid} of {id}"),
            )
        }
    }
}

async fn redirect_command(
    app: &Service,
    json: bool,
    actor: &Actor,
    c: RedirectCommand,
) -> anyhow::Result<()> {
    match c {
        RedirectCommand::Add { app: id, url } => {
            let u = op(ops::apps::set_redirect_uri(app, actor, &id, &url, true).await)?;
            print(
                json,
                &json!({"client_id": id, "redirect_uri": u, "added": true}),
                || format!("registered {u}"),
            )
        }
        RedirectCommand::Remove { app: id, url } => {
            let u = op(ops::apps::set_redirect_uri(app, actor, &id, &url, false).await)?;
            print(
                json,
                &json!({"client_id": id, "redirect_uri": u, "removed": true}),
                || format!("removed {u}"),
            )
        }
    }
}

async fn capability_change(
    app: &Service,
    json: bool,
    actor: &Actor,
    id: &str,
    cap: &str,
    on: bool,
) -> anyhow::Result<()> {
    let c = capability(cap)?;
    op(ops::apps::set_capability(app, actor, id, c, on).await)?;
    let verb = if on { "enabled" } else { "disabled" };
    print(
        json,
        &json!({"client_id": id, "capability": c.as_str(), "enabled": on}),
        || format!("{verb} {} for {id}", c.as_str()),
    )
}

async fn product_command(
    app: &Service,
    json: bool,
    actor: &Actor,
    c: ProductCommand,
) -> anyhow::Result<()> {
    use scopegate_core::model::RequestStatus;
    match c {
        ProductCommand::Request { app: id, program } => {
            let status = op(ops::apps::request_product(app, actor, &id, &program).await)?;
            let label = match status {
                RequestStatus::Approved => "approved",
                RequestStatus::Requested => "requested; waiting for a platform admin's review",
                RequestStatus::Denied => "denied",
            };
            print(
                json,
                &json!({"client_id": id, "program": program, "status": status}),
                || format!("{program}: {label}"),
            )
        }
        ProductCommand::Remove { app: id, program } => {
            op(ops::apps::remove_product(app, actor, &id, &program).await)?;
            print(
                json,
                &json!({"client_id": id, "program": program, "removed": true}),
                || format!("removed {program} from {id}"),
            )
        }
    }
}

async fn defaults(
    app: &Service,
    json: bool,
    actor: &Actor,
    id: &str,
    set: Option<String>,
) -> anyhow::Result<()> {
    let d = match set {
        Some(scopes) => op(ops::migrate::set_defaults(app, actor, id, &scopes).await)?,
        None => op(ops::migrate::defaults(app, actor, id).await)?,
    };
    print(json, &d, || {
        format!(
            "default scopes of {}: {}\nextension: {}\nused for requests without scope today: {}",
            d.client_id,
            if d.default_scopes.is_empty() {
                "none".to_string()
            } else {
                d.default_scopes.join(" ")
            },
            d.extension_until
                .clone()
                .map(|u| format!("until {u}"))
                .unwrap_or_else(|| "none".into()),
            if d.in_force {
                "yes"
            } else {
                "no (default scopes are sunset: request scopes explicitly)"
            }
        )
    })
}

async fn extension_command(
    app: &Service,
    json: bool,
    actor: &Actor,
    c: ExtensionCommand,
) -> anyhow::Result<()> {
    match c {
        ExtensionCommand::Grant { app: id, until } => {
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
        ExtensionCommand::Revoke { app: id } => {
            let d = op(ops::migrate::set_extension(app, actor, &id, None).await)?;
            print(json, &d, || format!("{id} has no default-scope extension"))
        }
    }
}
