//! The SQLite end of a copy: rows read in chunks on a thread, and written in one
//! transaction.

use super::*;

/// A rusqlite connection used from async code: every use runs on a blocking thread.
#[derive(Clone)]
pub(super) struct SharedSqlite(pub(super) Arc<Mutex<Connection>>);

pub(super) fn sqlite_error(e: rusqlite::Error) -> StoreError {
    StoreError::Database(e.to_string())
}

impl SharedSqlite {
    pub(super) fn lock(&self) -> Result<std::sync::MutexGuard<'_, Connection>, StoreError> {
        self.0
            .lock()
            .map_err(|_| StoreError::Database("the SQLite connection is poisoned".into()))
    }

    pub(super) async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || f(&*this.lock()?).map_err(sqlite_error))
            .await
            .map_err(|e| StoreError::Database(e.to_string()))?
    }
}

pub(super) type Chunks = mpsc::Receiver<Result<Vec<Row>, StoreError>>;

/// A SQLite end inside its transaction (opened by [`Endpoint`], which closes the
/// connection, and so rolls back what was not committed, when it is dropped).
pub(super) struct SqliteEnd {
    pub(super) conn: SharedSqlite,
    /// The open table's rows, produced on a blocking thread one chunk ahead of the
    /// writer, so reading SQLite overlaps writing the target.
    pub(super) chunks: Option<Chunks>,
    /// The INSERT of the table being written.
    pub(super) insert: Option<String>,
    /// The target's write sequence before the copy.
    /// The store's write sequence (D49) before the copy.
    pub(super) seq_before: u64,
}

impl SqliteEnd {
    pub(super) fn new(conn: SharedSqlite) -> Self {
        Self {
            conn,
            chunks: None,
            insert: None,
            seq_before: 0,
        }
    }
}

pub(super) fn sqlite_type(kind: Kind) -> &'static str {
    match kind {
        Kind::Int | Kind::Bool => "INTEGER",
        Kind::Text => "TEXT",
        Kind::Bytes => "BLOB",
    }
}

pub(super) fn sqlite_row(r: &rusqlite::Row, table: &Table) -> rusqlite::Result<Row> {
    let mut row = Vec::with_capacity(table.columns.len());
    for (i, (_, kind)) in table.columns.iter().enumerate() {
        row.push(match kind {
            Kind::Int => r.get::<_, Option<i64>>(i)?.map_or(Value::Null, Value::Int),
            Kind::Bool => r
                .get::<_, Option<bool>>(i)?
                .map_or(Value::Null, Value::Bool),
            Kind::Text => r
                .get::<_, Option<String>>(i)?
                .map_or(Value::Null, Value::Text),
            Kind::Bytes => r
                .get::<_, Option<Vec<u8>>>(i)?
                .map_or(Value::Null, Value::Bytes),
        });
    }
    Ok(row)
}

pub(super) type ChunkSender = mpsc::Sender<Result<Vec<Row>, StoreError>>;

/// Reads a whole table into `out`, a chunk at a time, ending with its error if any.
pub(super) fn produce(c: &Connection, table: &Table, out: &ChunkSender) {
    if let Err(e) = read_table(c, table, out) {
        let _ = out.blocking_send(Err(StoreError::Database(format!(
            "reading {}: {e}",
            table.name
        ))));
    }
}

/// Stops early, without an error, when nobody listens any more.
pub(super) fn read_table(c: &Connection, table: &Table, out: &ChunkSender) -> rusqlite::Result<()> {
    let mut stmt = c.prepare(&table.select())?;
    let mut rows = stmt.query([])?;
    let mut chunk = Vec::with_capacity(CHUNK_ROWS);
    while let Some(r) = rows.next()? {
        chunk.push(sqlite_row(r, table)?);
        if chunk.len() == CHUNK_ROWS {
            let full = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK_ROWS));
            if out.blocking_send(Ok(full)).is_err() {
                return Ok(());
            }
        }
    }
    if !chunk.is_empty() {
        let _ = out.blocking_send(Ok(chunk));
    }
    Ok(())
}

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Value::Null => ToSqlOutput::Borrowed(ValueRef::Null),
            Value::Int(i) => ToSqlOutput::Borrowed(ValueRef::Integer(*i)),
            Value::Bool(b) => ToSqlOutput::Borrowed(ValueRef::Integer(i64::from(*b))),
            Value::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
            Value::Bytes(b) => ToSqlOutput::Borrowed(ValueRef::Blob(b)),
        })
    }
}

