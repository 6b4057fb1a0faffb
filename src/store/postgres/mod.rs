//! PostgreSQL: the backend for several tagd processes sharing one database.
//!
//! The schema is kept in lock-step with SQLite's: migration N here creates the same
//! tables and columns as `migrations/sqlite/N`, and a test compares the two, so a copy
//! between backends maps column to column. Text columns use the "C" collation, so keys,
//! values and ids sort by their UTF-8 bytes exactly as in SQLite, whatever the
//! database's locale.
//!
//! Several tagd replicas may start at once on one database, so the migration runner
//! takes a row lock on the version row (`SELECT ... FOR UPDATE`) and applies one
//! migration per transaction: the others wait, then find the work done. A row lock
//! rather than an advisory lock, because CockroachDB and YugabyteDB accept the former
//! only. How writes stay correct across processes is told at [`PostgresStore`].

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{
    Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod, Runtime, Transaction,
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Config, IsolationLevel, NoTls, Row};

use super::rows::{
    access_key_at, domain_at, identity_at, project_at, project_column, resource_at, tag_at,
    token_at, user_at, TemporaryColumns, ACCESS_KEY_COLUMNS, ACCESS_KEY_CONTEXT, ACCESS_KEY_WIDTH,
    TOKEN_COLUMNS, TOKEN_CONTEXT, USER_COLUMNS,
};
use super::sql::{storable, Dialect, Param, SqlBuilder, PROJECT_TOTALS_SQL};
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
use rustc_hash::FxHashSet;

mod tag_writes;

use tag_writes::apply_batch;

/// Schema migrations, applied in order; the `tagd_schema` row records the last one.
pub(crate) const MIGRATIONS: &[&str] = &[
    include_str!("../../../migrations/postgres/0001_init.sql"),
    include_str!("../../../migrations/postgres/0002_sys_tags.sql"),
    include_str!("../../../migrations/postgres/0003_access_keys.sql"),
    include_str!("../../../migrations/postgres/0004_tag_index.sql"),
    include_str!("../../../migrations/postgres/0005_predefined_tags.sql"),
    include_str!("../../../migrations/postgres/0006_access_key_expiry.sql"),
    include_str!("../../../migrations/postgres/0007_drop_sql_tag_index.sql"),
    include_str!("../../../migrations/postgres/0008_credential_revocation.sql"),
    include_str!("../../../migrations/postgres/0009_tags_by_domain.sql"),
];

/// The version table: one row, created before any migration runs.
const VERSION_TABLE: &str = "CREATE TABLE IF NOT EXISTS tagd_schema (
        singleton BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (singleton),
        version   BIGINT NOT NULL
    );
    INSERT INTO tagd_schema (singleton, version) VALUES (TRUE, 0) ON CONFLICT DO NOTHING;";

/// Parses a `postgres://` or `postgresql://` URL.
pub fn parse_url(url: &str) -> Result<Config, StoreError> {
    url.parse::<Config>()
        .map_err(|e| StoreError::Database(format!("invalid PostgreSQL URL: {e}")))
}

/// Where a configuration points, for messages: hosts, port and database, never the
/// password.
pub fn describe(config: &Config) -> String {
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .map(|host| match host {
            tokio_postgres::config::Host::Tcp(name) => name.clone(),
            tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .collect();
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let database = config
        .get_dbname()
        .or(config.get_user())
        .unwrap_or("postgres");
    format!("postgres://{}:{port}/{database}", hosts.join(","))
}

/// Opens one connection; its I/O runs on a spawned task that ends with the client.
pub async fn connect(config: &Config) -> Result<Client, StoreError> {
    let (client, connection) =
        config
            .connect(NoTls)
            .await
            .map_err(|e| StoreError::Unreachable {
                at: describe(config),
                reason: explain(&e),
            })?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::warn!(%error, "PostgreSQL connection ended");
        }
    });
    Ok(client)
}

/// Brings the schema up to [`MIGRATIONS`]; refuses a schema newer than this binary.
pub async fn migrate(client: &mut Client) -> Result<(), StoreError> {
    create_version_table(client).await?;
    let known = MIGRATIONS.len() as i64;
    loop {
        let tx = client.transaction().await.map_err(db)?;
        let found: i64 = tx
            .query_one("SELECT version FROM tagd_schema FOR UPDATE", &[])
            .await
            .map_err(db)?
            .get(0);
        if found > known {
            return Err(StoreError::SchemaTooNew { found, known });
        }
        if found == known {
            tx.commit().await.map_err(db)?;
            return Ok(());
        }
        tx.batch_execute(MIGRATIONS[found as usize])
            .await
            .map_err(db)?;
        tx.execute("UPDATE tagd_schema SET version = $1", &[&(found + 1)])
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        tracing::info!(version = found + 1, "applied PostgreSQL migration");
    }
}

/// `CREATE TABLE IF NOT EXISTS` is not safe against itself: two replicas creating the
/// table at the same moment can both pass the check and one then fails on the catalog
/// ("type already exists", or the catalog's unique index). The loser retries and finds
/// the table there.
async fn create_version_table(client: &Client) -> Result<(), StoreError> {
    for _ in 0..3 {
        match client.batch_execute(VERSION_TABLE).await {
            Ok(()) => return Ok(()),
            Err(e)
                if e.code() == Some(&SqlState::UNIQUE_VIOLATION)
                    || e.code() == Some(&SqlState::DUPLICATE_TABLE)
                    || e.code() == Some(&SqlState::DUPLICATE_OBJECT) =>
            {
                continue
            }
            Err(e) => return Err(db(e)),
        }
    }
    client.batch_execute(VERSION_TABLE).await.map_err(db)
}

