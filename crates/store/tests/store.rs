//! The store conformance suite: every test runs on SQLite (a real file) and on PostgreSQL.
//!
//! PostgreSQL comes from SCOPEGATE_TEST_DATABASE_URL; each test gets its own schema. When the
//! variable is unset the PostgreSQL half fails with a message saying so, unless
//! SCOPEGATE_TEST_SKIP_POSTGRES=1 asks, loudly, to skip it.

#![allow(clippy::unwrap_used)]

use scopegate_core::catalog::ResourceType;
use scopegate_core::model::{App, CodeRecord, TokenKind, TokenRecord};
use scopegate_core::model::{NewMember, RoleAssignment};
use scopegate_core::SecretHash;
use scopegate_store::pending::{self, PendingRecord};
use scopegate_store::sandbox::{self, Object, Owner};
use scopegate_store::tokens::{self, Redeem};
use scopegate_store::{apps, audit, members, params, settings, Dialect, Store, StoreError};

struct TestDb {
    store: Store,
    cleanup: Cleanup,
}

enum Cleanup {
    Dir(std::path::PathBuf),
    Schema(String, String),
}

impl Drop for TestDb {
    fn drop(&mut self) {
        match &self.cleanup {
            Cleanup::Dir(d) => {
                let _ = std::fs::remove_dir_all(d);
            }
            Cleanup::Schema(url, schema) => {
                // The synchronous client may not run on an async worker thread.
                let (url, schema) = (url.clone(), schema.clone());
                let _ = std::thread::spawn(move || {
                    if let Ok(mut c) = postgres::Client::connect(&url, postgres::NoTls) {
                        let _ = c.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"));
                    }
                })
                .join();
            }
        }
    }
}

fn random_suffix() -> String {
    let mut b = [0u8; 8];
    getrandom::getrandom(&mut b).unwrap();
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reopening_a_store_applies_nothing_twice() {
    let db = sqlite().await;
    let Cleanup::Dir(dir) = &db.cleanup else {
        unreachable!()
    };
    let url = format!("sqlite://{}/scopegate.db", dir.display());
    let again = Store::open(&url).await.unwrap();
    assert_eq!(
        again.read(scopegate_store::schema_versions).await.unwrap(),
        vec![1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
    );
}

async fn sqlite() -> TestDb {
    let dir = std::env::temp_dir().join(format!("scopegate-store-{}", random_suffix()));
    let url = format!("sqlite://{}/scopegate.db", dir.display());
    TestDb {
        store: Store::open(&url).await.unwrap(),
        cleanup: Cleanup::Dir(dir),
    }
}

async fn postgres() -> Option<TestDb> {
    let url = match std::env::var("SCOPEGATE_TEST_DATABASE_URL") {
        Ok(u) if !u.is_empty() => u,
        _ => {
            if std::env::var("SCOPEGATE_TEST_SKIP_POSTGRES").as_deref() == Ok("1") {
                eprintln!("SKIPPED: PostgreSQL half (SCOPEGATE_TEST_SKIP_POSTGRES=1)");
                return None;
            }
            panic!("SCOPEGATE_TEST_DATABASE_URL is not set: the store suite must also run on PostgreSQL (e.g. postgres://postgres@127.0.0.1:5432/test)");
        }
    };
    let schema = format!("t_{}", random_suffix());
    let sep = if url.contains('?') { '&' } else { '?' };
    let store = Store::open(&format!("{url}{sep}schema={schema}"))
        .await
        .unwrap_or_else(|e| {
            panic!("could not open the PostgreSQL store at SCOPEGATE_TEST_DATABASE_URL: {e}")
        });
    Some(TestDb {
        store,
        cleanup: Cleanup::Schema(url, schema),
    })
}

macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = super::sqlite().await;
                    super::$name(&db.store).await;
                }
            )*
        }
        mod on_postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(db) = super::postgres().await {
                        super::$name(&db.store).await;
                    }
                }
            )*
        }
    };
}