#[async_trait]
impl Side for SqliteEnd {
    fn type_name(&self) -> fn(Kind) -> &'static str {
        sqlite_type
    }

    async fn catalog(&mut self) -> Result<Catalog, StoreError> {
        self.conn
            .run(|c| {
                let mut stmt = c.prepare(
                    "SELECT m.name, p.name, upper(p.type)
                     FROM sqlite_master m JOIN pragma_table_info(m.name) p
                     WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite\\_%' ESCAPE '\\'
                     ORDER BY m.name, p.cid",
                )?;
                let mut catalog = Catalog::new();
                let mut rows = stmt.query([])?;
                while let Some(r) = rows.next()? {
                    catalog
                        .entry(r.get(0)?)
                        .or_default()
                        .push((r.get(1)?, r.get(2)?));
                }
                Ok(catalog)
            })
            .await
    }

    async fn count(&mut self, table: &Table) -> Result<u64, StoreError> {
        let sql = format!("SELECT count(*) FROM {}", table.name);
        let n: i64 = self
            .conn
            .run(move |c| c.query_row(&sql, [], |r| r.get(0)))
            .await?;
        Ok(n as u64)
    }
}

#[async_trait]
impl Source for SqliteEnd {
    async fn open_table(&mut self, table: &'static Table) -> Result<(), StoreError> {
        // Two chunks in flight bound the memory whatever the table's size.
        let (tx, rx) = mpsc::channel(2);
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || match conn.lock() {
            Ok(c) => produce(&c, table, &tx),
            Err(e) => {
                let _ = tx.blocking_send(Err(e));
            }
        });
        self.chunks = Some(rx);
        Ok(())
    }

    async fn next_chunk(&mut self) -> Result<Option<Vec<Row>>, StoreError> {
        match self.chunks.as_mut() {
            Some(rx) => rx.recv().await.transpose(),
            None => Ok(None),
        }
    }
}

#[async_trait]
impl Target for SqliteEnd {
    async fn clear(&mut self) -> Result<(), StoreError> {
        // Children first, so no foreign key is ever left dangling.
        let sql: String = TABLES
            .iter()
            .rev()
            .map(|t| format!("DELETE FROM {};", t.name))
            .collect();
        self.conn.run(move |c| c.execute_batch(&sql)).await
    }

    async fn begin_table(&mut self, table: &'static Table) -> Result<(), StoreError> {
        let params: Vec<String> = (1..=table.columns.len()).map(|i| format!("?{i}")).collect();
        self.insert = Some(format!(
            "INSERT INTO {} ({}) VALUES ({})",
            table.name,
            table.column_list(),
            params.join(", ")
        ));
        Ok(())
    }

    async fn write_chunk(&mut self, rows: Vec<Row>) -> Result<(), StoreError> {
        let insert = self
            .insert
            .clone()
            .ok_or_else(|| StoreError::Database("no table is being written".into()))?;
        self.conn
            .run(move |c| {
                let mut stmt = c.prepare_cached(&insert)?;
                for row in &rows {
                    stmt.execute(rusqlite::params_from_iter(row))?;
                }
                Ok(())
            })
            .await
    }

    async fn end_table(&mut self) -> Result<(), StoreError> {
        self.insert = None;
        Ok(())
    }

    async fn commit(self: Box<Self>) -> Result<(), StoreError> {
        // A tagd still running on this file keeps a tag index stamped with the write
        // sequence it saw; the copied sequence must not happen to equal it, or that
        // index would be taken for the new contents.
        let floor = (self.seq_before + 1) as i64;
        self.conn
            .run(move |c| {
                // The SQLite store's tag index holds 32-bit row ids: a larger one (from
                // PostgreSQL, whose ids are BIGINT) is refused here, not cut down to
                // another resource's id once served (D83).
                let max: Option<i64> =
                    c.query_row("SELECT max(rid) FROM resources", [], |r| r.get(0))?;
                if let Some(rid) = max.filter(|rid| Rid::new(*rid).is_none()) {
                    return Err(rusqlite::Error::ToSqlConversionFailure(
                        format!(
                            "resource row id {rid} is beyond the SQLite store's at most {}: copy into PostgreSQL instead, or move the tags with `tagd admin tags export` and `tags import --register`, which number resources anew; nothing was committed",
                            u32::MAX
                        )
                        .into(),
                    ));
                }
                c.execute(
                    "UPDATE settings SET value = max(CAST(value AS INTEGER), ?1)
                     WHERE name = 'write_seq'",
                    [floor],
                )?;
                c.execute_batch("COMMIT")
            })
            .await
    }
}

// ---------------------------------------------------------------------------------------
// PostgreSQL
