//! The single writer: group commit, its own checkpoints, the storage-failure latch,
//! and the tag index that follows every committed group.

use super::*;

/// Set once the database's storage failed (a write or sync refused, a full disk, a
/// corrupt page). From then on the store acknowledges nothing and answers nothing, and
/// `/readyz` is 503: after a failed fsync the kernel may have dropped the pages it
/// could not write, so even a later commit that succeeds could be lost or land on a
/// malformed file (D80). Nothing in the process clears it: a restart reopens the
/// database and checks it before serving.
#[derive(Clone, Default)]
pub(super) struct Failure(Arc<std::sync::OnceLock<String>>);

impl Failure {
    pub(super) fn set(&self, why: impl std::fmt::Display) {
        if self.0.set(why.to_string()).is_ok() {
            tracing::error!(
                error = %why,
                "the database's storage failed: refusing every request until tagd is restarted"
            );
        }
    }

    pub(super) fn check(&self) -> Result<(), StoreError> {
        match self.0.get() {
            Some(why) => Err(StoreError::Poisoned(why.clone())),
            None => Ok(()),
        }
    }

    /// `e` as a store error, after recording it when it says the storage failed
    /// (`writer`: the writer's I/O errors and full disk count too; a reader's may come
    /// from a temporary file of its own, so only corruption counts there).
    pub(super) fn seen(&self, e: rusqlite::Error, writer: bool) -> StoreError {
        use rusqlite::ErrorCode::{DatabaseCorrupt, DiskFull, NotADatabase, SystemIoFailure};
        match e.sqlite_error_code() {
            Some(DatabaseCorrupt | NotADatabase) => self.set(&e),
            Some(SystemIoFailure | DiskFull) if writer => self.set(&e),
            _ => return db(e),
        }
        self.check().err().unwrap_or_else(|| db(e))
    }
}

/// Runs one statement, prepared once per connection: the writer opens and closes a
/// savepoint per request, and parsing them each time showed in its profile.
pub(super) fn run_cached(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(drop)
}

pub(super) fn writer_loop(
    conn: Connection,
    rx: mpsc::Receiver<Job>,
    index: SharedIndex,
    failure: &Failure,
    metrics: &crate::metrics::StoreMetrics,
) {
    let (updates, pending) = mpsc::channel::<IndexUpdate>();
    let indexer = std::thread::Builder::new()
        .name("tagd-tag-index".into())
        .spawn({
            let index = index.clone();
            move || indexer_loop(pending, index)
        });
    let mut follower = Follower {
        shared: index,
        followed: None,
        // Without an indexer thread (it could not be started) the writer applies
        // updates itself: slower, never wrong.
        updates: indexer.is_ok().then_some(updates),
    };
    let mut careful = 0;
    let mut checkpoints = Checkpoints::new(&conn);
    loop {
        // Built between groups, in a read transaction of its own: the writer is this
        // process's only writer, so the index it builds is current when it is done.
        if follower.shared.wanted.swap(false, Ordering::AcqRel)
            && follower.shared.is_missing()
            && !follower.shared.unindexable.load(Ordering::Acquire)
            && failure.check().is_ok()
        {
            follower.followed = build_now(&conn, &follower.shared, failure);
        }
        let Ok(first) = rx.recv() else { break };
        let mut jobs = vec![first];
        while jobs.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        // Queued before the failure: answered, never run (D80).
        if let Err(e) = failure.check() {
            answer_all(&mut jobs, Err(e));
            continue;
        }
        let (started, size) = (std::time::Instant::now(), jobs.len());
        run_group(&conn, jobs, &mut follower, &mut careful, failure);
        metrics.batch_size.observe(size as u64);
        metrics.commit.observe_duration(started.elapsed());
        checkpoints.after_group(&conn, failure);
    }
    // Let the indexer finish what it was sent, so a store dropped and reopened in this
    // process does not race it.
    follower.updates.take();
    if let Ok(indexer) = indexer {
        let _ = indexer.join();
    }
}