both_backends!(
    migrations_are_applied_once,
    settings_round_trip,
    members_are_unique_by_email,
    roles_are_granted_and_revoked,
    concurrent_writes_are_all_committed,
    a_failed_write_changes_nothing_and_spares_its_neighbours,
    audit_events_are_listed_newest_first,
    a_code_is_redeemed_exactly_once_under_concurrency,
    consent_with_new_scopes_revokes_earlier_tokens,
    revoking_a_refresh_token_revokes_its_access_tokens,
    expired_rows_are_purged_in_batches,
    pending_requests_are_read_unexpired_deleted_and_purged,
    secrets_are_capped_at_two,
    attempts_are_taken_one_at_a_time_under_concurrency,
    forgotten_attempt_counters_are_purged,
    sandbox_objects_are_found_only_by_their_owner,
    a_stored_scope_list_that_does_not_parse_is_an_error_not_no_scopes,
    a_source_replaces_only_its_own_roles,
    an_upstream_identity_names_one_member,
    deactivating_bumps_the_version_once,
);

/// A token row whose scopes were damaged (by hand, by a bad migration) reads as a store error:
/// never as a token with no scopes or with the scopes that happened to parse.
async fn a_stored_scope_list_that_does_not_parse_is_an_error_not_no_scopes(store: &Store) {
    app_and_member(store).await;
    store
        .write(|c| tokens::insert(c, &access("t1", None)))
        .await
        .unwrap();
    store
        .write(|c| {
            c.execute(
                "UPDATE tokens SET scopes = 'openid,bad\"scope' WHERE hash = 't1'",
                &[],
            )
        })
        .await
        .unwrap();
    let read = store.read(|c| tokens::get(c, &h("t1"))).await;
    assert!(
        matches!(&read, Err(scopegate_store::StoreError::Backend(m)) if m.contains("scopes")),
        "{read:?}"
    );
}

/// Counters whose last attempt is older than the cut-off go; newer ones stay, in batches.
async fn forgotten_attempt_counters_are_purged(store: &Store) {
    store
        .write(|c| {
            for i in 0..15 {
                assert!(tokens::take_attempt(
                    c,
                    &format!("old{i}"),
                    None,
                    1,
                    100 + i
                )?);
            }
            assert!(tokens::take_attempt(c, "recent", None, 1, 5_000)?);
            Ok(())
        })
        .await
        .unwrap();
    let first = store
        .write(|c| tokens::purge_attempt_counters(c, 1_000, 10))
        .await
        .unwrap();
    assert_eq!(first, 10);
    let rest = store
        .write(|c| tokens::purge_attempt_counters(c, 1_000, 10))
        .await
        .unwrap();
    assert_eq!(rest, 5);
    assert!(store
        .read(|c| tokens::attempts(c, "recent"))
        .await
        .unwrap()
        .is_some());
    assert!(store
        .read(|c| tokens::attempts(c, "old0"))
        .await
        .unwrap()
        .is_none());
}

/// The sign-in throttle's compare-and-set: 50 concurrent takers of a counter limited to 5, each
/// retrying when another changed the counter under it, take exactly 5 attempts.
async fn attempts_are_taken_one_at_a_time_under_concurrency(store: &Store) {
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            s.write(|c| {
                for _ in 0..100 {
                    let seen = tokens::attempts(c, "k")?;
                    let n = seen.map_or(0, |(n, _)| n);
                    if n >= 5 {
                        return Ok(false);
                    }
                    if tokens::take_attempt(c, "k", seen, n + 1, 9)? {
                        return Ok(true);
                    }
                }
                Ok(false)
            })
            .await
            .unwrap()
        }));
    }
    let mut taken = 0;
    for t in tasks {
        taken += usize::from(t.await.unwrap());
    }
    assert_eq!(taken, 5);
    store
        .write(|c| tokens::give_back_attempt(c, "k"))
        .await
        .unwrap();
    assert_eq!(
        store.read(|c| tokens::attempts(c, "k")).await.unwrap(),
        Some((4, 9))
    );
}

