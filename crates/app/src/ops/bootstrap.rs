//! First start: the platform admin, and with `--demo` a ready-to-use data set.

use scopegate_core::catalog::ResourceType;
use scopegate_core::model::{Capability, Member};
use scopegate_core::Secret;
use scopegate_store::{members, settings};

use crate::error::Result;
use crate::ops::apps::AppInput;
use crate::ops::members::MemberInput;
use crate::ops::{self, Actor};
use crate::state::Service;

/// The platform admin created at first start.
pub const ADMIN_EMAIL: &str = "admin@scopegate.local";

/// What the first start created, for the start-up message.
#[derive(Debug, Default)]
pub struct Bootstrap {
    /// The admin's one-time password (printed once, never stored in the clear).
    pub admin_password: Option<Secret>,
    pub demo: Option<Demo>,
}

/// The demo data set's names and credentials.
#[derive(Debug)]
pub struct Demo {
    pub client_id: String,
    /// The demo app's client secret (public and documented, still never in a Debug dump).
    pub client_secret: Secret,
    /// Each demo member's email and password.
    pub members: Vec<(String, Secret)>,
    pub organization_id: i64,
    pub ad_account_id: i64,
}

/// The demo's documented, deliberately public credentials (a demo store only).
pub const DEMO_PASSWORD: &str = "scopegate-demo";
pub const DEMO_CLIENT_ID: &str = "demoapp0000001";
pub const DEMO_CLIENT_SECRET: &str = "demo-secret-not-for-production";

fn member(
    email: &str,
    first: &str,
    last: &str,
    headline: &str,
    password: &str,
    admin: bool,
) -> MemberInput {
    MemberInput {
        email: email.into(),
        password: scopegate_core::Secret::new(password),
        first_name: first.into(),
        last_name: last.into(),
        headline: headline.into(),
        picture_url: String::new(),
        locale: "en-US".into(),
        email_verified: true,
        platform_admin: admin,
    }
}

/// Runs the first-start steps once per store (several nodes may race; one wins).
pub async fn first_start(app: &Service, demo: bool) -> Result<Bootstrap> {
    // The claim keeps two nodes starting on one empty store from both bootstrapping; the
    // completion mark lets a start after a crash mid-bootstrap (kill -9 between two of its
    // writes) finish the job instead of leaving a store without its admin or demo app.
    let claimed = app
        .store
        .write(|c| settings::set_if_absent(c, "bootstrapped", "1"))
        .await?;
    let (done, admins, demo_app) = app
        .store
        .read(|c| {
            Ok((
                settings::get(c, BOOTSTRAP_DONE)?.is_some(),
                members::count_admins(c)?,
                scopegate_store::apps::get(c, DEMO_CLIENT_ID)?.is_some(),
            ))
        })
        .await?;
    // Stores bootstrapped before the completion mark existed count as complete when what the
    // bootstrap makes last is there.
    let complete = done || (!claimed && if demo { demo_app } else { admins > 0 });
    if complete || (!demo && admins > 0) {
        return Ok(Bootstrap::default());
    }
    let system = Actor::System;
    let result = if demo {
        Bootstrap {
            admin_password: None,
            demo: Some(create_demo(app, &system).await?),
        }
    } else {
        let password = crate::clock::random_id(app.entropy.as_ref(), 20);
        ops::members::create(
            app,
            &system,
            member(ADMIN_EMAIL, "Platform", "Admin", "", &password, true),
        )
        .await?;
        Bootstrap {
            admin_password: Some(Secret::new(password)),
            demo: None,
        }
    };
    app.store
        .write(|c| settings::set(c, BOOTSTRAP_DONE, "1"))
        .await?;
    Ok(result)
}

/// Set once the first start's members and apps all exist.
const BOOTSTRAP_DONE: &str = "bootstrap_done";

/// Creates a demo member, or finds the one an interrupted first start already made.
async fn demo_member(app: &Service, system: &Actor, input: MemberInput) -> Result<Member> {
    let email = input.email.clone();
    if let Some(m) = app
        .store
        .read(move |c| members::by_email(c, &email))
        .await?
    {
        return Ok(m);
    }
    ops::members::create(app, system, input).await
}

