//! Opening the database file: private modes, the writer's pragmas, the integrity
//! check before serving, and the migrations.

use super::*;

pub(super) fn open_writer(path: &Path) -> Result<Connection, StoreError> {
    make_private(path, true)?;
    let mut conn = Connection::open(path).map_err(db)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(db)?;
    // WAL lets readers run beside the writer; FULL syncs the WAL on every commit, so a
    // committed transaction survives power loss, not only a process crash.
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(db)?;
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(db)?;
    conn.pragma_update(None, "foreign_keys", "ON").map_err(db)?;
    // Each request's writes run in a savepoint of the group's transaction, and SQLite
    // keeps the pages a savepoint may have to restore in a sub-journal, a temporary
    // file by default: writing it was a third of the writer's time. In memory it costs
    // nothing in durability (it only serves rollbacks within the open transaction).
    conn.pragma_update(None, "temp_store", "MEMORY")
        .map_err(db)?;
    // The writer checkpoints itself (see [`Checkpoints`]): SQLite's automatic
    // checkpoint ignores its own errors.
    conn.pragma_update(None, "wal_autocheckpoint", 0)
        .map_err(db)?;
    // SQLite gives the -wal and -shm files it creates the database file's mode; ones
    // left by an older tagd (0644) are tightened here.
    for suffix in ["-wal", "-shm"] {
        make_private(&beside(path, suffix), false)?;
    }
    check_integrity(&conn, path)?;
    migrate(&mut conn)?;
    Ok(conn)
}

/// Gives the file at `path` mode 0600, creating it (empty, for SQLite to initialise)
/// when `create` is set and it is missing: the database holds password hashes and
/// every tenant's tags, so only tagd's user may read it (D82). A file that is not ours
/// to change is left as it is, with a warning.
pub(super) fn make_private(path: &Path, create: bool) -> Result<(), StoreError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    if create {
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .map_err(|e| StoreError::Database(format!("cannot open {}: {e}", path.display())))?;
    }
    let Ok(meta) = std::fs::metadata(path) else {
        return Ok(());
    };
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        match std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o700)) {
            Ok(()) => tracing::warn!(
                path = %path.display(),
                was = format!("{mode:o}"),
                "made the database file readable by its owner only"
            ),
            Err(e) => tracing::warn!(
                path = %path.display(),
                error = %e,
                "the database file is readable by others and could not be changed"
            ),
        }
    }
    Ok(())
}

/// Checks the database's structure before anything is served from it, so a damaged
/// file stops the start instead of answering 500 (or worse, wrong answers) behind a
/// ready `/readyz` (D81). `quick_check` reads every page once: 0.3 s for 250,000
/// resources with warm caches, the cost of every start (and of every admin command).
pub(super) fn check_integrity(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let started = std::time::Instant::now();
    let found: rusqlite::Result<Vec<String>> = conn
        .prepare("PRAGMA quick_check(5)")
        .and_then(|mut check| check.query_map([], |r| r.get(0))?.collect());
    let detail = match found {
        Ok(problems) if problems.iter().all(|p| p == "ok") => {
            tracing::debug!(elapsed = ?started.elapsed(), "the database passed its check");
            return Ok(());
        }
        Ok(problems) => problems.join("; "),
        Err(e) => e.to_string(),
    };
    Err(StoreError::Corrupt {
        path: path.display().to_string(),
        detail,
    })
}

pub(super) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let found: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(db)?;
    let known = MIGRATIONS.len() as i64;
    if found > known {
        return Err(StoreError::SchemaTooNew { found, known });
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let tx = conn.transaction().map_err(db)?;
        tx.execute_batch(sql).map_err(db)?;
        tx.pragma_update(None, "user_version", index as i64 + 1)
            .map_err(db)?;
        tx.commit().map_err(db)?;
        tracing::info!(version = index + 1, "applied SQLite migration");
    }
    Ok(())
}