fn new_member(email: &str) -> NewMember {
    NewMember {
        email: email.into(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        first_name: "Test".into(),
        last_name: "Member".into(),
        headline: String::new(),
        picture_url: String::new(),
        locale: "en-US".into(),
        email_verified: true,
        platform_admin: false,
    }
}

async fn migrations_are_applied_once(store: &Store) {
    let versions = store.read(scopegate_store::schema_versions).await.unwrap();
    assert_eq!(versions, vec![1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    let count = store
        .read(|c| {
            c.query_one("SELECT COUNT(*) FROM schema_migrations", params![])?
                .int(0)
        })
        .await
        .unwrap();
    assert_eq!(count, 10, "each migration is recorded once");
    assert!(matches!(
        store.dialect(),
        Dialect::Sqlite | Dialect::Postgres
    ));
}

async fn settings_round_trip(store: &Store) {
    assert!(store
        .write(|c| settings::set_if_absent(c, "k", "v1"))
        .await
        .unwrap());
    assert!(!store
        .write(|c| settings::set_if_absent(c, "k", "v2"))
        .await
        .unwrap());
    assert_eq!(
        store
            .read(|c| settings::get(c, "k"))
            .await
            .unwrap()
            .as_deref(),
        Some("v1")
    );
    store.write(|c| settings::set(c, "k", "v3")).await.unwrap();
    assert_eq!(
        store
            .read(|c| settings::get(c, "k"))
            .await
            .unwrap()
            .as_deref(),
        Some("v3")
    );
    assert_eq!(
        store.read(|c| settings::get(c, "none")).await.unwrap(),
        None
    );
}

async fn members_are_unique_by_email(store: &Store) {
    let m = store
        .write(|c| members::create(c, "m1", &new_member("Ada@Example.com"), 100))
        .await
        .unwrap();
    assert_eq!(m.email, "ada@example.com");
    let dup = store
        .write(|c| members::create(c, "m2", &new_member("ada@example.COM"), 101))
        .await;
    assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");
    let found = store
        .read(|c| members::find(c, "ADA@example.com"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.id, "m1");
    assert_eq!(store.read(members::list).await.unwrap().len(), 1);
    assert!(store
        .read(|c| members::by_id(c, "m2"))
        .await
        .unwrap()
        .is_none());
}

async fn roles_are_granted_and_revoked(store: &Store) {
    store
        .write(|c| members::create(c, "m1", &new_member("a@example.com"), 1))
        .await
        .unwrap();
    let org = store
        .write(|c| members::create_resource(c, ResourceType::Organization, "Acme", 1))
        .await
        .unwrap();
    assert_eq!(org.urn(), format!("urn:li:organization:{}", org.id));
    let a = RoleAssignment {
        resource_type: ResourceType::Organization,
        resource_id: org.id,
        member_id: "m1".into(),
        role: "ADMINISTRATOR".into(),
        source: scopegate_core::model::MANUAL_ROLE_SOURCE.into(),
    };
    let a2 = a.clone();
    assert!(store
        .write(move |c| members::grant_role(c, &a2, 2))
        .await
        .unwrap());
    let a2 = a.clone();
    assert!(!store
        .write(move |c| members::grant_role(c, &a2, 3))
        .await
        .unwrap());
    let roles = store.read(|c| members::roles_of(c, "m1")).await.unwrap();
    assert_eq!(roles, vec![a.clone()]);
    let id = org.id;
    assert_eq!(
        store
            .read(move |c| members::roles_on(c, ResourceType::Organization, id))
            .await
            .unwrap()
            .len(),
        1
    );
    let a2 = a.clone();
    assert!(store
        .write(move |c| members::revoke_role(c, &a2))
        .await
        .unwrap());
    assert!(store
        .read(|c| members::roles_of(c, "m1"))
        .await
        .unwrap()
        .is_empty());
}

fn org_role(org: i64, member: &str, role: &str, source: &str) -> RoleAssignment {
    RoleAssignment {
        resource_type: ResourceType::Organization,
        resource_id: org,
        member_id: member.into(),
        role: role.into(),
        source: source.into(),
    }
}

/// A sync replaces what its own source said and nothing else: a hand-granted role survives a
/// sync that no longer names it, and a role the sync names but the operator already granted
/// stays the operator's.
async fn a_source_replaces_only_its_own_roles(store: &Store) {
    store
        .write(|c| members::create(c, "m1", &new_member("a@example.com"), 1))
        .await
        .unwrap();
    let (o1, o2) = store
        .write(|c| {
            let a = members::create_resource(c, ResourceType::Organization, "A", 1)?;
            let b = members::create_resource(c, ResourceType::Organization, "B", 1)?;
            Ok((a.id, b.id))
        })
        .await
        .unwrap();
    let manual = org_role(o1, "m1", "ADMINISTRATOR", "manual");
    let m = manual.clone();
    store
        .write(move |c| members::grant_role(c, &m, 1))
        .await
        .unwrap();
    let first = vec![
        org_role(o1, "m1", "ADMINISTRATOR", "oidc:x"),
        org_role(o2, "m1", "ANALYST", "oidc:x"),
    ];
    let w = first.clone();
    let changes = store
        .write(move |c| members::replace_roles_from_source(c, "m1", "oidc:x", &w, 2))
        .await
        .unwrap();
    assert_eq!(
        changes.granted,
        vec![first[1].clone()],
        "the manual role stays manual"
    );
    let w = vec![org_role(o2, "m1", "ADMINISTRATOR", "oidc:x")];
    let changes = store
        .write(move |c| members::replace_roles_from_source(c, "m1", "oidc:x", &w, 3))
        .await
        .unwrap();
    assert_eq!(changes.revoked, vec![first[1].clone()]);
    let held = store.read(|c| members::roles_of(c, "m1")).await.unwrap();
    assert_eq!(
        held,
        vec![
            manual.clone(),
            org_role(o2, "m1", "ADMINISTRATOR", "oidc:x")
        ]
    );
    // The operator grants by hand what the sync said: it is the operator's from now on, and a
    // sync that no longer names it leaves it.
    let by_hand = org_role(o2, "m1", "ADMINISTRATOR", "manual");
    let h = by_hand.clone();
    assert!(store
        .write(move |c| members::grant_role(c, &h, 5))
        .await
        .unwrap());
    store
        .write(move |c| members::replace_roles_from_source(c, "m1", "oidc:x", &[], 6))
        .await
        .unwrap();
    let held = store.read(|c| members::roles_of(c, "m1")).await.unwrap();
    assert_eq!(held, vec![manual, by_hand]);
    let wrong = vec![org_role(o2, "m2", "ADMINISTRATOR", "oidc:x")];
    assert!(store
        .write(move |c| members::replace_roles_from_source(c, "m1", "oidc:x", &wrong, 4))
        .await
        .is_err());
}

async fn an_upstream_identity_names_one_member(store: &Store) {
    for (id, email) in [("m1", "a@example.com"), ("m2", "b@example.com")] {
        store
            .write(move |c| members::create(c, id, &new_member(email), 1))
            .await
            .unwrap();
    }
    store
        .write(|c| members::link_identity(c, "https://idp", "sub-1", "m1", 2))
        .await
        .unwrap();
    store
        .write(|c| members::link_identity(c, "https://idp", "sub-1", "m1", 3))
        .await
        .unwrap();
    let moved = store
        .write(|c| members::link_identity(c, "https://idp", "sub-1", "m2", 4))
        .await;
    assert!(matches!(moved, Err(StoreError::Conflict(_))), "{moved:?}");
    let m = store
        .read(|c| members::by_identity(c, "https://idp", "sub-1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(m.id, "m1");
    assert!(store
        .read(|c| members::by_identity(c, "https://other", "sub-1"))
        .await
        .unwrap()
        .is_none());
}

async fn deactivating_bumps_the_version_once(store: &Store) {
    let m = store
        .write(|c| members::create(c, "m1", &new_member("a@example.com"), 1))
        .await
        .unwrap();
    assert!(m.active);
    assert!(store
        .write(|c| members::set_active(c, "m1", false, 2))
        .await
        .unwrap());
    assert!(!store
        .write(|c| members::set_active(c, "m1", false, 3))
        .await
        .unwrap());
    let after = store
        .read(|c| members::by_id(c, "m1"))
        .await
        .unwrap()
        .unwrap();
    assert!(!after.active);
    assert_eq!(after.version, m.version + 1);
    assert_eq!(after.updated_at, 2);
}

async fn concurrent_writes_are_all_committed(store: &Store) {
    let mut tasks = Vec::new();
    for i in 0..200 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            s.write(move |c| settings::set(c, &format!("key{i}"), "x"))
                .await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let n = store
        .read(|c| {
            c.query_one(
                "SELECT COUNT(*) FROM settings WHERE key LIKE 'key%'",
                params![],
            )?
            .int(0)
        })
        .await
        .unwrap();
    assert_eq!(n, 200);
}

async fn a_failed_write_changes_nothing_and_spares_its_neighbours(store: &Store) {
    let s1 = store.clone();
    let s2 = store.clone();
    let failing = tokio::spawn(async move {
        s1.write(|c| {
            settings::set(c, "half", "done")?;
            Err::<(), _>(StoreError::Conflict("refused".into()))
        })
        .await
    });
    let fine = tokio::spawn(async move { s2.write(|c| settings::set(c, "whole", "done")).await });
    assert!(failing.await.unwrap().is_err());
    fine.await.unwrap().unwrap();
    assert_eq!(
        store.read(|c| settings::get(c, "half")).await.unwrap(),
        None
    );
    assert_eq!(
        store
            .read(|c| settings::get(c, "whole"))
            .await
            .unwrap()
            .as_deref(),
        Some("done")
    );
}

async fn audit_events_are_listed_newest_first(store: &Store) {
    store
        .write(|c| {
            audit::record(c, 10, "cli", "app.create", "app1", "")?;
            audit::record(c, 11, "m1", "app.delete", "app1", "reason")?;
            audit::record(c, 12, "m1", "member.create", "m2", "")
        })
        .await
        .unwrap();
    let all = store.read(|c| audit::list(c, None, 10)).await.unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(all[0].action, "member.create");
    let one = store
        .read(|c| audit::list(c, Some("app1"), 1))
        .await
        .unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].action, "app.delete");
}

async fn app_and_member(store: &Store) {
    store
        .write(|c| {
            members::create(c, "m1", &new_member("a@example.com"), 1)?;
            let a = App {
                client_id: "app1".into(),
                name: "App".into(),
                owner_id: "m1".into(),
                organization_id: None,
                privacy_policy_url: String::new(),
                logo_url: String::new(),
                capabilities: Default::default(),
                default_scopes: Default::default(),
                extension_until: None,
                created_at: 1,
            };
            apps::create(
                c,
                &a,
                &SecretHash::from_stored("h1".into()),
                "…h1",
                &["https://x.example/cb".into()],
            )
        })
        .await
        .unwrap();
}

fn access(hash: &str, grant: Option<i64>) -> TokenRecord {
    TokenRecord {
        hash: h(hash),
        kind: TokenKind::Access,
        client_id: "app1".into(),
        grant_id: grant.map(Into::into),
        member_id: grant.map(|_| "m1".into()),
        scopes: sc("openid"),
        created_at: 10,
        authorized_at: 10,
        expires_at: 1000,
        revoked_at: None,
        refresh_hash: None,
        code_hash: None,
        rotated_at: None,
        nonce: None,
        public_client: false,
        auth_time: 10,
    }
}

async fn a_code_is_redeemed_exactly_once_under_concurrency(store: &Store) {
    app_and_member(store).await;
    let g = store
        .write(|c| tokens::consent(c, "app1", "m1", &sc("openid"), 5))
        .await
        .unwrap();
    let code = CodeRecord {
        hash: h("code1"),
        client_id: "app1".into(),
        grant_id: g.id,
        member_id: "m1".into(),
        redirect_uri: "https://x.example/cb".into(),
        scopes: sc("openid"),
        code_challenge: None,
        nonce: None,
        auth_time: 5,
        created_at: 5,
        expires_at: 600,
        consumed_at: None,
        native: false,
    };
    store
        .write(move |c| tokens::insert_code(c, &code))
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            s.write(|c| tokens::redeem_code(c, &h("code1"), 7)).await
        }));
    }
    let mut fresh = 0;
    let mut replayed = 0;
    for t in tasks {
        match t.await.unwrap().unwrap() {
            Redeem::Fresh(_) => fresh += 1,
            Redeem::Replayed(_) => replayed += 1,
            Redeem::Unknown => panic!("the code vanished"),
        }
    }
    assert_eq!((fresh, replayed), (1, 49));
    assert!(matches!(
        store
            .write(|c| tokens::redeem_code(c, &h("nope"), 7))
            .await
            .unwrap(),
        Redeem::Unknown
    ));
}

