//! These tests need a PostgreSQL server (see `store::throwaway`). Each test creates
//! its own database, dropped at the end.

use super::*;
use crate::store::throwaway::ThrowawayDatabase;

/// Table → its columns in order, each with whether it may be NULL.
type Schema = BTreeMap<String, Vec<(String, bool)>>;

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
    let db = ThrowawayDatabase::create().await;
    let config = db.config();
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
}

#[tokio::test]
async fn replicas_starting_together_migrate_once() {
    let db = ThrowawayDatabase::create().await;
    let config = db.config();
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
}

#[tokio::test]
async fn a_schema_newer_than_the_binary_is_refused_untouched() {
    let db = ThrowawayDatabase::create().await;
    let config = db.config();
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
