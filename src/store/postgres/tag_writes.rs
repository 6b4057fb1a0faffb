//! Tag batches in one transaction: lock or register the resources in one global
//! order, read their rows, let `core::batch` decide, and write what it returns with
//! set-based statements.

use super::*;
use crate::core::batch;

/// The rows a batch writes to one table (`tags` or `sys_tags`): upserts and deletes.
#[derive(Default)]
struct TableWrites<'a> {
    rids: Vec<i64>,
    keys: Vec<&'a str>,
    values: Vec<&'a str>,
    gone_rids: Vec<i64>,
    gone_keys: Vec<&'a str>,
}

impl<'a> TableWrites<'a> {
    /// Sorts the decided changes of `table` into upserts and deletes, by row id.
    fn of(table: TagTable, changes: &[ResourceChanges<'a>], rids: &ByResource<i64>) -> Self {
        let mut writes = Self::default();
        for resource in changes.iter().filter(|c| c.table == table) {
            let Some(&rid) = rids.get(resource.at) else {
                continue;
            };
            for change in &resource.rows {
                match change.after {
                    Some(value) => {
                        writes.rids.push(rid);
                        writes.keys.push(change.key);
                        writes.values.push(value);
                    }
                    None => {
                        writes.gone_rids.push(rid);
                        writes.gone_keys.push(change.key);
                    }
                }
            }
        }
        writes
    }

    async fn write(&self, tx: &Transaction<'_>, table: &str) -> Result<(), tokio_postgres::Error> {
        if !self.rids.is_empty() {
            // A user tag carries its resource's domain, which leads the listing index
            // (D85); the resources rows are locked by this transaction already.
            let (domain_column, domain) = if table == "tags" {
                (", domain_id", ", r.domain_id")
            } else {
                ("", "")
            };
            let upsert = tx
                .prepare_cached(&format!(
                    "INSERT INTO {table} (rid, key, value{domain_column})
                     SELECT g.rid, g.key, g.value{domain}
                     FROM unnest($1::bigint[], $2::text[], $3::text[]) AS g(rid, key, value), resources r
                     WHERE r.rid = g.rid
                     ON CONFLICT (rid, key) DO UPDATE SET value = excluded.value"
                ))
                .await?;
            tx.execute(&upsert, &[&self.rids, &self.keys, &self.values])
                .await?;
        }
        if !self.gone_rids.is_empty() {
            let delete = tx
                .prepare_cached(&format!(
                    "DELETE FROM {table} t USING unnest($1::bigint[], $2::text[]) AS g(rid, key)
                     WHERE t.rid = g.rid AND t.key = g.key"
                ))
                .await?;
            tx.execute(&delete, &[&self.gone_rids, &self.gone_keys])
                .await?;
        }
        Ok(())
    }
}

/// Reads the rows of `table` of these resources, by row id.
async fn read_rows(
    tx: &Transaction<'_>,
    table: TagTable,
    rids: &[i64],
) -> Result<HashMap<i64, BTreeMap<String, String>>, tokio_postgres::Error> {
    let select = tx
        .prepare_cached(&format!(
            "SELECT rid, key, value FROM {} WHERE rid = ANY($1)",
            table.name()
        ))
        .await?;
    let mut out: HashMap<i64, BTreeMap<String, String>> = HashMap::new();
    for row in tx.query(&select, &[&rids]).await? {
        out.entry(row.try_get(0)?)
            .or_default()
            .insert(row.try_get(1)?, row.try_get(2)?);
    }
    Ok(out)
}

/// One attempt at a batch: lock (or register) every target resource in one global
/// order, read their rows, let [`batch::decide`] settle every item, then write the
/// changes it returns. When the batch's mode refuses the outcomes, nothing is written.
pub(super) async fn apply_batch(
    client: &mut Object,
    batch: &TagBatch,
) -> Result<Vec<ItemOutcome>, tokio_postgres::Error> {
    let tx = client.transaction().await?;
    // Locked in one global order: two batches over the same resources never wait on
    // each other in a cycle. Ids PostgreSQL cannot store are never registered.
    let targets: Vec<&ResourceRef> = batch::lock_order(batch)
        .into_iter()
        .filter(|at| ref_storable(at))
        .collect();
    let lock = tx
        .prepare_cached(
            "SELECT r.rid, r.domain_id, r.project_id, r.resource_type, r.resource_id
             FROM resources r
             JOIN unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS w(d, p, t, i)
               ON r.domain_id = w.d AND r.project_id = w.p AND r.resource_type = w.t AND r.resource_id = w.i
             ORDER BY r.domain_id, r.project_id, r.resource_type, r.resource_id
             FOR UPDATE OF r",
        )
        .await?;
    let columns =
        |f: fn(&ResourceRef) -> &str| -> Vec<&str> { targets.iter().map(|at| f(at)).collect() };
    let wanted: FxHashSet<&ResourceRef> = targets.iter().copied().collect();
    let mut rids: ByResource<i64> = ByResource::default();
    for row in tx
        .query(
            &lock,
            &[
                &columns(|a| &a.domain_id),
                &columns(|a| &a.project_id),
                &columns(|a| &a.resource_type),
                &columns(|a| &a.resource_id),
            ],
        )
        .await?
    {
        let found = ResourceRef {
            domain_id: row.try_get(1)?,
            project_id: row.try_get(2)?,
            resource_type: row.try_get(3)?,
            resource_id: row.try_get(4)?,
        };
        // Keyed by the batch's own reference to the resource, which decide() borrows.
        if let Some(at) = wanted.get(&found) {
            rids.insert(at, row.try_get(0)?);
        }
    }
    if batch.auto_register {
        let insert = tx
            .prepare_cached(
                "INSERT INTO resources (domain_id, project_id, resource_type, resource_id, created_at)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (domain_id, project_id, resource_type, resource_id) DO NOTHING
                 RETURNING rid",
            )
            .await?;
        let relock = tx
            .prepare_cached(
                "SELECT rid FROM resources
                 WHERE domain_id = $1 AND project_id = $2 AND resource_type = $3 AND resource_id = $4
                 FOR UPDATE",
            )
            .await?;
        let registering: HashSet<&ResourceRef> = batch
            .items
            .iter()
            .filter(|i| batch::registers(batch, i))
            .map(|i| &i.target.at)
            .collect();
        for at in &targets {
            if rids.contains_key(*at) || !registering.contains(*at) {
                continue;
            }
            let key: [&(dyn ToSql + Sync); 4] = [
                &at.domain_id,
                &at.project_id,
                &at.resource_type,
                &at.resource_id,
            ];
            // Another process may register it at the same moment: then the insert waits
            // for that one to commit, does nothing, and the row is locked as usual.
            let rid: i64 = match tx
                .query_opt(&insert, &[key[0], key[1], key[2], key[3], &now_unix()])
                .await?
            {
                Some(row) => row.try_get(0)?,
                None => tx.query_one(&relock, &key).await?.try_get(0)?,
            };
            rids.insert(at, rid);
        }
    }
    let all_rids: Vec<i64> = rids.values().copied().collect();
    let mut tags = read_rows(&tx, TagTable::Tags, &all_rids).await?;
    let mut sys = if batch::needs_sys_tags(batch) {
        read_rows(&tx, TagTable::SysTags, &all_rids).await?
    } else {
        HashMap::new()
    };
    let stored: ByResource<StoredRows> = rids
        .iter()
        .map(|(at, rid)| {
            let rows = StoredRows {
                tags: tags.remove(rid).unwrap_or_default(),
                sys_tags: sys.remove(rid).unwrap_or_default(),
            };
            (*at, rows)
        })
        .collect();
    let decision = batch::decide(batch, &stored);
    if decision.rejected.is_some() {
        tx.rollback().await?;
        return Ok(decision.outcomes);
    }
    for table in [TagTable::Tags, TagTable::SysTags] {
        TableWrites::of(table, &decision.changes, &rids)
            .write(&tx, table.name())
            .await?;
    }
    tx.commit().await?;
    Ok(decision.outcomes)
}
