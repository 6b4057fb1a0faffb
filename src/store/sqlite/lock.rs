//! The lock file that tells whether a tagd process has the database open, so a
//! restore never replaces it from under one.

use super::*;

/// The lock file beside a SQLite database (`tagd.db.lock` for `tagd.db`). Every process
/// that opens the store (`tagd serve`, the admin commands, `tagd admin backup`) holds a
/// shared `flock` on it while it has the database open; `tagd admin restore` replaces
/// the database only under an exclusive one, so it cannot pull the file from under a
/// running tagd. The kernel drops the lock when the process dies, so a crash never
/// leaves it stale. A file of its own because SQLite's locks on the database are POSIX
/// record locks, which `flock` emulates on NFS: locking the database itself could
/// collide with them.
pub fn lock_path(db: &Path) -> PathBuf {
    beside(db, ".lock")
}

/// The file named like the database with `suffix` appended (`tagd.db-wal`,
/// `tagd.db.lock`): the files SQLite and tagd keep beside it.
pub(crate) fn beside(db: &Path, suffix: &str) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Opens (creating, mode 0600) the lock file of the database at `db`.
fn open_lock_file(db: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(lock_path(db))
}

/// Takes the shared "in use" lock of the database at `db` (see [`lock_path`]), waiting
/// while a restore holds it exclusively.
pub(crate) fn hold_in_use(db: &Path) -> Result<std::fs::File, StoreError> {
    use rustix::fs::{flock, FlockOperation};
    let at = |e: std::io::Error| {
        StoreError::Database(format!("cannot lock {}: {e}", lock_path(db).display()))
    };
    let file = open_lock_file(db).map_err(at)?;
    if flock(&file, FlockOperation::NonBlockingLockShared).is_err() {
        tracing::warn!(lock = %lock_path(db).display(), "a restore is replacing the database; waiting for it");
        flock(&file, FlockOperation::LockShared).map_err(|e| at(e.into()))?;
    }
    Ok(file)
}

/// How [`try_lock_in_use`] found the database's lock file.
pub enum InUse {
    /// The lock is now held, shared or exclusive as asked, until the file is dropped.
    Held(std::fs::File),
    /// Another process holds it in the conflicting mode.
    Busy,
}

/// Tries to take the "in use" lock of the database at `db` without waiting: shared
/// (`exclusive == false`, as a backup does) or exclusive (as a restore does).
pub fn try_lock_in_use(db: &Path, exclusive: bool) -> std::io::Result<InUse> {
    use rustix::fs::{flock, FlockOperation};
    let file = open_lock_file(db)?;
    let operation = if exclusive {
        FlockOperation::NonBlockingLockExclusive
    } else {
        FlockOperation::NonBlockingLockShared
    };
    match flock(&file, operation) {
        Ok(()) => Ok(InUse::Held(file)),
        Err(e) if e == rustix::io::Errno::WOULDBLOCK => Ok(InUse::Busy),
        Err(e) => Err(e.into()),
    }
}
