//! PostgreSQL: connecting, and the schema kept in lock-step with SQLite's.
//!
//! This is the first part of the PostgreSQL backend (issue 6): the migrations and the
//! runner that applies them. The [`Store`](super::Store) implementation comes next;
//! until then `tagd serve` accepts only `sqlite://` URLs. Migration N here creates the
//! same tables and columns as `migrations/sqlite/N`, and a test compares the two, so a
//! later copy between backends maps column to column.
//!
//! Several tagd replicas may start at once on one database, so the runner takes a row
//! lock on the version row (`SELECT ... FOR UPDATE`) and applies one migration per
//! transaction: the others wait, then find the work done. A row lock rather than an
//! advisory lock, because CockroachDB and YugabyteDB accept the former only.

use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, Config, NoTls};

use super::StoreError;

/// Schema migrations, applied in order; the `tagd_schema` row records the last one.
pub(crate) const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/postgres/0001_init.sql"),
    include_str!("../../migrations/postgres/0002_sys_tags.sql"),
    include_str!("../../migrations/postgres/0003_access_keys.sql"),
    include_str!("../../migrations/postgres/0004_tag_index.sql"),
    include_str!("../../migrations/postgres/0005_predefined_tags.sql"),
    include_str!("../../migrations/postgres/0006_access_key_expiry.sql"),
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
                reason: e.to_string(),
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

/// tokio-postgres prints a server error as just "db error"; the server's own message
/// and SQLSTATE are what an operator needs.
fn db(error: tokio_postgres::Error) -> StoreError {
    match error.as_db_error() {
        Some(server) => StoreError::Database(format!(
            "{} (SQLSTATE {})",
            server.message(),
            server.code().code()
        )),
        None => StoreError::Database(error.to_string()),
    }
}

#[cfg(test)]
mod tests {
    //! These tests need a PostgreSQL server: `TAGD_TEST_DATABASE_URL` names it (`.ci/run`
    //! sets it). Each test creates its own database and drops it at the end.

    use super::*;
    use std::collections::BTreeMap;

    /// Table → its columns in order, each with whether it may be NULL.
    type Schema = BTreeMap<String, Vec<(String, bool)>>;

