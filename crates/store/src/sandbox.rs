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

/// A stored sandbox object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    pub id: i64,
    pub collection: String,
    pub client_id: String,
    pub member_id: Option<String>,
    pub target: Option<String>,
    pub body: String,
    pub created_at: UnixTime,
}

fn object(r: &crate::Row) -> Result<Object> {
    Ok(Object {
        id: r.int(0)?,
        collection: r.text(1)?,
        client_id: r.text(2)?,
        member_id: r.opt_text(3)?,
        target: r.opt_text(4)?,
        body: r.text(5)?,
        created_at: r.int(6)?,
    })
}

const COLUMNS: &str = "id, collection, client_id, member_id, target, body, created_at";

/// Stores an object; returns its id.
pub fn create(c: &mut dyn Conn, o: &Object) -> Result<i64> {
    c.query_one(
        "INSERT INTO sandbox_objects (collection, client_id, member_id, target, body, created_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        params![&o.collection, &o.client_id, o.member_id.clone(), o.target.clone(), &o.body, o.created_at],
    )?
    .int(0)
}

/// An object by collection and id.
pub fn get(c: &mut dyn Conn, collection: &str, id: i64) -> Result<Option<Object>> {
    c.query_opt(
        &format!("SELECT {COLUMNS} FROM sandbox_objects WHERE collection = $1 AND id = $2"),
        params![collection, id],
    )?
    .as_ref()
    .map(object)
    .transpose()
}

/// Objects of a collection with a target, newest first.
pub fn list(
    c: &mut dyn Conn,
    collection: &str,
    target: Option<&str>,
    limit: i64,
) -> Result<Vec<Object>> {
    let rows = match target {
        Some(t) => c.query(
            &format!("SELECT {COLUMNS} FROM sandbox_objects WHERE collection = $1 AND target = $2 ORDER BY id DESC LIMIT $3"),
            params![collection, t, limit],
        )?,
        None => c.query(
            &format!("SELECT {COLUMNS} FROM sandbox_objects WHERE collection = $1 ORDER BY id DESC LIMIT $2"),
            params![collection, limit],
        )?,
    };
    rows.iter().map(object).collect()
}

/// How many objects of a collection have a target.
pub fn count(c: &mut dyn Conn, collection: &str, target: &str) -> Result<i64> {
    c.query_one(
        "SELECT COUNT(*) FROM sandbox_objects WHERE collection = $1 AND target = $2",
        params![collection, target],
    )?
    .int(0)
}
