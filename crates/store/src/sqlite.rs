//! SQLite backend: one writer thread that group-commits, and a small pool of readers (WAL).
//!
//! Every write waits until its transaction is durable (`synchronous=FULL`) before it returns, so a
//! token that was answered survives a crash or power loss. Writes that arrive together share one
//! commit (one fsync), which is what lets SQLite keep up with thousands of grants a second.

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Mutex};

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, OpenFlags};

use crate::conn::{Conn, Dialect};
use crate::{Row, StoreError, Value};

/// A job for the writer thread: runs against the connection and returns whether it succeeded,
/// plus a completion to call once the batch's commit is known.
pub(crate) type Job = Box<dyn FnOnce(&mut dyn Conn) -> (bool, Completion) + Send>;
pub(crate) type Completion = Box<dyn FnOnce(Result<(), StoreError>) + Send>;

const MAX_BATCH: usize = 256;
const READERS: usize = 4;

pub(crate) struct SqliteBackend {
    path: PathBuf,
    writer: Mutex<mpsc::Sender<Job>>,
    readers: Vec<Mutex<Option<Connection>>>,
    next_reader: AtomicUsize,
}

struct SqliteConn<'a>(&'a Connection);

/// Rewrites `$1`-style placeholders as SQLite's `?1`.
fn translate(sql: &str) -> std::borrow::Cow<'_, str> {
    if sql.contains('$') {
        std::borrow::Cow::Owned(sql.replace('$', "?"))
    } else {
        std::borrow::Cow::Borrowed(sql)
    }
}

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Value::Null => ToSqlOutput::Borrowed(ValueRef::Null),
            Value::Int(v) => ToSqlOutput::Borrowed(ValueRef::Integer(*v)),
            Value::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
        })
    }
}

pub(crate) fn map_err(e: rusqlite::Error) -> StoreError {
    match &e {
        rusqlite::Error::SqliteFailure(f, msg)
            if f.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            StoreError::Conflict(msg.clone().unwrap_or_else(|| e.to_string()))
        }
        _ => StoreError::Backend(e.to_string()),
    }
}

impl Conn for SqliteConn<'_> {
    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, StoreError> {
        let mut stmt = self.0.prepare_cached(&translate(sql)).map_err(map_err)?;
        let n = stmt
            .execute(rusqlite::params_from_iter(params.iter()))
            .map_err(map_err)?;
        Ok(n as u64)
    }

    fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>, StoreError> {
        let mut stmt = self.0.prepare_cached(&translate(sql)).map_err(map_err)?;
        let width = stmt.column_count();
        let names: std::sync::Arc<[String]> = stmt
            .column_names()
            .into_iter()
            .map(str::to_string)
            .collect();
        let mut rows = stmt
            .query(rusqlite::params_from_iter(params.iter()))
            .map_err(map_err)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(map_err)? {
            let mut values = Vec::with_capacity(width);
            for i in 0..width {
                values.push(match row.get_ref(i).map_err(map_err)? {
                    ValueRef::Null => Value::Null,
                    ValueRef::Integer(v) => Value::Int(v),
                    ValueRef::Real(v) => Value::Int(v as i64),
                    ValueRef::Text(t) | ValueRef::Blob(t) => {
                        Value::Text(String::from_utf8_lossy(t).into_owned())
                    }
                });
            }
            out.push(Row::new(names.clone(), values));
        }
        Ok(out)
    }

    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }
}

/// Runs a transaction-control statement through the statement cache: these run several times
/// per request, and parsing them each time showed in profiles.
fn control(conn: &Connection, sql: &str) -> Result<(), StoreError> {
    conn.prepare_cached(sql)
        .and_then(|mut s| s.execute([]))
        .map(|_| ())
        .map_err(map_err)
}

