//! Quota counters and the sandbox API's stored objects.

use scopegate_core::model::UnixTime;

use crate::{params, Conn, Result};

/// Adds one call under `key` for the UTC day `day` and returns the day's count. One statement,
/// so concurrent calls (on any node over PostgreSQL) never lose an increment.
pub fn count_call(c: &mut dyn Conn, key: &str, day: i64) -> Result<i64> {
    c.query_one(
        "INSERT INTO quota_counters (key, day, count) VALUES ($1, $2, 1) \
         ON CONFLICT (key, day) DO UPDATE SET count = quota_counters.count + 1 RETURNING count",
        params![key, day],
    )?
    .int(0)
}

/// Deletes counters of days before `day` (they reset at midnight UTC).
pub fn purge_counters(c: &mut dyn Conn, day: i64) -> Result<u64> {
    c.execute("DELETE FROM quota_counters WHERE day < $1", params![day])
}

/// Who owns a sandbox object: the only caller who may read, list, update or delete it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// A 2-legged object: the app whose token made it.
    App { client_id: String },
    /// A member's object, seen through the app that made it (person URNs are pairwise per
    /// app, so another app knows the member under another URN).
    Member {
        client_id: String,
        member_id: String,
    },
    /// An organization's or ad account's object, by its URN: members with a role there.
    Resource(String),
    /// A row whose owner cannot be told (never written by this version): nobody's.
    Nobody,
}

impl Owner {
    /// The `owner` column, and the creator columns it is read with.
    fn column(&self) -> Option<&str> {
        match self {
            Owner::App { .. } => Some("app"),
            Owner::Member { .. } => Some("member"),
            Owner::Resource(urn) => Some(urn),
            Owner::Nobody => None,
        }
    }
}

/// A stored sandbox object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    /// Random (drawn by the caller), never a sequence: ids must not be guessable.
    pub id: i64,
    pub collection: String,
    pub owner: Owner,
    /// The app whose token made it.
    pub client_id: String,
    /// The member who made it (3-legged).
    pub member_id: Option<String>,
    pub target: Option<String>,
    pub body: String,
    pub created_at: UnixTime,
}

fn object(r: &crate::Row) -> Result<Object> {
    let client_id = r.text("client_id")?;
    let member_id = r.opt_text("member_id")?;
    let owner = match (r.opt_text("owner")?.as_deref(), &member_id) {
        (Some("app"), _) => Owner::App {
            client_id: client_id.clone(),
        },
        (Some("member"), Some(m)) => Owner::Member {
            client_id: client_id.clone(),
            member_id: m.clone(),
        },
        (Some(urn), _) if urn.starts_with("urn:li:") => Owner::Resource(urn.to_string()),
        _ => Owner::Nobody,
    };
    Ok(Object {
        id: r.int("id")?,
        collection: r.text("collection")?,
        owner,
        client_id,
        member_id,
        target: r.opt_text("target")?,
        body: r.text("body")?,
        created_at: r.int("created_at")?,
    })
}

const COLUMNS: &str = "id, collection, client_id, member_id, target, body, created_at, owner";

/// Stores an object under its (random) id; `false` when the id is taken (draw another).
pub fn create(c: &mut dyn Conn, o: &Object) -> Result<bool> {
    let owner = o.owner.column().map(str::to_string);
    Ok(c.query_opt(
        "INSERT INTO sandbox_objects (id, collection, client_id, member_id, target, body, created_at, owner) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO NOTHING RETURNING id",
        params![o.id, &o.collection, &o.client_id, o.member_id.clone(), o.target.clone(), &o.body, o.created_at, owner],
    )?
    .is_some())
}

/// An object by collection and id (the caller checks its owner before showing it).
pub fn get(c: &mut dyn Conn, collection: &str, id: i64) -> Result<Option<Object>> {
    c.query_opt(
        &format!("SELECT {COLUMNS} FROM sandbox_objects WHERE collection = $1 AND id = $2"),
        params![collection, id],
    )?
    .as_ref()
    .map(object)
    .transpose()
}

/// Objects of a collection that `owner` owns, with a target when one is given, newest first.
pub fn list(
    c: &mut dyn Conn,
    collection: &str,
    owner: &Owner,
    target: Option<&str>,
    limit: i64,
) -> Result<Vec<Object>> {
    let mut sql =
        format!("SELECT {COLUMNS} FROM sandbox_objects WHERE collection = $1 AND owner = $2");
    let mut args = params![collection, owner.column().map(str::to_string)].to_vec();
    match owner {
        Owner::App { client_id } => {
            sql.push_str(" AND client_id = $3");
            args.push(client_id.as_str().into());
        }
        Owner::Member {
            client_id,
            member_id,
        } => {
            sql.push_str(" AND client_id = $3 AND member_id = $4");
            args.push(client_id.as_str().into());
            args.push(member_id.as_str().into());
        }
        Owner::Resource(_) => {}
        Owner::Nobody => return Ok(vec![]),
    }
    if let Some(t) = target {
        sql.push_str(&format!(" AND target = ${}", args.len() + 1));
        args.push(t.into());
    }
    sql.push_str(&format!(
        " ORDER BY created_at DESC, id DESC LIMIT ${}",
        args.len() + 1
    ));
    args.push(limit.into());
    c.query(&sql, &args)?.iter().map(object).collect()
}

/// Replaces an object's body; `false` when there is no such object.
pub fn update_body(c: &mut dyn Conn, collection: &str, id: i64, body: &str) -> Result<bool> {
    Ok(c.execute(
        "UPDATE sandbox_objects SET body = $3 WHERE collection = $1 AND id = $2",
        params![collection, id, body],
    )? == 1)
}

/// Deletes an object; `false` when there is no such object.
pub fn delete(c: &mut dyn Conn, collection: &str, id: i64) -> Result<bool> {
    Ok(c.execute(
        "DELETE FROM sandbox_objects WHERE collection = $1 AND id = $2",
        params![collection, id],
    )? == 1)
}

/// How many objects of a collection a resource owns.
pub fn count(c: &mut dyn Conn, collection: &str, owner_urn: &str) -> Result<i64> {
    c.query_one(
        "SELECT COUNT(*) FROM sandbox_objects WHERE collection = $1 AND owner = $2",
        params![collection, owner_urn],
    )?
    .int(0)
}
