//! The embedded default: one SQLite file in WAL mode with `synchronous=FULL`.
//!
//! Durability costs one fsync per commit, so writes are funnelled to a single writer
//! thread that commits every request waiting in its queue in one transaction (group
//! commit): under load many requests share one fsync. Each request runs inside its own
//! savepoint, so a request that fails leaves no trace while its neighbours commit, and no
//! caller is answered before the transaction holding its writes is on disk.
//! Reads run on a small pool of separate connections, which WAL lets proceed alongside
//! the writer.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};

use async_trait::async_trait;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};

use rustc_hash::FxHashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::RwLock;

use super::rows::{
    access_key_at, domain_at, identity_at, project_at, project_column, resource_at, tag_at,
    token_at, user_at, TemporaryColumns, ACCESS_KEY_COLUMNS, ACCESS_KEY_CONTEXT, ACCESS_KEY_WIDTH,
    TOKEN_COLUMNS, TOKEN_CONTEXT, USER_COLUMNS,
};
use super::sql::{Dialect, Param, SqlBuilder, PROJECT_TOTALS_SQL};
use super::tag_index::{Delta, Rid, TagIndex};

use super::{
    AccessKeyContext, IdentityEpoch, ProjectTotals, ResourceFilter, SchemaVersion, Store,
    StoreError, TokenContext,
};
use crate::core::batch::{ByResource, ResourceChanges, StoredRows, TagTable};
use crate::core::model::{
    now_unix, AccessKey, Domain, KeyStatus, Project, Resource, ResourceRef, TokenRecord, User,
};
use crate::core::predefined::{PredefinedTag, Replaced};
use crate::core::query::{Found, FoundPage, KeyValues, ResourceQuery, TagScope};
use crate::core::tagging::{ItemOutcome, TagBatch};
use crate::core::tags::Tag;

mod lock;
mod open;
mod tag_writes;
mod writer;

pub(crate) use lock::{beside, hold_in_use};
pub use lock::{lock_path, try_lock_in_use, InUse};
use open::*;
use tag_writes::*;
pub(crate) use writer::write_seq;
use writer::*;

/// Schema migrations, applied in order; `PRAGMA user_version` records the last one.
pub const MIGRATIONS: &[&str] = &[
    include_str!("../../../migrations/sqlite/0001_init.sql"),
    include_str!("../../../migrations/sqlite/0002_sys_tags.sql"),
    include_str!("../../../migrations/sqlite/0003_access_keys.sql"),
    include_str!("../../../migrations/sqlite/0004_tag_index.sql"),
    include_str!("../../../migrations/sqlite/0005_predefined_tags.sql"),
    include_str!("../../../migrations/sqlite/0006_access_key_expiry.sql"),
    include_str!("../../../migrations/sqlite/0007_drop_sql_tag_index.sql"),
    include_str!("../../../migrations/sqlite/0008_credential_revocation.sql"),
    include_str!("../../../migrations/sqlite/0009_tags_by_domain.sql"),
];

/// Most requests committed in one transaction; bounds the latency of the first of them.
const MAX_GROUP: usize = 512;

/// One request's writes as the writer runs them. `run` may be called again after the
/// group it ran in was rolled back (the fast path, see [`run_group`]), so it must act
/// only through `conn`; `answer` tells the caller how the group ended.
trait WriteJob: Send {
    /// Runs the writes; `true` when they must be undone (the request failed, asked for
    /// it, or its caller stopped waiting).
    fn run(&mut self, conn: &Connection) -> bool;
    /// Answers the caller (once); the job itself may be dropped later, elsewhere.
    fn answer(&mut self, outcome: Result<(), StoreError>);
}

type Job = Box<dyn WriteJob>;

/// A caller's write: `f` and, once run, what it gave.
struct Request<T, F> {
    f: F,
    result: Option<Result<T, StoreError>>,
    tx: Option<tokio::sync::oneshot::Sender<Result<T, StoreError>>>,
}

impl<T, F> WriteJob for Request<T, F>
where
    T: Send,
    F: FnMut(&Connection) -> Result<(T, bool), StoreError> + Send,
{
    fn run(&mut self, conn: &Connection) -> bool {
        self.result = None;
        // A caller that stopped waiting (its request timed out and was answered 408)
        // must not have its write applied after all.
        if self.tx.as_ref().is_none_or(|tx| tx.is_closed()) {
            return true;
        }
        let (result, undo) = match (self.f)(conn) {
            Ok((value, undo)) => (Ok(value), undo),
            Err(e) => (Err(e), true),
        };
        self.result = Some(result);
        undo
    }

    fn answer(&mut self, outcome: Result<(), StoreError>) {
        let Some(tx) = self.tx.take() else { return };
        match (self.result.take(), outcome) {
            (Some(result), outcome) => drop(tx.send(outcome.and(result))),
            // Never run: the group failed first, or the store had stopped (D80).
            (None, Err(e)) => drop(tx.send(Err(e))),
            // Ran and panicked: dropping `tx` tells the caller the write was aborted.
            (None, Ok(())) => {}
        }
    }
}

/// Wakes the writer (to build the tag index); writes nothing.
struct Wake;

impl WriteJob for Wake {
    fn run(&mut self, _: &Connection) -> bool {
        false
    }
    fn answer(&mut self, _: Result<(), StoreError>) {}
}

fn db(e: rusqlite::Error) -> StoreError {
    StoreError::Database(e.to_string())
}

/// The SQLite store. Cheap to share: clone the `Arc` it is opened into.
pub struct SqliteStore {
    /// `None` once the store is being dropped.
    writer: Mutex<Option<mpsc::Sender<Job>>>,
    writer_thread: Option<std::thread::JoinHandle<()>>,
    readers: Arc<ReaderPool>,
    /// Bounds the reads running at once (each holds a blocking thread and a
    /// connection): a burst of slow queries waits instead of piling up threads.
    read_slots: Arc<tokio::sync::Semaphore>,
    index: SharedIndex,
    failure: Failure,
    identity_epoch: IdentityEpoch,
    /// Group commit sizes and times, recorded by the writer thread.
    metrics: Arc<crate::metrics::StoreMetrics>,
    /// The shared lock on the database's lock file, held for the store's lifetime:
    /// see [`lock_path`].
    _in_use: std::fs::File,
}