async fn consent_with_new_scopes_revokes_earlier_tokens(store: &Store) {
    app_and_member(store).await;
    let g = store
        .write(|c| tokens::consent(c, "app1", "m1", &sc("openid"), 5))
        .await
        .unwrap();
    let t = access("t1", Some(g.id.get()));
    store.write(move |c| tokens::insert(c, &t)).await.unwrap();
    let gid = g.id.get();
    assert!(store
        .read(move |c| tokens::grant_has_live_access_token(c, gid, 20))
        .await
        .unwrap());
    // The same scopes again keep the token.
    let same = store
        .write(|c| tokens::consent(c, "app1", "m1", &sc("openid"), 6))
        .await
        .unwrap();
    assert_eq!(same.id, g.id);
    assert!(store
        .read(|c| tokens::get(c, &h("t1")))
        .await
        .unwrap()
        .unwrap()
        .revoked_at
        .is_none());
    // Different scopes revoke it.
    store
        .write(|c| tokens::consent(c, "app1", "m1", &sc("openid,profile"), 7))
        .await
        .unwrap();
    assert_eq!(
        store
            .read(|c| tokens::get(c, &h("t1")))
            .await
            .unwrap()
            .unwrap()
            .revoked_at,
        Some(7)
    );
    assert!(!store
        .read(move |c| tokens::grant_has_live_access_token(c, gid, 20))
        .await
        .unwrap());
    // Revoking the grant ends it.
    assert!(store
        .write(|c| tokens::revoke_grant(c, "app1", "m1", 8))
        .await
        .unwrap());
    assert!(store
        .read(|c| tokens::live_grant(c, "app1", "m1"))
        .await
        .unwrap()
        .is_none());
    assert!(store
        .read(|c| tokens::grants_of_member(c, "m1"))
        .await
        .unwrap()
        .is_empty());
}

