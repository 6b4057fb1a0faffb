//! `tagd admin backup` and `tagd admin restore`: a consistent copy of the embedded SQLite
//! store taken while tagd serves, and putting such a copy back (issue 8).
//!
//! Copying `tagd.db` with `cp` while tagd runs is not a backup: the latest commits live
//! in `tagd.db-wal` until a checkpoint, and a copy taken mid-checkpoint mixes two states.
//! The backup is `VACUUM INTO` run on a read-only connection: it reads one WAL snapshot
//! (a read transaction, so it holds exactly the commits made before it started) while
//! the server's writer goes on committing, and writes a complete, compact database file
//! that needs no `-wal`. It is chosen over the online backup API (rusqlite's `backup`
//! feature) because it needs no extra feature, writes only live pages, and never
//! restarts: the backup API copies pages in steps and starts over whenever another
//! process writes between two steps, which under steady writes may not finish.
//!
//! Both commands replace files only by renaming a complete, fsynced temporary file in
//! the same directory over the final name, so a crash leaves the old file or the new
//! one, never half of one. Restore takes the store's lock file exclusively (see
//! [`sqlite::lock_path`]): every tagd process holds it shared while it has the store
//! open, so a restore is refused while any of them runs.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use rusqlite::{Connection, OpenFlags, OptionalExtension};

use super::sqlite::{self, InUse};

/// Tables every tagd SQLite database has had since its first migration: a file without
/// them is not a tagd database, whatever its `user_version` says.
const TAGD_TABLES: &[&str] = &[
    "domains",
    "projects",
    "users",
    "tokens",
    "resources",
    "tags",
    "settings",
];

/// What a database file holds, for the commands' reports.
#[derive(Debug, Clone)]
pub struct Contents {
    pub bytes: u64,
    pub schema_version: i64,
    pub domains: u64,
    pub projects: u64,
    pub resources: u64,
    pub tags: u64,
    /// The fingerprint of the server key its access keys are sealed with, if recorded.
    pub server_key_fingerprint: Option<String>,
}

impl fmt::Display for Contents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:.1} MiB, schema version {}, {} domains, {} projects, {} resources, {} tags",
            self.bytes as f64 / (1024.0 * 1024.0),
            self.schema_version,
            self.domains,
            self.projects,
            self.resources,
            self.tags
        )
    }
}

/// What a backup wrote.
#[derive(Debug)]
pub struct BackupSummary {
    pub from: PathBuf,
    pub to: PathBuf,
    pub contents: Contents,
    pub took: Duration,
}

impl fmt::Display for BackupSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "backed up {} to {} in {:.2} s: {}\n\
             Keep the server key file (server.key) with it: the backup's access keys are \
             sealed with that key",
            self.from.display(),
            self.to.display(),
            self.took.as_secs_f64(),
            self.contents
        )?;
        if let Some(fp) = &self.contents.server_key_fingerprint {
            write!(f, " (fingerprint {fp})")?;
        }
        write!(f, ".")
    }
}

/// What a restore put in place.
#[derive(Debug)]
pub struct RestoreSummary {
    pub from: PathBuf,
    pub to: PathBuf,
    pub contents: Contents,
    pub took: Duration,
}

impl fmt::Display for RestoreSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "restored {} into {} in {:.2} s: {}",
            self.from.display(),
            self.to.display(),
            self.took.as_secs_f64(),
            self.contents
        )
    }
}

/// The SQLite database file a configured database URL names; PostgreSQL is refused with
/// what to use instead (`verb` is "back up" or "restore").
pub fn sqlite_path(database_url: &str, verb: &str) -> anyhow::Result<PathBuf> {
    if let Some(path) = database_url.strip_prefix("sqlite://") {
        return Ok(PathBuf::from(path));
    }
    if database_url.starts_with("postgres://") || database_url.starts_with("postgresql://") {
        let tool = if verb == "restore" {
            "pg_restore (or psql for a plain dump)"
        } else {
            "pg_dump"
        };
        bail!(
            "the configured store is PostgreSQL ({}); `tagd admin {verb}` works on the embedded SQLite store only: use {tool}, PostgreSQL's own tool, instead",
            super::redact_url(database_url)
        );
    }
    Err(super::StoreError::UnsupportedUrl(super::redact_url(database_url)).into())
}

