//! Members, organizations, ad accounts and the roles members hold on them.

use scopegate_core::catalog::ResourceType;
use scopegate_core::model::{
    Member, NewMember, Resource, RoleAssignment, UnixTime, MANUAL_ROLE_SOURCE,
};

use crate::{params, Conn, Result, Row, StoreError};

const MEMBER_COLUMNS: &str = "id, email, first_name, last_name, headline, picture_url, locale, email_verified, platform_admin, created_at, active, external_id, version, updated_at";

fn member(r: &Row) -> Result<Member> {
    Ok(Member {
        id: r.text("id")?.into(),
        email: r.text("email")?,
        first_name: r.text("first_name")?,
        last_name: r.text("last_name")?,
        headline: r.text("headline")?,
        picture_url: r.text("picture_url")?,
        locale: r.text("locale")?,
        email_verified: r.bool("email_verified")?,
        platform_admin: r.bool("platform_admin")?,
        created_at: r.int("created_at")?,
        active: r.bool("active")?,
        external_id: r.opt_text("external_id")?,
        version: r.int("version")?,
        updated_at: r.int("updated_at")?,
    })
}

/// Creates a member with the given id. Emails are unique (compared lowercased).
pub fn create(c: &mut dyn Conn, id: &str, m: &NewMember, now: UnixTime) -> Result<Member> {
    c.execute(
        "INSERT INTO members (id, email, password_hash, first_name, last_name, headline, picture_url, locale, email_verified, platform_admin, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)",
        params![id, m.email.to_lowercase(), &m.password_hash, &m.first_name, &m.last_name, &m.headline, &m.picture_url, &m.locale, m.email_verified, m.platform_admin, now],
    )
    .map_err(|e| match e {
        StoreError::Conflict(_) => StoreError::Conflict("a member with this email already exists".into()),
        other => other,
    })?;
    by_id(c, id)?.ok_or(StoreError::NotFound)
}

/// The member with this id.
pub fn by_id(c: &mut dyn Conn, id: &str) -> Result<Option<Member>> {
    c.query_opt(
        &format!("SELECT {MEMBER_COLUMNS} FROM members WHERE id = $1"),
        params![id],
    )?
    .as_ref()
    .map(member)
    .transpose()
}

/// The member with this email (case-insensitive).
pub fn by_email(c: &mut dyn Conn, email: &str) -> Result<Option<Member>> {
    c.query_opt(
        &format!("SELECT {MEMBER_COLUMNS} FROM members WHERE email = $1"),
        params![email.to_lowercase()],
    )?
    .as_ref()
    .map(member)
    .transpose()
}

/// A member by id or, failing that, by email (how the CLI names members).
pub fn find(c: &mut dyn Conn, id_or_email: &str) -> Result<Option<Member>> {
    match by_id(c, id_or_email)? {
        Some(m) => Ok(Some(m)),
        None => by_email(c, id_or_email),
    }
}

/// The stored password hash of a member, for sign-in.
pub fn password_hash(c: &mut dyn Conn, id: &str) -> Result<Option<String>> {
    c.query_opt(
        "SELECT password_hash FROM members WHERE id = $1",
        params![id],
    )?
    .map(|r| r.text(0))
    .transpose()
}

/// Replaces a member's password hash.
pub fn set_password_hash(c: &mut dyn Conn, id: &str, hash: &str) -> Result<()> {
    let n = c.execute(
        "UPDATE members SET password_hash = $1 WHERE id = $2",
        params![hash, id],
    )?;
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// Every member, oldest first.
pub fn list(c: &mut dyn Conn) -> Result<Vec<Member>> {
    c.query(
        &format!("SELECT {MEMBER_COLUMNS} FROM members ORDER BY created_at, id"),
        params![],
    )?
    .iter()
    .map(member)
    .collect()
}

/// How many platform admins exist.
pub fn count_admins(c: &mut dyn Conn) -> Result<i64> {
    c.query_one(
        "SELECT COUNT(*) FROM members WHERE platform_admin = 1",
        params![],
    )?
    .int(0)
}

fn table(rt: ResourceType) -> &'static str {
    match rt {
        ResourceType::Organization => "organizations",
        ResourceType::AdAccount => "ad_accounts",
    }
}

