//! `tagd admin copy-store`: moves a whole deployment from one store to another, e.g. from
//! the embedded SQLite file to PostgreSQL when one process is no longer enough, or back.
//!
//! It copies tables, not objects: the two schemas are kept in lock-step (D50), so every
//! row goes over column for column, and what only the database holds (password hashes,
//! token hashes, sealed access-key secrets, `rid`s) arrives exactly as it was. Both ends
//! sit behind a small reader/writer abstraction over rows of [`Value`]s, so every
//! direction (SQLite or PostgreSQL on either side) is the same loop. The source is read
//! in one snapshot; the target is written in one transaction, checked (row counts) and
//! only then committed, so a copy that fails leaves the target as it was.

use std::collections::BTreeMap;
use std::fmt;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, OpenFlags};
use tokio::sync::mpsc;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, IsolationLevel, Portal, Transaction};

use super::tag_index::Rid;
use super::{postgres, redact_url, sqlite, StoreError};

mod postgres_end;
mod sqlite_end;

use postgres_end::*;
use sqlite_end::*;

/// Rows per read from the source (one SQLite batch, one PostgreSQL portal fetch).
const CHUNK_ROWS: usize = 5_000;

/// What a column holds, whatever each backend calls it: SQLite keeps flags as 0/1
/// `INTEGER`s and secrets as `BLOB`s, PostgreSQL as `BOOLEAN` and `BYTEA`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Int,
    Text,
    Bool,
    Bytes,
}

/// One table and its columns, in schema order.
struct Table {
    name: &'static str,
    columns: &'static [(&'static str, Kind)],
}

/// Every table tagd stores, parents before children so foreign keys hold at each
/// insert. The one list the copy works from: both ends' catalogs are checked against it
/// before anything is written, so a migration that adds a table or column without
/// updating this list stops the copy instead of silently losing data.
const TABLES: &[Table] = &[
    Table {
        name: "domains",
        columns: &[
            ("id", Kind::Text),
            ("name", Kind::Text),
            ("enabled", Kind::Bool),
            ("created_at", Kind::Int),
        ],
    },
    Table {
        name: "projects",
        columns: &[
            ("id", Kind::Text),
            ("domain_id", Kind::Text),
            ("name", Kind::Text),
            ("enabled", Kind::Bool),
            ("created_at", Kind::Int),
        ],
    },
    Table {
        name: "users",
        columns: &[
            ("id", Kind::Text),
            ("domain_id", Kind::Text),
            ("name", Kind::Text),
            ("password_hash", Kind::Text),
            ("is_admin", Kind::Bool),
            ("enabled", Kind::Bool),
            ("created_at", Kind::Int),
        ],
    },
    Table {
        name: "tokens",
        columns: &[
            ("token_hash", Kind::Text),
            ("user_id", Kind::Text),
            ("domain_id", Kind::Text),
            ("project_id", Kind::Text),
            ("methods", Kind::Text),
            ("issued_at", Kind::Int),
            ("expires_at", Kind::Int),
            ("revoked", Kind::Bool),
        ],
    },
    Table {
        name: "resources",
        columns: &[
            ("rid", Kind::Int),
            ("domain_id", Kind::Text),
            ("project_id", Kind::Text),
            ("resource_type", Kind::Text),
            ("resource_id", Kind::Text),
            ("name", Kind::Text),
            ("created_at", Kind::Int),
        ],
    },
    Table {
        name: "tags",
        columns: &[
            ("rid", Kind::Int),
            ("key", Kind::Text),
            ("value", Kind::Text),
            ("domain_id", Kind::Text),
        ],
    },
    Table {
        name: "sys_tags",
        columns: &[
            ("rid", Kind::Int),
            ("key", Kind::Text),
            ("value", Kind::Text),
        ],
    },
    Table {
        name: "access_keys",
        columns: &[
            ("access", Kind::Text),
            ("user_id", Kind::Text),
            ("secret", Kind::Bytes),
            ("status", Kind::Text),
            ("description", Kind::Text),
            ("created_at", Kind::Int),
            ("security_token_hash", Kind::Text),
            ("expires_at", Kind::Int),
            ("project_id", Kind::Text),
            ("source_token_hash", Kind::Text),
            ("source_access", Kind::Text),
        ],
    },
    Table {
        name: "settings",
        columns: &[("name", Kind::Text), ("value", Kind::Text)],
    },
    Table {
        name: "predefined_tags",
        columns: &[
            ("domain_id", Kind::Text),
            ("key", Kind::Text),
            ("value", Kind::Text),
            ("updated_at", Kind::Int),
        ],
    },
];

