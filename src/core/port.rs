//! The storage port: the one trait every backend implements, with its error and the
//! rows it speaks. It lives in `core` so the dependencies point one way: `api` and the
//! rules here use it, the backends in `store` implement it, and the server wires a
//! backend in. Nothing in `core` knows which backend it talks to.

use std::sync::Arc;

use async_trait::async_trait;

use super::model::{
    AccessKey, Domain, KeyStatus, Project, Resource, ResourceRef, TokenRecord, User,
};
use super::predefined::{PredefinedTag, Replaced};
use super::query::{FoundPage, KeyValues, ResourceQuery, TagScope};
use super::tagging::{ItemOutcome, TagBatch};
use super::tags::Tag;

/// Failures of the storage layer. None of them is the client's fault.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(String),
    #[error("the database schema is at version {found}, newer than this tagd knows ({known}); upgrade tagd")]
    SchemaTooNew { found: i64, known: i64 },
    #[error("the store is shutting down")]
    Closed,
    #[error("{0} already exists")]
    AlreadyExists(String),
    #[error("cannot reach the database at {at}: {reason}")]
    Unreachable { at: String, reason: String },
    #[error(
        "unsupported database URL {0:?}: use sqlite://PATH or postgres://USER@HOST:PORT/DATABASE"
    )]
    UnsupportedUrl(String),
    /// A write would pass a quota; it was undone.
    #[error("a quota would be exceeded")]
    QuotaExceeded,
    /// The database's storage failed while serving (a write or sync refused, a full
    /// disk, a corrupt page): the store answers nothing more until tagd is restarted
    /// (D80). Clients get 503.
    #[error("the store stopped after a storage failure ({0}); fix the disk, then restart tagd, which checks the database before serving")]
    Poisoned(String),
    /// The database failed the check made before serving from it (D81).
    #[error("the database {path} is damaged ({detail}); tagd will not serve from it: restore a backup with `tagd admin restore FILE`, or salvage what is readable with `sqlite3 {path} .recover`")]
    Corrupt { path: String, detail: String },
}

/// What a token hash resolves to; `None` members no longer exist.
#[derive(Debug, Clone)]
pub struct TokenContext {
    pub token: TokenRecord,
    pub user: Option<User>,
    pub domain: Option<Domain>,
    pub project: Option<Project>,
}

/// What an access key resolves to; `None` members no longer exist.
#[derive(Debug, Clone)]
pub struct AccessKeyContext {
    pub key: AccessKey,
    pub user: Option<User>,
    pub domain: Option<Domain>,
    pub project: Option<Project>,
}

/// Filters for listing the inventory.
#[derive(Debug, Clone, Default)]
pub struct ResourceFilter {
    pub domain_id: Option<String>,
    pub project_id: Option<String>,
    pub resource_type: Option<String>,
    pub limit: Option<usize>,
    pub offset: usize,
}

/// The schema version a database holds, beside the one this binary's migrations reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchemaVersion {
    pub found: i64,
    pub expected: i64,
}