/// Writes a consistent snapshot of the database at `db` to `to`, while other processes
/// (a serving tagd) keep reading and writing it. Refuses to replace an existing `to`
/// unless `force`.
pub fn backup(db: &Path, to: &Path, force: bool) -> anyhow::Result<BackupSummary> {
    let started = Instant::now();
    if !db.is_file() {
        bail!(
            "there is no database at {}; check --data-dir or --database-url",
            db.display()
        );
    }
    if to.is_dir() {
        bail!("{} is a directory; name the backup file", to.display());
    }
    if std::fs::symlink_metadata(to).is_ok() {
        if !force {
            bail!(
                "{} already exists; choose another name, or pass --force to replace it",
                to.display()
            );
        }
        if same_file(to, db)? {
            bail!(
                "{} is the database itself; name a backup file",
                to.display()
            );
        }
    }
    // Shared, as any user of the store: only keeps a restore from replacing the file
    // under the snapshot.
    let _in_use = match sqlite::try_lock_in_use(db, false)
        .with_context(|| format!("cannot lock {}", sqlite::lock_path(db).display()))?
    {
        InUse::Held(file) => file,
        InUse::Busy => bail!(
            "a restore is replacing {} right now; run the backup when it is done",
            db.display()
        ),
    };
    let temporary = Temporary::create(to, "backup")?;

    let source = Connection::open_with_flags(
        db,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("cannot open {}", db.display()))?;
    source.busy_timeout(Duration::from_secs(10))?;
    let target = temporary
        .path
        .to_str()
        .ok_or_else(|| anyhow!("{} is not valid UTF-8", temporary.path.display()))?;
    // Into the empty file made with mode 0600, whose mode SQLite keeps.
    source
        .execute("VACUUM INTO ?1", [target])
        .with_context(|| format!("cannot write the snapshot to {}", temporary.path.display()))?;
    drop(source);

    // The copy keeps the source's WAL flag; as a rollback-journal file it is one
    // self-contained file that any SQLite opens, even read-only, without making a
    // `-wal` beside it. tagd switches it back to WAL when it opens it.
    let contents = {
        let conn = Connection::open(&temporary.path)
            .with_context(|| format!("cannot open {}", temporary.path.display()))?;
        conn.pragma_update(None, "journal_mode", "DELETE")?;
        let check: String = conn.pragma_query_value(None, "quick_check", |r| r.get(0))?;
        if check != "ok" {
            bail!("the snapshot failed SQLite's quick_check: {check}");
        }
        contents(&conn, &temporary.path)?
    };
    sync_file(&temporary.path)?;
    std::fs::rename(&temporary.path, to).with_context(|| {
        format!(
            "cannot rename {} to {}",
            temporary.path.display(),
            to.display()
        )
    })?;
    temporary.keep();
    sync_dir(to)?;
    Ok(BackupSummary {
        from: db.to_path_buf(),
        to: to.to_path_buf(),
        contents,
        took: started.elapsed(),
    })
}