/// Every table's name, comma-separated, for statements on all of them at once.
fn all_tables() -> String {
    let names: Vec<&str> = TABLES.iter().map(|t| t.name).collect();
    names.join(", ")
}

impl Table {
    fn column_list(&self) -> String {
        let names: Vec<&str> = self.columns.iter().map(|(name, _)| *name).collect();
        names.join(", ")
    }

    fn select(&self) -> String {
        // No ORDER BY: any order will do, and a sort would cost the source a pass.
        format!("SELECT {} FROM {}", self.column_list(), self.name)
    }
}

/// One cell, already of its column's [`Kind`]: readers convert from their backend's
/// types, writers to theirs.
#[derive(Debug)]
enum Value {
    Null,
    Int(i64),
    Text(String),
    Bytes(Vec<u8>),
    Bool(bool),
}

type Row = Vec<Value>;

/// Table name → its columns in order, each with its type as the catalog spells it.
type Catalog = BTreeMap<String, Vec<(String, String)>>;

/// Why a copy did not happen; the target is unchanged in every case.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A failure at one end, named by its role and (password-free) URL.
    #[error("{end}: {error}")]
    At { end: String, error: String },
    #[error("there is no SQLite database at {0}")]
    NoSource(String),
    #[error("{end} is at schema version {found} but this tagd's is {known}; run the tagd that matches it")]
    SchemaVersion { end: String, found: i64, known: i64 },
    #[error("{end} does not have the tables and columns this tagd copies ({problem}); this tagd's copy list is out of date")]
    Catalog { end: String, problem: String },
    #[error("--from and --to name the same database ({0})")]
    SameDatabase(String),
    #[error("{end} is not empty (rows in {rows}); pass --force to replace everything in it")]
    NotEmpty { end: String, rows: String },
    #[error("row counts differ after the copy ({0}); nothing was committed to the target")]
    CountMismatch(String),
}

/// Names the end an error came from.
trait At<T> {
    fn at(self, end: &str) -> Result<T, CopyError>;
}

impl<T, E: fmt::Display> At<T> for Result<T, E> {
    fn at(self, end: &str) -> Result<T, CopyError> {
        self.map_err(|e| CopyError::At {
            end: end.to_owned(),
            error: e.to_string(),
        })
    }
}

/// What was copied.
#[derive(Debug)]
pub struct Summary {
    pub from: String,
    pub to: String,
    /// Every table with its number of rows, equal on both sides.
    pub tables: Vec<(&'static str, u64)>,
    pub elapsed: Duration,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{:<16} {:>12}", "table", "rows")?;
        for (table, rows) in &self.tables {
            writeln!(f, "{table:<16} {rows:>12}")?;
        }
        let total: u64 = self.tables.iter().map(|(_, rows)| rows).sum();
        writeln!(f, "{:<16} {total:>12}", "total")?;
        write!(
            f,
            "copied {} to {} in {:.1?}; row counts match",
            self.from, self.to, self.elapsed
        )
    }
}