/// WAL frames the writer lets accumulate before it checkpoints, as SQLite's automatic
/// checkpoint does.
pub(super) const CHECKPOINT_FRAMES: i64 = 1_000;

/// The writer's checkpoints: the WAL copied into the database file and that file
/// synced, between groups. SQLite's automatic checkpoint (run inside a COMMIT) drops the
/// checkpoint's result, so a failed write or fsync of the database file went unseen
/// and tagd kept acknowledging commits after it. Run here, a failure fails the store
/// (D80).
pub(super) struct Checkpoints {
    /// The connection's row-change count at the last checkpoint.
    pub(super) changes_at: u64,
    /// Row changes between checkpoints. The WAL's frame count is only known from a
    /// checkpoint, so this is tuned by each one towards [`CHECKPOINT_FRAMES`]: how many
    /// pages a row change writes depends on the load.
    pub(super) every: u64,
}

impl Checkpoints {
    pub(super) fn new(conn: &Connection) -> Self {
        Self {
            changes_at: conn.total_changes(),
            every: CHECKPOINT_FRAMES as u64,
        }
    }

    pub(super) fn after_group(&mut self, conn: &Connection, failure: &Failure) {
        let changes = conn.total_changes();
        if changes.saturating_sub(self.changes_at) < self.every || failure.check().is_err() {
            return;
        }
        self.changes_at = changes;
        // PASSIVE: readers are not waited for; what they still use is copied next time.
        // SQLITE_BUSY (another process checkpointing) is no failure: it is tried again.
        match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(1)) {
            Ok(frames) if frames < CHECKPOINT_FRAMES / 2 => {
                self.every = (self.every * 2).min(64 * CHECKPOINT_FRAMES as u64);
            }
            Ok(frames) if frames > CHECKPOINT_FRAMES * 2 => {
                self.every = (self.every / 2).max(CHECKPOINT_FRAMES as u64 / 4);
            }
            Ok(_) => {}
            Err(e) => {
                let e = failure.seen(e, true);
                tracing::warn!(error = %e, "a checkpoint did not run");
            }
        }
    }
}

/// One committed group's changes to the tag index: from write sequence `from` to `to`.
pub(super) struct IndexUpdate {
    pub(super) from: u64,
    pub(super) to: u64,
    pub(super) deltas: Vec<Delta>,
    /// The group's answered requests, dropped with the update.
    pub(super) spent: Vec<Job>,
}

/// Applies committed groups' changes to the tag index on a thread of its own, so the
/// writer goes on to its next group at once: the writer thread is what bounds write
/// throughput, and the index work was a tenth of it (D63). Readers already wait (briefly)
/// for the index to reach their snapshot, so none sees it behind.
pub(super) fn indexer_loop(updates: mpsc::Receiver<IndexUpdate>, shared: SharedIndex) {
    for update in updates {
        apply_update(&shared, &update);
        // Freed here, outside the lock and off the writer: the deltas' strings, and the
        // requests with their batches.
        let IndexUpdate { deltas, spent, .. } = update;
        drop((deltas, spent));
    }
}

pub(super) fn apply_update(shared: &SharedIndex, update: &IndexUpdate) {
    let Ok(mut ix) = shared.index.write() else {
        return;
    };
    match ix.as_mut() {
        Some(i) if i.seq == update.from => {
            if i.apply(&update.deltas) {
                i.seq = update.to;
            } else {
                shared.discard(&mut ix);
            }
        }
        // Rebuilt since this group was committed: the rebuild already holds it.
        Some(i) if i.seq >= update.to => {}
        // A gap: some group's changes never arrived, so the index cannot follow.
        Some(_) => shared.discard(&mut ix),
        None => {}
    }
}

/// The writer's side of the tag index: which write sequence the index reaches once
/// every update sent so far is applied, and where updates go.
pub(super) struct Follower {
    pub(super) shared: SharedIndex,
    /// `None`: no index is being followed (missing, or dropped as stale).
    pub(super) followed: Option<u64>,
    pub(super) updates: Option<mpsc::Sender<IndexUpdate>>,
}

