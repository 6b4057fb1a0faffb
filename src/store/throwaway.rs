//! Throwaway PostgreSQL databases for tests: one per test, created on the server that
//! `TAGD_TEST_DATABASE_URL` names and dropped when the value is dropped.
//!
//! Public (but hidden from the docs) because the integration tests in `tests/` are a
//! separate crate and need the same fixture as the unit tests. Outside CI an unset
//! variable skips PostgreSQL tests with a notice; under CI (`CI` set) it fails them, so
//! a missing database can never pass as green.

use tokio_postgres::Config;

use super::postgres::{connect, parse_url};

/// The variable naming the PostgreSQL server tests may create databases on.
pub const TEST_DATABASE_URL: &str = "TAGD_TEST_DATABASE_URL";

/// Names start with this and the creating process's id, so a later run can tell the
/// databases of crashed runs and drop them.
const PREFIX: &str = "tagd_test_";

/// A fresh, empty database, dropped (with any connections still open to it) on drop.
pub struct ThrowawayDatabase {
    /// Connects to this database; give it to `tagd --database-url`.
    pub url: String,
    name: String,
    admin: Config,
}

impl ThrowawayDatabase {
    /// Creates a database, or returns `None` (after printing why) when no server is
    /// named outside CI.
    ///
    /// # Panics
    /// Under CI without `TAGD_TEST_DATABASE_URL`, or when the server named is
    /// unreachable: a test that cannot reach its database must fail.
    pub async fn create() -> Option<Self> {
        let Ok(url) = std::env::var(TEST_DATABASE_URL) else {
            assert!(
                std::env::var_os("CI").is_none(),
                "{TEST_DATABASE_URL} must name a PostgreSQL server under CI"
            );
            eprintln!("SKIPPED: set {TEST_DATABASE_URL} to run the PostgreSQL tests");
            return None;
        };
        let admin =
            parse_url(&url).unwrap_or_else(|e| panic!("{TEST_DATABASE_URL} does not parse: {e}"));
        let client = connect(&admin)
            .await
            .unwrap_or_else(|e| panic!("{TEST_DATABASE_URL}: {e}"));
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
        Some(Self {
            url: with_database(&url, &name),
            name,
            admin,
        })
    }

    /// The name of the database.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The connection settings of the database.
    pub fn config(&self) -> Config {
        let mut config = self.admin.clone();
        config.dbname(&self.name);
        config
    }
}

impl Drop for ThrowawayDatabase {
    fn drop(&mut self) {
        // Drop may run inside a runtime (a test's) that cannot be blocked on, so the
        // database is dropped from a thread of its own with a runtime of its own.
        let (admin, name) = (self.admin.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(async move {
                let client = connect(&admin).await.map_err(|e| e.to_string())?;
                client
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await
                    .map_err(|e| e.to_string())
            })
        })
        .join();
        if let Ok(Err(e)) = dropped {
            eprintln!("could not drop the test database {}: {e}", self.name);
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
    use super::with_database;

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
}