/// Copies everything in the store at `from` into the store at `to` (`sqlite://PATH` or
/// `postgres://...`, any combination). Both schemas are first migrated to this binary's
/// version. A target holding any row is refused unless `force`, which empties it in the
/// copy's own transaction.
pub async fn copy_store(from: &str, to: &str, force: bool) -> Result<Summary, CopyError> {
    let started = Instant::now();
    let mut source = Endpoint::open(from, Role::Source).await?;
    let mut target = Endpoint::open(to, Role::Target).await?;
    let same = source.identity().await?;
    if same == target.identity().await? {
        return Err(CopyError::SameDatabase(target.url));
    }
    // "source URL" and "target URL", naming the end in every message.
    let (from, to) = (source.name.clone(), target.name.clone());
    let urls = (source.url.clone(), target.url.clone());

    let mut reader = source.begin_read().await?;
    let mut writer = target.begin_write().await?;
    check_catalog(
        &from,
        &reader.catalog().await.at(&from)?,
        reader.type_name(),
    )?;
    check_catalog(&to, &writer.catalog().await.at(&to)?, writer.type_name())?;

    let held = counts(&mut *writer).await.at(&to)?;
    if held.iter().any(|(_, n)| *n > 0) {
        if !force {
            return Err(CopyError::NotEmpty {
                end: to,
                rows: listing(held.iter().filter(|(_, n)| *n > 0)),
            });
        }
        writer.clear().await.at(&to)?;
    }

    let expected = counts(&mut *reader).await.at(&from)?;
    let progress = Progress::new();
    for (table, total) in TABLES.iter().zip(expected.iter().map(|(_, n)| *n)) {
        let bar = progress.table(table.name, total);
        reader.open_table(table).await.at(&from)?;
        writer.begin_table(table).await.at(&to)?;
        while let Some(rows) = reader.next_chunk().await.at(&from)? {
            bar.inc(rows.len() as u64);
            writer.write_chunk(rows).await.at(&to)?;
        }
        writer.end_table().await.at(&to)?;
        bar.finish();
    }

    // Counted inside the write transaction, so a mismatch is rolled back with the rest.
    let copied = counts(&mut *writer).await.at(&to)?;
    let wrong: Vec<String> = expected
        .iter()
        .zip(&copied)
        .filter(|((_, want), (_, got))| want != got)
        .map(|((table, want), (_, got))| {
            format!("{table}: {want} in the source, {got} in the target")
        })
        .collect();
    if !wrong.is_empty() {
        return Err(CopyError::CountMismatch(wrong.join(", ")));
    }
    writer.commit().await.at(&to)?;
    Ok(Summary {
        from: urls.0,
        to: urls.1,
        tables: copied,
        elapsed: started.elapsed(),
    })
}

/// Rows in every table of [`TABLES`], in its order.
async fn counts<S: Side + ?Sized>(side: &mut S) -> Result<Vec<(&'static str, u64)>, StoreError> {
    let mut all = Vec::with_capacity(TABLES.len());
    for table in TABLES {
        all.push((table.name, side.count(table).await?));
    }
    Ok(all)
}

