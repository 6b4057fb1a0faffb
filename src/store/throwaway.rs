//! Throwaway PostgreSQL databases for tests, on the server `TAGD_TEST_DATABASE_URL`
//! names: each test gets an empty schema of its own (its connections' `search_path`)
//! in a database created for the test run and dropped when the run's last test ends.
//! Schemas rather than a database per test because `CREATE DATABASE` costs half a
//! second and serialises; a schema costs milliseconds and isolates just as well.
//!
//! Public (but hidden from the docs) because the integration tests in `tests/` are a
//! separate crate and need the same fixture as the unit tests. Without the variable the
//! tests use the server this project's machines run (`postgres://postgres@127.0.0.1:5432/postgres`);
//! when that is unreachable they fail, saying how to name another. They are never
//! skipped: a PostgreSQL test that did not run must not look green.

use tokio::sync::Mutex;
use tokio_postgres::Config;

use super::postgres::{connect, parse_url};

/// The variable naming the PostgreSQL server tests may create databases on.
pub const TEST_DATABASE_URL: &str = "TAGD_TEST_DATABASE_URL";

/// The server used when the variable is not set.
pub const DEFAULT_TEST_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Run databases are named with this and the creating process's id, so a later run can
/// tell the databases of crashed runs and drop them.
const PREFIX: &str = "tagd_test_";

/// The run's database while any test uses it.
struct RunDatabase {
    name: Option<String>,
    users: usize,
}

static RUN: Mutex<RunDatabase> = Mutex::const_new(RunDatabase {
    name: None,
    users: 0,
});

/// An empty schema of one's own, dropped on drop (the run's database with the last).
pub struct ThrowawayDatabase {
    /// Connects to the schema; give it to `tagd --database-url`.
    pub url: String,
    database: String,
    schema: String,
    admin: Config,
}

impl ThrowawayDatabase {
    /// Creates a schema (and the run's database, if this is the first).
    ///
    /// # Panics
    /// When the server cannot be reached or refuses: a test that cannot have its
    /// database must fail.
    pub async fn create() -> Self {
        let url = std::env::var(TEST_DATABASE_URL)
            .unwrap_or_else(|_| DEFAULT_TEST_DATABASE_URL.to_owned());
        let admin =
            parse_url(&url).unwrap_or_else(|e| panic!("{TEST_DATABASE_URL} does not parse: {e}"));
        let database = {
            let mut run = RUN.lock().await;
            if run.name.is_none() {
                let client = connect(&admin).await.unwrap_or_else(|e| {
                    panic!("{e}; the PostgreSQL tests need a server they may create databases on: set {TEST_DATABASE_URL} to its URL")
                });
                sweep_crashed_runs(&client).await;
                let name = format!(
                    "{PREFIX}{}_{}",
                    std::process::id(),
                    uuid::Uuid::new_v4().simple()
                );
                client
                    .batch_execute(&format!("CREATE DATABASE {name}"))
                    .await
                    .unwrap_or_else(|e| panic!("cannot create the test database {name}: {e}"));
                run.name = Some(name);
            }
            run.users += 1;
            run.name.clone().unwrap_or_default()
        };
        let schema = format!("test_{}", uuid::Uuid::new_v4().simple());
        let mut config = admin.clone();
        config.dbname(&database);
        connect(&config)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .batch_execute(&format!("CREATE SCHEMA {schema}"))
            .await
            .unwrap_or_else(|e| panic!("cannot create the test schema {schema}: {e}"));
        Self {
            url: with_search_path(&with_database(&url, &database), &schema),
            database,
            schema,
            admin,
        }
    }

    /// The connection settings of the schema.
    pub fn config(&self) -> Config {
        let mut config = self.admin.clone();
        config.dbname(&self.database);
        config.options(format!("-c search_path={}", self.schema));
        config
    }
}

impl Drop for ThrowawayDatabase {
    fn drop(&mut self) {
        // Drop may run inside a runtime (a test's) that cannot be blocked on, so the
        // clean-up runs on a thread of its own with a runtime of its own.
        let (admin, database, schema) = (
            self.admin.clone(),
            self.database.clone(),
            self.schema.clone(),
        );
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(async move {
                let mut run = RUN.lock().await;
                run.users = run.users.saturating_sub(1);
                if run.users == 0 {
                    run.name = None;
                    let client = connect(&admin).await.map_err(|e| e.to_string())?;
                    client
                        .batch_execute(&format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)"))
                        .await
                        .map_err(|e| e.to_string())
                } else {
                    let mut config = admin.clone();
                    config.dbname(&database);
                    let client = connect(&config).await.map_err(|e| e.to_string())?;
                    client
                        .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                        .await
                        .map_err(|e| e.to_string())
                }
            })
        })
        .join();
        if let Ok(Err(e)) = dropped {
            eprintln!("could not drop the test schema {}: {e}", self.schema);
        }
    }
}

/// Drops the test databases of processes that no longer run (a run that crashed or was
/// killed before its databases were dropped).
async fn sweep_crashed_runs(client: &tokio_postgres::Client) {
    let Ok(rows) = client
        .query(
            "SELECT datname::text FROM pg_database WHERE datname LIKE 'tagd\\_test\\_%'",
            &[],
        )
        .await
    else {
        return;
    };
    for row in rows {
        let name: String = row.get(0);
        let pid = name
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split('_').next())
            .and_then(|pid| pid.parse::<u32>().ok());
        if let Some(pid) = pid {
            if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
                let _ = client
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await;
            }
        }
    }
}

/// `url` with the server option that makes `schema` the connections' only schema.
fn with_search_path(url: &str, schema: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}options=-c%20search_path%3D{schema}")
}

/// `url` with its database replaced by `name` (the path of a `postgres://` URL).
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (url, String::new()),
    };
    let after_scheme = base.find("://").map_or(0, |i| i + 3);
    let authority_end = base[after_scheme..]
        .find('/')
        .map_or(base.len(), |i| after_scheme + i);
    format!("{}/{name}{query}", &base[..authority_end])
}

#[cfg(test)]
mod tests {
    use super::{with_database, with_search_path};

    #[test]
    fn the_database_of_a_url_is_replaced_and_the_rest_kept() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "t1"),
            "postgres://postgres@127.0.0.1:5432/t1"
        );
        assert_eq!(
            with_database("postgresql://u:p@h/db?sslmode=disable", "t2"),
            "postgresql://u:p@h/t2?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://h:5433", "t3"),
            "postgres://h:5433/t3"
        );
    }

    #[test]
    fn the_search_path_rides_in_the_url_as_a_server_option() {
        assert_eq!(
            with_search_path("postgres://h/t1", "s1"),
            "postgres://h/t1?options=-c%20search_path%3Ds1"
        );
        assert_eq!(
            with_search_path("postgres://h/t1?sslmode=disable", "s1"),
            "postgres://h/t1?sslmode=disable&options=-c%20search_path%3Ds1"
        );
        let config: tokio_postgres::Config = with_search_path("postgres://h/t1", "s1")
            .parse()
            .expect("parses");
        assert_eq!(config.get_options(), Some("-c search_path=s1"));
    }
}