/// Creates an organization or ad account and returns it.
pub fn create_resource(
    c: &mut dyn Conn,
    rt: ResourceType,
    name: &str,
    now: UnixTime,
) -> Result<Resource> {
    let id = c
        .query_one(
            &format!(
                "INSERT INTO {} (name, created_at) VALUES ($1, $2) RETURNING id",
                table(rt)
            ),
            params![name, now],
        )?
        .int(0)?;
    Ok(Resource {
        resource_type: rt,
        id,
        name: name.to_string(),
        created_at: now,
    })
}

/// An organization or ad account by id.
pub fn resource(c: &mut dyn Conn, rt: ResourceType, id: i64) -> Result<Option<Resource>> {
    c.query_opt(
        &format!(
            "SELECT id, name, created_at FROM {} WHERE id = $1",
            table(rt)
        ),
        params![id],
    )?
    .map(|r| {
        Ok(Resource {
            resource_type: rt,
            id: r.int(0)?,
            name: r.text(1)?,
            created_at: r.int(2)?,
        })
    })
    .transpose()
}

/// Every organization or ad account.
pub fn resources(c: &mut dyn Conn, rt: ResourceType) -> Result<Vec<Resource>> {
    c.query(
        &format!("SELECT id, name, created_at FROM {} ORDER BY id", table(rt)),
        params![],
    )?
    .iter()
    .map(|r| {
        Ok(Resource {
            resource_type: rt,
            id: r.int(0)?,
            name: r.text(1)?,
            created_at: r.int(2)?,
        })
    })
    .collect()
}

/// Gives a member a role on a resource, owned by `a.source`; returns false when it was already
/// held. A sync never takes a role over from another source; a grant by hand does: the operator
/// meant it to stay, so a later sync that no longer names the role must not take it away.
pub fn grant_role(c: &mut dyn Conn, a: &RoleAssignment, now: UnixTime) -> Result<bool> {
    let on_conflict = if a.source == MANUAL_ROLE_SOURCE {
        "ON CONFLICT (resource_type, resource_id, member_id, role) DO UPDATE SET source = excluded.source \
         WHERE role_assignments.source <> excluded.source"
    } else {
        "ON CONFLICT DO NOTHING"
    };
    let n = c.execute(
        &format!(
            "INSERT INTO role_assignments (resource_type, resource_id, member_id, role, created_at, source) VALUES ($1, $2, $3, $4, $5, $6) {on_conflict}"
        ),
        params![a.resource_type.as_str(), a.resource_id, &a.member_id, &a.role, now, &a.source],
    )?;
    Ok(n == 1)
}

/// What [`replace_roles_from_source`] changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoleChanges {
    pub granted: Vec<RoleAssignment>,
    pub revoked: Vec<RoleAssignment>,
}

/// Makes the roles that `source` owns for a member exactly `wanted` (each of which must name
/// that member and source): roles the source no longer says are taken away, new ones granted.
/// Roles from other sources, and those granted by hand, are never touched; a wanted role the
/// member already holds from another source stays with that source.
pub fn replace_roles_from_source(
    c: &mut dyn Conn,
    member_id: &str,
    source: &str,
    wanted: &[RoleAssignment],
    now: UnixTime,
) -> Result<RoleChanges> {
    if let Some(w) = wanted
        .iter()
        .find(|w| w.member_id.as_str() != member_id || w.source != source)
    {
        return Err(StoreError::Backend(format!(
            "role {} {} belongs to {} from {}, not {member_id} from {source}",
            w.role, w.resource_id, w.member_id, w.source
        )));
    }
    let held: Vec<RoleAssignment> = roles_of(c, member_id)?
        .into_iter()
        .filter(|a| a.source == source)
        .collect();
    let mut changes = RoleChanges::default();
    for a in held.iter().filter(|a| !wanted.contains(a)) {
        if revoke_role(c, a)? {
            changes.revoked.push(a.clone());
        }
    }
    for a in wanted.iter().filter(|a| !held.contains(a)) {
        if grant_role(c, a, now)? {
            changes.granted.push(a.clone());
        }
    }
    Ok(changes)
}