impl Follower {
    /// Hands a committed group's changes to the indexer.
    pub(super) fn send(&mut self, update: IndexUpdate) {
        self.followed = Some(update.to);
        let update = match &self.updates {
            Some(tx) => match tx.send(update) {
                Ok(()) => return,
                Err(mpsc::SendError(update)) => update,
            },
            None => update,
        };
        apply_update(&self.shared, &update);
    }

    /// Drops the index: it no longer matches the database.
    pub(super) fn drop_index(&mut self) {
        self.followed = None;
        if let Ok(mut ix) = self.shared.index.write() {
            self.shared.discard(&mut ix);
        }
    }
}

/// The index and whether it should be (re)built before the next group.
#[derive(Clone, Default)]
pub(super) struct SharedIndex {
    pub(super) index: Arc<RwLock<Option<TagIndex>>>,
    pub(super) wanted: Arc<AtomicBool>,
    /// The store holds a row id the index cannot (D83): queries answer by SQL for the
    /// rest of this process's life, rather than rebuilding and failing on every query.
    pub(super) unindexable: Arc<AtomicBool>,
}

impl SharedIndex {
    pub(super) fn is_missing(&self) -> bool {
        self.index.read().map(|ix| ix.is_none()).unwrap_or(true)
    }

    /// Drops an index that no longer matches the database; one that existed (this
    /// process serves queries) is rebuilt before the next group.
    pub(super) fn discard(&self, ix: &mut Option<TagIndex>) {
        if ix.take().is_some() {
            self.wanted.store(true, Ordering::Release);
        }
    }
}

/// Builds the index from the database; the write sequence it is at, if built.
pub(super) fn build_now(conn: &Connection, shared: &SharedIndex, failure: &Failure) -> Option<u64> {
    let started = std::time::Instant::now();
    let built = conn.unchecked_transaction().and_then(|tx| {
        let seq = write_seq(&tx)?;
        let index = build_index(&tx, seq)?;
        tx.commit()?;
        Ok(index)
    });
    match built {
        Ok(index) => {
            tracing::info!(elapsed = ?started.elapsed(), "built the tag index");
            let seq = index.seq;
            let mut ix = shared.index.write().ok()?;
            *ix = Some(index);
            Some(seq)
        }
        Err(rusqlite::Error::IntegralValueOutOfRange(_, rid)) => {
            shared.unindexable.store(true, Ordering::Release);
            tracing::error!(
                rid,
                "the store holds a row id beyond the tag index's 32 bits; queries answer by SQL, slower (D83)"
            );
            None
        }
        Err(e) => {
            tracing::error!(error = %e, "could not build the tag index");
            // A malformed page found here fails the store, /readyz included.
            failure.seen(e, true);
            None
        }
    }
}

thread_local! {
    /// Index changes made by the writer's current group, replayed after COMMIT.
    static DELTAS: RefCell<Vec<Delta>> = const { RefCell::new(Vec::new()) };
}

pub(super) fn record(delta: Delta) {
    DELTAS.with(|d| d.borrow_mut().push(delta));
}

pub(super) fn deltas_mark() -> usize {
    DELTAS.with(|d| d.borrow().len())
}

pub(super) fn deltas_truncate(mark: usize) {
    DELTAS.with(|d| d.borrow_mut().truncate(mark));
}

/// The store's write sequence: one more for every committed group of writes.
pub(crate) fn write_seq(conn: &Connection) -> rusqlite::Result<u64> {
    Ok(conn
        .query_row(
            "SELECT CAST(value AS INTEGER) FROM settings WHERE name = 'write_seq'",
            [],
            |r| r.get::<_, i64>(0),
        )
        .optional()?
        .unwrap_or(0) as u64)
}

/// How long a reader waits for the tag index to reach its snapshot (the writer applies a
/// group's changes right after its COMMIT, so a reader may see the commit first) before
/// answering by SQL.
pub(super) const INDEX_WAIT: std::time::Duration = std::time::Duration::from_millis(20);