async fn revoking_a_refresh_token_revokes_its_access_tokens(store: &Store) {
    app_and_member(store).await;
    let mut r = access("r1", None);
    r.kind = TokenKind::Refresh;
    let mut a = access("a1", None);
    a.refresh_hash = Some(h("r1"));
    let other = access("a2", None);
    store
        .write(move |c| {
            tokens::insert(c, &r)?;
            tokens::insert(c, &a)?;
            tokens::insert(c, &other)
        })
        .await
        .unwrap();
    store
        .write(|c| tokens::revoke(c, &h("r1"), 50))
        .await
        .unwrap();
    assert_eq!(
        store
            .read(|c| tokens::get(c, &h("a1")))
            .await
            .unwrap()
            .unwrap()
            .revoked_at,
        Some(50)
    );
    assert_eq!(
        store
            .read(|c| tokens::get(c, &h("a2")))
            .await
            .unwrap()
            .unwrap()
            .revoked_at,
        None
    );
    assert!(store
        .write(|c| tokens::mark_rotated(c, &h("a2"), 51))
        .await
        .unwrap());
    assert!(!store
        .write(|c| tokens::mark_rotated(c, &h("a2"), 52))
        .await
        .unwrap());
}

async fn expired_rows_are_purged_in_batches(store: &Store) {
    app_and_member(store).await;
    store
        .write(|c| {
            for i in 0..25 {
                let mut t = access(&format!("e{i}"), None);
                t.expires_at = 100 + i;
                tokens::insert(c, &t)?;
            }
            let mut live = access("live", None);
            live.expires_at = 10_000;
            tokens::insert(c, &live)
        })
        .await
        .unwrap();
    let first = store
        .write(|c| tokens::purge_expired(c, 200, 10))
        .await
        .unwrap();
    assert_eq!(first, 10);
    let mut total = first;
    loop {
        let n = store
            .write(|c| tokens::purge_expired(c, 200, 10))
            .await
            .unwrap();
        if n == 0 {
            break;
        }
        total += n;
    }
    assert_eq!(total, 25);
    assert!(store
        .read(|c| tokens::get(c, &h("live")))
        .await
        .unwrap()
        .is_some());
}