/// tokio-postgres prints a server error as just "db error", and a failed connection as
/// "error connecting to server": the server's own message and SQLSTATE, or the cause
/// underneath, are what an operator needs.
fn explain(error: &tokio_postgres::Error) -> String {
    if let Some(server) = error.as_db_error() {
        return format!("{} (SQLSTATE {})", server.message(), server.code().code());
    }
    match std::error::Error::source(error) {
        Some(cause) => format!("{error}: {cause}"),
        None => error.to_string(),
    }
}

fn db(error: tokio_postgres::Error) -> StoreError {
    StoreError::Database(explain(&error))
}

/// Settings of the connection pool.
#[derive(Debug, Clone, Copy)]
pub struct PoolOptions {
    /// Most connections open at once, per tagd process.
    pub max_connections: usize,
    /// How long a request waits for a free connection before failing.
    pub acquire_timeout: Duration,
}

impl Default for PoolOptions {
    fn default() -> Self {
        Self {
            max_connections: 16,
            acquire_timeout: Duration::from_secs(10),
        }
    }
}

/// How often a write transaction that lost a deadlock or a serialization conflict is
/// run again before the caller is told.
const WRITE_ATTEMPTS: u32 = 8;

/// The PostgreSQL store: a pool of connections, one transaction per call.
///
/// Several tagd processes may share the database. Every write that reads before it
/// writes (tag limits, quotas, "only if absent") first locks the rows it decides on
/// (`SELECT ... FOR UPDATE`, always in one global order), so two processes deciding on
/// the same resource take turns, under PostgreSQL's default READ COMMITTED isolation.
/// A transaction the server aborts anyway (a deadlock it detected, a serialization
/// failure on an engine that reports them) is retried from the start.
pub struct PostgresStore {
    pool: Pool,
    at: String,
    read_turns: ReadTurns,
    identity_epoch: IdentityEpoch,
    metrics: Arc<crate::metrics::StoreMetrics>,
}

/// Turns at the pool for the reads whose cost grows with a domain's data (tag listings
/// and resource queries), so that one tenant's heavy reads cannot take every connection
/// from the others' writes, from identity lookups and from `/readyz` (D86). A domain
/// holds at most half the pool at once, and all of these reads together leave a quarter
/// free; a read waits for its turn as long as it would for a connection.
struct ReadTurns {
    all: Arc<Semaphore>,
    per_domain: usize,
    domains: std::sync::Mutex<HashMap<String, Arc<Semaphore>>>,
    wait: Duration,
}

/// A read's turn, held until the read is done.
struct ReadTurn {
    _domain: OwnedSemaphorePermit,
    _all: OwnedSemaphorePermit,
}

/// Domains whose idle entries are kept before the map is swept.
const IDLE_DOMAIN_TURNS: usize = 64;

impl ReadTurns {
    fn new(options: PoolOptions) -> Self {
        let pool = options.max_connections.max(1);
        Self {
            all: Arc::new(Semaphore::new((pool - pool / 4).max(1))),
            per_domain: (pool / 2).max(1),
            domains: Default::default(),
            wait: options.acquire_timeout,
        }
    }

    async fn take(&self, domain: &str) -> Result<ReadTurn, StoreError> {
        let mine = {
            let mut domains = self
                .domains
                .lock()
                .map_err(|_| StoreError::Database("the read turns are poisoned".into()))?;
            if domains.len() > IDLE_DOMAIN_TURNS {
                // An entry only this map holds has no read running or waiting.
                domains.retain(|_, turns| Arc::strong_count(turns) > 1);
            }
            domains
                .entry(domain.to_owned())
                .or_insert_with(|| Arc::new(Semaphore::new(self.per_domain)))
                .clone()
        };
        let busy = || {
            StoreError::Database(
                "no turn for a read of this domain became free in time: too many of its reads are running"
                    .into(),
            )
        };
        let deadline = tokio::time::Instant::now() + self.wait;
        let domain = tokio::time::timeout_at(deadline, mine.acquire_owned())
            .await
            .map_err(|_| busy())?
            .map_err(|_| StoreError::Closed)?;
        let all = tokio::time::timeout_at(deadline, self.all.clone().acquire_owned())
            .await
            .map_err(|_| busy())?
            .map_err(|_| StoreError::Closed)?;
        Ok(ReadTurn {
            _domain: domain,
            _all: all,
        })
    }
}

/// Rows of an unpaged key-value listing read from PostgreSQL at a time.
const KEY_VALUE_CHUNK: i32 = 10_000;

/// Whether a scope can hold anything: a domain and a project that could be stored.
fn scope_can_match(scope: &TagScope) -> bool {
    storable(&scope.domain_id) && scope.projects.iter().any(|p| storable(p))
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(error: tokio_postgres::Error) -> Self {
        db(error)
    }
}

fn pool_error(at: &str, error: PoolError) -> StoreError {
    match error {
        PoolError::Backend(e) => StoreError::Unreachable {
            at: at.to_owned(),
            reason: explain(&e),
        },
        PoolError::Timeout(_) => StoreError::Database(format!(
            "no PostgreSQL connection became free in time ({at}); raise the pool size or the database's capacity"
        )),
        PoolError::Closed => StoreError::Closed,
        e => StoreError::Database(e.to_string()),
    }
}

/// Whether PostgreSQL aborted a transaction that may simply be run again.
fn retryable(error: &tokio_postgres::Error) -> bool {
    error.code() == Some(&SqlState::T_R_DEADLOCK_DETECTED)
        || error.code() == Some(&SqlState::T_R_SERIALIZATION_FAILURE)
}

fn unique_violation(error: tokio_postgres::Error, what: String) -> StoreError {
    if error.code() == Some(&SqlState::UNIQUE_VIOLATION) {
        StoreError::AlreadyExists(what)
    } else {
        db(error)
    }
}

type Params<'a> = Vec<&'a (dyn ToSql + Sync)>;