/// Most reads running at once.
const MAX_CONCURRENT_READS: usize = 16;

impl Drop for SqliteStore {
    /// Lets the writer commit what is queued before the process goes on to exit.
    fn drop(&mut self) {
        if let Ok(mut writer) = self.writer.lock() {
            writer.take();
        }
        if let Some(thread) = self.writer_thread.take() {
            let _ = thread.join();
        }
    }
}

/// Read-only connections, opened on demand and reused.
struct ReaderPool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    failure: Failure,
}

impl ReaderPool {
    fn take(&self) -> Result<Connection, StoreError> {
        if let Some(conn) = self.idle.lock().ok().and_then(|mut idle| idle.pop()) {
            return Ok(conn);
        }
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(db)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(db)?;
        Ok(conn)
    }

    /// Runs `f` on a pooled connection, returning the connection to the pool after.
    fn run<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T, StoreError> {
        self.failure.check()?;
        let conn = self.take()?;
        let result = f(&conn).map_err(|e| self.failure.seen(e, false));
        self.give(conn);
        result
    }

    fn give(&self, conn: Connection) {
        if let Ok(mut idle) = self.idle.lock() {
            if idle.len() < 16 {
                idle.push(conn);
            }
        }
    }
}

/// What a page of distinct tag strings lists: the keys, or the values of one key.
#[derive(Clone)]
enum Listing {
    Keys,
    Values(String),
}

impl SqliteStore {
    /// Answers a query on one read snapshot: `from_index` on the tag index when the
    /// index matches the snapshot (`None` when it cannot answer this query), then
    /// `finish` on the snapshot with what the index gave (`None`: answer by SQL). The
    /// index is released before `finish`, so the writer is not held up by row reads.
    async fn query<I: Send + 'static, T: Send + 'static>(
        &self,
        from_index: impl FnOnce(&TagIndex) -> Option<I> + Send + 'static,
        finish: impl FnOnce(&Connection, Option<I>) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        let index = self.index.index.clone();
        let (out, refresh) = self
            .read(move |c| {
                // The snapshot is paired with the index only when both are at the same
                // write sequence: an index behind is waited for (briefly), one ahead
                // means taking a newer snapshot. `refresh`: the writer should look at
                // the index (missing, or stayed behind because another process wrote).
                let deadline = std::time::Instant::now() + INDEX_WAIT;
                let (tx, found, refresh) = loop {
                    let tx = c.unchecked_transaction()?;
                    let seq = write_seq(&tx)?;
                    let guard = index.read().map_err(|_| rusqlite::Error::InvalidQuery)?;
                    let behind = match guard.as_ref() {
                        None => break (tx, None, true),
                        // Answered under the guard, which goes before `finish` reads rows.
                        Some(ix) if ix.seq == seq => break (tx, from_index(ix), false),
                        Some(ix) => ix.seq < seq,
                    };
                    drop(guard);
                    if std::time::Instant::now() >= deadline {
                        break (tx, None, true);
                    }
                    drop(tx);
                    if behind {
                        std::thread::sleep(std::time::Duration::from_micros(100));
                    }
                };
                let out = finish(&tx, found)?;
                tx.commit()?;
                Ok((out, refresh))
            })
            .await?;
        if refresh {
            self.want_index();
        }
        Ok(out)
    }

    /// One page of the distinct keys, or of one key's distinct values, in use in a
    /// scope: from the tag index when it matches this snapshot, else by SQL.
    async fn distinct_page(
        &self,
        scope: &TagScope,
        listing: Listing,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        let (scope, after) = (scope.clone(), after.map(str::to_owned));
        let in_index = (scope.clone(), after.clone(), listing.clone());
        self.query(
            move |ix| {
                let (scope, after, listing) = in_index;
                let rids = ix.scope(&scope.domain_id, &scope.projects, &scope.resource_types);
                Some(match &listing {
                    Listing::Keys => ix.keys(&scope.domain_id, &rids, after.as_deref(), limit),
                    Listing::Values(key) => {
                        ix.values(&scope.domain_id, &rids, key, after.as_deref(), limit)
                    }
                })
            },
            move |tx, listed| {
                if let Some(page) = listed {
                    return Ok(page);
                }
                let mut sql = SqlBuilder::new(Dialect::Sqlite);
                let mut filter = sql.scope_where(&scope);
                let column = match &listing {
                    Listing::Keys => "t.key",
                    Listing::Values(key) => {
                        filter = format!("{filter} AND {}", sql.equals("t.key", key));
                        "t.value"
                    }
                };
                if let Some(a) = &after {
                    filter = format!("{filter} AND {}", sql.after(column, a));
                }
                let limit = sql.int(limit as i64);
                tx.prepare(&format!(
                    "SELECT DISTINCT {column} FROM tags t JOIN resources r ON r.rid = t.rid
                     WHERE {filter} ORDER BY {column} LIMIT {limit}"
                ))?
                .query_map(rusqlite::params_from_iter(sql.params()), |r| r.get(0))?
                .collect()
            },
        )
        .await
    }

    /// Opens (creating if needed) the database at `path` and applies pending migrations.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        let path = path.to_path_buf();
        let (conn, in_use) = tokio::task::spawn_blocking({
            let path = path.clone();
            move || {
                // Taken before the database is touched, so a restore in progress is
                // waited for rather than raced.
                let in_use = hold_in_use(&path)?;
                Ok::<_, StoreError>((open_writer(&path)?, in_use))
            }
        })
        .await
        .map_err(|e| StoreError::Database(e.to_string()))??;

