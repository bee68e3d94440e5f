//! PostgreSQL backend, for several scopegate nodes over one database.
//!
//! Uses the synchronous client on tokio's blocking pool, so every query is written once against
//! [`Conn`] for both backends. Writes run in a transaction and are retried on serialization
//! failures and deadlocks, which concurrent nodes can cause.

use std::collections::HashMap;
use std::sync::Mutex;

use postgres::types::{to_sql_checked, IsNull, ToSql, Type};
use postgres::{Client, NoTls, Statement};

use crate::conn::{Conn, Dialect};
use crate::{Row, StoreError, Value};

const MAX_IDLE: usize = 16;

pub(crate) struct PgBackend {
    config: postgres::Config,
    idle: Mutex<Vec<Pooled>>,
}

/// A connection and the statements prepared on it.
struct Pooled {
    client: Client,
    statements: HashMap<String, Statement>,
}

struct PgConn<'a, 'b> {
    tx: &'a mut postgres::Transaction<'b>,
    statements: &'a mut HashMap<String, Statement>,
}

impl PgConn<'_, '_> {
    fn prepare(&mut self, sql: &str) -> Result<Statement, StoreError> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let s = self.tx.prepare(sql).map_err(map_err)?;
        self.statements.insert(sql.to_string(), s.clone());
        Ok(s)
    }
}

impl ToSql for Value {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut postgres::types::private::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(v) => match *ty {
                Type::INT4 => i32::try_from(*v)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(*v)?.to_sql(ty, out),
                Type::BOOL => (*v != 0).to_sql(ty, out),
                _ => v.to_sql(ty, out),
            },
            Value::Text(s) => s.to_sql(ty, out),
        }
    }

    fn accepts(ty: &Type) -> bool {
        matches!(
            *ty,
            Type::INT8 | Type::INT4 | Type::INT2 | Type::BOOL | Type::TEXT | Type::VARCHAR
        )
    }

    to_sql_checked!();
}

pub(crate) fn map_err(e: postgres::Error) -> StoreError {
    if let Some(db) = e.as_db_error() {
        let code = db.code().code();
        if code.starts_with("23") {
            return StoreError::Conflict(db.message().to_string());
        }
        if code == "40001" || code == "40P01" {
            return StoreError::Retry;
        }
    }
    StoreError::Backend(e.to_string())
}

fn to_row(row: &postgres::Row) -> Result<Row, StoreError> {
    let mut values = Vec::with_capacity(row.len());
    for (i, col) in row.columns().iter().enumerate() {
        let v = match *col.type_() {
            Type::INT8 => row.try_get::<_, Option<i64>>(i).map(Value::from),
            Type::INT4 => row
                .try_get::<_, Option<i32>>(i)
                .map(|v| Value::from(v.map(i64::from))),
            Type::INT2 => row
                .try_get::<_, Option<i16>>(i)
                .map(|v| Value::from(v.map(i64::from))),
            Type::BOOL => row.try_get::<_, Option<bool>>(i).map(Value::from),
            Type::VOID => Ok(Value::Null),
            _ => row.try_get::<_, Option<String>>(i).map(Value::from),
        }
        .map_err(map_err)?;
        values.push(v);
    }
    let names = row.columns().iter().map(|c| c.name().to_string()).collect();
    Ok(Row::new(names, values))
}

fn params(values: &[Value]) -> Vec<&(dyn ToSql + Sync)> {
    values.iter().map(|v| v as &(dyn ToSql + Sync)).collect()
}

impl Conn for PgConn<'_, '_> {
    fn execute(&mut self, sql: &str, values: &[Value]) -> Result<u64, StoreError> {
        let stmt = self.prepare(sql)?;
        self.tx.execute(&stmt, &params(values)).map_err(map_err)
    }

    fn query(&mut self, sql: &str, values: &[Value]) -> Result<Vec<Row>, StoreError> {
        let stmt = self.prepare(sql)?;
        let rows = self.tx.query(&stmt, &params(values)).map_err(map_err)?;
        rows.iter().map(to_row).collect()
    }

    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }
}