/// Takes a role away; returns false when it was not held.
pub fn revoke_role(c: &mut dyn Conn, a: &RoleAssignment) -> Result<bool> {
    let n = c.execute(
        "DELETE FROM role_assignments WHERE resource_type = $1 AND resource_id = $2 AND member_id = $3 AND role = $4",
        params![a.resource_type.as_str(), a.resource_id, &a.member_id, &a.role],
    )?;
    Ok(n == 1)
}

fn assignment(r: &Row) -> Result<RoleAssignment> {
    let rt = r.text("resource_type")?;
    Ok(RoleAssignment {
        resource_type: ResourceType::parse(&rt)
            .ok_or_else(|| StoreError::Backend(format!("unknown resource type {rt}")))?,
        resource_id: r.int("resource_id")?,
        member_id: r.text("member_id")?.into(),
        role: r.text("role")?,
        source: r.text("source")?,
    })
}

/// Every role a member holds.
pub fn roles_of(c: &mut dyn Conn, member_id: &str) -> Result<Vec<RoleAssignment>> {
    c.query(
        "SELECT resource_type, resource_id, member_id, role, source FROM role_assignments WHERE member_id = $1 ORDER BY resource_type, resource_id, role",
        params![member_id],
    )?
    .iter()
    .map(assignment)
    .collect()
}

/// Every role held on one resource.
pub fn roles_on(c: &mut dyn Conn, rt: ResourceType, id: i64) -> Result<Vec<RoleAssignment>> {
    c.query(
        "SELECT resource_type, resource_id, member_id, role, source FROM role_assignments WHERE resource_type = $1 AND resource_id = $2 ORDER BY member_id, role",
        params![rt.as_str(), id],
    )?
    .iter()
    .map(assignment)
    .collect()
}

/// Marks a member active or not, bumping their version. Returns false when nothing changed.
pub fn set_active(c: &mut dyn Conn, id: &str, active: bool, now: UnixTime) -> Result<bool> {
    let n = c.execute(
        "UPDATE members SET active = $1, version = version + 1, updated_at = $2 WHERE id = $3 AND active <> $1",
        params![active, now, id],
    )?;
    Ok(n == 1)
}

/// Ends every session of a member; returns how many.
pub fn end_sessions(c: &mut dyn Conn, id: &str) -> Result<u64> {
    c.execute("DELETE FROM sessions WHERE member_id = $1", params![id])
}

/// The member an upstream identity (issuer, subject) is linked to.
pub fn by_identity(c: &mut dyn Conn, issuer: &str, subject: &str) -> Result<Option<Member>> {
    c.query_opt(
        &format!(
            "SELECT {} FROM members WHERE id = (SELECT member_id FROM member_identities WHERE issuer = $1 AND subject = $2)",
            MEMBER_COLUMNS
        ),
        params![issuer, subject],
    )?
    .as_ref()
    .map(member)
    .transpose()
}

/// Links an upstream identity to a member (or records another sign-in through it). An identity
/// already linked to a different member is a conflict, never a silent move.
pub fn link_identity(
    c: &mut dyn Conn,
    issuer: &str,
    subject: &str,
    member_id: &str,
    now: UnixTime,
) -> Result<()> {
    let n = c.execute(
        "INSERT INTO member_identities (issuer, subject, member_id, created_at, last_sign_in_at) VALUES ($1, $2, $3, $4, $4) \
         ON CONFLICT (issuer, subject) DO UPDATE SET last_sign_in_at = $4 WHERE member_identities.member_id = $3",
        params![issuer, subject, member_id, now],
    )?;
    if n == 0 {
        return Err(StoreError::Conflict(
            "this upstream identity is linked to another member".into(),
        ));
    }
    Ok(())
}

/// The upstream identities (issuer, subject) linked to a member.
pub fn identities_of(c: &mut dyn Conn, member_id: &str) -> Result<Vec<(String, String)>> {
    c.query(
        "SELECT issuer, subject FROM member_identities WHERE member_id = $1 ORDER BY issuer, subject",
        params![member_id],
    )?
    .iter()
    .map(|r| Ok((r.text(0)?, r.text(1)?)))
    .collect()
}