async fn pending_requests_are_read_unexpired_deleted_and_purged(store: &Store) {
    let record = |name: &str, expires_at| PendingRecord {
        hash: h(name),
        request: format!("{{\"name\":\"{name}\"}}"),
        created_at: 100,
        expires_at,
    };
    let (a, b, c) = (record("a", 200), record("b", 300), record("c", 150));
    let (a2, b2, c2) = (a.clone(), b.clone(), c.clone());
    store
        .write(move |conn| {
            pending::insert(conn, &a2)?;
            pending::insert(conn, &b2)?;
            pending::insert(conn, &c2)
        })
        .await
        .unwrap();
    let read = |name: &'static str, now| store.read(move |conn| pending::get(conn, &h(name), now));
    assert_eq!(read("a", 199).await.unwrap(), Some(a));
    assert_eq!(
        read("a", 200).await.unwrap(),
        None,
        "expired at its expiry time"
    );
    assert_eq!(read("zzz", 0).await.unwrap(), None);
    assert!(store
        .write(|conn| pending::delete(conn, &h("b")))
        .await
        .unwrap());
    assert!(!store
        .write(|conn| pending::delete(conn, &h("b")))
        .await
        .unwrap());
    assert_eq!(read("b", 0).await.unwrap(), None);
    // Only what expired before the cut-off goes, oldest first, at most a batch at a time.
    assert_eq!(
        store
            .write(|conn| pending::purge_expired(conn, 201, 1))
            .await
            .unwrap(),
        1
    );
    assert_eq!(read("a", 0).await.unwrap(), Some(record("a", 200)));
    assert_eq!(
        store
            .write(|conn| pending::purge_expired(conn, 201, 10))
            .await
            .unwrap(),
        1
    );
    assert_eq!(read("a", 0).await.unwrap(), None);
}