    /// A fresh, empty database on the test server, or `None` when no server is named
    /// outside CI. Under CI a missing setting fails the test rather than skipping it.
    async fn throwaway_database() -> Option<(Config, String)> {
        let Ok(url) = std::env::var("TAGD_TEST_DATABASE_URL") else {
            assert!(
                std::env::var_os("CI").is_none(),
                "TAGD_TEST_DATABASE_URL must name a PostgreSQL server under CI"
            );
            eprintln!("SKIPPED: set TAGD_TEST_DATABASE_URL to run the PostgreSQL tests");
            return None;
        };
        let admin = parse_url(&url).expect("TAGD_TEST_DATABASE_URL parses");
        let client = connect(&admin)
            .await
            .expect("TAGD_TEST_DATABASE_URL is reachable");
        let name = format!(
            "tagd_test_{}_{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        );
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create the test database");
        let mut config = admin.clone();
        config.dbname(&name);
        Some((config, name))
    }

    async fn drop_database(config: &Config, name: &str) {
        let mut admin = config.clone();
        admin.dbname("postgres");
        let client = connect(&admin).await.expect("reconnect to drop");
        client
            .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .await
            .expect("drop the test database");
    }

    async fn postgres_schema(client: &Client) -> Schema {
        let rows = client
            .query(
                "SELECT table_name::text, column_name::text, is_nullable = 'YES'
                 FROM information_schema.columns
                 WHERE table_schema = current_schema() AND table_name <> 'tagd_schema'
                 ORDER BY table_name, ordinal_position",
                &[],
            )
            .await
            .expect("read the catalog");
        let mut schema = Schema::new();
        for row in rows {
            schema
                .entry(row.get(0))
                .or_default()
                .push((row.get(1), row.get(2)));
        }
        schema
    }

    fn sqlite_schema() -> Schema {
        let conn = rusqlite::Connection::open_in_memory().expect("in-memory SQLite");
        for sql in crate::store::sqlite::MIGRATIONS {
            conn.execute_batch(sql).expect("SQLite migration applies");
        }
        let mut tables = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .expect("prepare");
        let names: Vec<String> = tables
            .query_map([], |r| r.get(0))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows");
        let mut schema = Schema::new();
        for table in names {
            let mut columns = conn
                .prepare(&format!("PRAGMA table_info({table})"))
                .expect("prepare");
            // An INTEGER PRIMARY KEY (rowid alias) is never NULL even though SQLite
            // reports notnull = 0 for it.
            let list: Vec<(String, bool)> = columns
                .query_map([], |r| {
                    let notnull: bool = r.get(3)?;
                    let pk: i64 = r.get(5)?;
                    Ok((r.get(1)?, !notnull && pk == 0))
                })
                .expect("query")
                .collect::<Result<_, _>>()
                .expect("rows");
            schema.insert(table, list);
        }
        schema
    }

    async fn version(client: &Client) -> i64 {
        client
            .query_one("SELECT version FROM tagd_schema", &[])
            .await
            .expect("version row")
            .get(0)
    }

    #[tokio::test]
    async fn migrations_match_sqlite_and_apply_once() {
        let Some((config, name)) = throwaway_database().await else {
            return;
        };
        assert_eq!(
            MIGRATIONS.len(),
            crate::store::sqlite::MIGRATIONS.len(),
            "one PostgreSQL migration per SQLite migration"
        );
        let mut client = connect(&config).await.expect("connect");
        migrate(&mut client).await.expect("first migration run");
        assert_eq!(version(&client).await, MIGRATIONS.len() as i64);
        // A restart finds nothing to do and changes nothing.
        migrate(&mut client).await.expect("second migration run");
        assert_eq!(version(&client).await, MIGRATIONS.len() as i64);

        assert_eq!(postgres_schema(&client).await, sqlite_schema());
        drop(client);
        drop_database(&config, &name).await;
    }

    #[tokio::test]
    async fn replicas_starting_together_migrate_once() {
        let Some((config, name)) = throwaway_database().await else {
            return;
        };
        let mut starts = Vec::new();
        for _ in 0..3 {
            let config = config.clone();
            starts.push(tokio::spawn(async move {
                let mut client = connect(&config).await?;
                migrate(&mut client).await
            }));
        }
        for start in starts {
            start.await.expect("task").expect("every replica starts");
        }
        let client = connect(&config).await.expect("connect");
        assert_eq!(version(&client).await, MIGRATIONS.len() as i64);
        let tables = postgres_schema(&client).await.len();
        assert_eq!(tables, sqlite_schema().len());
        drop(client);
        drop_database(&config, &name).await;
    }

    #[tokio::test]
    async fn a_schema_newer_than_the_binary_is_refused_untouched() {
        let Some((config, name)) = throwaway_database().await else {
            return;
        };
        let mut client = connect(&config).await.expect("connect");
        migrate(&mut client).await.expect("migrate");
        let newer = MIGRATIONS.len() as i64 + 1;
        client
            .execute("UPDATE tagd_schema SET version = $1", &[&newer])
            .await
            .expect("pretend a newer tagd ran");
        let error = migrate(&mut client).await.expect_err("refused");
        assert!(matches!(error, StoreError::SchemaTooNew { found, .. } if found == newer));
        assert!(error.to_string().contains("upgrade tagd"), "{error}");
        assert_eq!(version(&client).await, newer);
        drop(client);
        drop_database(&config, &name).await;
    }

    #[tokio::test]
    async fn an_unreachable_server_is_named_without_its_password() {
        // Port 1 on loopback: nothing listens there, the connection is refused at once.
        let config = parse_url("postgres://tagd:s3cret-pw@127.0.0.1:1/tags").expect("parses");
        let error = connect(&config).await.expect_err("nothing listens");
        let message = error.to_string();
        assert!(
            message.starts_with("cannot reach the database at postgres://127.0.0.1:1/tags"),
            "{message}"
        );
        assert!(!message.contains("s3cret-pw"), "{message}");
    }
}