fn open(path: &Path, read_only: bool) -> Result<Connection, StoreError> {
    // Readers open read-write with query_only set: a SQLITE_OPEN_READ_ONLY connection cannot
    // rebuild the WAL index itself when it finds it stale, and must not be the reason a read fails.
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(map_err)?;
    // The CLI and the server may use one file at the same time: wait for the lock, never fail.
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(map_err)?;
    conn.set_prepared_statement_cache_capacity(128);
    if read_only {
        conn.execute_batch("PRAGMA query_only=1;")
            .map_err(map_err)?;
    } else {
        // WAL: readers never block the writer. synchronous=FULL: a commit survives power loss,
        // so a consumed code or a rotated refresh token can never come back.
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;",
        )
        .map_err(map_err)?;
        // Setting a journal mode can fail quietly (a file system without shared memory keeps
        // the old one): read both back and refuse to run without the durability promised.
        let journal: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .map_err(map_err)?;
        let synchronous: i64 = conn
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .map_err(map_err)?;
        if !journal.eq_ignore_ascii_case("wal") || synchronous < 2 {
            return Err(StoreError::Backend(format!(
                "{}: SQLite runs with journal_mode={journal}, synchronous={synchronous}; \
                 scopegate needs WAL and FULL (2) so that no answered token is lost",
                path.display()
            )));
        }
    }
    Ok(conn)
}

impl SqliteBackend {
    pub(crate) fn open(path: &Path) -> Result<SqliteBackend, StoreError> {
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir)
                    .map_err(|e| StoreError::Backend(format!("creating {}: {e}", dir.display())))?;
            }
        }
        let conn = open(path, false)?;
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("scopegate-sqlite-writer".into())
            .spawn(move || writer_loop(conn, rx))
            .map_err(|e| StoreError::Backend(format!("starting the writer: {e}")))?;
        Ok(SqliteBackend {
            path: path.to_path_buf(),
            writer: Mutex::new(tx),
            readers: (0..READERS).map(|_| Mutex::new(None)).collect(),
            next_reader: AtomicUsize::new(0),
        })
    }

    pub(crate) fn submit(&self, job: Job) -> Result<(), StoreError> {
        let sender = self
            .writer
            .lock()
            .map_err(|_| StoreError::Backend("writer lock poisoned".into()))?
            .clone();
        sender
            .send(job)
            .map_err(|_| StoreError::Backend("the SQLite writer has stopped".into()))
    }

    /// Runs `f` in a read transaction on one of the reader connections.
    pub(crate) fn read<T>(
        &self,
        f: impl FnOnce(&mut dyn Conn) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let start = self.next_reader.fetch_add(1, Ordering::Relaxed);
        // Prefer an idle reader; otherwise wait for the one round-robin picked.
        let slot = (0..READERS)
            .find_map(|i| self.readers[(start + i) % READERS].try_lock().ok())
            .map(Ok)
            .unwrap_or_else(|| self.readers[start % READERS].lock())
            .map_err(|_| StoreError::Backend("reader lock poisoned".into()));
        let mut slot = slot?;
        if slot.is_none() {
            *slot = Some(open(&self.path, true)?);
        }
        let conn = slot
            .as_ref()
            .ok_or_else(|| StoreError::Backend("no reader".into()))?;
        control(conn, "BEGIN")?;
        let result = f(&mut SqliteConn(conn));
        // A read transaction has nothing to keep; ending it releases the WAL snapshot.
        let _ = control(conn, "COMMIT");
        result
    }
}

fn writer_loop(conn: Connection, rx: mpsc::Receiver<Job>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let mut completions = Vec::with_capacity(batch.len());
        let begun = conn.execute_batch("BEGIN IMMEDIATE").map_err(map_err);
        if let Err(e) = begun {
            // Dropping the jobs unrun closes their channels: each caller gets an error, nothing is half-done.
            drop(batch);
            tracing::error!(error = %e, "sqlite: could not begin a write transaction");
            continue;
        }
        for job in batch {
            let _ = control(&conn, "SAVEPOINT job");
            let outcome =
                std::panic::catch_unwind(AssertUnwindSafe(|| job(&mut SqliteConn(&conn))));
            match outcome {
                Ok((true, done)) => {
                    let _ = control(&conn, "RELEASE job");
                    completions.push(done);
                }
                Ok((false, done)) => {
                    let _ = control(&conn, "ROLLBACK TO job");
                    let _ = control(&conn, "RELEASE job");
                    completions.push(done);
                }
                Err(_) => {
                    // The job's completion was lost with the panic; its caller sees a closed channel.
                    let _ = control(&conn, "ROLLBACK TO job");
                    let _ = control(&conn, "RELEASE job");
                    tracing::error!("sqlite: a write job panicked and was rolled back");
                }
            }
        }
        let committed = conn.execute_batch("COMMIT").map_err(map_err);
        if committed.is_err() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        for done in completions {
            done(committed.clone());
        }
    }
}