/// Everything tagd persists. Writes are durable and atomic when the call returns `Ok`.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Readies the store for serving queries, in the background: the SQLite store
    /// builds its tag index (queries answer by SQL until it is there). Admin commands,
    /// which ask a question or two, do without.
    fn prepare_for_queries(&self) {}

    /// Proves the store can serve: the database answers, and on SQLite the writer
    /// thread takes a job. Returns the schema version the database holds and the one
    /// this binary expects (they differ when another tagd migrated a shared database
    /// further). For `/readyz`.
    async fn readiness(&self) -> Result<SchemaVersion, StoreError>;

    // --- identity
    async fn insert_domain(&self, domain: &Domain) -> Result<(), StoreError>;
    async fn domain(&self, id: &str) -> Result<Option<Domain>, StoreError>;
    async fn domain_by_name(&self, name: &str) -> Result<Option<Domain>, StoreError>;
    async fn list_domains(&self) -> Result<Vec<Domain>, StoreError>;
    /// Deletes a domain with its projects, users, tokens, resources and tags.
    async fn delete_domain(&self, id: &str) -> Result<bool, StoreError>;

    /// Inserts the first domain with a project and user in one transaction, only if the
    /// store holds no domain yet; returns whether it did.
    async fn insert_first_identity(
        &self,
        domain: &Domain,
        project: &Project,
        user: &User,
    ) -> Result<bool, StoreError>;

    async fn insert_project(&self, project: &Project) -> Result<(), StoreError>;
    async fn project(&self, id: &str) -> Result<Option<Project>, StoreError>;
    async fn list_projects(&self, domain_id: Option<&str>) -> Result<Vec<Project>, StoreError>;
    /// Deletes a project with its resources and tags.
    async fn delete_project(&self, id: &str) -> Result<bool, StoreError>;

    async fn insert_user(&self, user: &User) -> Result<(), StoreError>;
    async fn user(&self, id: &str) -> Result<Option<User>, StoreError>;
    async fn user_by_name(&self, domain_id: &str, name: &str) -> Result<Option<User>, StoreError>;
    async fn list_users(&self, domain_id: &str) -> Result<Vec<User>, StoreError>;
    /// Sets a user's password hash and, in the same transaction, revokes every token
    /// the user holds (and so the temporary keys minted from them): a new password
    /// ends the sessions of whoever knew the old one.
    async fn set_password_hash(&self, user_id: &str, hash: &str) -> Result<bool, StoreError>;
    async fn delete_user(&self, id: &str) -> Result<bool, StoreError>;

    async fn insert_token(&self, token: &TokenRecord) -> Result<(), StoreError>;
    async fn token(&self, token_hash: &str) -> Result<Option<TokenRecord>, StoreError>;
    async fn revoke_token(&self, token_hash: &str) -> Result<bool, StoreError>;
    /// Counts the changes made through this store object that can invalidate a
    /// credential (revocations, deletions, key status changes), so that lookups cached
    /// in memory are dropped the moment one happens. Changes made by other processes
    /// sharing the database are not counted: caches bound their age instead.
    fn identity_epoch(&self) -> u64;
    /// A token with its user, domain and (for a project-scoped token) project, read
    /// together: every authenticated request needs all four.
    async fn token_context(&self, token_hash: &str) -> Result<Option<TokenContext>, StoreError>;

    // --- predefined tags
    /// Adds predefined tags to a domain (refreshing the time of those already there),
    /// unless the domain would then hold more than `max`; returns whether it did.
    async fn add_predefined_tags(
        &self,
        domain_id: &str,
        tags: &[(String, String)],
        max: usize,
    ) -> Result<bool, StoreError>;
    async fn remove_predefined_tags(
        &self,
        domain_id: &str,
        tags: &[(String, String)],
    ) -> Result<(), StoreError>;
    async fn predefined_tags(&self, domain_id: &str) -> Result<Vec<PredefinedTag>, StoreError>;
    /// Replaces `old` by `new` in one step.
    async fn replace_predefined_tag(
        &self,
        domain_id: &str,
        old: &(String, String),
        new: &(String, String),
    ) -> Result<Replaced, StoreError>;

    // --- settings of the deployment
    async fn setting(&self, name: &str) -> Result<Option<String>, StoreError>;
    /// Records `value` under `name` unless a value is there; returns the stored value.
    async fn claim_setting(&self, name: &str, value: &str) -> Result<String, StoreError>;

    // --- access keys
    /// Inserts an access key; a permanent one only while the user has fewer than
    /// `max_permanent` permanent keys. Returns whether it was inserted.
    async fn insert_access_key(
        &self,
        key: &AccessKey,
        max_permanent: usize,
    ) -> Result<bool, StoreError>;
    /// An access key with its user, domain and (for a temporary key scoped to one) project.
    async fn access_key_context(
        &self,
        access: &str,
    ) -> Result<Option<AccessKeyContext>, StoreError>;
    /// A user's permanent access keys, oldest first.
    async fn list_access_keys(&self, user_id: &str) -> Result<Vec<AccessKey>, StoreError>;
    /// Changes status and/or description; `false` if there is no such key.
    async fn update_access_key(
        &self,
        access: &str,
        status: Option<KeyStatus>,
        description: Option<&str>,
    ) -> Result<bool, StoreError>;
    async fn delete_access_key(&self, access: &str) -> Result<bool, StoreError>;

    // --- inventory
    /// Registers resources; one already registered keeps its tags and takes the new name.
    /// Returns how many were new.
    async fn register_resources(&self, resources: &[Resource]) -> Result<usize, StoreError>;
    async fn list_resources(&self, filter: &ResourceFilter) -> Result<Vec<Resource>, StoreError>;
    /// Removes resources and their tags; returns how many existed.
    async fn remove_resources(&self, at: &[ResourceRef]) -> Result<usize, StoreError>;

    // --- tags
    /// Applies a batch in one transaction; one outcome per target, in order. When the
    /// batch's mode rejects the outcomes, nothing of the batch is written.
    async fn apply_tags(&self, batch: TagBatch) -> Result<Vec<ItemOutcome>, StoreError>;
    /// One page of the resources a query keeps, in (type, id) order, with the exact
    /// number of matches, both read from one snapshot.
    async fn find_resources(
        &self,
        query: &ResourceQuery,
        offset: u64,
        limit: u64,
    ) -> Result<FoundPage, StoreError>;
    /// How many resources a query keeps.
    async fn count_resources(&self, query: &ResourceQuery) -> Result<u64, StoreError>;
    /// Tag keys in use in a scope, sorted, after `after`, at most `limit`.
    async fn tag_keys(
        &self,
        scope: &TagScope,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, StoreError>;
    /// Values of `key` in use in a scope, sorted, after `after`, at most `limit`.
    async fn tag_values(
        &self,
        scope: &TagScope,
        key: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, StoreError>;
    /// Every key in use in a scope with all its values.
    async fn key_values(&self, scope: &TagScope) -> Result<Vec<KeyValues>, StoreError>;

    /// A resource's system tags sorted by key, or `None` if it is not registered.
    async fn resource_sys_tags(&self, at: &ResourceRef) -> Result<Option<Vec<Tag>>, StoreError>;
    /// A resource's tags sorted by key, or `None` if it is not registered.
    async fn resource_tags(&self, at: &ResourceRef) -> Result<Option<Vec<Tag>>, StoreError>;

    // --- observability
    /// Resources and user tags per project (a global type's resources under project
    /// `""`), sorted by domain and project; projects without resources are left out.
    /// Read on every metrics scrape, so bounded: one grouped count, or the SQLite tag
    /// index's counts when it is current.
    async fn project_totals(&self) -> Result<Vec<ProjectTotals>, StoreError>;
    /// The instruments of this store: its backend's own (the SQLite writer's group
    /// commits), and those the [`metered::Metered`] wrapper fills.
    fn metrics(&self) -> Arc<crate::metrics::StoreMetrics>;
}

/// How much one project holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectTotals {
    pub domain_id: String,
    pub project_id: String,
    pub resources: u64,
    pub tags: u64,
}