/// The parameters of a built query, in the form tokio-postgres takes them.
fn bound(params: &[Param]) -> Params<'_> {
    params
        .iter()
        .map(|p| match p {
            Param::Text(s) => s as &(dyn ToSql + Sync),
            Param::Int(i) => i as &(dyn ToSql + Sync),
        })
        .collect()
}

/// Whether every string could be stored (and so could match a stored row).
fn all_storable(strings: &[&str]) -> bool {
    strings.iter().all(|s| storable(s))
}

fn ref_storable(at: &ResourceRef) -> bool {
    all_storable(&[
        &at.domain_id,
        &at.project_id,
        &at.resource_type,
        &at.resource_id,
    ])
}

fn ref_key(at: &ResourceRef) -> (&str, &str, &str, &str) {
    (
        &at.domain_id,
        &at.project_id,
        &at.resource_type,
        &at.resource_id,
    )
}

impl PostgresStore {
    /// Connects, applies pending migrations and opens the pool. Fails when the server
    /// cannot be reached or its schema is newer than this binary.
    pub async fn open(url: &str, options: PoolOptions) -> Result<Self, StoreError> {
        let mut config = parse_url(url)?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        let at = describe(&config);
        let mut client = connect(&config).await?;
        migrate(&mut client).await?;
        drop(client);
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(options.max_connections.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(options.acquire_timeout))
            .create_timeout(Some(options.acquire_timeout))
            .build()
            .map_err(|e| StoreError::Database(format!("cannot build the connection pool: {e}")))?;
        Ok(Self {
            pool,
            read_turns: ReadTurns::new(options),
            at,
            identity_epoch: Default::default(),
            metrics: Arc::new(crate::metrics::StoreMetrics::new("postgres")),
        })
    }

    async fn client(&self) -> Result<Object, StoreError> {
        self.pool.get().await.map_err(|e| pool_error(&self.at, e))
    }

    /// Runs one statement and returns how many rows it changed.
    async fn execute(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64, StoreError> {
        let client = self.client().await?;
        let statement = client.prepare_cached(sql).await?;
        Ok(client.execute(&statement, params).await?)
    }

    async fn query(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, StoreError> {
        let client = self.client().await?;
        let statement = client.prepare_cached(sql).await?;
        Ok(client.query(&statement, params).await?)
    }

    async fn query_opt(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, StoreError> {
        let client = self.client().await?;
        let statement = client.prepare_cached(sql).await?;
        Ok(client.query_opt(&statement, params).await?)
    }

    /// Reads one resource's rows of `table`, sorted by key; `None` if it is not
    /// registered. One statement: the resource and its tags come from one snapshot.
    async fn read_tags(
        &self,
        table: &str,
        at: &ResourceRef,
    ) -> Result<Option<Vec<Tag>>, StoreError> {
        if !ref_storable(at) {
            return Ok(None);
        }
        let rows = self
            .query(
                &format!(
                    "SELECT t.key, t.value FROM resources r LEFT JOIN {table} t ON t.rid = r.rid
                     WHERE r.domain_id = $1 AND r.project_id = $2 AND r.resource_type = $3 AND r.resource_id = $4
                     ORDER BY t.key"
                ),
                &[&at.domain_id, &at.project_id, &at.resource_type, &at.resource_id],
            )
            .await?;
        if rows.is_empty() {
            return Ok(None);
        }
        let mut tags = Vec::with_capacity(rows.len());
        for row in &rows {
            if row.try_get::<_, Option<String>>(0)?.is_some() {
                tags.push(tag_at(row, 0)?);
            }
        }
        Ok(Some(tags))
    }

    /// One page of distinct keys, or of one key's distinct values, in use in a scope.
    ///
    /// A `DISTINCT` over the join of tags and resources reads every tag in the scope
    /// (seconds at a million resources). Instead the distinct keys (or values) of the
    /// scope's domain are walked in order straight off the `(domain_id, key, value, rid)`
    /// index, one probe each (a "skip scan" by recursive CTE), and each is kept if some
    /// tag with it belongs to a resource in the scope, which usually the first one
    /// probed does; the walk stops once the page is full. The walk never leaves the
    /// caller's domain: another tenant's keys cost it nothing (D85).
    async fn distinct_page(
        &self,
        scope: &TagScope,
        values_of: Option<&str>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        if !scope_can_match(scope) {
            return Ok(Vec::new());
        }
        let mut sql = SqlBuilder::new(Dialect::Postgres);
        let domain = sql.equals("t.domain_id", &scope.domain_id);
        let (column, first, next, exists) = match values_of {
            None => {
                let start = match after {
                    Some(a) => format!("{domain} AND {}", sql.after("t.key", a)),
                    None => domain.clone(),
                };
                (
                    "t.key",
                    start,
                    format!("{domain} AND t.key > walk.item"),
                    format!("{domain} AND t.key = walk.item"),
                )
            }
            Some(key) => {
                let key = sql.equals("t.key", key);
                let mut start = format!("{domain} AND {key}");
                if let Some(a) = after {
                    start = format!("{start} AND {}", sql.after("t.value", a));
                }
                let next = format!("{domain} AND {key} AND t.value > walk.item");
                let exists = format!("{domain} AND {key} AND t.value = walk.item");
                ("t.value", start, next, exists)
            }
        };
        let turn = self.read_turns.take(&scope.domain_id).await?;
        let scope = sql.scope_where(scope);
        let limit = sql.int(limit.min(i64::MAX as usize) as i64);
        let rows = self
            .query(
                &format!(
                    "WITH RECURSIVE walk(item) AS (
                         SELECT (SELECT min({column}) FROM tags t WHERE {first})
                       UNION ALL
                         SELECT (SELECT min({column}) FROM tags t WHERE {next})
                         FROM walk WHERE walk.item IS NOT NULL
                     )
                     SELECT walk.item FROM walk
                     WHERE walk.item IS NOT NULL AND EXISTS (
                         SELECT 1 FROM tags t JOIN resources r ON r.rid = t.rid
                         WHERE {exists} AND {scope})
                     LIMIT {limit}"
                ),
                &bound(sql.params()),
            )
            .await?;
        drop(turn);
        rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
    }
}

/// How many resources a query keeps: one statement, so one snapshot by itself, or the
/// caller's transaction's.
async fn count_in(
    tx: &impl deadpool_postgres::GenericClient,
    q: &ResourceQuery,
) -> Result<u64, StoreError> {
    let mut sql = SqlBuilder::new(Dialect::Postgres);
    let filter = sql.query_where(q);
    let n: i64 = tx
        .query_one(
            &format!("SELECT count(*) FROM resources r WHERE {filter}"),
            &bound(sql.params()),
        )
        .await?
        .try_get(0)?;
    Ok(n as u64)
}

/// The rows of `table` of many resources, by rid, each sorted by key.
async fn tags_of_rids(
    tx: &Transaction<'_>,
    table: &str,
    rids: &[i64],
) -> Result<HashMap<i64, Vec<Tag>>, StoreError> {
    let select = tx
        .prepare_cached(&format!(
            "SELECT rid, key, value FROM {table} WHERE rid = ANY($1) ORDER BY rid, key"
        ))
        .await?;
    let mut out: HashMap<i64, Vec<Tag>> = HashMap::new();
    for row in tx.query(&select, &[&rids]).await? {
        out.entry(row.try_get(0)?)
            .or_default()
            .push(tag_at(&row, 1)?);
    }
    Ok(out)
}

#[async_trait]
impl Store for PostgresStore {
    async fn insert_domain(&self, domain: &Domain) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO domains (id, name, enabled, created_at) VALUES ($1, $2, $3, $4)",
                &[&domain.id, &domain.name, &domain.enabled, &now_unix()],
            )
            .await
            .map_err(|e| unique_violation(e, format!("domain {:?}", domain.name)))?;
        Ok(())
    }