fn listing<'a>(counts: impl Iterator<Item = &'a (&'static str, u64)>) -> String {
    counts
        .map(|(table, n)| format!("{table}: {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Checks an end's catalog against [`TABLES`]: the same tables, and in each the same
/// columns in the same order with the types this copy reads and writes them as.
fn check_catalog(
    end: &str,
    catalog: &Catalog,
    type_name: fn(Kind) -> &'static str,
) -> Result<(), CopyError> {
    let problem = |problem: String| CopyError::Catalog {
        end: end.to_owned(),
        problem,
    };
    for table in TABLES {
        let expected: Vec<(String, String)> = table
            .columns
            .iter()
            .map(|(name, kind)| ((*name).to_owned(), type_name(*kind).to_owned()))
            .collect();
        match catalog.get(table.name) {
            None => return Err(problem(format!("no table {}", table.name))),
            Some(found) if *found != expected => {
                let show = |columns: &[(String, String)]| {
                    let list: Vec<String> =
                        columns.iter().map(|(c, t)| format!("{c} {t}")).collect();
                    list.join(", ")
                };
                return Err(problem(format!(
                    "{} has ({}), expected ({})",
                    table.name,
                    show(found),
                    show(&expected)
                )));
            }
            Some(_) => {}
        }
    }
    match catalog
        .keys()
        .find(|name| TABLES.iter().all(|t| t.name != name.as_str()))
    {
        Some(extra) => Err(problem(format!("a table {extra} it does not know"))),
        None => Ok(()),
    }
}

/// Bars on standard error, one per table, only when a person is watching. They are
/// cleared at the end: the summary (or the error) says how it went.
struct Progress {
    bars: MultiProgress,
    style: ProgressStyle,
}

impl Progress {
    fn new() -> Self {
        let target = if std::io::stderr().is_terminal() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let style = ProgressStyle::with_template(
            "{prefix:<16} [{bar:30}] {human_pos:>11}/{human_len:<11} rows  {elapsed}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        Self {
            bars: MultiProgress::with_draw_target(target),
            style,
        }
    }

    fn table(&self, name: &'static str, rows: u64) -> ProgressBar {
        let bar = self.bars.add(ProgressBar::new(rows));
        bar.set_style(self.style.clone());
        bar.set_prefix(name);
        bar
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        let _ = self.bars.clear();
    }
}

// ---------------------------------------------------------------------------------------
// The two ends

/// What both a reader and a writer can tell about their end, inside their transaction.
#[async_trait]
trait Side: Send {
    /// How this backend's catalog spells a kind of column.
    fn type_name(&self) -> fn(Kind) -> &'static str;
    async fn catalog(&mut self) -> Result<Catalog, StoreError>;
    async fn count(&mut self, table: &Table) -> Result<u64, StoreError>;
}

/// The source, read in one snapshot: one table at a time, a chunk at a time.
#[async_trait]
trait Source: Side {
    async fn open_table(&mut self, table: &'static Table) -> Result<(), StoreError>;
    /// The next rows of the open table; `None` once it is exhausted.
    async fn next_chunk(&mut self) -> Result<Option<Vec<Row>>, StoreError>;
}

/// The target, written in one transaction that only [`Target::commit`] makes visible;
/// dropped without it, nothing was written.
#[async_trait]
trait Target: Side {
    /// Deletes every row of every table.
    async fn clear(&mut self) -> Result<(), StoreError>;
    async fn begin_table(&mut self, table: &'static Table) -> Result<(), StoreError>;
    async fn write_chunk(&mut self, rows: Vec<Row>) -> Result<(), StoreError>;
    async fn end_table(&mut self) -> Result<(), StoreError>;
    /// Brings what the backend derives from the rows up to date, then commits.
    async fn commit(self: Box<Self>) -> Result<(), StoreError>;
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Source,
    Target,
}

/// One end, connected and migrated.
struct Endpoint {
    /// The URL without its password, for messages.
    url: String,
    /// "source URL" or "target URL", for messages.
    name: String,
    db: Db,
}

enum Db {
    Sqlite {
        path: PathBuf,
        conn: SharedSqlite,
        /// The store's shared "in use" lock, held while the copy runs, so a restore
        /// cannot replace the file under it (D69).
        _in_use: std::fs::File,
    },
    Postgres(Client),
}

impl Endpoint {
    async fn open(url: &str, role: Role) -> Result<Self, CopyError> {
        let side = match role {
            Role::Source => "source",
            Role::Target => "target",
        };
        if let Some(path) = url.strip_prefix("sqlite://") {
            let path = Path::new(path);
            let url = format!("sqlite://{}", path.display());
            let name = format!("{side} {url}");
            if role == Role::Source && !path.exists() {
                return Err(CopyError::NoSource(path.display().to_string()));
            }
            // Opening the store applies its migrations exactly as `tagd serve` would.
            let store = sqlite::SqliteStore::open(path).await.at(&name)?;
            let in_use = sqlite::hold_in_use(path).at(&name)?;
            drop(store);
            let conn = Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .at(&name)?;
            conn.busy_timeout(Duration::from_secs(5)).at(&name)?;
            conn.pragma_update(None, "foreign_keys", "ON").at(&name)?;
            let found: i64 = conn
                .pragma_query_value(None, "user_version", |r| r.get(0))
                .at(&name)?;
            check_version(&name, found, sqlite::MIGRATIONS.len())?;
            return Ok(Self {
                url,
                name,
                db: Db::Sqlite {
                    path: path.to_path_buf(),
                    conn: SharedSqlite(Arc::new(Mutex::new(conn))),
                    _in_use: in_use,
                },
            });
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let config = postgres::parse_url(url).at(&format!("{side} {}", redact_url(url)))?;
            let url = postgres::describe(&config);
            let name = format!("{side} {url}");
            let mut client = postgres::connect(&config).await?;
            postgres::migrate(&mut client).await.at(&name)?;
            let found: i64 = client
                .query_one("SELECT version FROM tagd_schema", &[])
                .await
                .at(&name)?
                .try_get(0)
                .at(&name)?;
            check_version(&name, found, postgres::MIGRATIONS.len())?;
            return Ok(Self {
                url,
                name,
                db: Db::Postgres(client),
            });
        }
        Err(StoreError::UnsupportedUrl(redact_url(url)).into())
    }

    /// Equal for two ends that are one database, however their URLs spell it.
    async fn identity(&mut self) -> Result<String, CopyError> {
        match &self.db {
            Db::Sqlite { path, .. } => Ok(format!(
                "sqlite://{}",
                std::fs::canonicalize(path).at(&self.name)?.display()
            )),
            // The server's start time tells servers apart where host names may not; the
            // schema, two deployments in one database (`search_path`) apart.
            Db::Postgres(client) => client
                .query_one(
                    "SELECT format('%s.%s since %s', current_database(), current_schema(),
                                   pg_postmaster_start_time())",
                    &[],
                )
                .await
                .at(&self.name)?
                .try_get(0)
                .at(&self.name),
        }
    }

    /// Starts the snapshot the whole source is read in.
    async fn begin_read(&mut self) -> Result<Box<dyn Source + '_>, CopyError> {
        match &mut self.db {
            Db::Sqlite { conn, .. } => {
                // The first read takes the snapshot; WAL keeps it while others write.
                conn.run(|c| c.execute_batch("BEGIN"))
                    .await
                    .at(&self.name)?;
                Ok(Box::new(SqliteEnd::new(conn.clone())))
            }
            Db::Postgres(client) => {
                let tx = client
                    .build_transaction()
                    .isolation_level(IsolationLevel::RepeatableRead)
                    .read_only(true)
                    .start()
                    .await
                    .at(&self.name)?;
                Ok(Box::new(PostgresEnd::new(tx)))
            }
        }
    }

    /// Starts the transaction the whole target is written in, keeping other writers out
    /// of it from the emptiness check to the commit.
    async fn begin_write(&mut self) -> Result<Box<dyn Target + '_>, CopyError> {
        match &mut self.db {
            Db::Sqlite { conn, .. } => {
                let seq = conn
                    .run(|c| {
                        c.execute_batch("BEGIN IMMEDIATE")?;
                        sqlite::write_seq(c)
                    })
                    .await
                    .at(&self.name)?;
                let mut end = SqliteEnd::new(conn.clone());
                end.seq_before = seq;
                Ok(Box::new(end))
            }
            Db::Postgres(client) => {
                let tx = client.transaction().await.at(&self.name)?;
                tx.batch_execute(&format!("LOCK TABLE {} IN EXCLUSIVE MODE", all_tables()))
                    .await
                    .at(&self.name)?;
                Ok(Box::new(PostgresEnd::new(tx)))
            }
        }
    }
}

fn check_version(end: &str, found: i64, known: usize) -> Result<(), CopyError> {
    if found == known as i64 {
        return Ok(());
    }
    Err(CopyError::SchemaVersion {
        end: end.to_owned(),
        found,
        known: known as i64,
    })
}

// ---------------------------------------------------------------------------------------
// SQLite

#[cfg(test)]
mod tests;
