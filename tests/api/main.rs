//! End-to-end tests on the embedded SQLite store: each starts a real tagd on a loopback
//! port with its own data directory and talks HTTP to it. `tests/api_postgres` runs the
//! same tests on PostgreSQL.

/// The store every test server of this crate runs on.
const BACKEND: Backend = Backend::Sqlite;

include!("suite.rs");