    async fn domain(&self, id: &str) -> Result<Option<Domain>, StoreError> {
        if !storable(id) {
            return Ok(None);
        }
        self.query_opt(
            "SELECT id, name, enabled FROM domains WHERE id = $1",
            &[&id],
        )
        .await?
        .as_ref()
        .map(|r| domain_at(r, 0))
        .transpose()
    }

    async fn domain_by_name(&self, name: &str) -> Result<Option<Domain>, StoreError> {
        if !storable(name) {
            return Ok(None);
        }
        self.query_opt(
            "SELECT id, name, enabled FROM domains WHERE name = $1",
            &[&name],
        )
        .await?
        .as_ref()
        .map(|r| domain_at(r, 0))
        .transpose()
    }

    async fn list_domains(&self) -> Result<Vec<Domain>, StoreError> {
        self.query("SELECT id, name, enabled FROM domains ORDER BY name", &[])
            .await?
            .iter()
            .map(|r| domain_at(r, 0))
            .collect()
    }

    async fn delete_domain(&self, id: &str) -> Result<bool, StoreError> {
        self.identity_epoch
            .after(async {
                if !storable(id) {
                    return Ok(false);
                }
                let mut client = self.client().await?;
                let tx = client.transaction().await?;
                tx.execute("DELETE FROM tokens WHERE domain_id = $1", &[&id])
                    .await?;
                let deleted = tx
                    .execute("DELETE FROM domains WHERE id = $1", &[&id])
                    .await?;
                tx.commit().await?;
                Ok(deleted > 0)
            })
            .await
    }