        let (tx, rx) = mpsc::channel::<Job>();
        let index = SharedIndex::default();
        let failure = Failure::default();
        let metrics = Arc::new(crate::metrics::StoreMetrics::new("sqlite"));
        let thread = std::thread::Builder::new()
            .name("tagd-sqlite-writer".into())
            .spawn({
                let (index, failure, metrics) = (index.clone(), failure.clone(), metrics.clone());
                move || writer_loop(conn, rx, index, &failure, &metrics)
            })
            .map_err(|e| StoreError::Database(e.to_string()))?;
        Ok(Self {
            index,
            failure: failure.clone(),
            metrics,
            identity_epoch: IdentityEpoch::default(),
            _in_use: in_use,
            writer: Mutex::new(Some(tx)),
            writer_thread: Some(thread),
            read_slots: Arc::new(tokio::sync::Semaphore::new(MAX_CONCURRENT_READS)),
            readers: Arc::new(ReaderPool {
                path,
                idle: Mutex::new(Vec::new()),
                failure,
            }),
        })
    }

    /// Asks the writer to build the tag index, waking it with an empty job. Until the
    /// index is there, queries use SQL.
    fn want_index(&self) {
        if self.index.unindexable.load(Ordering::Acquire)
            || self.index.wanted.swap(true, Ordering::AcqRel)
        {
            return;
        }
        if let Ok(writer) = self.writer.lock() {
            if let Some(tx) = writer.as_ref() {
                let _ = tx.send(Box::new(Wake));
            }
        }
    }

    /// Runs `f` on the writer inside its own savepoint; resolves once the transaction
    /// that holds its writes is durable (or with the error that undid it).
    async fn write<T: Send + 'static>(
        &self,
        mut f: impl FnMut(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.write_or_undo(move |conn| f(conn).map(|value| (value, false)))
            .await
    }

    /// Like [`Self::write`], but `f` may ask for its writes to be undone while still
    /// answering `Ok` (an all-or-nothing batch that reports why it was refused): the
    /// `bool` it returns. The writer rolls its writes back; no nested savepoint is needed.
    /// `f` may run more than once (each time after its writes were rolled back).
    async fn write_or_undo<T: Send + 'static>(
        &self,
        f: impl FnMut(&Connection) -> Result<(T, bool), StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.failure.check()?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(Request {
            f,
            result: None,
            tx: Some(tx),
        });
        self.writer
            .lock()
            .map_err(|_| StoreError::Closed)?
            .as_ref()
            .ok_or(StoreError::Closed)?
            .send(job)
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| {
            StoreError::Database("the write was aborted before it was committed".into())
        })?
    }

    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.failure.check()?;
        let pool = self.readers.clone();
        let permit = self
            .read_slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Closed)?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            pool.run(f)
        })
        .await
        .map_err(|e| StoreError::Database(e.to_string()))?
    }
    /// Runs an indexed point lookup (a token, a user, one resource's tags) on the
    /// calling thread. Such a read costs a few microseconds from the page cache, less
    /// than handing it to the blocking pool and back, which on two cores was most of the
    /// time of a GET. WAL readers never wait for the writer, so this cannot stall the
    /// runtime behind a commit. Anything that scans goes through [`Self::read`].
    fn lookup<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        self.readers.run(f)
    }
}

fn unique_violation(e: rusqlite::Error, what: String) -> StoreError {
    match e {
        // Only uniqueness: a missing parent (foreign key) is not a duplicate.
        rusqlite::Error::SqliteFailure(f, _)
            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY =>
        {
            StoreError::AlreadyExists(what)
        }
        e => db(e),
    }
}

/// Reads one resource's rows of `table`, sorted by key; `None` if it is not registered.
/// One statement, so one read transaction: the resource's row joined to its tags, with
/// a single row of NULLs for a registered resource without any.
fn read_tags(
    conn: &Connection,
    table: &str,
    at: &ResourceRef,
) -> rusqlite::Result<Option<Vec<Tag>>> {
    let mut statement = conn.prepare_cached(&format!(
        "SELECT t.key, t.value FROM resources r LEFT JOIN {table} t ON t.rid = r.rid
         WHERE r.domain_id = ?1 AND r.project_id = ?2 AND r.resource_type = ?3
           AND r.resource_id = ?4
         ORDER BY t.key"
    ))?;
    let mut rows = statement.query(params![
        at.domain_id,
        at.project_id,
        at.resource_type,
        at.resource_id
    ])?;
    let mut found = false;
    let mut tags = Vec::new();
    while let Some(row) = rows.next()? {
        found = true;
        if row.get_ref(0)? != rusqlite::types::ValueRef::Null {
            tags.push(tag_at(row, 0)?);
        }
    }
    Ok(found.then_some(tags))
}

impl rusqlite::ToSql for Param {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        match self {
            Param::Text(s) => s.to_sql(),
            Param::Int(i) => i.to_sql(),
        }
    }
}

/// `(?, ?, ...)` for `n` parameters.
fn placeholders(n: usize) -> String {
    format!("({})", vec!["?"; n].join(", "))
}

/// The tags of many resources at once, by rid.
fn tags_of_rids(
    conn: &Connection,
    table: &str,
    rids: &[i64],
) -> rusqlite::Result<std::collections::HashMap<i64, Vec<Tag>>> {
    let mut out: std::collections::HashMap<i64, Vec<Tag>> = std::collections::HashMap::new();
    for chunk in rids.chunks(500) {
        let sql = format!(
            "SELECT rid, key, value FROM {table} WHERE rid IN {} ORDER BY rid, key",
            placeholders(chunk.len())
        );
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(rusqlite::params_from_iter(chunk.iter()), |r| {
            Ok((r.get::<_, i64>(0)?, tag_at(r, 1)?))
        })?;
        for row in rows {
            let (rid, tag) = row?;
            out.entry(rid).or_default().push(tag);
        }
    }
    Ok(out)
}

/// One page of a query and its exact count, by SQL (inside the caller's transaction).
/// How many resources a query matches, by SQL.
fn count_by_sql(tx: &Connection, q: &ResourceQuery) -> rusqlite::Result<u64> {
    let mut sql = SqlBuilder::new(Dialect::Sqlite);
    let filter = sql.query_where(q);
    let n: i64 = tx.query_row(
        &format!("SELECT count(*) FROM resources r WHERE {filter}"),
        rusqlite::params_from_iter(sql.params()),
        |r| r.get(0),
    )?;
    Ok(n as u64)
}

