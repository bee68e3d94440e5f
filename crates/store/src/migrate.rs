//! Versioned schema migrations, one directory per backend, applied at start-up.
//! A migration file is never edited once released: changes go in a new file.

use crate::conn::{Conn, Dialect};
use crate::{params, Result};

/// Every migration, as (version, file name); each file exists once per backend.
macro_rules! migrations {
    ($dir:literal) => {
        &[
            (
                1,
                include_str!(concat!("../migrations/", $dir, "/0001_init.sql")),
            ),
            (
                2,
                include_str!(concat!("../migrations/", $dir, "/0002_public_client.sql")),
            ),
            (
                3,
                include_str!(concat!("../migrations/", $dir, "/0003_signing_keys.sql")),
            ),
            (
                4,
                include_str!(concat!("../migrations/", $dir, "/0004_auth_time.sql")),
            ),
            (
                5,
                include_str!(concat!(
                    "../migrations/",
                    $dir,
                    "/0005_partial_token_indexes.sql"
                )),
            ),
            (
                6,
                include_str!(concat!("../migrations/", $dir, "/0006_enforcement.sql")),
            ),
            (
                7,
                include_str!(concat!("../migrations/", $dir, "/0007_sandbox_owners.sql")),
            ),
            (
                8,
                include_str!(concat!("../migrations/", $dir, "/0008_native_codes.sql")),
            ),
            (
                9,
                include_str!(concat!(
                    "../migrations/",
                    $dir,
                    "/0009_pending_requests.sql"
                )),
            ),
            (
                10,
                include_str!(concat!("../migrations/", $dir, "/0010_identity.sql")),
            ),
        ]
    };
}

const SQLITE: &[(i64, &str)] = migrations!("sqlite");
const POSTGRES: &[(i64, &str)] = migrations!("postgres");

pub(crate) fn apply(conn: &mut dyn Conn) -> Result<Vec<i64>> {
    let list = match conn.dialect() {
        Dialect::Sqlite => SQLITE,
        Dialect::Postgres => {
            // Several nodes may start at once: one migrates, the others wait for it.
            conn.query("SELECT pg_advisory_xact_lock(7242013)", params![])?;
            POSTGRES
        }
    };
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
        params![],
    )?;
    let applied: Vec<i64> = conn
        .query("SELECT version FROM schema_migrations", params![])?
        .iter()
        .map(|r| r.int(0))
        .collect::<Result<_>>()?;
    let mut done = Vec::new();
    for (version, sql) in list {
        if applied.contains(version) {
            continue;
        }
        for statement in sql.split(";\n").map(str::trim).filter(|s| !s.is_empty()) {
            conn.execute(statement, params![])?;
        }
        conn.execute(
            "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)",
            params![*version, unix_now()],
        )?;
        done.push(*version);
    }
    Ok(done)
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