    async fn insert_first_identity(
        &self,
        domain: &Domain,
        project: &Project,
        user: &User,
    ) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        // Replicas starting together on an empty database: the schema row serialises
        // them, so exactly one creates the first identity.
        tx.execute("SELECT version FROM tagd_schema FOR UPDATE", &[])
            .await?;
        let any: bool = tx
            .query_one("SELECT EXISTS (SELECT 1 FROM domains)", &[])
            .await?
            .try_get(0)?;
        if any {
            return Ok(false);
        }
        let now = now_unix();
        tx.execute(
            "INSERT INTO domains (id, name, enabled, created_at) VALUES ($1, $2, $3, $4)",
            &[&domain.id, &domain.name, &domain.enabled, &now],
        )
        .await?;
        tx.execute(
            "INSERT INTO projects (id, domain_id, name, enabled, created_at) VALUES ($1, $2, $3, $4, $5)",
            &[&project.id, &project.domain_id, &project.name, &project.enabled, &now],
        )
        .await?;
        tx.execute(
            "INSERT INTO users (id, domain_id, name, password_hash, is_admin, enabled, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                &user.id,
                &user.domain_id,
                &user.name,
                &user.password_hash,
                &user.is_admin,
                &user.enabled,
                &now,
            ],
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn insert_project(&self, project: &Project) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO projects (id, domain_id, name, enabled, created_at) VALUES ($1, $2, $3, $4, $5)",
                &[&project.id, &project.domain_id, &project.name, &project.enabled, &now_unix()],
            )
            .await
            .map_err(|e| unique_violation(e, format!("project {:?}", project.name)))?;
        Ok(())
    }

    async fn project(&self, id: &str) -> Result<Option<Project>, StoreError> {
        if !storable(id) {
            return Ok(None);
        }
        self.query_opt(
            "SELECT id, domain_id, name, enabled FROM projects WHERE id = $1",
            &[&id],
        )
        .await?
        .as_ref()
        .map(|r| project_at(r, 0))
        .transpose()
    }

    async fn list_projects(&self, domain_id: Option<&str>) -> Result<Vec<Project>, StoreError> {
        if !domain_id.is_none_or(storable) {
            return Ok(Vec::new());
        }
        self.query(
            "SELECT id, domain_id, name, enabled FROM projects
             WHERE $1::text IS NULL OR domain_id = $1 ORDER BY domain_id, name",
            &[&domain_id],
        )
        .await?
        .iter()
        .map(|r| project_at(r, 0))
        .collect()
    }

    async fn delete_project(&self, id: &str) -> Result<bool, StoreError> {
        self.identity_epoch
            .after(async {
                if !storable(id) {
                    return Ok(false);
                }
                let mut client = self.client().await?;
                let tx = client.transaction().await?;
                tx.execute("DELETE FROM resources WHERE project_id = $1", &[&id])
                    .await?;
                tx.execute("DELETE FROM tokens WHERE project_id = $1", &[&id])
                    .await?;
                tx.execute("DELETE FROM access_keys WHERE project_id = $1", &[&id])
                    .await?;
                let deleted = tx
                    .execute("DELETE FROM projects WHERE id = $1", &[&id])
                    .await?;
                tx.commit().await?;
                Ok(deleted > 0)
            })
            .await
    }

    async fn insert_user(&self, user: &User) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO users (id, domain_id, name, password_hash, is_admin, enabled, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &[
                    &user.id,
                    &user.domain_id,
                    &user.name,
                    &user.password_hash,
                    &user.is_admin,
                    &user.enabled,
                    &now_unix(),
                ],
            )
            .await
            .map_err(|e| unique_violation(e, format!("user {:?}", user.name)))?;
        Ok(())
    }

    async fn user(&self, id: &str) -> Result<Option<User>, StoreError> {
        if !storable(id) {
            return Ok(None);
        }
        self.query_opt(
            &format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"),
            &[&id],
        )
        .await?
        .map(|r| user_at(&r, 0))
        .transpose()
    }

    async fn user_by_name(&self, domain_id: &str, name: &str) -> Result<Option<User>, StoreError> {
        if !all_storable(&[domain_id, name]) {
            return Ok(None);
        }
        self.query_opt(
            &format!("SELECT {USER_COLUMNS} FROM users WHERE domain_id = $1 AND name = $2"),
            &[&domain_id, &name],
        )
        .await?
        .map(|r| user_at(&r, 0))
        .transpose()
    }

    async fn list_users(&self, domain_id: &str) -> Result<Vec<User>, StoreError> {
        if !storable(domain_id) {
            return Ok(Vec::new());
        }
        self.query(
            &format!("SELECT {USER_COLUMNS} FROM users WHERE domain_id = $1 ORDER BY name"),
            &[&domain_id],
        )
        .await?
        .iter()
        .map(|r| user_at(r, 0))
        .collect()
    }

    async fn set_password_hash(&self, user_id: &str, hash: &str) -> Result<bool, StoreError> {
        if !storable(user_id) {
            return Ok(false);
        }
        // Counted after the write, so cached credential lookups do not outlive it.
        self.identity_epoch
            .after(async {
                let mut client = self.client().await?;
                let tx = client.transaction().await?;
                let changed = tx
                    .execute(
                        "UPDATE users SET password_hash = $2 WHERE id = $1",
                        &[&user_id, &hash],
                    )
                    .await?;
                tx.execute(
                    "UPDATE tokens SET revoked = TRUE WHERE user_id = $1 AND NOT revoked",
                    &[&user_id],
                )
                .await?;
                tx.commit().await?;
                Ok(changed > 0)
            })
            .await
    }

    async fn delete_user(&self, id: &str) -> Result<bool, StoreError> {
        self.identity_epoch
            .after(async {
                if !storable(id) {
                    return Ok(false);
                }
                Ok(self
                    .execute("DELETE FROM users WHERE id = $1", &[&id])
                    .await?
                    > 0)
            })
            .await
    }

    async fn insert_token(&self, token: &TokenRecord) -> Result<(), StoreError> {
        let project_id = project_column(&token.scope);
        let methods = serde_json::to_string(&token.methods)
            .map_err(|e| StoreError::Database(e.to_string()))?;
        self.execute(
            "INSERT INTO tokens (token_hash, user_id, domain_id, project_id, methods, issued_at, expires_at, revoked)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            &[
                &token.token_hash,
                &token.user_id,
                &token.domain_id,
                &project_id,
                &methods,
                &token.issued_at,
                &token.expires_at,
                &token.revoked,
            ],
        )
        .await?;
        // Expired tokens are useless; sweeping a few per issue keeps the table bounded.
        // SKIP LOCKED: replicas sweeping at once share the work instead of queueing.
        self.execute(
            "DELETE FROM tokens WHERE token_hash IN
             (SELECT token_hash FROM tokens WHERE expires_at < $1 LIMIT 16 FOR UPDATE SKIP LOCKED)",
            &[&now_unix()],
        )
        .await?;
        Ok(())
    }

    async fn token(&self, token_hash: &str) -> Result<Option<TokenRecord>, StoreError> {
        if !storable(token_hash) {
            return Ok(None);
        }
        self.query_opt(
            &format!("SELECT {TOKEN_COLUMNS} FROM tokens t WHERE t.token_hash = $1"),
            &[&token_hash],
        )
        .await?
        .map(|r| token_at(&r, 0))
        .transpose()
    }

    async fn revoke_token(&self, token_hash: &str) -> Result<bool, StoreError> {
        self.identity_epoch
            .after(async {
                if !storable(token_hash) {
                    return Ok(false);
                }
                Ok(self
                    .execute(
                        "UPDATE tokens SET revoked = TRUE WHERE token_hash = $1 AND NOT revoked",
                        &[&token_hash],
                    )
                    .await?
                    > 0)
            })
            .await
    }

    fn identity_epoch(&self) -> u64 {
        self.identity_epoch.get()
    }

    async fn token_context(&self, token_hash: &str) -> Result<Option<TokenContext>, StoreError> {
        if !storable(token_hash) {
            return Ok(None);
        }
        let row = self.query_opt(&TOKEN_CONTEXT, &[&token_hash]).await?;
        let Some(r) = row else { return Ok(None) };
        let (user, domain, project) = identity_at(&r, 8)?;
        Ok(Some(TokenContext {
            token: token_at(&r, 0)?,
            user,
            domain,
            project,
        }))
    }

    async fn add_predefined_tags(
        &self,
        domain_id: &str,
        tags: &[(String, String)],
        max: usize,
    ) -> Result<bool, StoreError> {
        // One row per pair: an upsert may not touch a row twice.
        let pairs: BTreeSet<&(String, String)> = tags.iter().collect();
        let keys: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
        let values: Vec<&str> = pairs.iter().map(|(_, v)| v.as_str()).collect();
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        // The domain's row serialises quota checks across processes.
        tx.execute(
            "SELECT 1 FROM domains WHERE id = $1 FOR UPDATE",
            &[&domain_id],
        )
        .await?;
        tx.execute(
            "INSERT INTO predefined_tags (domain_id, key, value, updated_at)
             SELECT $1, k, v, $4 FROM unnest($2::text[], $3::text[]) AS n(k, v)
             ON CONFLICT (domain_id, key, value) DO UPDATE SET updated_at = excluded.updated_at",
            &[&domain_id, &keys, &values, &now_unix()],
        )
        .await?;
        let held: i64 = tx
            .query_one(
                "SELECT count(*) FROM predefined_tags WHERE domain_id = $1",
                &[&domain_id],
            )
            .await?
            .try_get(0)?;
        if held as usize > max {
            tx.rollback().await?;
            return Ok(false);
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn remove_predefined_tags(
        &self,
        domain_id: &str,
        tags: &[(String, String)],
    ) -> Result<(), StoreError> {
        let keys: Vec<&str> = tags.iter().map(|(k, _)| k.as_str()).collect();
        let values: Vec<&str> = tags.iter().map(|(_, v)| v.as_str()).collect();
        self.execute(
            "DELETE FROM predefined_tags p USING unnest($2::text[], $3::text[]) AS g(k, v)
             WHERE p.domain_id = $1 AND p.key = g.k AND p.value = g.v",
            &[&domain_id, &keys, &values],
        )
        .await?;
        Ok(())
    }

    async fn predefined_tags(&self, domain_id: &str) -> Result<Vec<PredefinedTag>, StoreError> {
        if !storable(domain_id) {
            return Ok(Vec::new());
        }
        self.query(
            "SELECT key, value, updated_at FROM predefined_tags WHERE domain_id = $1",
            &[&domain_id],
        )
        .await?
        .iter()
        .map(|r| {
            Ok(PredefinedTag {
                key: r.try_get(0)?,
                value: r.try_get(1)?,
                updated_at: r.try_get(2)?,
            })
        })
        .collect()
    }

    async fn replace_predefined_tag(
        &self,
        domain_id: &str,
        old: &(String, String),
        new: &(String, String),
    ) -> Result<Replaced, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        tx.execute(
            "SELECT 1 FROM domains WHERE id = $1 FOR UPDATE",
            &[&domain_id],
        )
        .await?;
        let exists = "SELECT EXISTS (SELECT 1 FROM predefined_tags WHERE domain_id = $1 AND key = $2 AND value = $3)";
        let old_there: bool = tx
            .query_one(exists, &[&domain_id, &old.0, &old.1])
            .await?
            .try_get(0)?;
        if !old_there {
            return Ok(Replaced::OldMissing);
        }
        let new_there: bool = tx
            .query_one(exists, &[&domain_id, &new.0, &new.1])
            .await?
            .try_get(0)?;
        if new_there {
            return Ok(Replaced::NewExists);
        }
        tx.execute(
            "UPDATE predefined_tags SET key = $4, value = $5, updated_at = $6
             WHERE domain_id = $1 AND key = $2 AND value = $3",
            &[&domain_id, &old.0, &old.1, &new.0, &new.1, &now_unix()],
        )
        .await?;
        tx.commit().await?;
        Ok(Replaced::Done)
    }

    async fn readiness(&self) -> Result<SchemaVersion, StoreError> {
        let found: i64 = self
            .query_opt("SELECT version FROM tagd_schema", &[])
            .await?
            .map(|r| r.try_get(0))
            .transpose()?
            .unwrap_or(0);
        Ok(SchemaVersion {
            found,
            expected: MIGRATIONS.len() as i64,
        })
    }

    async fn setting(&self, name: &str) -> Result<Option<String>, StoreError> {
        self.query_opt("SELECT value FROM settings WHERE name = $1", &[&name])
            .await?
            .map(|r| Ok(r.try_get(0)?))
            .transpose()
    }

    async fn claim_setting(&self, name: &str, value: &str) -> Result<String, StoreError> {
        // Two statements, not one transaction: under READ COMMITTED the select sees the
        // row whichever process inserted it.
        self.execute(
            "INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
            &[&name, &value],
        )
        .await?;
        let row = self
            .query_opt("SELECT value FROM settings WHERE name = $1", &[&name])
            .await?
            .ok_or_else(|| StoreError::Database(format!("the setting {name} vanished")))?;
        Ok(row.try_get(0)?)
    }

    async fn insert_access_key(
        &self,
        key: &AccessKey,
        max_permanent: usize,
    ) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        if key.temporary.is_none() {
            // The user's row serialises permanent-key counts across processes.
            tx.execute(
                "SELECT 1 FROM users WHERE id = $1 FOR UPDATE",
                &[&key.user_id],
            )
            .await?;
            let held: i64 = tx
                .query_one(
                    "SELECT count(*) FROM access_keys WHERE user_id = $1 AND security_token_hash IS NULL",
                    &[&key.user_id],
                )
                .await?
                .try_get(0)?;
            if held as usize >= max_permanent {
                return Ok(false);
            }
        }
        // Temporary keys are never looked at after they expire; sweep a few.
        tx.execute(
            "DELETE FROM access_keys WHERE access IN
             (SELECT access FROM access_keys WHERE expires_at < $1 LIMIT 16 FOR UPDATE SKIP LOCKED)",
            &[&now_unix()],
        )
        .await?;
        let temporary = TemporaryColumns::of(key);
        tx.execute(
            "INSERT INTO access_keys (access, user_id, secret, status, description, created_at,
                                      security_token_hash, expires_at, project_id, source_token_hash,
                                      source_access)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            &[
                &key.access,
                &key.user_id,
                &key.sealed_secret,
                &key.status.as_str(),
                &key.description,
                &key.created_at,
                &temporary.security_token_hash,
                &temporary.expires_at,
                &temporary.project_id,
                &temporary.source_token_hash,
                &temporary.source_access,
            ],
        )
        .await
        .map_err(|e| unique_violation(e, format!("access key {}", key.access)))?;
        tx.commit().await?;
        Ok(true)
    }

    async fn access_key_context(
        &self,
        access: &str,
    ) -> Result<Option<AccessKeyContext>, StoreError> {
        if !storable(access) {
            return Ok(None);
        }
        let row = self.query_opt(&ACCESS_KEY_CONTEXT, &[&access]).await?;
        let Some(r) = row else { return Ok(None) };
        let (user, domain, project) = identity_at(&r, ACCESS_KEY_WIDTH)?;
        Ok(Some(AccessKeyContext {
            key: access_key_at(&r, 0)?,
            user,
            domain,
            project,
        }))
    }

    async fn list_access_keys(&self, user_id: &str) -> Result<Vec<AccessKey>, StoreError> {
        if !storable(user_id) {
            return Ok(Vec::new());
        }
        self.query(
            &format!(
                "SELECT {ACCESS_KEY_COLUMNS} FROM access_keys k
                 WHERE k.user_id = $1 AND k.security_token_hash IS NULL
                 ORDER BY k.created_at, k.access"
            ),
            &[&user_id],
        )
        .await?
        .iter()
        .map(|r| access_key_at(r, 0))
        .collect()
    }

    async fn update_access_key(
        &self,
        access: &str,
        status: Option<KeyStatus>,
        description: Option<&str>,
    ) -> Result<bool, StoreError> {
        self.identity_epoch
            .after(async {
                if !storable(access) {
                    return Ok(false);
                }
                Ok(self
                    .execute(
                        "UPDATE access_keys SET status = coalesce($2, status), description = coalesce($3, description)
                         WHERE access = $1",
                        &[&access, &status.map(KeyStatus::as_str), &description],
                    )
                    .await?
                    > 0)
            })
            .await
    }

    async fn delete_access_key(&self, access: &str) -> Result<bool, StoreError> {
        self.identity_epoch
            .after(async {
                if !storable(access) {
                    return Ok(false);
                }
                Ok(self
                    .execute("DELETE FROM access_keys WHERE access = $1", &[&access])
                    .await?
                    > 0)
            })
            .await
    }

    async fn register_resources(&self, resources: &[Resource]) -> Result<usize, StoreError> {
        // One global order (stable, so the last name given for a resource wins): two
        // registrations over the same resources never wait on each other in a cycle.
        let mut sorted: Vec<&Resource> = resources.iter().collect();
        sorted.sort_by(|a, b| ref_key(&a.at).cmp(&ref_key(&b.at)));
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let insert = tx
            .prepare_cached(
                "INSERT INTO resources (domain_id, project_id, resource_type, resource_id, name, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (domain_id, project_id, resource_type, resource_id) DO NOTHING
                 RETURNING rid",
            )
            .await?;
        let rename = tx
            .prepare_cached(
                "UPDATE resources SET name = $5
                 WHERE domain_id = $1 AND project_id = $2 AND resource_type = $3 AND resource_id = $4",
            )
            .await?;
        let now = now_unix();
        let mut created = 0;
        for r in sorted {
            let at = &r.at;
            let key: [&(dyn ToSql + Sync); 5] = [
                &at.domain_id,
                &at.project_id,
                &at.resource_type,
                &at.resource_id,
                &r.name,
            ];
            if tx
                .query_opt(&insert, &[key[0], key[1], key[2], key[3], key[4], &now])
                .await?
                .is_some()
            {
                created += 1;
            } else {
                tx.execute(&rename, &key).await?;
            }
        }
        tx.commit().await?;
        Ok(created)
    }

    async fn list_resources(&self, filter: &ResourceFilter) -> Result<Vec<Resource>, StoreError> {
        let f = filter;
        let strings = [&f.domain_id, &f.project_id, &f.resource_type];
        if !strings.iter().all(|s| s.as_deref().is_none_or(storable)) {
            return Ok(Vec::new());
        }
        let limit = f.limit.map(|l| l.min(i64::MAX as usize) as i64);
        self.query(
            "SELECT domain_id, project_id, resource_type, resource_id, name FROM resources
             WHERE ($1::text IS NULL OR domain_id = $1) AND ($2::text IS NULL OR project_id = $2)
               AND ($3::text IS NULL OR resource_type = $3)
             ORDER BY domain_id, project_id, resource_type, resource_id
             LIMIT $4 OFFSET $5",
            &[
                &f.domain_id,
                &f.project_id,
                &f.resource_type,
                &limit,
                &(f.offset.min(i64::MAX as usize) as i64),
            ],
        )
        .await?
        .iter()
        .map(|r| resource_at(r, 0))
        .collect()
    }

    async fn remove_resources(&self, at: &[ResourceRef]) -> Result<usize, StoreError> {
        let mut sorted: Vec<&ResourceRef> = at.iter().filter(|a| ref_storable(a)).collect();
        sorted.sort_by(|a, b| ref_key(a).cmp(&ref_key(b)));
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let delete = tx
            .prepare_cached(
                "DELETE FROM resources
                 WHERE domain_id = $1 AND project_id = $2 AND resource_type = $3 AND resource_id = $4",
            )
            .await?;
        let mut removed = 0;
        for r in sorted {
            removed += tx
                .execute(
                    &delete,
                    &[
                        &r.domain_id,
                        &r.project_id,
                        &r.resource_type,
                        &r.resource_id,
                    ],
                )
                .await?;
        }
        tx.commit().await?;
        Ok(removed as usize)
    }

    async fn apply_tags(&self, batch: TagBatch) -> Result<Vec<ItemOutcome>, StoreError> {
        let mut attempt = 1;
        loop {
            let mut client = self.client().await?;
            match apply_batch(&mut client, &batch).await {
                Err(e) if retryable(&e) && attempt < WRITE_ATTEMPTS => {
                    tracing::debug!(error = %e, attempt, "tag batch aborted by the database; retrying");
                    attempt += 1;
                    // A little jitter so that the losers of a deadlock do not collide again.
                    let pause = rand::random::<u64>() % (5 * u64::from(attempt));
                    tokio::time::sleep(Duration::from_millis(pause)).await;
                }
                other => return Ok(other?),
            }
        }
    }

    async fn find_resources(
        &self,
        query: &ResourceQuery,
        offset: u64,
        limit: u64,
    ) -> Result<FoundPage, StoreError> {
        let _turn = self.read_turns.take(&query.domain_id).await?;
        let mut client = self.client().await?;
        // One snapshot for the count, the page and its tags.
        let tx = client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await?;
        let total = count_in(&tx, query).await?;
        let mut sql = SqlBuilder::new(Dialect::Postgres);
        let filter = sql.query_where(query);
        let limit = sql.int(limit.min(i64::MAX as u64) as i64);
        let offset = sql.int(offset.min(i64::MAX as u64) as i64);
        let rows = tx
            .query(
                &format!(
                    "SELECT r.rid, r.domain_id, r.project_id, r.resource_type, r.resource_id, r.name
                     FROM resources r WHERE {filter}
                     ORDER BY r.resource_type, r.resource_id, r.project_id LIMIT {limit} OFFSET {offset}"
                ),
                &bound(sql.params()),
            )
            .await?;
        let mut page = Vec::with_capacity(rows.len());
        for row in &rows {
            page.push((row.try_get::<_, i64>(0)?, resource_at(row, 1)?));
        }
        let rids: Vec<i64> = page.iter().map(|(rid, _)| *rid).collect();
        let mut tags = tags_of_rids(&tx, "tags", &rids).await?;
        let mut sys = tags_of_rids(&tx, "sys_tags", &rids).await?;
        tx.commit().await?;
        Ok(FoundPage {
            resources: page
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

    async fn count_resources(&self, query: &ResourceQuery) -> Result<u64, StoreError> {
        let _turn = self.read_turns.take(&query.domain_id).await?;
        count_in(&self.client().await?, query).await
    }

    async fn tag_keys(
        &self,
        scope: &TagScope,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        self.distinct_page(scope, None, after, limit).await
    }

    async fn tag_values(
        &self,
        scope: &TagScope,
        key: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        self.distinct_page(scope, Some(key), after, limit).await
    }

    async fn key_values(&self, scope: &TagScope) -> Result<Vec<KeyValues>, StoreError> {
        if !scope_can_match(scope) {
            return Ok(Vec::new());
        }
        let _turn = self.read_turns.take(&scope.domain_id).await?;
        let mut sql = SqlBuilder::new(Dialect::Postgres);
        let filter = sql.scope_where(scope);
        let mut client = self.client().await?;
        let tx = client.build_transaction().read_only(true).start().await?;
        let statement = tx
            .prepare(&format!(
                "SELECT DISTINCT t.key, t.value FROM tags t JOIN resources r ON r.rid = t.rid
                 WHERE {filter} ORDER BY t.key, t.value"
            ))
            .await?;
        // Read through a portal, a chunk at a time: only the strings are kept, never
        // every row's buffer at once.
        let portal = tx.bind(&statement, &bound(sql.params())).await?;
        let mut out: Vec<KeyValues> = Vec::new();
        loop {
            let rows = tx.query_portal(&portal, KEY_VALUE_CHUNK).await?;
            for row in &rows {
                let (key, value): (&str, String) = (row.try_get(0)?, row.try_get(1)?);
                match out.last_mut() {
                    Some(kv) if kv.key == key => kv.values.push(value),
                    _ => out.push(KeyValues {
                        key: key.to_owned(),
                        values: vec![value],
                    }),
                }
            }
            if rows.len() < KEY_VALUE_CHUNK as usize {
                break;
            }
        }
        tx.commit().await?;
        Ok(out)
    }

    async fn resource_sys_tags(&self, at: &ResourceRef) -> Result<Option<Vec<Tag>>, StoreError> {
        self.read_tags("sys_tags", at).await
    }

    async fn resource_tags(&self, at: &ResourceRef) -> Result<Option<Vec<Tag>>, StoreError> {
        self.read_tags("tags", at).await
    }

    async fn project_totals(&self) -> Result<Vec<ProjectTotals>, StoreError> {
        let rows = self.query(PROJECT_TOTALS_SQL, &[]).await?;
        Ok(rows
            .iter()
            .map(|r| ProjectTotals {
                domain_id: r.get(0),
                project_id: r.get(1),
                resources: r.get::<_, i64>(2).try_into().unwrap_or(0),
                tags: r.get::<_, i64>(3).try_into().unwrap_or(0),
            })
            .collect())
    }

    fn metrics(&self) -> Arc<crate::metrics::StoreMetrics> {
        self.metrics.clone()
    }
}

#[cfg(test)]
mod tests;