/// Reads the whole index from the database (inside the caller's transaction).
pub(super) fn build_index(conn: &Connection, seq: u64) -> rusqlite::Result<TagIndex> {
    let mut index = TagIndex::new(seq);
    let mut stmt = conn
        .prepare("SELECT rid, domain_id, project_id, resource_type, resource_id FROM resources")?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let rid = index_rid(r.get(0)?)?;
        let at = ResourceRef {
            domain_id: r.get(1)?,
            project_id: r.get(2)?,
            resource_type: r.get(3)?,
            resource_id: r.get(4)?,
        };
        index.add_resource(rid.get(), &at);
    }
    index.label_all();
    let mut stmt = conn.prepare("SELECT rid, key, value FROM tags")?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let rid = index_rid(r.get(0)?)?;
        let (k, v): (String, String) = (r.get(1)?, r.get(2)?);
        index.add_tag(rid.get(), &k, &v);
    }
    Ok(index)
}

/// The index's id for row id `rid`, or the error that tells [`build_now`] this store
/// holds ids the index cannot (D83).
pub(super) fn index_rid(rid: i64) -> rusqlite::Result<Rid> {
    Rid::new(rid).ok_or(rusqlite::Error::IntegralValueOutOfRange(0, rid))
}

/// Groups that run each request in a savepoint of its own after a request failed.
pub(super) const CAREFUL_GROUPS: u32 = 16;

/// Runs queued requests in one transaction, then commits once and answers them all.
///
/// Requests normally run back to back with nothing between them: a savepoint per
/// request copies every page it changes into a sub-journal, a tenth of the writer's time
/// (D64). When one fails (or asks for its writes to be undone, or panics), the group is
/// rolled back and run again with each request in a savepoint, so the others commit
/// without it; the next [`CAREFUL_GROUPS`] groups (`careful` counts them down) start
/// that way, as failures come in runs. The index follows: the group's changes go to the
/// indexer after COMMIT, or the index is dropped (to be rebuilt) when it cannot follow.
pub(super) fn run_group(
    conn: &Connection,
    mut jobs: Vec<Job>,
    follower: &mut Follower,
    careful: &mut u32,
    failure: &Failure,
) {
    deltas_truncate(0);
    let mut seq_at_start = match begin(conn, follower, failure) {
        Ok(seq) => seq,
        Err(e) => return answer_all(&mut jobs, Err(e)),
    };
    if *careful == 0 {
        if run_unprotected(conn, &mut jobs) {
            return commit_group(conn, jobs, seq_at_start, follower, failure);
        }
        if !conn.is_autocommit() {
            if let Err(e) = conn.execute_batch("ROLLBACK") {
                tracing::error!(error = %e, "could not roll back a failed group");
                follower.drop_index();
                failure.set(format!("a failed group could not be rolled back: {e}"));
                return answer_all(&mut jobs, failure.check());
            }
        }
        deltas_truncate(0);
        *careful = CAREFUL_GROUPS;
        seq_at_start = match begin(conn, follower, failure) {
            Ok(seq) => seq,
            Err(e) => return answer_all(&mut jobs, Err(e)),
        };
    } else {
        *careful -= 1;
    }
    match run_protected(conn, &mut jobs, careful) {
        Ok(()) => commit_group(conn, jobs, seq_at_start, follower, failure),
        Err(e) => {
            // SQLite aborted the whole transaction, which it does on an I/O error or a
            // full disk: nothing of the group was written, every caller must hear so,
            // and the store stops (D80).
            if !conn.is_autocommit() {
                let _ = conn.execute_batch("ROLLBACK");
            }
            deltas_truncate(0);
            failure.set(format!("the write transaction was aborted: {e}"));
            answer_all(&mut jobs, failure.check());
        }
    }
}

