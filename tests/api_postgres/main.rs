//! The end-to-end tests of `tests/api`, each test server on a throwaway PostgreSQL
//! database (on the server `TAGD_TEST_DATABASE_URL` names) instead of SQLite.

/// The store every test server of this crate runs on.
const BACKEND: Backend = Backend::Postgres;

include!("../api/suite.rs");