/// Replaces the database at `db` with the backup `from`, after checking that `from` is
/// a sound tagd database this binary can open. Refused while any tagd process has `db`
/// open; `server_key` is the fingerprint of the key tagd would start with, if known, to
/// warn when the backup's access keys are sealed with another.
pub fn restore(
    from: &Path,
    db: &Path,
    server_key: Option<&str>,
) -> anyhow::Result<(RestoreSummary, Vec<String>)> {
    let started = Instant::now();
    if !from.is_file() {
        bail!("{} is not a file", from.display());
    }
    // Only the main file is copied: committed writes waiting in a `-wal` beside it
    // would be lost, so such a file (a live database, or one not closed cleanly) is
    // refused rather than restored short.
    if std::fs::metadata(sqlite::beside(from, "-wal")).is_ok_and(|m| m.len() > 0) {
        bail!(
            "{} has a non-empty -wal file beside it: it is in use or was not closed cleanly; restore a file written by `tagd admin backup`, or open it with sqlite3 once to fold the WAL in",
            from.display()
        );
    }
    if db.exists() && same_file(from, db)? {
        bail!(
            "{} is the database itself; name a backup file",
            from.display()
        );
    }
    let dir = parent(db);
    if !dir.exists() {
        use std::os::unix::fs::DirBuilderExt;
        // 0700 as `tagd serve` makes it: it will hold password hashes and the server key.
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let _exclusive = match sqlite::try_lock_in_use(db, true)
        .with_context(|| format!("cannot lock {}", sqlite::lock_path(db).display()))?
    {
        InUse::Held(file) => file,
        InUse::Busy => bail!(
            "a tagd process (a server, or an admin command) has {} open: stop it, then run the restore again; nothing was changed",
            db.display()
        ),
    };

    // The backup is copied first and the copy checked, so what is checked is exactly
    // what goes in place, and the backup file itself is never opened for writing.
    let mut temporary = Temporary::create(db, "restore")?;
    std::fs::File::open(from)
        .and_then(|mut backup| std::io::copy(&mut backup, &mut temporary.file))
        .with_context(|| {
            format!(
                "cannot copy {} to {}",
                from.display(),
                temporary.path.display()
            )
        })?;
    let contents = verify(&temporary.path)
        .with_context(|| format!("{} is not a backup tagd can restore", from.display()))?;
    for suffix in ["-wal", "-shm", "-journal"] {
        remove_if_present(&sqlite::beside(&temporary.path, suffix))?;
    }
    sync_file(&temporary.path)?;

    // The database being replaced is checkpointed first: once its WAL is folded in, its
    // `-wal` and `-shm` can go without losing anything should the rename below never
    // happen, and none is left to be replayed onto the restored file (SQLite would apply
    // a stale WAL's pages to it).
    if db.exists() {
        checkpoint(db).with_context(|| {
            format!(
                "cannot checkpoint the current database {} before replacing it (if it is damaged, move it and its -wal and -shm files away, then run the restore again); nothing was changed",
                db.display()
            )
        })?;
    }
    for suffix in ["-wal", "-shm", "-journal"] {
        remove_if_present(&sqlite::beside(db, suffix))?;
    }
    sync_dir(db)?;
    std::fs::rename(&temporary.path, db).with_context(|| {
        format!(
            "cannot rename {} to {}",
            temporary.path.display(),
            db.display()
        )
    })?;
    temporary.keep();
    sync_dir(db)?;

    let mut notes = vec![format!(
        "Only the database was replaced: the server key file and credentials in {} are as they were. tagd starts only with the server key the backup's access keys were sealed with.",
        dir.display()
    )];
    match (&contents.server_key_fingerprint, server_key) {
        (Some(recorded), Some(configured)) if recorded != configured => notes.push(format!(
            "WARNING: the backup's access keys are sealed with the server key of fingerprint {recorded}, but the configured key's fingerprint is {configured}: tagd will refuse to start until it is given the backup's key (its server.key file, or TAGD_SERVER_KEY)."
        )),
        (Some(recorded), None) => notes.push(format!(
            "The backup's access keys are sealed with the server key of fingerprint {recorded}: put that key's file in place (or give TAGD_SERVER_KEY) before starting tagd."
        )),
        _ => {}
    }
    if contents.schema_version < sqlite::MIGRATIONS.len() as i64 {
        notes.push(format!(
            "The backup's schema (version {}) is older than this tagd's ({}); tagd migrates it when it starts.",
            contents.schema_version,
            sqlite::MIGRATIONS.len()
        ));
    }
    Ok((
        RestoreSummary {
            from: from.to_path_buf(),
            to: db.to_path_buf(),
            contents,
            took: started.elapsed(),
        },
        notes,
    ))
}

/// Checks that `path` is a sound tagd SQLite database of a schema version this binary
/// knows, and reads what it holds.
fn verify(path: &Path) -> anyhow::Result<Contents> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    // The first read of a file that is not SQLite fails here, as "file is not a database".
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .context("not a SQLite database")?;
    let known = sqlite::MIGRATIONS.len() as i64;
    if version > known {
        bail!("its schema is at version {version}, newer than this tagd knows ({known}); restore it with a newer tagd");
    }
    let mut missing = Vec::new();
    for table in TAGD_TABLES {
        let found: Option<i64> = conn
            .query_row(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1",
                [table],
                |r| r.get(0),
            )
            .optional()?;
        if found.is_none() {
            missing.push(*table);
        }
    }
    if version < 1 || !missing.is_empty() {
        bail!(
            "it is a SQLite database but not tagd's (schema version {version}, missing tables: {})",
            missing.join(", ")
        );
    }
    let check: Vec<String> = conn
        .prepare("PRAGMA integrity_check(20)")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    if check != ["ok"] {
        bail!("SQLite's integrity_check failed: {}", check.join("; "));
    }
    contents(&conn, path)
}

/// Counts what the database on `conn` holds.
fn contents(conn: &Connection, path: &Path) -> anyhow::Result<Contents> {
    let count = |table: &str| -> anyhow::Result<u64> {
        Ok(
            conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| {
                r.get::<_, i64>(0)
            })? as u64,
        )
    };
    Ok(Contents {
        bytes: std::fs::metadata(path)?.len(),
        schema_version: conn.pragma_query_value(None, "user_version", |r| r.get(0))?,
        domains: count("domains")?,
        projects: count("projects")?,
        resources: count("resources")?,
        tags: count("tags")?,
        server_key_fingerprint: conn
            .query_row(
                "SELECT value FROM settings WHERE name = ?1",
                [super::SERVER_KEY_FINGERPRINT],
                |r| r.get(0),
            )
            .optional()?,
    })
}