fn find_by_sql(
    tx: &Connection,
    q: &ResourceQuery,
    offset: u64,
    limit: u64,
) -> rusqlite::Result<FoundPage> {
    let total = count_by_sql(tx, q)?;
    let mut sql = SqlBuilder::new(Dialect::Sqlite);
    let filter = sql.query_where(q);
    let limit = sql.int(limit.min(i64::MAX as u64) as i64);
    let offset = sql.int(offset.min(i64::MAX as u64) as i64);
    let mut stmt = tx.prepare(&format!(
        "SELECT r.rid, r.domain_id, r.project_id, r.resource_type, r.resource_id, r.name
         FROM resources r WHERE {filter}
         ORDER BY r.resource_type, r.resource_id, r.project_id LIMIT {limit} OFFSET {offset}"
    ))?;
    let rows: Vec<(i64, Resource)> = stmt
        .query_map(rusqlite::params_from_iter(sql.params()), |r| {
            Ok((r.get(0)?, resource_at(r, 1)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    drop(stmt);
    let rids: Vec<i64> = rows.iter().map(|(rid, _)| *rid).collect();
    let mut tags = tags_of_rids(tx, "tags", &rids)?;
    let mut sys = tags_of_rids(tx, "sys_tags", &rids)?;
    Ok(FoundPage {
        resources: rows
            .into_iter()
            .map(|(rid, resource)| Found {
                resource,
                tags: tags.remove(&rid).unwrap_or_default(),
                sys_tags: sys.remove(&rid).unwrap_or_default(),
            })
            .collect(),
        total_count: total,
    })
}

/// The resources with these row ids, in this order, with their tags.
fn found_by_rids(tx: &Connection, page: &[u32], total: u64) -> rusqlite::Result<FoundPage> {
    let rids: Vec<i64> = page.iter().map(|r| i64::from(*r)).collect();
    let mut by_rid: HashMap<i64, Resource> = HashMap::new();
    for chunk in rids.chunks(500) {
        let sql = format!(
            "SELECT rid, domain_id, project_id, resource_type, resource_id, name FROM resources WHERE rid IN {}",
            placeholders(chunk.len())
        );
        let mut stmt = tx.prepare_cached(&sql)?;
        let rows = stmt.query_map(rusqlite::params_from_iter(chunk.iter()), |r| {
            Ok((r.get::<_, i64>(0)?, resource_at(r, 1)?))
        })?;
        for row in rows {
            let (rid, resource) = row?;
            by_rid.insert(rid, resource);
        }
    }
    let mut tags = tags_of_rids(tx, "tags", &rids)?;
    let mut sys = tags_of_rids(tx, "sys_tags", &rids)?;
    Ok(FoundPage {
        resources: rids
            .iter()
            .filter_map(|rid| {
                by_rid.remove(rid).map(|resource| Found {
                    resource,
                    tags: tags.remove(rid).unwrap_or_default(),
                    sys_tags: sys.remove(rid).unwrap_or_default(),
                })
            })
            .collect(),
        total_count: total,
    })
}

#[async_trait]
impl Store for SqliteStore {
    fn prepare_for_queries(&self) {
        self.want_index();
    }

    async fn find_resources(
        &self,
        query: &ResourceQuery,
        offset: u64,
        limit: u64,
    ) -> Result<FoundPage, StoreError> {
        let q = query.clone();
        let covered = TagIndex::covers(&q).then(|| q.clone());
        // One snapshot for the page and the count: a write between them cannot make
        // them disagree.
        self.query(
            move |ix| {
                covered.map(|q| {
                    let rids = ix.evaluate(&q);
                    (ix.page(&rids, offset, limit), rids.len())
                })
            },
            move |tx, chosen| match chosen {
                Some((page, total)) => found_by_rids(tx, &page, total),
                None => find_by_sql(tx, &q, offset, limit),
            },
        )
        .await
    }

    async fn project_totals(&self) -> Result<Vec<ProjectTotals>, StoreError> {
        self.query(
            |ix| Some(ix.project_totals()),
            |tx, counted| match counted {
                Some(totals) => Ok(totals),
                None => tx
                    .prepare(PROJECT_TOTALS_SQL)?
                    .query_map([], |r| {
                        Ok(ProjectTotals {
                            domain_id: r.get(0)?,
                            project_id: r.get(1)?,
                            resources: r.get::<_, i64>(2)?.try_into().unwrap_or(0),
                            tags: r.get::<_, i64>(3)?.try_into().unwrap_or(0),
                        })
                    })?
                    .collect(),
            },
        )
        .await
    }

    fn metrics(&self) -> Arc<crate::metrics::StoreMetrics> {
        self.metrics.clone()
    }

    async fn count_resources(&self, query: &ResourceQuery) -> Result<u64, StoreError> {
        let q = query.clone();
        let covered = TagIndex::covers(&q).then(|| q.clone());
        self.query(
            move |ix| covered.map(|q| ix.evaluate(&q).len()),
            move |tx, counted| match counted {
                Some(n) => Ok(n),
                None => count_by_sql(tx, &q),
            },
        )
        .await
    }

    async fn tag_keys(
        &self,
        scope: &TagScope,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        self.distinct_page(scope, Listing::Keys, after, limit).await
    }

    async fn tag_values(
        &self,
        scope: &TagScope,
        key: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        self.distinct_page(scope, Listing::Values(key.to_owned()), after, limit)
            .await
    }

    async fn key_values(&self, scope: &TagScope) -> Result<Vec<KeyValues>, StoreError> {
        let scope = scope.clone();
        let in_scope = scope.clone();
        self.query(
            move |ix| {
                let rids = ix.scope(
                    &in_scope.domain_id,
                    &in_scope.projects,
                    &in_scope.resource_types,
                );
                Some(ix.key_values(&in_scope.domain_id, &rids))
            },
            move |tx, listed| {
                if let Some(listed) = listed {
                    return Ok(listed
                        .into_iter()
                        .map(|(key, values)| KeyValues { key, values })
                        .collect());
                }
                let mut sql = SqlBuilder::new(Dialect::Sqlite);
                let filter = sql.scope_where(&scope);
                let rows: Vec<(String, String)> = tx
                    .prepare(&format!(
                        "SELECT DISTINCT t.key, t.value FROM tags t JOIN resources r ON r.rid = t.rid
                         WHERE {filter} ORDER BY t.key, t.value"
                    ))?
                    .query_map(rusqlite::params_from_iter(sql.params()), |r| {
                        Ok((r.get(0)?, r.get(1)?))
                    })?
                    .collect::<rusqlite::Result<_>>()?;
                let mut out: Vec<KeyValues> = Vec::new();
                for (key, value) in rows {
                    match out.last_mut() {
                        Some(kv) if kv.key == key => kv.values.push(value),
                        _ => out.push(KeyValues {
                            key,
                            values: vec![value],
                        }),
                    }
                }
                Ok(out)
            },
        )
        .await
    }

    async fn insert_domain(&self, domain: &Domain) -> Result<(), StoreError> {
        let d = domain.clone();
        self.write(move |c| {
            c.execute(
                "INSERT INTO domains (id, name, enabled, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![d.id, d.name, d.enabled, now_unix()],
            )
            .map_err(|e| unique_violation(e, format!("domain {:?}", d.name)))?;
            Ok(())
        })
        .await
    }

    async fn domain(&self, id: &str) -> Result<Option<Domain>, StoreError> {
        let id = id.to_owned();
        self.lookup(|c| {
            c.prepare_cached("SELECT id, name, enabled FROM domains WHERE id = ?1")?
                .query_row([id], |r| domain_at(r, 0))
                .optional()
        })
    }

    async fn domain_by_name(&self, name: &str) -> Result<Option<Domain>, StoreError> {
        let name = name.to_owned();
        self.lookup(|c| {
            c.prepare_cached("SELECT id, name, enabled FROM domains WHERE name = ?1")?
                .query_row([name], |r| domain_at(r, 0))
                .optional()
        })
    }

    async fn list_domains(&self) -> Result<Vec<Domain>, StoreError> {
        self.read(|c| {
            c.prepare("SELECT id, name, enabled FROM domains ORDER BY name")?
                .query_map([], |r| domain_at(r, 0))?
                .collect()
        })
        .await
    }

    async fn delete_domain(&self, id: &str) -> Result<bool, StoreError> {
        let id = id.to_owned();
        // Counted after the write, so cached credential lookups do not outlive it.
        let write = self.write(move |c| {
            // Removed resources leave the index behind: it is rebuilt on demand, but
            // only when a resource really goes.
            let had_resources: bool = c
                .query_row(
                    "SELECT EXISTS (SELECT 1 FROM resources WHERE domain_id = ?1)",
                    [&id],
                    |r| r.get(0),
                )
                .map_err(db)?;
            if had_resources {
                record(Delta::Invalidate);
            }
            c.execute("DELETE FROM tokens WHERE domain_id = ?1", [&id])
                .map_err(db)?;
            Ok(c.execute("DELETE FROM domains WHERE id = ?1", [&id])
                .map_err(db)?
                > 0)
        });
        self.identity_epoch.after(write).await
    }

    async fn insert_first_identity(
        &self,
        domain: &Domain,
        project: &Project,
        user: &User,
    ) -> Result<bool, StoreError> {
        let (d, p, u) = (domain.clone(), project.clone(), user.clone());
        self.write(move |c| {
            let any: bool = c
                .query_row("SELECT EXISTS (SELECT 1 FROM domains)", [], |r| r.get(0))
                .map_err(db)?;
            if any {
                return Ok(false);
            }
            let now = now_unix();
            c.execute(
                "INSERT INTO domains (id, name, enabled, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![d.id, d.name, d.enabled, now],
            )
            .map_err(db)?;
            c.execute(
                "INSERT INTO projects (id, domain_id, name, enabled, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![p.id, p.domain_id, p.name, p.enabled, now],
            )
            .map_err(db)?;
            c.execute(
                "INSERT INTO users (id, domain_id, name, password_hash, is_admin, enabled, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![u.id, u.domain_id, u.name, u.password_hash, u.is_admin, u.enabled, now],
            )
            .map_err(db)?;
            Ok(true)
        })
        .await
    }

    async fn insert_project(&self, project: &Project) -> Result<(), StoreError> {
        let p = project.clone();
        self.write(move |c| {
            c.execute(
                "INSERT INTO projects (id, domain_id, name, enabled, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![p.id, p.domain_id, p.name, p.enabled, now_unix()],
            )
            .map_err(|e| unique_violation(e, format!("project {:?}", p.name)))?;
            Ok(())
        })
        .await
    }

    async fn project(&self, id: &str) -> Result<Option<Project>, StoreError> {
        let id = id.to_owned();
        self.lookup(|c| {
            c.prepare_cached("SELECT id, domain_id, name, enabled FROM projects WHERE id = ?1")?
                .query_row([id], |r| project_at(r, 0))
                .optional()
        })
    }

    async fn list_projects(&self, domain_id: Option<&str>) -> Result<Vec<Project>, StoreError> {
        // Projects are few (a domain's regions): a lookup, not a scan worth a thread hop.
        self.lookup(|c| {
            c.prepare_cached(
                "SELECT id, domain_id, name, enabled FROM projects
                 WHERE ?1 IS NULL OR domain_id = ?1 ORDER BY domain_id, name",
            )?
            .query_map([domain_id], |r| project_at(r, 0))?
            .collect()
        })
    }

    async fn delete_project(&self, id: &str) -> Result<bool, StoreError> {
        let id = id.to_owned();
        // Counted after the write, so cached credential lookups do not outlive it.
        let write = self.write(move |c| {
            // Removed resources leave the index behind: it is rebuilt on demand.
            if c.execute("DELETE FROM resources WHERE project_id = ?1", [&id])
                .map_err(db)?
                > 0
            {
                record(Delta::Invalidate);
            }
            c.execute("DELETE FROM tokens WHERE project_id = ?1", [&id])
                .map_err(db)?;
            c.execute("DELETE FROM access_keys WHERE project_id = ?1", [&id])
                .map_err(db)?;
            Ok(c.execute("DELETE FROM projects WHERE id = ?1", [&id])
                .map_err(db)?
                > 0)
        });
        self.identity_epoch.after(write).await
    }

    async fn insert_user(&self, user: &User) -> Result<(), StoreError> {
        let u = user.clone();
        self.write(move |c| {
            c.execute(
                "INSERT INTO users (id, domain_id, name, password_hash, is_admin, enabled, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![u.id, u.domain_id, u.name, u.password_hash, u.is_admin, u.enabled, now_unix()],
            )
            .map_err(|e| unique_violation(e, format!("user {:?}", u.name)))?;
            Ok(())
        })
        .await
    }

    async fn user(&self, id: &str) -> Result<Option<User>, StoreError> {
        let id = id.to_owned();
        self.lookup(|c| {
            c.prepare_cached(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1"))?
                .query_row([id], |r| user_at(r, 0))
                .optional()
        })
    }

    async fn user_by_name(&self, domain_id: &str, name: &str) -> Result<Option<User>, StoreError> {
        let (domain_id, name) = (domain_id.to_owned(), name.to_owned());
        self.lookup(|c| {
            c.prepare_cached(&format!(
                "SELECT {USER_COLUMNS} FROM users WHERE domain_id = ?1 AND name = ?2"
            ))?
            .query_row([domain_id, name], |r| user_at(r, 0))
            .optional()
        })
    }

    async fn list_users(&self, domain_id: &str) -> Result<Vec<User>, StoreError> {
        let domain_id = domain_id.to_owned();
        self.read(move |c| {
            c.prepare(&format!(
                "SELECT {USER_COLUMNS} FROM users WHERE domain_id = ?1 ORDER BY name"
            ))?
            .query_map([domain_id], |r| user_at(r, 0))?
            .collect()
        })
        .await
    }

    async fn set_password_hash(&self, user_id: &str, hash: &str) -> Result<bool, StoreError> {
        let (user_id, hash) = (user_id.to_owned(), hash.to_owned());
        // Counted after the write, so cached credential lookups do not outlive it.
        let write = self.write(move |c| {
            let changed = c
                .execute(
                    "UPDATE users SET password_hash = ?2 WHERE id = ?1",
                    [&user_id, &hash],
                )
                .map_err(db)?;
            c.execute(
                "UPDATE tokens SET revoked = 1 WHERE user_id = ?1 AND revoked = 0",
                [&user_id],
            )
            .map_err(db)?;
            Ok(changed > 0)
        });
        self.identity_epoch.after(write).await
    }

    async fn delete_user(&self, id: &str) -> Result<bool, StoreError> {
        let id = id.to_owned();
        // Counted after the write, so cached credential lookups do not outlive it.
        let write = self.write(move |c| {
            Ok(c.execute("DELETE FROM users WHERE id = ?1", [&id])
                .map_err(db)?
                > 0)
        });
        self.identity_epoch.after(write).await
    }

    async fn insert_token(&self, token: &TokenRecord) -> Result<(), StoreError> {
        let t = token.clone();
        self.write(move |c| {
            let project_id = project_column(&t.scope);
            c.execute(
                "INSERT INTO tokens (token_hash, user_id, domain_id, project_id, methods, issued_at, expires_at, revoked)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    t.token_hash,
                    t.user_id,
                    t.domain_id,
                    project_id,
                    serde_json::to_string(&t.methods).map_err(|e| StoreError::Database(e.to_string()))?,
                    t.issued_at,
                    t.expires_at,
                    t.revoked
                ],
            )
            .map_err(db)?;
            // Expired tokens are useless; sweeping a few per issue keeps the table bounded.
            c.execute(
                "DELETE FROM tokens WHERE token_hash IN
                 (SELECT token_hash FROM tokens WHERE expires_at < ?1 LIMIT 16)",
                [now_unix()],
            )
            .map_err(db)?;
            Ok(())
        })
        .await
    }

    async fn token(&self, token_hash: &str) -> Result<Option<TokenRecord>, StoreError> {
        let token_hash = token_hash.to_owned();
        self.lookup(|c| {
            c.prepare_cached(&format!(
                "SELECT {TOKEN_COLUMNS} FROM tokens t WHERE t.token_hash = ?1"
            ))?
            .query_row([token_hash], |r| token_at(r, 0))
            .optional()
        })
    }

    fn identity_epoch(&self) -> u64 {
        self.identity_epoch.get()
    }

    async fn token_context(&self, token_hash: &str) -> Result<Option<TokenContext>, StoreError> {
        let token_hash = token_hash.to_owned();
        self.lookup(|c| {
            c.prepare_cached(&TOKEN_CONTEXT)?
                .query_row([token_hash], |r| {
                    let (user, domain, project) = identity_at(r, 8)?;
                    Ok(TokenContext {
                        token: token_at(r, 0)?,
                        user,
                        domain,
                        project,
                    })
                })
                .optional()
        })
    }

    async fn revoke_token(&self, token_hash: &str) -> Result<bool, StoreError> {
        let token_hash = token_hash.to_owned();
        // Counted after the write, so cached credential lookups do not outlive it.
        let write = self.write(move |c| {
            Ok(c.execute(
                "UPDATE tokens SET revoked = 1 WHERE token_hash = ?1 AND revoked = 0",
                [&token_hash],
            )
            .map_err(db)?
                > 0)
        });
        self.identity_epoch.after(write).await
    }

    async fn add_predefined_tags(
        &self,
        domain_id: &str,
        tags: &[(String, String)],
        max: usize,
    ) -> Result<bool, StoreError> {
        let (domain_id, tags) = (domain_id.to_owned(), tags.to_vec());
        self.write(move |c| {
            let now = now_unix();
            let mut upsert = c
                .prepare_cached(
                    "INSERT INTO predefined_tags (domain_id, key, value, updated_at) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (domain_id, key, value) DO UPDATE SET updated_at = excluded.updated_at",
                )
                .map_err(db)?;
            for (k, v) in &tags {
                upsert.execute(params![domain_id, k, v, now]).map_err(db)?;
            }
            let held: i64 = c
                .query_row("SELECT count(*) FROM predefined_tags WHERE domain_id = ?1", [&domain_id], |r| r.get(0))
                .map_err(db)?;
            // Past the quota: the savepoint of this request undoes the inserts.
            if held as usize > max {
                return Err(StoreError::QuotaExceeded);
            }
            Ok(true)
        })
        .await
        .or_else(|e| match e {
            StoreError::QuotaExceeded => Ok(false),
            e => Err(e),
        })
    }

    async fn remove_predefined_tags(
        &self,
        domain_id: &str,
        tags: &[(String, String)],
    ) -> Result<(), StoreError> {
        let (domain_id, tags) = (domain_id.to_owned(), tags.to_vec());
        self.write(move |c| {
            let mut delete = c
                .prepare_cached(
                    "DELETE FROM predefined_tags WHERE domain_id = ?1 AND key = ?2 AND value = ?3",
                )
                .map_err(db)?;
            for (k, v) in &tags {
                delete.execute(params![domain_id, k, v]).map_err(db)?;
            }
            Ok(())
        })
        .await
    }

    async fn predefined_tags(&self, domain_id: &str) -> Result<Vec<PredefinedTag>, StoreError> {
        let domain_id = domain_id.to_owned();
        self.read(move |c| {
            c.prepare("SELECT key, value, updated_at FROM predefined_tags WHERE domain_id = ?1")?
                .query_map([domain_id], |r| {
                    Ok(PredefinedTag {
                        key: r.get(0)?,
                        value: r.get(1)?,
                        updated_at: r.get(2)?,
                    })
                })?
                .collect()
        })
        .await
    }

    async fn replace_predefined_tag(
        &self,
        domain_id: &str,
        old: &(String, String),
        new: &(String, String),
    ) -> Result<Replaced, StoreError> {
        let (domain_id, old, new) = (domain_id.to_owned(), old.clone(), new.clone());
        self.write(move |c| {
            let exists = |k: &str, v: &str| -> Result<bool, StoreError> {
                c.query_row(
                    "SELECT EXISTS (SELECT 1 FROM predefined_tags WHERE domain_id = ?1 AND key = ?2 AND value = ?3)",
                    params![domain_id, k, v],
                    |r| r.get(0),
                )
                .map_err(db)
            };
            if !exists(&old.0, &old.1)? {
                return Ok(Replaced::OldMissing);
            }
            if exists(&new.0, &new.1)? {
                return Ok(Replaced::NewExists);
            }
            c.execute(
                "UPDATE predefined_tags SET key = ?4, value = ?5, updated_at = ?6
                 WHERE domain_id = ?1 AND key = ?2 AND value = ?3",
                params![domain_id, old.0, old.1, new.0, new.1, now_unix()],
            )
            .map_err(db)?;
            Ok(Replaced::Done)
        })
        .await
    }

    async fn readiness(&self) -> Result<SchemaVersion, StoreError> {
        // Through the writer, not a reader: a store whose writer thread is gone, or
        // busy for long (building the tag index), cannot take writes, so it is not ready.
        let found = self
            .write(|c| {
                c.pragma_query_value(None, "user_version", |r| r.get(0))
                    .map_err(db)
            })
            .await?;
        Ok(SchemaVersion {
            found,
            expected: MIGRATIONS.len() as i64,
        })
    }

    async fn setting(&self, name: &str) -> Result<Option<String>, StoreError> {
        let name = name.to_owned();
        self.lookup(|c| {
            c.prepare_cached("SELECT value FROM settings WHERE name = ?1")?
                .query_row([name], |r| r.get(0))
                .optional()
        })
    }

    async fn claim_setting(&self, name: &str, value: &str) -> Result<String, StoreError> {
        let (name, value) = (name.to_owned(), value.to_owned());
        self.write(move |c| {
            c.execute(
                "INSERT INTO settings (name, value) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING",
                [&name, &value],
            )
            .map_err(db)?;
            c.query_row("SELECT value FROM settings WHERE name = ?1", [&name], |r| {
                r.get(0)
            })
            .map_err(db)
        })
        .await
    }

    async fn insert_access_key(
        &self,
        key: &AccessKey,
        max_permanent: usize,
    ) -> Result<bool, StoreError> {
        let k = key.clone();
        self.write(move |c| {
            if k.temporary.is_none() {
                let held: i64 = c
                    .query_row(
                        "SELECT count(*) FROM access_keys WHERE user_id = ?1 AND security_token_hash IS NULL",
                        [&k.user_id],
                        |r| r.get(0),
                    )
                    .map_err(db)?;
                if held as usize >= max_permanent {
                    return Ok(false);
                }
            }
            // Temporary keys are never looked at after they expire; sweep a few.
            c.execute(
                "DELETE FROM access_keys WHERE access IN
                 (SELECT access FROM access_keys WHERE expires_at < ?1 LIMIT 16)",
                [now_unix()],
            )
            .map_err(db)?;
            let temporary = TemporaryColumns::of(&k);
            c.execute(
                "INSERT INTO access_keys (access, user_id, secret, status, description, created_at,
                                          security_token_hash, expires_at, project_id, source_token_hash,
                                          source_access)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                params![
                    k.access,
                    k.user_id,
                    k.sealed_secret,
                    k.status.as_str(),
                    k.description,
                    k.created_at,
                    temporary.security_token_hash,
                    temporary.expires_at,
                    temporary.project_id,
                    temporary.source_token_hash,
                    temporary.source_access
                ],
            )
            .map_err(|e| unique_violation(e, format!("access key {}", k.access)))?;
            Ok(true)
        })
        .await
    }

    async fn access_key_context(
        &self,
        access: &str,
    ) -> Result<Option<AccessKeyContext>, StoreError> {
        let access = access.to_owned();
        self.read(move |c| {
            c.prepare_cached(&ACCESS_KEY_CONTEXT)?
                .query_row([access], |r| {
                    let (user, domain, project) = identity_at(r, ACCESS_KEY_WIDTH)?;
                    Ok(AccessKeyContext {
                        key: access_key_at(r, 0)?,
                        user,
                        domain,
                        project,
                    })
                })
                .optional()
        })
        .await
    }

    async fn list_access_keys(&self, user_id: &str) -> Result<Vec<AccessKey>, StoreError> {
        let user_id = user_id.to_owned();
        self.read(move |c| {
            c.prepare(&format!(
                "SELECT {ACCESS_KEY_COLUMNS} FROM access_keys k
                 WHERE k.user_id = ?1 AND k.security_token_hash IS NULL
                 ORDER BY k.created_at, k.access"
            ))?
            .query_map([user_id], |r| access_key_at(r, 0))?
            .collect()
        })
        .await
    }

    async fn update_access_key(
        &self,
        access: &str,
        status: Option<KeyStatus>,
        description: Option<&str>,
    ) -> Result<bool, StoreError> {
        let access = access.to_owned();
        let description = description.map(str::to_owned);
        // Counted after the write, so cached credential lookups do not outlive it.
        let write = self.write(move |c| {
            Ok(c.execute(
                "UPDATE access_keys SET status = coalesce(?2, status), description = coalesce(?3, description)
                 WHERE access = ?1",
                params![access, status.map(KeyStatus::as_str), description],
            )
            .map_err(db)?
                > 0)
        });
        self.identity_epoch.after(write).await
    }

    async fn delete_access_key(&self, access: &str) -> Result<bool, StoreError> {
        let access = access.to_owned();
        // Counted after the write, so cached credential lookups do not outlive it.
        let write = self.write(move |c| {
            Ok(
                c.execute("DELETE FROM access_keys WHERE access = ?1", [&access])
                    .map_err(db)?
                    > 0,
            )
        });
        self.identity_epoch.after(write).await
    }

    async fn register_resources(&self, resources: &[Resource]) -> Result<usize, StoreError> {
        let resources = resources.to_vec();
        self.write(move |c| {
            let now = now_unix();
            let mut created = 0;
            for r in &resources {
                match find_rid(c, &r.at).map_err(db)? {
                    Some(rid) => {
                        c.prepare_cached("UPDATE resources SET name = ?2 WHERE rid = ?1")
                            .and_then(|mut s| s.execute(params![rid, r.name]))
                            .map_err(db)?;
                    }
                    None => {
                        let rid: i64 = c
                            .prepare_cached(
                                "INSERT INTO resources (domain_id, project_id, resource_type, resource_id, name, created_at)
                                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING rid",
                            )
                            .and_then(|mut s| {
                                s.query_row(
                                    params![
                                        r.at.domain_id,
                                        r.at.project_id,
                                        r.at.resource_type,
                                        r.at.resource_id,
                                        r.name,
                                        now
                                    ],
                                    |row| row.get(0),
                                )
                            })
                            .map_err(db)?;
                        record_registered(rid, &r.at);
                        created += 1;
                    }
                }
            }
            Ok(created)
        })
        .await
    }

    async fn list_resources(&self, filter: &ResourceFilter) -> Result<Vec<Resource>, StoreError> {
        let f = filter.clone();
        self.read(move |c| {
            c.prepare(
                "SELECT domain_id, project_id, resource_type, resource_id, name FROM resources
                 WHERE (?1 IS NULL OR domain_id = ?1) AND (?2 IS NULL OR project_id = ?2)
                   AND (?3 IS NULL OR resource_type = ?3)
                 ORDER BY domain_id, project_id, resource_type, resource_id
                 LIMIT ?4 OFFSET ?5",
            )?
            .query_map(
                params![
                    f.domain_id,
                    f.project_id,
                    f.resource_type,
                    // Clamped, never wrapped: an offset past i64 is past the end.
                    f.limit.map_or(-1, |l| l.min(i64::MAX as usize) as i64),
                    f.offset.min(i64::MAX as usize) as i64
                ],
                |r| resource_at(r, 0),
            )?
            .collect()
        })
        .await
    }

    async fn remove_resources(&self, at: &[ResourceRef]) -> Result<usize, StoreError> {
        let at = at.to_vec();
        self.write(move |c| {
            let mut removed = 0;
            for r in &at {
                // The index follows: the resource's tags, then the resource itself.
                let Some(rid) = find_rid(c, r).map_err(db)? else {
                    continue;
                };
                let tags: Vec<(String, String)> = c
                    .prepare_cached("SELECT key, value FROM tags WHERE rid = ?1")
                    .and_then(|mut s| {
                        s.query_map([rid], |row| Ok((row.get(0)?, row.get(1)?)))?
                            .collect()
                    })
                    .map_err(db)?;
                removed += c
                    .prepare_cached("DELETE FROM resources WHERE rid = ?1")
                    .and_then(|mut s| s.execute([rid]))
                    .map_err(db)?;
                for (key, value) in tags {
                    record_for(rid, |rid| Delta::TagRemoved { rid, key, value });
                }
                record_for(rid, |rid| Delta::Removed { rid, at: r.clone() });
            }
            Ok(removed)
        })
        .await
    }

    async fn apply_tags(&self, batch: TagBatch) -> Result<Vec<ItemOutcome>, StoreError> {
        self.write_or_undo(move |c| {
            let outcomes = apply_batch(c, &batch).map_err(db)?;
            // An all-or-nothing batch that is refused reports its outcomes and leaves
            // nothing behind: the writer rolls back its savepoint.
            let undo = batch.mode.rejection(&outcomes).is_some();
            Ok((outcomes, undo))
        })
        .await
    }

    async fn resource_tags(&self, at: &ResourceRef) -> Result<Option<Vec<Tag>>, StoreError> {
        let at = at.clone();
        self.lookup(|c| read_tags(c, "tags", &at))
    }

    async fn resource_sys_tags(&self, at: &ResourceRef) -> Result<Option<Vec<Tag>>, StoreError> {
        let at = at.clone();
        self.lookup(|c| read_tags(c, "sys_tags", &at))
    }
}

#[cfg(test)]
mod failure_tests;
#[cfg(test)]
mod index_tests;