/// The demo members, in the order `grant_demo_roles` and `demo_app` index them.
async fn demo_people(app: &Service, system: &Actor) -> Result<Vec<Member>> {
    let people = [
        (
            "admin@scopegate.local",
            "Platform",
            "Admin",
            "Runs the platform",
            true,
        ),
        (
            "test-member@scopegate.local",
            "Test",
            "Member",
            "Marketing lead at Demo Corp",
            false,
        ),
        (
            "poster@scopegate.local",
            "Pat",
            "Poster",
            "Sponsored content at Demo Corp",
            false,
        ),
        ("viewer@scopegate.local", "Val", "Viewer", "Analyst", false),
        (
            "developer@scopegate.local",
            "Dana",
            "Developer",
            "Builds integrations",
            false,
        ),
    ];
    let mut created: Vec<Member> = Vec::new();
    for (email, first, last, headline, admin) in people {
        created.push(
            demo_member(
                app,
                system,
                member(email, first, last, headline, DEMO_PASSWORD, admin),
            )
            .await?,
        );
    }
    Ok(created)
}

async fn create_demo(app: &Service, system: &Actor) -> Result<Demo> {
    let created = demo_people(app, system).await?;
    let org =
        ops::members::create_resource(app, system, ResourceType::Organization, "Demo Corp").await?;
    let ads = ops::members::create_resource(app, system, ResourceType::AdAccount, "Demo Corp Ads")
        .await?;
    grant_demo_roles(app, system, &created, org.id, ads.id).await?;
    let client_id = demo_app(app, system, &created[4].id, org.id).await?;
    Ok(Demo {
        client_id,
        client_secret: Secret::new(DEMO_CLIENT_SECRET),
        members: created
            .iter()
            .map(|m| (m.email.clone(), Secret::new(DEMO_PASSWORD)))
            .collect(),
        organization_id: org.id,
        ad_account_id: ads.id,
    })
}

/// Gives the demo members their roles on the demo company page and ad account.
async fn grant_demo_roles(
    app: &Service,
    system: &Actor,
    created: &[Member],
    org: i64,
    ads: i64,
) -> Result<()> {
    // Together these cover every role seed 000 names, and the reference's other Page roles.
    let roles: &[(usize, ResourceType, i64, &str)] = &[
        (1, ResourceType::Organization, org, "ADMINISTRATOR"),
        (1, ResourceType::AdAccount, ads, "ACCOUNT_BILLING_ADMIN"),
        (1, ResourceType::AdAccount, ads, "ACCOUNT_MANAGER"),
        (
            2,
            ResourceType::Organization,
            org,
            "DIRECT_SPONSORED_CONTENT_POSTER",
        ),
        (2, ResourceType::Organization, org, "LEAD_GEN_FORMS_MANAGER"),
        (2, ResourceType::AdAccount, ads, "CAMPAIGN_MANAGER"),
        (2, ResourceType::AdAccount, ads, "CREATIVE_MANAGER"),
        (3, ResourceType::Organization, org, "ANALYST"),
        (3, ResourceType::AdAccount, ads, "VIEWER"),
    ];
    for &(who, rt, id, role) in roles {
        ops::members::set_role(app, system, rt, id, &created[who].id, role, true).await?;
    }
    Ok(())
}

/// The demo app with its fixed credentials, every product approved and every capability on.
async fn demo_app(app: &Service, system: &Actor, owner: &str, org: i64) -> Result<String> {
    let input = AppInput {
        name: "Demo App".into(),
        owner: owner.to_string(),
        organization_id: Some(org),
        privacy_policy_url: "https://example.com/privacy".into(),
        logo_url: String::new(),
        redirect_uris: vec![
            "http://127.0.0.1:8080/callback".into(),
            "https://oauth.pstmn.io/v1/callback".into(),
        ],
    };
    // Fixed, documented credentials so the README's walk-through works as written.
    let fixed = (DEMO_CLIENT_ID.to_string(), Secret::new(DEMO_CLIENT_SECRET));
    let existing = app
        .store
        .read(|c| scopegate_store::apps::get(c, DEMO_CLIENT_ID))
        .await?;
    let client_id = match existing {
        // An interrupted first start made it already; its secret is the fixed demo secret.
        Some(a) => a.client_id,
        None => {
            ops::apps::create_with(app, system, input, Some(fixed))
                .await?
                .app
                .client_id
        }
    };
    for program in [
        "openid-connect",
        "share-on-linkedin",
        "advertising-apis",
        "marketing-developer-platform",
        "sales-navigator-application-platform",
    ] {
        let status = ops::apps::request_product(app, system, &client_id, program).await?;
        if status == scopegate_core::model::RequestStatus::Requested {
            ops::apps::decide(app, system, &client_id, program, true, None).await?;
        }
    }
    for cap in Capability::ALL {
        ops::apps::set_capability(app, system, &client_id, cap, true).await?;
    }
    Ok(client_id.into_string())
}
