//! The store the store and filter benches run on: a real SQLite store in a directory of
//! the bench's choosing, holding one domain and one project for the bench data.

use std::path::Path;
use std::sync::Arc;

use tagd::core::model::{Domain, Project};
use tagd::store::sqlite::SqliteStore;
use tagd::store::Store;

pub const DOMAIN: &str = "bench-domain";
pub const PROJECT: &str = "bench-project";

/// Opens a store at `path` with the bench domain and project in it.
pub async fn open_with_project(path: &Path) -> Arc<dyn Store> {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(path).await.expect("open the store"));
    store
        .insert_domain(&Domain {
            id: DOMAIN.to_owned(),
            name: "bench".to_owned(),
            enabled: true,
        })
        .await
        .expect("insert_domain");
    store
        .insert_project(&Project {
            id: PROJECT.to_owned(),
            domain_id: DOMAIN.to_owned(),
            name: "cn-north-4".to_owned(),
            enabled: true,
        })
        .await
        .expect("insert_project");
    store
}
