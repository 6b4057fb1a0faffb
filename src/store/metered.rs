//! The store decorator that times every call, for `tagd_store_operation_duration_seconds`:
//! one wrapper for every backend, so the metrics need nothing from SQLite's or
//! PostgreSQL's code beyond what only a backend knows (the SQLite writer's group commits).

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;

use super::{
    AccessKeyContext, ProjectTotals, ResourceFilter, SchemaVersion, Store, StoreError, TokenContext,
};
use crate::core::model::{
    AccessKey, Domain, KeyStatus, Project, Resource, ResourceRef, TokenRecord, User,
};
use crate::core::predefined::{PredefinedTag, Replaced};
use crate::core::query::{FoundPage, KeyValues, ResourceQuery, TagScope};
use crate::core::tagging::{ItemOutcome, TagBatch};
use crate::core::tags::Tag;
use crate::metrics::StoreMetrics;

/// A store whose calls are timed into its [`Store::metrics`], by method name and kind.
pub struct Metered {
    inner: Arc<dyn Store>,
    metrics: Arc<StoreMetrics>,
}

impl Metered {
    pub fn new(inner: Arc<dyn Store>) -> Self {
        Self {
            metrics: inner.metrics(),
            inner,
        }
    }
}

/// Implements [`Store`] for [`Metered`] from the list of async methods, each marked
/// `read` or `write`: calls the inner store and records how long it took.
macro_rules! metered {
    ($($kind:ident fn $name:ident(&self $(, $arg:ident : $ty:ty)*) -> $ret:ty;)*) => {
        #[async_trait]
        impl Store for Metered {
            fn prepare_for_queries(&self) {
                self.inner.prepare_for_queries()
            }

            fn identity_epoch(&self) -> u64 {
                self.inner.identity_epoch()
            }

            fn metrics(&self) -> Arc<StoreMetrics> {
                self.metrics.clone()
            }

            $(
                async fn $name(&self $(, $arg: $ty)*) -> $ret {
                    let started = Instant::now();
                    let result = self.inner.$name($($arg),*).await;
                    self.metrics
                        .operation(stringify!($name), stringify!($kind), started.elapsed());
                    result
                }
            )*
        }
    };
}

metered! {
    write fn insert_domain(&self, domain: &Domain) -> Result<(), StoreError>;
    read fn domain(&self, id: &str) -> Result<Option<Domain>, StoreError>;
    read fn domain_by_name(&self, name: &str) -> Result<Option<Domain>, StoreError>;
    read fn list_domains(&self) -> Result<Vec<Domain>, StoreError>;
    write fn delete_domain(&self, id: &str) -> Result<bool, StoreError>;
    write fn insert_first_identity(&self, domain: &Domain, project: &Project, user: &User) -> Result<bool, StoreError>;
    write fn insert_project(&self, project: &Project) -> Result<(), StoreError>;
    read fn project(&self, id: &str) -> Result<Option<Project>, StoreError>;
    read fn list_projects(&self, domain_id: Option<&str>) -> Result<Vec<Project>, StoreError>;
    write fn delete_project(&self, id: &str) -> Result<bool, StoreError>;
    write fn insert_user(&self, user: &User) -> Result<(), StoreError>;
    read fn user(&self, id: &str) -> Result<Option<User>, StoreError>;
    read fn user_by_name(&self, domain_id: &str, name: &str) -> Result<Option<User>, StoreError>;
    read fn list_users(&self, domain_id: &str) -> Result<Vec<User>, StoreError>;
    write fn set_password_hash(&self, user_id: &str, hash: &str) -> Result<bool, StoreError>;
    write fn delete_user(&self, id: &str) -> Result<bool, StoreError>;
    write fn insert_token(&self, token: &TokenRecord) -> Result<(), StoreError>;
    read fn token(&self, token_hash: &str) -> Result<Option<TokenRecord>, StoreError>;
    write fn revoke_token(&self, token_hash: &str) -> Result<bool, StoreError>;
    read fn token_context(&self, token_hash: &str) -> Result<Option<TokenContext>, StoreError>;
    write fn add_predefined_tags(&self, domain_id: &str, tags: &[(String, String)], max: usize) -> Result<bool, StoreError>;
    write fn remove_predefined_tags(&self, domain_id: &str, tags: &[(String, String)]) -> Result<(), StoreError>;
    read fn predefined_tags(&self, domain_id: &str) -> Result<Vec<PredefinedTag>, StoreError>;
    write fn replace_predefined_tag(&self, domain_id: &str, old: &(String, String), new: &(String, String)) -> Result<Replaced, StoreError>;
    read fn setting(&self, name: &str) -> Result<Option<String>, StoreError>;
    write fn claim_setting(&self, name: &str, value: &str) -> Result<String, StoreError>;
    write fn insert_access_key(&self, key: &AccessKey, max_permanent: usize) -> Result<bool, StoreError>;
    read fn access_key_context(&self, access: &str) -> Result<Option<AccessKeyContext>, StoreError>;
    read fn list_access_keys(&self, user_id: &str) -> Result<Vec<AccessKey>, StoreError>;
    write fn update_access_key(&self, access: &str, status: Option<KeyStatus>, description: Option<&str>) -> Result<bool, StoreError>;
    write fn delete_access_key(&self, access: &str) -> Result<bool, StoreError>;
    write fn register_resources(&self, resources: &[Resource]) -> Result<usize, StoreError>;
    read fn list_resources(&self, filter: &ResourceFilter) -> Result<Vec<Resource>, StoreError>;
    write fn remove_resources(&self, at: &[ResourceRef]) -> Result<usize, StoreError>;
    write fn apply_tags(&self, batch: TagBatch) -> Result<Vec<ItemOutcome>, StoreError>;
    read fn find_resources(&self, query: &ResourceQuery, offset: u64, limit: u64) -> Result<FoundPage, StoreError>;
    read fn count_resources(&self, query: &ResourceQuery) -> Result<u64, StoreError>;
    read fn tag_keys(&self, scope: &TagScope, after: Option<&str>, limit: usize) -> Result<Vec<String>, StoreError>;
    read fn tag_values(&self, scope: &TagScope, key: &str, after: Option<&str>, limit: usize) -> Result<Vec<String>, StoreError>;
    read fn key_values(&self, scope: &TagScope) -> Result<Vec<KeyValues>, StoreError>;
    read fn resource_sys_tags(&self, at: &ResourceRef) -> Result<Option<Vec<Tag>>, StoreError>;
    read fn resource_tags(&self, at: &ResourceRef) -> Result<Option<Vec<Tag>>, StoreError>;
    read fn project_totals(&self) -> Result<Vec<ProjectTotals>, StoreError>;
    read fn readiness(&self) -> Result<SchemaVersion, StoreError>;
}