/// Splits scopegate's own `schema=NAME` parameter off a PostgreSQL URL (tests and shared servers
/// keep each deployment in its own schema).
fn split_schema(url: &str) -> Result<(String, Option<String>), StoreError> {
    let mut parsed =
        url::Url::parse(url).map_err(|e| StoreError::Config(format!("database URL: {e}")))?;
    let mut schema = None;
    let kept: Vec<(String, String)> = parsed
        .query_pairs()
        .filter_map(|(k, v)| {
            if k == "schema" {
                schema = Some(v.into_owned());
                None
            } else {
                Some((k.into_owned(), v.into_owned()))
            }
        })
        .collect();
    if kept.is_empty() {
        parsed.set_query(None);
    } else {
        parsed.query_pairs_mut().clear().extend_pairs(kept);
    }
    if let Some(s) = &schema {
        if s.is_empty()
            || !s
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err(StoreError::Config(
                "schema must be lowercase letters, digits and underscores".into(),
            ));
        }
    }
    Ok((parsed.to_string(), schema))
}

impl PgBackend {
    pub(crate) fn open(url: &str) -> Result<PgBackend, StoreError> {
        let (url, schema) = split_schema(url)?;
        let mut config: postgres::Config = url
            .parse()
            .map_err(|e: postgres::Error| StoreError::Config(format!("database URL: {e}")))?;
        config.connect_timeout(std::time::Duration::from_secs(10));
        if let Some(schema) = &schema {
            let mut admin = config.connect(NoTls).map_err(map_err)?;
            admin
                .batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
                .map_err(map_err)?;
            config.options(&format!("-c search_path={schema}"));
        }
        let backend = PgBackend {
            config,
            idle: Mutex::new(Vec::new()),
        };
        // Fail at start-up, not at the first request, when the server is unreachable.
        let client = backend.checkout()?;
        backend.checkin(client);
        Ok(backend)
    }

    fn checkout(&self) -> Result<Pooled, StoreError> {
        let idle = self
            .idle
            .lock()
            .map_err(|_| StoreError::Backend("pool lock poisoned".into()))?
            .pop();
        match idle {
            Some(c) if !c.client.is_closed() => Ok(c),
            _ => Ok(Pooled {
                client: self.config.connect(NoTls).map_err(map_err)?,
                statements: HashMap::new(),
            }),
        }
    }

    fn checkin(&self, client: Pooled) {
        if client.client.is_closed() {
            return;
        }
        if let Ok(mut idle) = self.idle.lock() {
            if idle.len() < MAX_IDLE {
                idle.push(client);
            }
        }
    }

    /// Runs `f` in a transaction: read-only snapshot for reads, retried on conflicts for writes.
    pub(crate) fn run<T>(
        &self,
        write: bool,
        mut f: impl FnMut(&mut dyn Conn) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut pooled = self.checkout()?;
        let mut attempt = 0;
        let result = loop {
            attempt += 1;
            let outcome = (|| {
                let mut tx = pooled.client.transaction().map_err(map_err)?;
                if !write {
                    tx.batch_execute("SET TRANSACTION READ ONLY")
                        .map_err(map_err)?;
                }
                let value = {
                    let mut conn = PgConn {
                        tx: &mut tx,
                        statements: &mut pooled.statements,
                    };
                    f(&mut conn)?
                };
                tx.commit().map_err(map_err)?;
                Ok(value)
            })();
            match outcome {
                Err(StoreError::Retry) if attempt < 8 => continue,
                other => break other,
            }
        };
        self.checkin(pooled);
        result
    }
}

impl Drop for PgBackend {
    fn drop(&mut self) {
        // The synchronous client blocks on its own runtime when dropped, which tokio forbids on
        // an async worker: close idle connections on a plain thread.
        let idle = self.idle.get_mut().map(std::mem::take).unwrap_or_default();
        if !idle.is_empty() {
            let _ = std::thread::spawn(move || drop(idle)).join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::split_schema;

    #[test]
    fn schema_parameter_is_split_off() {
        let (url, schema) =
            split_schema("postgres://postgres@127.0.0.1:5432/test?schema=t_1&sslmode=disable")
                .unwrap();
        assert_eq!(
            url,
            "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
        );
        assert_eq!(schema.as_deref(), Some("t_1"));
        assert!(split_schema("postgres://h/db?schema=x;drop").is_err());
    }
}
