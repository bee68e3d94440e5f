//! The audit log: who changed what, when. Every store change made for a person is recorded here
//! in the same transaction as the change, so the log cannot miss one.

use scopegate_core::model::{AuditEvent, UnixTime};

use crate::{params, Conn, Result, Row};

/// Records one event.
pub fn record(
    c: &mut dyn Conn,
    at: UnixTime,
    actor: &str,
    action: &str,
    target: &str,
    detail: &str,
) -> Result<()> {
    c.execute(
        "INSERT INTO audit_events (at, actor, action, target, detail) VALUES ($1, $2, $3, $4, $5)",
        params![at, actor, action, target, detail],
    )?;
    Ok(())
}

fn event(r: &Row) -> Result<AuditEvent> {
    Ok(AuditEvent {
        id: r.int("id")?,
        at: r.int("at")?,
        actor: r.text("actor")?,
        action: r.text("action")?,
        target: r.text("target")?,
        detail: r.text("detail")?,
    })
}

/// The newest events first, at most `limit`, optionally only those on one target.
pub fn list(c: &mut dyn Conn, target: Option<&str>, limit: i64) -> Result<Vec<AuditEvent>> {
    let rows = match target {
        Some(t) => c.query(
            "SELECT id, at, actor, action, target, detail FROM audit_events WHERE target = $1 ORDER BY id DESC LIMIT $2",
            params![t, limit],
        )?,
        None => c.query(
            "SELECT id, at, actor, action, target, detail FROM audit_events ORDER BY id DESC LIMIT $1",
            params![limit],
        )?,
    };
    rows.iter().map(event).collect()
}