/// Opens the group's transaction; the write sequence it starts from. Drops the index
/// when the database moved on without it (another process wrote).
pub(super) fn begin(
    conn: &Connection,
    follower: &mut Follower,
    failure: &Failure,
) -> Result<Option<u64>, StoreError> {
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        tracing::error!(error = %e, "could not begin a write transaction");
        return Err(failure.seen(e, true));
    }
    let seq = write_seq(conn).ok();
    if follower.followed.is_some() && follower.followed != seq {
        follower.drop_index();
    }
    Ok(seq)
}

pub(super) fn answer_all(jobs: &mut [Job], outcome: Result<(), StoreError>) {
    for job in jobs {
        job.answer(outcome.clone());
    }
}

/// Runs every request with no savepoint; `false` as soon as one fails, with the
/// transaction then holding writes that must all be rolled back.
pub(super) fn run_unprotected(conn: &Connection, jobs: &mut [Job]) -> bool {
    for job in jobs.iter_mut() {
        match catch_unwind(AssertUnwindSafe(|| job.run(conn))) {
            Ok(false) if !conn.is_autocommit() => {}
            _ => return false,
        }
    }
    true
}

/// Runs each request in its own savepoint: one that fails is rolled back alone. An
/// error means the whole transaction was lost.
pub(super) fn run_protected(
    conn: &Connection,
    jobs: &mut [Job],
    careful: &mut u32,
) -> Result<(), StoreError> {
    for job in jobs.iter_mut() {
        run_cached(conn, "SAVEPOINT request").map_err(db)?;
        let mark = deltas_mark();
        let undo = match catch_unwind(AssertUnwindSafe(|| job.run(conn))) {
            Ok(undo) => undo,
            Err(_) => {
                tracing::error!("a write panicked; its changes were rolled back");
                true
            }
        };
        if conn.is_autocommit() {
            return Err(StoreError::Database(
                "the write transaction was aborted".into(),
            ));
        }
        if undo {
            *careful = CAREFUL_GROUPS;
            deltas_truncate(mark);
            run_cached(conn, "ROLLBACK TO request").map_err(db)?;
        }
        run_cached(conn, "RELEASE request").map_err(db)?;
    }
    Ok(())
}

/// Commits the group, answers every request and hands the group to the indexer.
pub(super) fn commit_group(
    conn: &Connection,
    mut jobs: Vec<Job>,
    seq_at_start: Option<u64>,
    follower: &mut Follower,
    failure: &Failure,
) {
    // One statement bumps the sequence and reads it back.
    let bumped = conn
        .prepare_cached(
            "INSERT INTO settings (name, value) VALUES ('write_seq', '1')
             ON CONFLICT (name) DO UPDATE SET value = CAST(value AS INTEGER) + 1
             RETURNING CAST(value AS INTEGER)",
        )
        .and_then(|mut bump| bump.query_row([], |r| r.get::<_, i64>(0)))
        .map(|seq| seq as u64);
    // COMMIT writes the WAL and syncs it, then may checkpoint (copy the WAL into the
    // database and sync that): a failure of any of it leaves the file in doubt, even
    // when the commit itself reached the disk, so none of the group is acknowledged and
    // the store stops (D80). Nothing is undone in the index: the store answers nothing
    // more, and a restart rebuilds it.
    let committed = conn.execute_batch("COMMIT").map_err(|e| {
        let _ = conn.execute_batch("ROLLBACK");
        failure.set(format!("a commit failed: {e}"));
        failure.check().err().unwrap_or_else(|| db(e))
    });
    answer_all(&mut jobs, committed.clone());
    if committed.is_ok() {
        match (follower.followed, seq_at_start, &bumped) {
            (Some(followed), Some(from), Ok(to)) if followed == from => {
                let deltas = DELTAS.with(|d| std::mem::take(&mut *d.borrow_mut()));
                // The requests (each batch's strings) are freed by the indexer too: a
                // thousand frees per batch were the writer's next largest cost.
                follower.send(IndexUpdate {
                    from,
                    to: *to,
                    deltas,
                    spent: jobs,
                });
                return;
            }
            _ => follower.drop_index(),
        }
    }
    deltas_truncate(0);
}
