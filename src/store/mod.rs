//! The storage backends behind [`Store`], the port `core` defines, chosen once from a
//! URL.
//!
//! The embedded SQLite backend is the default. Every backend must pass the conformance
//! suite in `store/tests.rs`. Dependencies point one way: the backends use `core`,
//! `core` never uses them (`api -> core <- store`; the server wires them together).

pub mod backup;
pub mod copy;
pub mod metered;
pub mod postgres;
mod rows;
mod sql;
pub mod sqlite;
mod tag_index;
#[cfg(test)]
mod tests;
#[doc(hidden)]
pub mod throwaway;

/// The setting that records the fingerprint of the server key a store's access-key
/// secrets are sealed with (written at first start; see `server::open_vault`).
pub const SERVER_KEY_FINGERPRINT: &str = "server_key_fingerprint";

use std::path::Path;
use std::sync::Arc;

pub use crate::core::port::{
    AccessKeyContext, ProjectTotals, ResourceFilter, SchemaVersion, Store, StoreError, TokenContext,
};

/// The count behind [`Store::identity_epoch`], one per store object: both backends
/// pass every change that can make a credential stop working through [`Self::after`].
#[derive(Debug, Default)]
pub(crate) struct IdentityEpoch(std::sync::atomic::AtomicU64);

impl IdentityEpoch {
    pub(crate) fn get(&self) -> u64 {
        self.0.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Runs `change`, then counts it, whatever its outcome (a failed change counted
    /// only costs cached lookups a second read). Counting after the change is what
    /// makes a lookup read during it stale: see `auth::cache`.
    pub(crate) async fn after<T>(&self, change: impl std::future::Future<Output = T>) -> T {
        let outcome = change.await;
        self.0.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        outcome
    }
}

/// Opens the store a URL names: `sqlite://PATH` (the file is created if missing) or
/// `postgres://...` / `postgresql://...` (the database must exist; its schema is
/// brought up to date).
pub async fn open(url: &str, pool: postgres::PoolOptions) -> Result<Arc<dyn Store>, StoreError> {
    if let Some(path) = url.strip_prefix("sqlite://") {
        let store = sqlite::SqliteStore::open(Path::new(path)).await?;
        return Ok(Arc::new(store));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let store = postgres::PostgresStore::open(url, pool).await?;
        return Ok(Arc::new(store));
    }
    Err(StoreError::UnsupportedUrl(redact_url(url)))
}

/// A database URL fit for messages: the password, if any, replaced by `***`, whether
/// in the user info (`user:secret@`) or a `password=` query parameter (libpq's form).
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, tail) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|p| match p.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                    _ => p.to_owned(),
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => tail.to_owned(),
    };
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => format!("{scheme}://{authority}{tail}"),
        },
        None => format!("{scheme}://{authority}{tail}"),
    }
}
