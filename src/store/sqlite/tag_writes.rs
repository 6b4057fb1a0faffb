//! Tag batches inside the writer's transaction: find or register the resources, read
//! their rows, let `core::batch` decide, write what it returns and record it for the
//! tag index.

use super::*;
use crate::core::batch;

pub(super) fn find_rid(conn: &Connection, at: &ResourceRef) -> rusqlite::Result<Option<i64>> {
    conn.prepare_cached(
        "SELECT rid FROM resources
         WHERE domain_id = ?1 AND project_id = ?2 AND resource_type = ?3 AND resource_id = ?4",
    )?
    .query_row(
        params![
            at.domain_id,
            at.project_id,
            at.resource_type,
            at.resource_id
        ],
        |r| r.get(0),
    )
    .optional()
}

/// One batch inside the writer's transaction: find (or, in emulator mode, register)
/// each target, read its rows, let [`batch::decide`] settle every item, then write the
/// changes it returns and hand them to the tag index. A refused batch writes nothing
/// here; the writer rolls back its savepoint, registrations included.
pub(super) fn apply_batch(
    conn: &Connection,
    batch: &TagBatch,
) -> rusqlite::Result<Vec<ItemOutcome>> {
    let registering: FxHashSet<&ResourceRef> = batch
        .items
        .iter()
        .filter(|i| batch::registers(batch, i))
        .map(|i| &i.target.at)
        .collect();
    let with_sys = batch::needs_sys_tags(batch);
    let mut rids: ByResource<i64> = ByResource::default();
    let mut stored: ByResource<StoredRows> = ByResource::default();
    // One writer: no lock order to keep, so resources go in the order first named.
    for at in batch::targets(batch) {
        // One INSERT both registers a new resource and finds that one exists; a resource
        // registered just now has no rows to read.
        let registered = if registering.contains(at) {
            register_if_new(conn, at)?
        } else {
            None
        };
        let (rid, rows) = match registered {
            Some(rid) => (rid, StoredRows::default()),
            None => match find_rid(conn, at)? {
                Some(rid) => {
                    let rows = StoredRows {
                        tags: read_rows(conn, TagTable::Tags, rid)?,
                        sys_tags: if with_sys {
                            read_rows(conn, TagTable::SysTags, rid)?
                        } else {
                            BTreeMap::new()
                        },
                    };
                    (rid, rows)
                }
                None => continue,
            },
        };
        rids.insert(at, rid);
        stored.insert(at, rows);
    }
    let decision = batch::decide(batch, &stored);
    if decision.rejected.is_none() {
        for resource in &decision.changes {
            if let Some(&rid) = rids.get(resource.at) {
                write_changes(conn, rid, resource)?;
            }
        }
    }
    Ok(decision.outcomes)
}

/// One resource's rows of `table`, key to value.
pub(super) fn read_rows(
    conn: &Connection,
    table: TagTable,
    rid: i64,
) -> rusqlite::Result<BTreeMap<String, String>> {
    conn.prepare_cached(&format!(
        "SELECT key, value FROM {} WHERE rid = ?1",
        table.name()
    ))?
    .query_map([rid], |r| Ok((r.get(0)?, r.get(1)?)))?
    .collect()
}

/// Writes one resource's decided changes to one table: its new values in as few
/// upserts as [`UPSERT_ROWS`] allows, its removed keys one delete each. User tags go to
/// the tag index as they are written.
pub(super) fn write_changes(
    conn: &Connection,
    rid: i64,
    resource: &ResourceChanges<'_>,
) -> rusqlite::Result<()> {
    let table = resource.table.name();
    let set: Vec<(&str, &str)> = resource
        .rows
        .iter()
        .filter_map(|c| c.after.map(|value| (c.key, value)))
        .collect();
    for chunk in set.chunks(UPSERT_ROWS) {
        upsert_rows(conn, table, rid, chunk)?;
    }
    for change in resource.rows.iter().filter(|c| c.after.is_none()) {
        conn.prepare_cached(&format!("DELETE FROM {table} WHERE rid = ?1 AND key = ?2"))?
            .execute(params![rid, change.key])?;
    }
    if resource.table == TagTable::Tags {
        for change in &resource.rows {
            let key = change.key.to_owned();
            match (change.before, change.after) {
                (old, Some(new)) => record_for(rid, |rid| Delta::TagSet {
                    rid,
                    key,
                    old: old.map(str::to_owned),
                    new: new.to_owned(),
                }),
                (Some(value), None) => record_for(rid, |rid| Delta::TagRemoved {
                    rid,
                    key,
                    value: value.to_owned(),
                }),
                (None, None) => {}
            }
        }
    }
    Ok(())
}

/// Registers a resource unless it exists; its new row id, or `None` if it existed.
pub(super) fn register_if_new(
    conn: &Connection,
    at: &ResourceRef,
) -> rusqlite::Result<Option<i64>> {
    let rid: Option<i64> = conn
        .prepare_cached(
            "INSERT INTO resources (domain_id, project_id, resource_type, resource_id, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (domain_id, project_id, resource_type, resource_id) DO NOTHING
             RETURNING rid",
        )?
        .query_row(
            params![
                at.domain_id,
                at.project_id,
                at.resource_type,
                at.resource_id,
                now_unix()
            ],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(rid) = rid {
        record_registered(rid, at);
    }
    Ok(rid)
}

/// Most rows one upsert statement writes: a resource's tags usually go in one statement,
/// which costs SQLite one statement run instead of one per tag (D63).
pub(super) const UPSERT_ROWS: usize = 20;

/// Sets `tags` (at most [`UPSERT_ROWS`]) on resource `rid` in `table`, replacing the
/// values of keys it has. A key given twice keeps its last value, as row-by-row upserts
/// would.
pub(super) fn upsert_rows(
    conn: &Connection,
    table: &'static str,
    rid: i64,
    tags: &[(&str, &str)],
) -> rusqlite::Result<()> {
    thread_local! {
        /// The statements' text by table and row count, made once per thread.
        static SQL: RefCell<HashMap<(&'static str, usize), Arc<str>>> = RefCell::new(HashMap::new());
    }
    let sql = SQL.with(|cache| {
        cache
            .borrow_mut()
            .entry((table, tags.len()))
            .or_insert_with(|| {
                let rows: Vec<String> = (0..tags.len())
                    .map(|i| format!("(?1, ?{}, ?{})", 2 * i + 2, 2 * i + 3))
                    .collect();
                format!(
                    "INSERT INTO {table} (rid, key, value) VALUES {}
                     ON CONFLICT (rid, key) DO UPDATE SET value = excluded.value",
                    rows.join(", ")
                )
                .into()
            })
            .clone()
    });
    let mut upsert = conn.prepare_cached(&sql)?;
    upsert.raw_bind_parameter(1, rid)?;
    for (i, (key, value)) in tags.iter().enumerate() {
        upsert.raw_bind_parameter(2 * i + 2, *key)?;
        upsert.raw_bind_parameter(2 * i + 3, *value)?;
    }
    upsert.raw_execute().map(drop)
}

pub(super) fn record_registered(rid: i64, at: &ResourceRef) {
    record_for(rid, |rid| Delta::Registered {
        rid,
        at: at.clone(),
    });
}

/// Records a change to resource `rid` for the index; a row id the index cannot hold
/// drops the index instead, and its rebuild then finds the store unindexable (D83).
pub(super) fn record_for(rid: i64, delta: impl FnOnce(Rid) -> Delta) {
    record(Rid::new(rid).map_or(Delta::Invalidate, delta));
}