/// Folds the WAL of the database at `db` into it. Only called with the exclusive lock
/// held, so no tagd has it open.
fn checkpoint(db: &Path) -> anyhow::Result<()> {
    let conn = Connection::open_with_flags(
        db,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(Duration::from_secs(5))?;
    let busy: i64 = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))?;
    if busy != 0 {
        bail!("another connection kept the checkpoint from finishing");
    }
    Ok(())
}

/// A temporary file beside `dest` (same directory, so the final rename is atomic),
/// removed on drop unless kept (renamed into place). It is made empty with mode 0600
/// before anything is written to it, as it will hold password hashes and sealed
/// secrets; its name is unique, and this process holds a `flock` on it until it is
/// gone, so the next backup or restore tells one left by a killed process (unlocked:
/// removed) from one another process is writing (locked: left alone) (D82).
struct Temporary {
    path: PathBuf,
    file: std::fs::File,
    kept: bool,
}

impl Temporary {
    fn create(dest: &Path, what: &str) -> anyhow::Result<Self> {
        use std::os::unix::fs::OpenOptionsExt;
        let prefix = temporary_prefix(dest, what)?;
        remove_stale(&parent(dest), &prefix)?;
        let path = parent(dest).join(format!(
            "{prefix}{}-{}.tmp",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive)
            .with_context(|| format!("cannot lock {}", path.display()))?;
        Ok(Self {
            path,
            file,
            kept: false,
        })
    }

    fn keep(mut self) {
        self.kept = true;
    }
}

impl Drop for Temporary {
    fn drop(&mut self) {
        if !self.kept {
            remove_with_journals(&self.path);
        }
    }
}

/// The start of the names of `what`'s temporary files for `dest`: hidden, and naming
/// the file and the command they are for.
fn temporary_prefix(dest: &Path, what: &str) -> anyhow::Result<String> {
    let name = dest
        .file_name()
        .ok_or_else(|| anyhow!("{} names no file", dest.display()))?
        .to_string_lossy();
    Ok(format!(".{name}.{what}-"))
}

/// Removes the temporary files under `prefix` in `dir` that no process holds locked:
/// their backup or restore was killed.
fn remove_stale(dir: &Path, prefix: &str) -> anyhow::Result<()> {
    use rustix::fs::{flock, FlockOperation};
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with(prefix) || !name.ends_with(".tmp") {
            continue;
        }
        let path = entry.path();
        let Ok(file) = std::fs::File::open(&path) else {
            continue;
        };
        if flock(&file, FlockOperation::NonBlockingLockExclusive).is_ok() {
            remove_with_journals(&path);
            tracing::warn!(path = %path.display(), "removed the temporary file of an interrupted run");
        }
    }
    Ok(())
}

fn remove_with_journals(path: &Path) {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let _ = std::fs::remove_file(sqlite::beside(path, suffix));
    }
}

fn parent(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn remove_if_present(path: &Path) -> anyhow::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("cannot remove {}", path.display()))
        }
        _ => Ok(()),
    }
}

fn same_file(a: &Path, b: &Path) -> anyhow::Result<bool> {
    use std::os::unix::fs::MetadataExt;
    let (a, b) = (std::fs::metadata(a)?, std::fs::metadata(b)?);
    Ok(a.dev() == b.dev() && a.ino() == b.ino())
}

fn sync_file(path: &Path) -> anyhow::Result<()> {
    std::fs::File::open(path)
        .and_then(|f| f.sync_all())
        .with_context(|| format!("cannot sync {}", path.display()))
}

/// Makes a rename or removal in the directory of `path` durable.
fn sync_dir(path: &Path) -> anyhow::Result<()> {
    let dir = parent(path);
    std::fs::File::open(&dir)
        .and_then(|f| f.sync_all())
        .with_context(|| format!("cannot sync the directory {}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_is_refused_with_the_tool_to_use() {
        let e = sqlite_path("postgres://tagd:secret@db:5432/tagd", "backup")
            .expect_err("refused")
            .to_string();
        assert!(e.contains("pg_dump") && !e.contains("secret"), "{e}");
        let e = sqlite_path("postgresql://db/tagd", "restore")
            .expect_err("refused")
            .to_string();
        assert!(e.contains("pg_restore"), "{e}");
        assert_eq!(
            sqlite_path("sqlite:///var/lib/tagd/tagd.db", "backup").expect("sqlite"),
            PathBuf::from("/var/lib/tagd/tagd.db")
        );
    }
}