async fn secrets_are_capped_at_two(store: &Store) {
    app_and_member(store).await;
    let mut tasks = Vec::new();
    for i in 0..10 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            s.write(move |c| {
                apps::add_secret(
                    c,
                    "app1",
                    &SecretHash::from_stored(format!("h{i}x")),
                    "…",
                    2,
                )
            })
            .await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        if t.await.unwrap().is_ok() {
            ok += 1;
        }
    }
    assert_eq!(
        ok, 1,
        "exactly one rotation may succeed next to the first secret"
    );
    let secrets = store.read(|c| apps::secrets(c, "app1")).await.unwrap();
    assert_eq!(secrets.len(), 2);
    let first = secrets[0].id;
    store
        .write(move |c| apps::delete_secret(c, "app1", first))
        .await
        .unwrap();
    let last = store.read(|c| apps::secrets(c, "app1")).await.unwrap()[0].id;
    assert!(matches!(
        store
            .write(move |c| apps::delete_secret(c, "app1", last))
            .await,
        Err(StoreError::Conflict(_))
    ));
}

async fn sandbox_objects_are_found_only_by_their_owner(store: &Store) {
    let app = |c: &str| Owner::App {
        client_id: c.into(),
    };
    let member = |c: &str, m: &str| Owner::Member {
        client_id: c.into(),
        member_id: m.into(),
    };
    let org = Owner::Resource("urn:li:organization:7".into());
    let object = |id: i64,
                  collection: &str,
                  owner: &Owner,
                  member_id: Option<&str>,
                  target: Option<&str>| Object {
        id,
        collection: collection.into(),
        owner: owner.clone(),
        client_id: match owner {
            Owner::App { client_id } | Owner::Member { client_id, .. } => client_id.clone(),
            _ => "app-a".into(),
        },
        member_id: member_id.map(str::to_string),
        target: target.map(str::to_string),
        body: format!("{{\"n\":{id}}}"),
        created_at: id,
    };
    let rows = [
        object(4_000_000_000_000_000_001, "jobs", &app("app-a"), None, None),
        object(4_000_000_000_000_000_002, "jobs", &app("app-b"), None, None),
        object(
            4_000_000_000_000_000_003,
            "posts",
            &member("app-a", "m1"),
            Some("m1"),
            Some("urn:li:person:x"),
        ),
        object(
            4_000_000_000_000_000_004,
            "posts",
            &member("app-a", "m2"),
            Some("m2"),
            Some("urn:li:person:y"),
        ),
        object(
            4_000_000_000_000_000_005,
            "posts",
            &member("app-b", "m1"),
            Some("m1"),
            Some("urn:li:person:z"),
        ),
        object(
            4_000_000_000_000_000_006,
            "posts",
            &org,
            Some("m1"),
            Some("urn:li:organization:7"),
        ),
    ];
    for o in rows.clone() {
        assert!(store.write(move |c| sandbox::create(c, &o)).await.unwrap());
    }
    // A taken id is refused (the caller draws another), whatever the collection.
    let dup = object(4_000_000_000_000_000_001, "posts", &org, Some("m1"), None);
    assert!(!store
        .write(move |c| sandbox::create(c, &dup))
        .await
        .unwrap());
    let got = store
        .read(|c| sandbox::get(c, "posts", 4_000_000_000_000_000_006))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, rows[5]);
    assert_eq!(
        store
            .read(|c| sandbox::get(c, "jobs", 4_000_000_000_000_000_006))
            .await
            .unwrap(),
        None
    );
    let ids = |owner: Owner, collection: &'static str, target: Option<&'static str>| {
        let store = store.clone();
        async move {
            store
                .read(move |c| sandbox::list(c, collection, &owner, target, 100))
                .await
                .unwrap()
                .iter()
                .map(|o| o.id % 10)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(ids(app("app-a"), "jobs", None).await, vec![1]);
    assert_eq!(ids(app("app-c"), "jobs", None).await, Vec::<i64>::new());
    assert_eq!(ids(member("app-a", "m1"), "posts", None).await, vec![3]);
    assert_eq!(
        ids(member("app-a", "m1"), "posts", Some("urn:li:person:x")).await,
        vec![3]
    );
    assert_eq!(
        ids(member("app-a", "m1"), "posts", Some("urn:li:person:y")).await,
        Vec::<i64>::new()
    );
    assert_eq!(ids(member("app-b", "m1"), "posts", None).await, vec![5]);
    assert_eq!(ids(org.clone(), "posts", None).await, vec![6]);
    assert_eq!(ids(Owner::Nobody, "posts", None).await, Vec::<i64>::new());
    assert_eq!(
        store
            .read(|c| sandbox::count(c, "posts", "urn:li:organization:7"))
            .await
            .unwrap(),
        1
    );
    assert!(store
        .write(|c| sandbox::update_body(c, "posts", 4_000_000_000_000_000_006, "{}"))
        .await
        .unwrap());
    assert!(!store
        .write(|c| sandbox::update_body(c, "jobs", 4_000_000_000_000_000_006, "{}"))
        .await
        .unwrap());
    assert!(store
        .write(|c| sandbox::delete(c, "posts", 4_000_000_000_000_000_006))
        .await
        .unwrap());
    assert!(!store
        .write(|c| sandbox::delete(c, "posts", 4_000_000_000_000_000_006))
        .await
        .unwrap());
}

/// A stored hash for the tests' records (the store keeps whatever hash it is given).
fn h(s: &str) -> scopegate_core::SecretHash {
    scopegate_core::SecretHash::from_stored(s.to_string())
}

fn sc(s: &str) -> scopegate_core::ScopeSet {
    scopegate_core::ScopeSet::parse(s).unwrap()
}
