//! The backend conformance suite: what every [`Store`] must do, checked against a real
//! database.
//!
//! Each check is an `async fn` that takes a freshly opened, empty store; the few checks
//! that must reopen the database take the [`Backend`] fixture instead. `backend_suite!`
//! expands to one `#[tokio::test]` per check for one backend, so a new backend joins by
//! implementing [`Backend`] and adding one `backend_suite!(name, constructor)` line at the
//! bottom of this file. Tests run on a multi-threaded runtime so that concurrent requests
//! really overlap.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use async_trait::async_trait;

use super::postgres::{PoolOptions, PostgresStore};
use super::sqlite::SqliteStore;
use super::throwaway::ThrowawayDatabase;
use super::{ProjectTotals, ResourceFilter, Store, StoreError};
use crate::core::model::{
    new_id, now_unix, Domain, Project, Resource, ResourceRef, Scope, TokenRecord, User,
};
use crate::core::query::{Found, FoundPage, KeyValues, ResourceQuery, TagMatch, TagScope};
use crate::core::tagging::{
    BatchItem, BatchMode, BatchTarget, ItemOutcome, TagBatch, TagChange, UniformBatch,
};
use crate::core::tags::{Tag, TagKey, TagSelector, TagValue};

// ---------------------------------------------------------------------------------------
// Fixtures

/// One backend under test: a fresh, empty database that may be opened more than once.
#[async_trait]
trait Backend: Send + Sync {
    /// Opens (again) this fixture's database; every call sees the same data.
    async fn open(&self) -> Arc<dyn Store>;
}

/// A SQLite file in a temporary directory, removed when the fixture is dropped.
struct SqliteBackend {
    dir: tempfile::TempDir,
}

#[async_trait]
impl Backend for SqliteBackend {
    async fn open(&self) -> Arc<dyn Store> {
        let store = SqliteStore::open(&self.dir.path().join("tagd.db"))
            .await
            .expect("open the SQLite store");
        Arc::new(store)
    }
}

async fn sqlite_backend() -> SqliteBackend {
    SqliteBackend {
        dir: tempfile::tempdir().expect("create a temporary directory"),
    }
}

/// A throwaway database on the PostgreSQL server `TAGD_TEST_DATABASE_URL` names,
/// dropped when the fixture is dropped.
struct PostgresBackend {
    database: ThrowawayDatabase,
}

#[async_trait]
impl Backend for PostgresBackend {
    async fn open(&self) -> Arc<dyn Store> {
        // A small pool: the suite runs many tests at once against one server.
        let options = PoolOptions {
            max_connections: 8,
            ..PoolOptions::default()
        };
        let store = PostgresStore::open(&self.database.url, options)
            .await
            .expect("open the PostgreSQL store");
        Arc::new(store)
    }
}

async fn postgres_backend() -> PostgresBackend {
    PostgresBackend {
        database: ThrowawayDatabase::create().await,
    }
}

/// Expands to one `#[tokio::test]` per check, each against a fresh `$backend()`.
macro_rules! backend_suite {
    ($name:ident, $backend:ident) => {
        backend_suite!(@expand $name, $backend;
            store: [
                a_fresh_store_is_ready_at_this_binarys_schema,
                domains_round_trip,
                projects_round_trip,
                users_round_trip,
                delete_domain_cascades,
                orphans_are_not_reported_as_duplicates,
                tokens_round_trip,
                token_context_joins_user_domain_and_project,
                credential_changes_advance_the_identity_epoch,
                token_methods_round_trip_exactly,
                register_counts_new_and_renames,
                failed_register_writes_nothing,
                list_resources_filters_and_pages,
                remove_resources_drops_tags,
                set_overwrites_and_sorts_by_key,
                set_on_unregistered_resources,
                set_over_the_limit_writes_nothing_of_that_item,
                set_exactly_to_the_limit_is_applied,
                rejected_auto_register_leaves_no_trace,
                remove_by_key_and_value,
                all_or_nothing_failure_writes_nothing,
                all_or_nothing_skips_unknown_targets,
                sys_tags_are_kept_apart_from_user_tags,
                sys_tags_remove_by_key_and_value,
                sys_change_rides_with_the_user_change,
                sys_tags_of_unknown_and_removed_resources,
                concurrent_writes_are_all_kept,
                concurrent_sets_respect_the_limit,
                concurrent_all_or_nothing_batches_respect_the_limit,
                group_commit_isolates_failures,
                unicode_round_trips_byte_exactly,
                delete_project_cascades,
                query_operators_keep_exactly_the_expected_resources,
                query_total_count_ignores_paging,
                query_paging_neither_repeats_nor_skips,
                query_scope_isolates_projects_types_and_domains,
                tag_keys_and_values_are_sorted_distinct_scoped_and_paged,
                queries_read_their_writes,
                query_matches_unicode_and_sql_lookalikes_literally,
                random_queries_agree_with_a_naive_evaluation,
                project_totals_count_resources_and_user_tags,
            ];
            reopen: [
                durable_across_reopen,
            ]);
    };
    (@expand $name:ident, $backend:ident;
        store: [$($check:ident),* $(,)?];
        reopen: [$($reopen_check:ident),* $(,)?]) => {
        mod $name {
            use super::Backend as _;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $check() {
                    let backend = super::$backend().await;
                    let store = backend.open().await;
                    super::$check(store).await;
                }
            )*
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $reopen_check() {
                    let backend = super::$backend().await;
                    super::$reopen_check(&backend).await;
                }
            )*
        }
    };
}

// ---------------------------------------------------------------------------------------
// Helpers

fn tag(key: &str, value: &str) -> Tag {
    Tag {
        key: TagKey::from_stored(key.to_owned()),
        value: TagValue::from_stored(value.to_owned()),
    }
}

fn by_key(key: &str) -> TagSelector {
    TagSelector {
        key: TagKey::from_stored(key.to_owned()),
        value: None,
    }
}

fn by_pair(key: &str, value: &str) -> TagSelector {
    TagSelector {
        key: TagKey::from_stored(key.to_owned()),
        value: Some(TagValue::from_stored(value.to_owned())),
    }
}

/// Owned `(key, value)` pairs, the shape tag lists are compared in.
fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn at(domain: &Domain, project_id: &str, resource_type: &str, resource_id: &str) -> ResourceRef {
    ResourceRef {
        domain_id: domain.id.clone(),
        project_id: project_id.to_owned(),
        resource_type: resource_type.to_owned(),
        resource_id: resource_id.to_owned(),
    }
}

fn resource(at: &ResourceRef, name: &str) -> Resource {
    Resource {
        at: at.clone(),
        name: name.to_owned(),
    }
}

fn target(at: &ResourceRef, tag_limit: usize) -> BatchTarget {
    BatchTarget {
        at: at.clone(),
        tag_limit,
    }
}

async fn new_domain(store: &dyn Store, name: &str) -> Domain {
    let domain = Domain {
        id: new_id(),
        name: name.to_owned(),
        enabled: true,
    };
    store.insert_domain(&domain).await.expect("insert_domain");
    domain
}

async fn new_project(store: &dyn Store, domain: &Domain, name: &str) -> Project {
    let project = Project {
        id: new_id(),
        domain_id: domain.id.clone(),
        name: name.to_owned(),
        enabled: true,
    };
    store
        .insert_project(&project)
        .await
        .expect("insert_project");
    project
}

async fn new_user(store: &dyn Store, domain: &Domain, name: &str) -> User {
    let user = User {
        id: new_id(),
        domain_id: domain.id.clone(),
        name: name.to_owned(),
        password_hash: format!("$argon2id$v=19$m=19456,t=2,p=1${name}"),
        is_admin: false,
        enabled: true,
    };
    store.insert_user(&user).await.expect("insert_user");
    user
}

/// A valid, unexpired, unrevoked token record (not yet stored).
fn token_for(user: &User, scope: Scope) -> TokenRecord {
    let issued_at = now_unix();
    TokenRecord {
        token_hash: format!("{}{}", new_id(), new_id()),
        user_id: user.id.clone(),
        domain_id: user.domain_id.clone(),
        scope,
        methods: vec!["password".to_owned()],
        issued_at,
        expires_at: issued_at + 3600,
        revoked: false,
    }
}

async fn register(store: &dyn Store, resources: &[Resource]) -> usize {
    store
        .register_resources(resources)
        .await
        .expect("register_resources")
}

async fn list(store: &dyn Store, filter: ResourceFilter) -> Vec<Resource> {
    store.list_resources(&filter).await.expect("list_resources")
}

/// Applies `change` to one resource and returns its outcome.
async fn apply_one(
    store: &dyn Store,
    at: &ResourceRef,
    tag_limit: usize,
    change: TagChange,
    auto_register: bool,
) -> ItemOutcome {
    let outcomes = store
        .apply_tags(TagBatch::from(UniformBatch {
            targets: vec![target(at, tag_limit)],
            change,
            auto_register,
            sys_change: None,
            mode: BatchMode::PerResource,
        }))
        .await
        .expect("apply_tags");
    assert_eq!(outcomes.len(), 1, "one outcome per target");
    outcomes[0]
}

async fn set_tags(store: &dyn Store, at: &ResourceRef, tags: &[(&str, &str)]) -> ItemOutcome {
    let tags = tags.iter().map(|(k, v)| tag(k, v)).collect();
    apply_one(store, at, 50, TagChange::Set(tags), false).await
}

/// The tags of a registered resource, as `(key, value)` pairs in the order returned.
async fn tags_of(store: &dyn Store, at: &ResourceRef) -> Vec<(String, String)> {
    store
        .resource_tags(at)
        .await
        .expect("resource_tags")
        .unwrap_or_else(|| panic!("{at:?} should be registered"))
        .into_iter()
        .map(|t| (t.key.as_str().to_owned(), t.value.as_str().to_owned()))
        .collect()
}

async fn is_registered(store: &dyn Store, at: &ResourceRef) -> bool {
    store
        .resource_tags(at)
        .await
        .expect("resource_tags")
        .is_some()
}

/// All-or-nothing, unknown resources included: one failure undoes the batch.
const ALL_OR_NOTHING: BatchMode = BatchMode::AllOrNothing {
    skip_unknown: false,
};

/// All-or-nothing, but unknown resources are left out instead of failing the batch.
const SKIP_UNKNOWN: BatchMode = BatchMode::AllOrNothing { skip_unknown: true };

fn set_of(tags: &[(&str, &str)]) -> TagChange {
    TagChange::Set(tags.iter().map(|(k, v)| tag(k, v)).collect())
}

/// Applies one batch (without auto-registration) and returns its outcomes.
async fn apply_batch(
    store: &dyn Store,
    targets: Vec<BatchTarget>,
    change: TagChange,
    sys_change: Option<TagChange>,
    mode: BatchMode,
) -> Vec<ItemOutcome> {
    let count = targets.len();
    let outcomes = store
        .apply_tags(TagBatch::from(UniformBatch {
            targets,
            change,
            sys_change,
            mode,
            auto_register: false,
        }))
        .await
        .expect("apply_tags");
    assert_eq!(outcomes.len(), count, "one outcome per target");
    outcomes
}

/// The system tags of a registered resource, as `(key, value)` pairs in the order
/// returned.
async fn sys_tags_of(store: &dyn Store, at: &ResourceRef) -> Vec<(String, String)> {
    store
        .resource_sys_tags(at)
        .await
        .expect("resource_sys_tags")
        .unwrap_or_else(|| panic!("{at:?} should be registered"))
        .into_iter()
        .map(|t| (t.key.as_str().to_owned(), t.value.as_str().to_owned()))
        .collect()
}

fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}

fn domain_names(domains: &[Domain]) -> BTreeSet<String> {
    domains.iter().map(|d| d.name.clone()).collect()
}

// ---------------------------------------------------------------------------------------
// Identity

async fn domains_round_trip(store: Arc<dyn Store>) {
    let store = &*store;
    assert!(store.list_domains().await.expect("list_domains").is_empty());

    let acme = new_domain(store, "acme").await;
    let globex = Domain {
        id: new_id(),
        name: "globex".to_owned(),
        enabled: false,
    };
    store.insert_domain(&globex).await.expect("insert_domain");

    assert_eq!(
        store.domain(&acme.id).await.expect("domain"),
        Some(acme.clone())
    );
    assert_eq!(
        store
            .domain_by_name("globex")
            .await
            .expect("domain_by_name"),
        Some(globex.clone()),
        "enabled=false must round-trip"
    );
    assert_eq!(store.domain(&new_id()).await.expect("domain"), None);
    assert_eq!(
        store
            .domain_by_name("initech")
            .await
            .expect("domain_by_name"),
        None
    );
    assert_eq!(
        store.domain_by_name("ACME").await.expect("domain_by_name"),
        None,
        "names are case-sensitive"
    );

    let mut listed = store.list_domains().await.expect("list_domains");
    listed.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(listed, vec![acme.clone(), globex.clone()]);

    // The same name under a new id, and the same id under a new name, both conflict.
    let same_name = Domain {
        id: new_id(),
        name: "acme".to_owned(),
        enabled: true,
    };
    match store.insert_domain(&same_name).await {
        Err(StoreError::AlreadyExists(_)) => {}
        other => panic!("a duplicate domain name gave {other:?}, not AlreadyExists"),
    }
    let same_id = Domain {
        id: acme.id.clone(),
        name: "acme-2".to_owned(),
        enabled: true,
    };
    match store.insert_domain(&same_id).await {
        Err(StoreError::AlreadyExists(_)) => {}
        other => panic!("a duplicate domain id gave {other:?}, not AlreadyExists"),
    }
    assert_eq!(
        domain_names(&store.list_domains().await.expect("list_domains")),
        BTreeSet::from(["acme".to_owned(), "globex".to_owned()]),
        "refused inserts must leave nothing behind"
    );
    assert_eq!(store.domain(&same_name.id).await.expect("domain"), None);
}

async fn projects_round_trip(store: Arc<dyn Store>) {
    let store = &*store;
    let acme = new_domain(store, "acme").await;
    let globex = new_domain(store, "globex").await;

    let prod = new_project(store, &acme, "prod").await;
    let dev = Project {
        id: new_id(),
        domain_id: acme.id.clone(),
        name: "dev".to_owned(),
        enabled: false,
    };
    store.insert_project(&dev).await.expect("insert_project");
    // The same name in another domain is a different project.
    let other_prod = new_project(store, &globex, "prod").await;

    assert_eq!(
        store.project(&prod.id).await.expect("project"),
        Some(prod.clone())
    );
    assert_eq!(
        store.project(&dev.id).await.expect("project"),
        Some(dev.clone())
    );
    assert_eq!(store.project(&new_id()).await.expect("project"), None);

    let by_id = |v: Vec<Project>| {
        let mut v = v;
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v
    };
    assert_eq!(
        by_id(
            store
                .list_projects(Some(&acme.id))
                .await
                .expect("list_projects")
        ),
        by_id(vec![prod.clone(), dev.clone()])
    );
    assert_eq!(
        by_id(store.list_projects(None).await.expect("list_projects")),
        by_id(vec![prod.clone(), dev.clone(), other_prod.clone()])
    );
    assert!(store
        .list_projects(Some(&new_id()))
        .await
        .expect("list_projects")
        .is_empty());

    let duplicate = Project {
        id: new_id(),
        domain_id: acme.id.clone(),
        name: "prod".to_owned(),
        enabled: true,
    };
    match store.insert_project(&duplicate).await {
        Err(StoreError::AlreadyExists(_)) => {}
        other => panic!("a duplicate project name gave {other:?}, not AlreadyExists"),
    }
    assert_eq!(store.project(&duplicate.id).await.expect("project"), None);
    assert_eq!(
        store
            .list_projects(Some(&acme.id))
            .await
            .expect("list_projects")
            .len(),
        2
    );
}

async fn users_round_trip(store: Arc<dyn Store>) {
    let store = &*store;
    let acme = new_domain(store, "acme").await;
    let globex = new_domain(store, "globex").await;

    let alice = User {
        id: new_id(),
        domain_id: acme.id.clone(),
        name: "alice".to_owned(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".to_owned(),
        is_admin: true,
        enabled: true,
    };
    store.insert_user(&alice).await.expect("insert_user");
    let bob = User {
        id: new_id(),
        domain_id: acme.id.clone(),
        name: "bob".to_owned(),
        password_hash: "hash-of-bob".to_owned(),
        is_admin: false,
        enabled: false,
    };
    store.insert_user(&bob).await.expect("insert_user");
    let other_alice = new_user(store, &globex, "alice").await;

    assert_eq!(
        store.user(&alice.id).await.expect("user"),
        Some(alice.clone())
    );
    assert_eq!(store.user(&bob.id).await.expect("user"), Some(bob.clone()));
    assert_eq!(store.user(&new_id()).await.expect("user"), None);
    assert_eq!(
        store
            .user_by_name(&acme.id, "alice")
            .await
            .expect("user_by_name"),
        Some(alice.clone())
    );
    assert_eq!(
        store
            .user_by_name(&globex.id, "alice")
            .await
            .expect("user_by_name"),
        Some(other_alice.clone())
    );
    assert_eq!(
        store
            .user_by_name(&globex.id, "bob")
            .await
            .expect("user_by_name"),
        None,
        "user names are looked up within their domain"
    );

    let mut listed = store.list_users(&acme.id).await.expect("list_users");
    listed.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(listed, vec![alice.clone(), bob.clone()]);

    let duplicate = User {
        id: new_id(),
        ..alice.clone()
    };
    match store.insert_user(&duplicate).await {
        Err(StoreError::AlreadyExists(_)) => {}
        other => panic!("a duplicate user name gave {other:?}, not AlreadyExists"),
    }
    assert_eq!(store.user(&duplicate.id).await.expect("user"), None);

    assert!(store
        .set_password_hash(&bob.id, "new-hash")
        .await
        .expect("set_password_hash"));
    assert_eq!(
        store
            .user(&bob.id)
            .await
            .expect("user")
            .map(|u| u.password_hash),
        Some("new-hash".to_owned())
    );
    assert_eq!(
        store.user(&alice.id).await.expect("user"),
        Some(alice.clone()),
        "only the named user changes"
    );
    assert!(!store
        .set_password_hash(&new_id(), "x")
        .await
        .expect("set_password_hash"));

    assert!(store.delete_user(&bob.id).await.expect("delete_user"));
    assert!(!store.delete_user(&bob.id).await.expect("delete_user"));
    assert_eq!(store.user(&bob.id).await.expect("user"), None);
    assert_eq!(
        store.list_users(&acme.id).await.expect("list_users"),
        vec![alice.clone()]
    );
}

async fn delete_domain_cascades(store: Arc<dyn Store>) {
    let store = &*store;
    let acme = new_domain(store, "acme").await;
    let globex = new_domain(store, "globex").await;
    let prod = new_project(store, &acme, "prod").await;
    let alice = new_user(store, &acme, "alice").await;
    let token = token_for(
        &alice,
        Scope::Project {
            id: prod.id.clone(),
        },
    );
    store.insert_token(&token).await.expect("insert_token");
    let vm = at(&acme, &prod.id, "ecs.cloudservers", "vm-1");
    let bucket = at(&acme, "", "obs.buckets", "bucket-1");
    register(store, &[resource(&vm, "vm"), resource(&bucket, "bucket")]).await;
    assert_eq!(
        set_tags(store, &vm, &[("env", "prod")]).await,
        ItemOutcome::Applied
    );
    assert_eq!(
        set_tags(store, &bucket, &[("env", "prod")]).await,
        ItemOutcome::Applied
    );

    // The other domain must survive untouched.
    let other_project = new_project(store, &globex, "prod").await;
    let other_user = new_user(store, &globex, "alice").await;
    let other_token = token_for(&other_user, Scope::Domain);
    store
        .insert_token(&other_token)
        .await
        .expect("insert_token");
    let other_vm = at(&globex, &other_project.id, "ecs.cloudservers", "vm-1");
    register(store, &[resource(&other_vm, "vm")]).await;
    assert_eq!(
        set_tags(store, &other_vm, &[("env", "dev")]).await,
        ItemOutcome::Applied
    );

    assert!(store.delete_domain(&acme.id).await.expect("delete_domain"));
    assert!(!store.delete_domain(&acme.id).await.expect("delete_domain"));
    assert!(!store.delete_domain(&new_id()).await.expect("delete_domain"));

    assert_eq!(store.domain(&acme.id).await.expect("domain"), None);
    assert_eq!(
        store.domain_by_name("acme").await.expect("domain_by_name"),
        None
    );
    assert_eq!(store.project(&prod.id).await.expect("project"), None);
    assert!(store
        .list_projects(Some(&acme.id))
        .await
        .expect("list_projects")
        .is_empty());
    assert_eq!(store.user(&alice.id).await.expect("user"), None);
    assert!(store
        .list_users(&acme.id)
        .await
        .expect("list_users")
        .is_empty());
    assert_eq!(store.token(&token.token_hash).await.expect("token"), None);
    assert!(list(
        store,
        ResourceFilter {
            domain_id: Some(acme.id.clone()),
            ..ResourceFilter::default()
        }
    )
    .await
    .is_empty());
    assert!(!is_registered(store, &vm).await);
    assert!(!is_registered(store, &bucket).await);

    assert_eq!(
        store.domain(&globex.id).await.expect("domain"),
        Some(globex.clone())
    );
    assert_eq!(
        store.project(&other_project.id).await.expect("project"),
        Some(other_project.clone())
    );
    assert_eq!(
        store.user(&other_user.id).await.expect("user"),
        Some(other_user.clone())
    );
    assert_eq!(
        store.token(&other_token.token_hash).await.expect("token"),
        Some(other_token.clone())
    );
    assert_eq!(tags_of(store, &other_vm).await, pairs(&[("env", "dev")]));

    // The name is free again, and the new domain starts empty.
    let acme2 = new_domain(store, "acme").await;
    assert!(store
        .list_users(&acme2.id)
        .await
        .expect("list_users")
        .is_empty());
    register(
        store,
        &[resource(&at(&acme2, "", "obs.buckets", "bucket-1"), "")],
    )
    .await;
    assert_eq!(
        tags_of(store, &at(&acme2, "", "obs.buckets", "bucket-1")).await,
        pairs(&[]),
        "no tag of the deleted domain may resurface"
    );
}

/// A project or user whose domain does not exist must be refused, and not as a duplicate:
/// `AlreadyExists` is rendered to clients as "project ... already exists" (409).
async fn orphans_are_not_reported_as_duplicates(store: Arc<dyn Store>) {
    let store = &*store;
    let missing = Domain {
        id: new_id(),
        name: "missing".to_owned(),
        enabled: true,
    };
    let project = Project {
        id: new_id(),
        domain_id: missing.id.clone(),
        name: "prod".to_owned(),
        enabled: true,
    };
    match store.insert_project(&project).await {
        Err(StoreError::AlreadyExists(what)) => {
            panic!(
                "a project in a missing domain was reported as a duplicate: {what} already exists"
            )
        }
        Err(_) => {}
        Ok(()) => panic!("a project in a missing domain was accepted"),
    }
    assert_eq!(store.project(&project.id).await.expect("project"), None);

    let user = User {
        id: new_id(),
        domain_id: missing.id.clone(),
        name: "alice".to_owned(),
        password_hash: "h".to_owned(),
        is_admin: false,
        enabled: true,
    };
    match store.insert_user(&user).await {
        Err(StoreError::AlreadyExists(what)) => {
            panic!("a user in a missing domain was reported as a duplicate: {what} already exists")
        }
        Err(_) => {}
        Ok(()) => panic!("a user in a missing domain was accepted"),
    }
    assert_eq!(store.user(&user.id).await.expect("user"), None);
}

/// `token_context` reads a token with its user, domain and project in one go, and says
/// which of them are gone.
async fn token_context_joins_user_domain_and_project(store: Arc<dyn Store>) {
    let store = &*store;
    let acme = new_domain(store, "acme").await;
    let prod = new_project(store, &acme, "prod").await;
    let alice = new_user(store, &acme, "alice").await;
    let domain_token = token_for(&alice, Scope::Domain);
    let project_token = token_for(
        &alice,
        Scope::Project {
            id: prod.id.clone(),
        },
    );
    for t in [&domain_token, &project_token] {
        store.insert_token(t).await.expect("insert_token");
    }
    let found = store
        .token_context(&project_token.token_hash)
        .await
        .expect("token_context")
        .expect("known token");
    assert_eq!(found.token, project_token);
    assert_eq!(found.user.as_ref(), Some(&alice));
    assert_eq!(found.domain.as_ref(), Some(&acme));
    assert_eq!(found.project.as_ref(), Some(&prod));
    let found = store
        .token_context(&domain_token.token_hash)
        .await
        .expect("token_context")
        .expect("known token");
    assert_eq!(found.project, None);
    assert_eq!(found.domain.as_ref(), Some(&acme));
    assert!(store
        .token_context("no-such-hash")
        .await
        .expect("token_context")
        .is_none());

    // Deleting the project takes its project-scoped tokens with it.
    assert!(store
        .delete_project(&prod.id)
        .await
        .expect("delete_project"));
    assert!(store
        .token_context(&project_token.token_hash)
        .await
        .expect("token_context")
        .is_none());
    assert!(store
        .token_context(&domain_token.token_hash)
        .await
        .expect("token_context")
        .is_some());
}

/// Cached credential lookups are trusted only while this count stands still, so every
/// change that can make a credential stop working must move it.
async fn credential_changes_advance_the_identity_epoch(store: Arc<dyn Store>) {
    let store = &*store;
    let acme = new_domain(store, "acme").await;
    let other = new_domain(store, "other").await;
    let prod = new_project(store, &acme, "prod").await;
    let alice = new_user(store, &acme, "alice").await;
    let token = token_for(&alice, Scope::Domain);
    store.insert_token(&token).await.expect("insert_token");

    let mut seen = store.identity_epoch();
    let mut advanced = |what: &str, store: &dyn Store| {
        let now = store.identity_epoch();
        assert!(now > seen, "{what} must advance the identity epoch");
        seen = now;
    };
    assert!(store.revoke_token(&token.token_hash).await.expect("revoke"));
    advanced("revoking a token", store);
    assert!(store
        .delete_project(&prod.id)
        .await
        .expect("delete_project"));
    advanced("deleting a project", store);
    assert!(store.delete_user(&alice.id).await.expect("delete_user"));
    advanced("deleting a user", store);
    assert!(store.delete_domain(&other.id).await.expect("delete_domain"));
    advanced("deleting a domain", store);
}

async fn tokens_round_trip(store: Arc<dyn Store>) {
    let store = &*store;
    let acme = new_domain(store, "acme").await;
    let prod = new_project(store, &acme, "prod").await;
    let alice = new_user(store, &acme, "alice").await;

    let domain_token = token_for(&alice, Scope::Domain);
    let project_token = TokenRecord {
        methods: vec!["password".to_owned(), "token".to_owned()],
        ..token_for(
            &alice,
            Scope::Project {
                id: prod.id.clone(),
            },
        )
    };
    let already_revoked = TokenRecord {
        revoked: true,
        issued_at: 1_700_000_000,
        expires_at: now_unix() + 7 * 24 * 3600,
        ..token_for(&alice, Scope::Domain)
    };
    for t in [&domain_token, &project_token, &already_revoked] {
        store.insert_token(t).await.expect("insert_token");
    }

    assert_eq!(
        store.token(&domain_token.token_hash).await.expect("token"),
        Some(domain_token.clone())
    );
    assert_eq!(
        store.token(&project_token.token_hash).await.expect("token"),
        Some(project_token.clone()),
        "project scope and the order of methods must round-trip"
    );
    assert_eq!(
        store
            .token(&already_revoked.token_hash)
            .await
            .expect("token"),
        Some(already_revoked.clone())
    );
    assert_eq!(store.token(&new_id()).await.expect("token"), None);

    // A second record with the same hash must not replace the first.
    let clash = TokenRecord {
        scope: Scope::Project {
            id: prod.id.clone(),
        },
        ..domain_token.clone()
    };
    assert!(
        store.insert_token(&clash).await.is_err(),
        "a duplicate token hash must be refused"
    );
    assert_eq!(
        store.token(&domain_token.token_hash).await.expect("token"),
        Some(domain_token.clone())
    );

    assert!(store
        .revoke_token(&domain_token.token_hash)
        .await
        .expect("revoke_token"));
    assert!(!store
        .revoke_token(&domain_token.token_hash)
        .await
        .expect("revoke_token"));
    assert!(!store
        .revoke_token(&already_revoked.token_hash)
        .await
        .expect("revoke_token"));
    assert!(!store.revoke_token(&new_id()).await.expect("revoke_token"));
    assert_eq!(
        store.token(&domain_token.token_hash).await.expect("token"),
        Some(TokenRecord {
            revoked: true,
            ..domain_token.clone()
        })
    );
    assert_eq!(
        store.token(&project_token.token_hash).await.expect("token"),
        Some(project_token.clone()),
        "revoking one token leaves the others alone"
    );

    // Deleting the user takes their tokens along.
    assert!(store.delete_user(&alice.id).await.expect("delete_user"));
    assert_eq!(
        store.token(&project_token.token_hash).await.expect("token"),
        None
    );
}

/// `methods` is a list of strings and must come back as stored, whatever it holds.
async fn token_methods_round_trip_exactly(store: Arc<dyn Store>) {
    let store = &*store;
    let acme = new_domain(store, "acme").await;
    let alice = new_user(store, &acme, "alice").await;
    for methods in [
        vec!["password".to_owned()],
        vec!["token".to_owned(), "password".to_owned()],
        vec!["password".to_owned(), "a,b".to_owned()],
        vec![],
    ] {
        let token = TokenRecord {
            methods: methods.clone(),
            ..token_for(&alice, Scope::Domain)
        };
        store.insert_token(&token).await.expect("insert_token");
        assert_eq!(
            store
                .token(&token.token_hash)
                .await
                .expect("token")
                .map(|t| t.methods),
            Some(methods.clone()),
            "methods {methods:?} did not round-trip"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Inventory

async fn register_counts_new_and_renames(store: Arc<dyn Store>) {
    let store = &*store;
    let acme = new_domain(store, "acme").await;
    let prod = new_project(store, &acme, "prod").await;
    let vm1 = at(&acme, &prod.id, "ecs.cloudservers", "vm-1");
    let vm2 = at(&acme, &prod.id, "ecs.cloudservers", "vm-2");
    let vm3 = at(&acme, &prod.id, "ecs.cloudservers", "vm-3");

    assert_eq!(register(store, &[]).await, 0);
    assert_eq!(
        register(store, &[resource(&vm1, "web"), resource(&vm2, "db")]).await,
        2
    );
    assert_eq!(
        set_tags(store, &vm1, &[("env", "prod")]).await,
        ItemOutcome::Applied
    );

    // Registering again counts nothing, renames, and keeps the tags.
    assert_eq!(
        register(
            store,
            &[resource(&vm1, "web-renamed"), resource(&vm2, "db")]
        )
        .await,
        0
    );
    assert_eq!(tags_of(store, &vm1).await, pairs(&[("env", "prod")]));

    // One old, one new: one is counted. A resource named twice in one call is new once.
    assert_eq!(
        register(
            store,
            &[
                resource(&vm2, "db-renamed"),
                resource(&vm3, "cache"),
                resource(&vm3, "cache-2")
            ]
        )
        .await,
        1
    );

    let listed = list(store, ResourceFilter::default()).await;
    let names: BTreeMap<ResourceRef, String> = listed.into_iter().map(|r| (r.at, r.name)).collect();
    assert_eq!(
        names,
        BTreeMap::from([
            (vm1.clone(), "web-renamed".to_owned()),
            (vm2.clone(), "db-renamed".to_owned()),
            (vm3.clone(), "cache-2".to_owned()),
        ])
    );
    assert_eq!(
        tags_of(store, &vm3).await,
        pairs(&[]),
        "a new resource has no tags"
    );
}

/// A call that fails is atomic: nothing of it is written.
async fn failed_register_writes_nothing(store: Arc<dyn Store>) {
    let store = &*store;
    let acme = new_domain(store, "acme").await;
    let ghost = Domain {
        id: new_id(),
        name: "ghost".to_owned(),
        enabled: true,
    };
    let good = at(&acme, "", "obs.buckets", "bucket-1");
    let orphan = at(&ghost, "", "obs.buckets", "bucket-1");
    assert!(
        store
            .register_resources(&[resource(&good, "good"), resource(&orphan, "orphan")])
            .await
            .is_err(),
        "a resource of a missing domain must be refused"
    );
    assert!(
        !is_registered(store, &good).await,
        "the failed call left a resource"
    );
    assert!(list(store, ResourceFilter::default()).await.is_empty());
    // The store is still usable afterwards.
    assert_eq!(register(store, &[resource(&good, "good")]).await, 1);
}

async fn list_resources_filters_and_pages(store: Arc<dyn Store>) {
    let store = &*store;
    let acme = new_domain(store, "acme").await;
    let globex = new_domain(store, "globex").await;
    let p1 = new_project(store, &acme, "p1").await;
    let p2 = new_project(store, &acme, "p2").await;
    let gp = new_project(store, &globex, "p1").await;

    let ecs = "ecs.cloudservers";
    let evs = "evs.volumes";
    let obs = "obs.buckets";
    let all_acme = vec![
        resource(&at(&acme, &p1.id, ecs, "vm-c"), "c"),
        resource(&at(&acme, &p1.id, ecs, "vm-a"), "a"),
        resource(&at(&acme, &p1.id, ecs, "vm-b"), "b"),
        resource(&at(&acme, &p1.id, evs, "vol-1"), "v1"),
        resource(&at(&acme, &p1.id, evs, "vol-2"), "v2"),
        resource(&at(&acme, &p2.id, ecs, "vm-a"), "p2-a"),
        resource(&at(&acme, "", obs, "bucket-1"), "bucket"),
    ];
    let other = resource(&at(&globex, &gp.id, ecs, "vm-a"), "globex-a");
    assert_eq!(register(store, &all_acme).await, 7);
    assert_eq!(register(store, std::slice::from_ref(&other)).await, 1);

    let as_set = |v: &[Resource]| -> BTreeSet<(ResourceRef, String)> {
        v.iter().map(|r| (r.at.clone(), r.name.clone())).collect()
    };
    let matching = |f: &dyn Fn(&Resource) -> bool| -> BTreeSet<(ResourceRef, String)> {
        as_set(
            &all_acme
                .iter()
                .chain(std::iter::once(&other))
                .filter(|r| f(r))
                .cloned()
                .collect::<Vec<_>>(),
        )
    };

    let everything = list(store, ResourceFilter::default()).await;
    assert_eq!(as_set(&everything), matching(&|_| true));
    assert_eq!(everything.len(), 8);

    let by_domain = list(
        store,
        ResourceFilter {
            domain_id: Some(acme.id.clone()),
            ..ResourceFilter::default()
        },
    )
    .await;
    assert_eq!(as_set(&by_domain), matching(&|r| r.at.domain_id == acme.id));

    let by_project = list(
        store,
        ResourceFilter {
            project_id: Some(p1.id.clone()),
            ..ResourceFilter::default()
        },
    )
    .await;
    assert_eq!(as_set(&by_project), matching(&|r| r.at.project_id == p1.id));
    assert_eq!(by_project.len(), 5);

    let by_type = list(
        store,
        ResourceFilter {
            domain_id: Some(acme.id.clone()),
            project_id: Some(p1.id.clone()),
            resource_type: Some(ecs.to_owned()),
            ..ResourceFilter::default()
        },
    )
    .await;
    assert_eq!(
        as_set(&by_type),
        matching(&|r| r.at.project_id == p1.id && r.at.resource_type == ecs)
    );
    assert_eq!(by_type.len(), 3);

    let ecs_everywhere = list(
        store,
        ResourceFilter {
            resource_type: Some(ecs.to_owned()),
            ..ResourceFilter::default()
        },
    )
    .await;
    assert_eq!(
        as_set(&ecs_everywhere),
        matching(&|r| r.at.resource_type == ecs)
    );
    assert_eq!(ecs_everywhere.len(), 5);

    // Global resources have the empty project id, and it filters like any other.
    let global = list(
        store,
        ResourceFilter {
            domain_id: Some(acme.id.clone()),
            project_id: Some(String::new()),
            ..ResourceFilter::default()
        },
    )
    .await;
    assert_eq!(as_set(&global), matching(&|r| r.at.project_id.is_empty()));
    assert_eq!(global.len(), 1);

    assert!(list(
        store,
        ResourceFilter {
            resource_type: Some("rds.instances".to_owned()),
            ..ResourceFilter::default()
        }
    )
    .await
    .is_empty());

    // The order is stable: the same listing twice, sorted by where each resource lives
    // (ids are lower-case ASCII here, so every collation agrees).
    let again = list(
        store,
        ResourceFilter {
            domain_id: Some(acme.id.clone()),
            ..ResourceFilter::default()
        },
    )
    .await;
    assert_eq!(again, by_domain, "two listings disagree on order");
    let refs: Vec<ResourceRef> = by_domain.iter().map(|r| r.at.clone()).collect();
    assert_eq!(
        refs,
        sorted(refs.clone()),
        "listings are ordered by resource"
    );

    // Pages of every size tile the full listing exactly.
    for page_size in 1..=4 {
        let mut paged = Vec::new();
        let mut offset = 0;
        loop {
            let page = list(
                store,
                ResourceFilter {
                    domain_id: Some(acme.id.clone()),
                    limit: Some(page_size),
                    offset,
                    ..ResourceFilter::default()
                },
            )
            .await;
            assert!(page.len() <= page_size, "a page exceeded its limit");
            if page.is_empty() {
                break;
            }
            offset += page.len();
            paged.extend(page);
        }
        assert_eq!(
            paged, by_domain,
            "pages of {page_size} do not tile the listing"
        );
    }
    let tail = list(
        store,
        ResourceFilter {
            domain_id: Some(acme.id.clone()),
            offset: 5,
            ..ResourceFilter::default()
        },
    )
    .await;
    assert_eq!(tail, by_domain[5..].to_vec(), "an offset without a limit");
    assert!(list(
        store,
        ResourceFilter {
            limit: Some(0),
            ..ResourceFilter::default()
        }
    )
    .await
    .is_empty());
    assert!(list(
        store,
        ResourceFilter {
            offset: 100,
            ..ResourceFilter::default()
        }
    )
    .await
    .is_empty());
}

/// What the metrics' per-project gauges read: resources and user tags per project,
/// sorted, empty projects left out; the same whether the SQLite tag index answers or SQL.
async fn project_totals_count_resources_and_user_tags(store: Arc<dyn Store>) {
    let s = &*store;
    assert_eq!(s.project_totals().await.expect("totals"), vec![]);
    let acme = new_domain(s, "acme").await;
    let prod = new_project(s, &acme, "prod").await;
    let dev = new_project(s, &acme, "dev").await;
    let _empty = new_project(s, &acme, "empty").await;
    let vm1 = at(&acme, &prod.id, "ecs.cloudservers", "vm-1");
    let vm2 = at(&acme, &prod.id, "ecs.cloudservers", "vm-2");
    let disk = at(&acme, &prod.id, "disk", "d-1");
    let vm3 = at(&acme, &dev.id, "ecs.cloudservers", "vm-3");
    register(
        s,
        &[
            resource(&vm1, ""),
            resource(&vm2, ""),
            resource(&disk, ""),
            resource(&vm3, ""),
        ],
    )
    .await;
    set_tags(s, &vm1, &[("env", "prod"), ("team", "a")]).await;
    set_tags(s, &disk, &[("env", "prod")]).await;
    set_tags(s, &vm3, &[("env", "dev"), ("team", "b"), ("cost", "1")]).await;
    let totals = |prod_counts: (u64, u64), dev_counts: (u64, u64)| {
        let mut want = vec![
            ProjectTotals {
                domain_id: acme.id.clone(),
                project_id: prod.id.clone(),
                resources: prod_counts.0,
                tags: prod_counts.1,
            },
            ProjectTotals {
                domain_id: acme.id.clone(),
                project_id: dev.id.clone(),
                resources: dev_counts.0,
                tags: dev_counts.1,
            },
        ];
        want.retain(|t| t.resources > 0);
        want.sort_by(|a, b| a.project_id.cmp(&b.project_id));
        want
    };
    assert_eq!(
        s.project_totals().await.expect("totals"),
        totals((3, 3), (1, 3))
    );
    // With the SQLite tag index built (when it is current it answers instead of SQL).
    s.prepare_for_queries();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(
        s.project_totals().await.expect("totals"),
        totals((3, 3), (1, 3))
    );
    s.remove_resources(std::slice::from_ref(&vm3))
        .await
        .expect("remove");
    set_tags(s, &vm2, &[("x", "1")]).await;
    assert_eq!(
        s.project_totals().await.expect("totals"),
        totals((3, 4), (0, 0))
    );
}

async fn remove_resources_drops_tags(store: Arc<dyn Store>) {
    let store = &*store;
    let acme = new_domain(store, "acme").await;
    let prod = new_project(store, &acme, "prod").await;
    let vm1 = at(&acme, &prod.id, "ecs.cloudservers", "vm-1");
    let vm2 = at(&acme, &prod.id, "ecs.cloudservers", "vm-2");
    let never = at(&acme, &prod.id, "ecs.cloudservers", "never-registered");
    register(store, &[resource(&vm1, "one"), resource(&vm2, "two")]).await;
    assert_eq!(
        set_tags(store, &vm1, &[("env", "prod"), ("team", "a")]).await,
        ItemOutcome::Applied
    );
    assert_eq!(
        set_tags(store, &vm2, &[("env", "dev")]).await,
        ItemOutcome::Applied
    );

    assert_eq!(
        store
            .remove_resources(&[vm1.clone(), never.clone()])
            .await
            .expect("remove_resources"),
        1,
        "only resources that existed are counted"
    );
    assert!(!is_registered(store, &vm1).await);
    assert_eq!(
        list(store, ResourceFilter::default()).await,
        vec![resource(&vm2, "two")]
    );
    assert_eq!(tags_of(store, &vm2).await, pairs(&[("env", "dev")]));
    assert_eq!(
        store
            .remove_resources(std::slice::from_ref(&vm1))
            .await
            .expect("remove_resources"),
        0
    );

    // Registered again, it starts with no tags.
    assert_eq!(register(store, &[resource(&vm1, "one")]).await, 1);
    assert_eq!(tags_of(store, &vm1).await, pairs(&[]));
}

// ---------------------------------------------------------------------------------------
// Tags

async fn set_overwrites_and_sorts_by_key(store: Arc<dyn Store>) {
    let store = &*store;
    let acme = new_domain(store, "acme").await;
    let prod = new_project(store, &acme, "prod").await;
    let vm = at(&acme, &prod.id, "ecs.cloudservers", "vm-1");
    register(store, &[resource(&vm, "")]).await;

    assert_eq!(
        set_tags(store, &vm, &[("team", "a"), ("env", "prod")]).await,
        ItemOutcome::Applied
    );
    assert_eq!(
        tags_of(store, &vm).await,
        pairs(&[("env", "prod"), ("team", "a")])
    );

    // Overwriting `team` changes its value, not the count.
    assert_eq!(
        set_tags(store, &vm, &[("team", "b"), ("app", "x")]).await,
        ItemOutcome::Applied
    );
    assert_eq!(
        tags_of(store, &vm).await,
        pairs(&[("app", "x"), ("env", "prod"), ("team", "b")])
    );

    // Keys are case-sensitive, and come back in byte order whatever order they went in.
    assert_eq!(
        set_tags(
            store,
            &vm,
            &[("zeta", ""), ("Env", "PROD"), ("a_b", "1"), ("a-b", "2")]
        )
        .await,
        ItemOutcome::Applied
    );
    let got = tags_of(store, &vm).await;
    assert_eq!(
        got,
        pairs(&[
            ("Env", "PROD"),
            ("a-b", "2"),
            ("a_b", "1"),
            ("app", "x"),
            ("env", "prod"),
            ("team", "b"),
            ("zeta", ""),
        ])
    );
    assert_eq!(got, sorted(got.clone()), "tags must be sorted by key");

    // An empty value is a value: overwriting with "" keeps the key.
    assert_eq!(
        set_tags(store, &vm, &[("env", "")]).await,
        ItemOutcome::Applied
    );
    assert!(tags_of(store, &vm)
        .await
        .contains(&("env".to_owned(), String::new())));
    assert_eq!(tags_of(store, &vm).await.len(), 7);
}

async fn set_on_unregistered_resources(store: Arc<dyn Store>) {
    let store = &*store;
    let acme = new_domain(store, "acme").await;
    let prod = new_project(store, &acme, "prod").await;
    let known1 = at(&acme, &prod.id, "ecs.cloudservers", "vm-1");
    let known2 = at(&acme, &prod.id, "ecs.cloudservers", "vm-2");
    let unknown = at(&acme, &prod.id, "ecs.cloudservers", "vm-unknown");
    register(store, &[resource(&known1, "one"), resource(&known2, "two")]).await;

    assert!(!is_registered(store, &unknown).await);
    assert_eq!(
        apply_one(
            store,
            &unknown,
            10,
            TagChange::Set(vec![tag("env", "prod")]),
            false
        )
        .await,
        ItemOutcome::NotFound
    );
    assert!(
        !is_registered(store, &unknown).await,
        "NotFound must not register"
    );

    // One missing target does not stop the others; outcomes follow the request order.
    let outcomes = store
        .apply_tags(TagBatch::from(UniformBatch {
            targets: vec![
                target(&known1, 10),
                target(&unknown, 10),
                target(&known2, 10),
            ],
            change: TagChange::Set(vec![tag("env", "prod")]),
            auto_register: false,
            sys_change: None,
            mode: BatchMode::PerResource,
        }))
        .await
        .expect("apply_tags");
    assert_eq!(
        outcomes,
        vec![
            ItemOutcome::Applied,
            ItemOutcome::NotFound,
            ItemOutcome::Applied
        ]
    );
    assert_eq!(tags_of(store, &known1).await, pairs(&[("env", "prod")]));
    assert_eq!(tags_of(store, &known2).await, pairs(&[("env", "prod")]));
    assert!(!is_registered(store, &unknown).await);

    // Emulator mode registers the resource on its first write.
    assert_eq!(
        apply_one(
            store,
            &unknown,
            10,
            TagChange::Set(vec![tag("env", "dev"), tag("app", "x")]),
            true
        )
        .await,
        ItemOutcome::Applied
    );
    assert_eq!(
        tags_of(store, &unknown).await,
        pairs(&[("app", "x"), ("env", "dev")])
    );
    let listed = list(store, ResourceFilter::default()).await;
    assert!(
        listed.iter().any(|r| r.at == unknown),
        "an auto-registered resource is in the inventory"
    );
    assert_eq!(listed.len(), 3);
}

async fn set_over_the_limit_writes_nothing_of_that_item(store: Arc<dyn Store>) {
    let store = &*store;
    let acme = new_domain(store, "acme").await;
    let prod = new_project(store, &acme, "prod").await;
    let roomy = at(&acme, &prod.id, "ecs.cloudservers", "roomy");
    let full = at(&acme, &prod.id, "ecs.cloudservers", "full");
    let missing = at(&acme, &prod.id, "ecs.cloudservers", "missing");
    register(store, &[resource(&roomy, ""), resource(&full, "")]).await;
    assert_eq!(
        set_tags(store, &full, &[("a", "1"), ("b", "1"), ("c", "1")]).await,
        ItemOutcome::Applied
    );

    // `full` has 3 tags; the change overwrites `a` and adds 2 keys: 5 > 4. `roomy` may
    // take it. The refused item must keep its old values, including the overwritten `a`.
    let change = TagChange::Set(vec![tag("a", "2"), tag("d", "2"), tag("e", "2")]);
    let outcomes = store
        .apply_tags(TagBatch::from(UniformBatch {
            targets: vec![target(&full, 4), target(&roomy, 4), target(&missing, 4)],
            change,
            auto_register: false,
            sys_change: None,
            mode: BatchMode::PerResource,
        }))
        .await
        .expect("apply_tags");
    assert_eq!(
        outcomes,
        vec![
            ItemOutcome::LimitExceeded {
                limit: 4,
                would_have: 5
            },
            ItemOutcome::Applied,
            ItemOutcome::NotFound,
        ]
    );
    assert_eq!(
        tags_of(store, &full).await,
        pairs(&[("a", "1"), ("b", "1"), ("c", "1")]),
        "a refused item must be left exactly as it was"
    );
    assert_eq!(
        tags_of(store, &roomy).await,
        pairs(&[("a", "2"), ("d", "2"), ("e", "2")])
    );

    // A change that would overflow even an empty resource.
    let empty = at(&acme, &prod.id, "ecs.cloudservers", "empty");
    register(store, &[resource(&empty, "")]).await;
    assert_eq!(
        apply_one(
            store,
            &empty,
            2,
            TagChange::Set(vec![tag("x", "1"), tag("y", "1"), tag("z", "1")]),
            false
        )
        .await,
        ItemOutcome::LimitExceeded {
            limit: 2,
            would_have: 3
        }
    );
    assert_eq!(tags_of(store, &empty).await, pairs(&[]));
}

async fn set_exactly_to_the_limit_is_applied(store: Arc<dyn Store>) {
    let store = &*store;
    let acme = new_domain(store, "acme").await;
    let vm = at(&acme, "", "obs.buckets", "bucket");
    register(store, &[resource(&vm, "")]).await;
    assert_eq!(
        apply_one(
            store,
            &vm,
            4,
            TagChange::Set(vec![tag("a", "1"), tag("b", "1")]),
            false
        )
        .await,
        ItemOutcome::Applied
    );
    // 2 + 2 == 4: exactly at the limit.
    assert_eq!(
        apply_one(
            store,
            &vm,
            4,
            TagChange::Set(vec![tag("c", "1"), tag("d", "1")]),
            false
        )
        .await,
        ItemOutcome::Applied
    );
    assert_eq!(tags_of(store, &vm).await.len(), 4);
    // A full resource still takes overwrites of its own keys.
    assert_eq!(
        apply_one(
            store,
            &vm,
            4,
            TagChange::Set(vec![tag("a", "2"), tag("d", "2")]),
            false
        )
        .await,
        ItemOutcome::Applied
    );
    assert_eq!(
        tags_of(store, &vm).await,
        pairs(&[("a", "2"), ("b", "1"), ("c", "1"), ("d", "2")])
    );
    // But not one key more.
    assert_eq!(
        apply_one(store, &vm, 4, TagChange::Set(vec![tag("e", "1")]), false).await,
        ItemOutcome::LimitExceeded {
            limit: 4,
            would_have: 5
        }
    );
    assert_eq!(tags_of(store, &vm).await.len(), 4);
}

/// In emulator mode, an item refused for its limit must not register the resource either:
/// "each resource either takes the whole change or is reported with an outcome saying
/// why not" (core/tagging.rs).
async fn rejected_auto_register_leaves_no_trace(store: Arc<dyn Store>) {
    let store = &*store;
    let acme = new_domain(store, "acme").await;
    let fresh = at(&acme, "", "obs.buckets", "fresh");
    assert_eq!(
        apply_one(
            store,
            &fresh,
            1,
            TagChange::Set(vec![tag("a", "1"), tag("b", "1")]),
            true
        )
        .await,
        ItemOutcome::LimitExceeded {
            limit: 1,
            would_have: 2
        }
    );
    assert!(
        list(store, ResourceFilter::default()).await.is_empty(),
        "a refused item registered its resource"
    );
    assert!(!is_registered(store, &fresh).await);
}

async fn remove_by_key_and_value(store: Arc<dyn Store>) {
    let store = &*store;
    let acme = new_domain(store, "acme").await;
    let prod = new_project(store, &acme, "prod").await;
    let vm1 = at(&acme, &prod.id, "ecs.cloudservers", "vm-1");
    let vm2 = at(&acme, &prod.id, "ecs.cloudservers", "vm-2");
    let unknown = at(&acme, &prod.id, "ecs.cloudservers", "vm-unknown");
    register(store, &[resource(&vm1, ""), resource(&vm2, "")]).await;
    let initial = [("app", "x"), ("empty", ""), ("env", "prod"), ("team", "a")];
    assert_eq!(set_tags(store, &vm1, &initial).await, ItemOutcome::Applied);
    assert_eq!(set_tags(store, &vm2, &initial).await, ItemOutcome::Applied);
    let remove = TagChange::Remove;

    // By key, whatever the value.
    assert_eq!(
        apply_one(store, &vm1, 10, remove(vec![by_key("env")]), false).await,
        ItemOutcome::Applied
    );
    assert_eq!(
        tags_of(store, &vm1).await,
        pairs(&[("app", "x"), ("empty", ""), ("team", "a")])
    );

    // By key and value: a different value removes nothing, the same value removes it.
    assert_eq!(
        apply_one(store, &vm1, 10, remove(vec![by_pair("team", "b")]), false).await,
        ItemOutcome::Applied
    );
    assert_eq!(
        tags_of(store, &vm1).await,
        pairs(&[("app", "x"), ("empty", ""), ("team", "a")])
    );
    assert_eq!(
        apply_one(store, &vm1, 10, remove(vec![by_pair("team", "A")]), false).await,
        ItemOutcome::Applied
    );
    assert_eq!(
        tags_of(store, &vm1).await.len(),
        3,
        "values are case-sensitive"
    );
    assert_eq!(
        apply_one(store, &vm1, 10, remove(vec![by_pair("team", "a")]), false).await,
        ItemOutcome::Applied
    );
    assert_eq!(
        tags_of(store, &vm1).await,
        pairs(&[("app", "x"), ("empty", "")])
    );

    // An empty value selector matches only the empty value (it is not "any value").
    assert_eq!(
        apply_one(store, &vm1, 10, remove(vec![by_pair("app", "")]), false).await,
        ItemOutcome::Applied
    );
    assert_eq!(
        tags_of(store, &vm1).await,
        pairs(&[("app", "x"), ("empty", "")])
    );
    assert_eq!(
        apply_one(store, &vm1, 10, remove(vec![by_pair("empty", "")]), false).await,
        ItemOutcome::Applied
    );
    assert_eq!(tags_of(store, &vm1).await, pairs(&[("app", "x")]));

    // A tag that is not there is not an error, and changes nothing.
    assert_eq!(
        apply_one(
            store,
            &vm1,
            10,
            remove(vec![by_key("nope"), by_pair("nada", "x")]),
            false
        )
        .await,
        ItemOutcome::Applied
    );
    assert_eq!(tags_of(store, &vm1).await, pairs(&[("app", "x")]));

    // Several selectors over several targets, in one batch; vm1 is untouched by the
    // selectors that only match vm2's tags.
    let outcomes = store
        .apply_tags(TagBatch::from(UniformBatch {
            targets: vec![target(&vm2, 10), target(&unknown, 10), target(&vm1, 10)],
            change: remove(vec![
                by_key("env"),
                by_pair("team", "a"),
                by_pair("app", "y"),
            ]),
            auto_register: false,
            sys_change: None,
            mode: BatchMode::PerResource,
        }))
        .await
        .expect("apply_tags");
    assert_eq!(
        outcomes,
        vec![
            ItemOutcome::Applied,
            ItemOutcome::NotFound,
            ItemOutcome::Applied
        ]
    );
    assert_eq!(
        tags_of(store, &vm2).await,
        pairs(&[("app", "x"), ("empty", "")])
    );
    assert_eq!(tags_of(store, &vm1).await, pairs(&[("app", "x")]));

    // In emulator mode, removing from an unregistered resource succeeds without
    // registering it.
    assert_eq!(
        apply_one(store, &unknown, 10, remove(vec![by_key("env")]), true).await,
        ItemOutcome::Applied
    );
    assert!(!is_registered(store, &unknown).await);
}

// ---------------------------------------------------------------------------------------
// All-or-nothing batches

/// An all-or-nothing batch that one target cannot take (over its limit, or unknown)
/// writes nothing for any target, those before the failing one included, yet still
/// reports every target's own outcome.
async fn all_or_nothing_failure_writes_nothing(store: Arc<dyn Store>) {
    let store = &*store;
    let acme = new_domain(store, "acme").await;
    let prod = new_project(store, &acme, "prod").await;
    let first = at(&acme, &prod.id, "ecs.cloudservers", "first");
    let full = at(&acme, &prod.id, "ecs.cloudservers", "full");
    let last = at(&acme, &prod.id, "ecs.cloudservers", "last");
    let missing = at(&acme, &prod.id, "ecs.cloudservers", "missing");
    register(
        store,
        &[
            resource(&first, ""),
            resource(&full, ""),
            resource(&last, ""),
        ],
    )
    .await;
    assert_eq!(
        set_tags(store, &first, &[("a", "1")]).await,
        ItemOutcome::Applied
    );
    assert_eq!(
        set_tags(store, &full, &[("a", "1"), ("b", "1"), ("c", "1")]).await,
        ItemOutcome::Applied
    );
    let first_before = pairs(&[("a", "1")]);
    let full_before = pairs(&[("a", "1"), ("b", "1"), ("c", "1")]);
    let unchanged = || async {
        assert_eq!(
            tags_of(store, &first).await,
            first_before,
            "a target before the failing one was written"
        );
        assert_eq!(
            tags_of(store, &full).await,
            full_before,
            "the failing target was written"
        );
        assert_eq!(
            tags_of(store, &last).await,
            pairs(&[]),
            "a target after the failing one was written"
        );
        assert!(!is_registered(store, &missing).await);
    };

    // `full` would have 5 > 4 tags; `first` (overwriting `a`) and `last` could take it.
    let change = set_of(&[("a", "2"), ("d", "2"), ("e", "2")]);
    assert_eq!(
        apply_batch(
            store,
            vec![target(&first, 4), target(&full, 4), target(&last, 4)],
            change.clone(),
            None,
            ALL_OR_NOTHING
        )
        .await,
        vec![
            ItemOutcome::Applied,
            ItemOutcome::LimitExceeded {
                limit: 4,
                would_have: 5
            },
            ItemOutcome::Applied,
        ]
    );
    unchanged().await;

    // An unregistered target fails the batch just the same.
    assert_eq!(
        apply_batch(
            store,
            vec![target(&first, 4), target(&missing, 4), target(&last, 4)],
            change.clone(),
            None,
            ALL_OR_NOTHING
        )
        .await,
        vec![
            ItemOutcome::Applied,
            ItemOutcome::NotFound,
            ItemOutcome::Applied
        ]
    );
    unchanged().await;

    // Two failures in one batch are each reported.
    assert_eq!(
        apply_batch(
            store,
            vec![
                target(&missing, 4),
                target(&first, 4),
                target(&full, 4),
                target(&last, 4),
            ],
            change.clone(),
            None,
            ALL_OR_NOTHING
        )
        .await,
        vec![
            ItemOutcome::NotFound,
            ItemOutcome::Applied,
            ItemOutcome::LimitExceeded {
                limit: 4,
                would_have: 5
            },
            ItemOutcome::Applied,
        ]
    );
    unchanged().await;

    // A removal is undone too.
    assert_eq!(
        apply_batch(
            store,
            vec![target(&first, 4), target(&full, 4), target(&missing, 4)],
            TagChange::Remove(vec![by_key("a")]),
            None,
            ALL_OR_NOTHING
        )
        .await,
        vec![
            ItemOutcome::Applied,
            ItemOutcome::Applied,
            ItemOutcome::NotFound
        ]
    );
    unchanged().await;

    // In emulator mode, a resource the rejected batch would have registered is not.
    let fresh = at(&acme, &prod.id, "ecs.cloudservers", "fresh");
    let outcomes = store
        .apply_tags(TagBatch::from(UniformBatch {
            targets: vec![target(&fresh, 4), target(&full, 4)],
            change: set_of(&[("d", "3"), ("e", "3")]),
            sys_change: None,
            mode: ALL_OR_NOTHING,
            auto_register: true,
        }))
        .await
        .expect("apply_tags");
    assert_eq!(
        outcomes,
        vec![
            ItemOutcome::Applied,
            ItemOutcome::LimitExceeded {
                limit: 4,
                would_have: 5
            },
        ]
    );
    assert!(
        !is_registered(store, &fresh).await,
        "a rejected batch registered a resource"
    );
    unchanged().await;

    // The rejected batches left the store usable: a batch every target can take is
    // written to all of them.
    assert_eq!(
        apply_batch(
            store,
            vec![target(&first, 4), target(&last, 4)],
            change,
            None,
            ALL_OR_NOTHING
        )
        .await,
        vec![ItemOutcome::Applied, ItemOutcome::Applied]
    );
    let written = pairs(&[("a", "2"), ("d", "2"), ("e", "2")]);
    assert_eq!(tags_of(store, &first).await, written);
    assert_eq!(tags_of(store, &last).await, written);
    assert_eq!(tags_of(store, &full).await, full_before);
}

/// With `skip_unknown`, unregistered targets are reported and left out while the others
/// are written; a target over its limit still undoes the whole batch.
async fn all_or_nothing_skips_unknown_targets(store: Arc<dyn Store>) {
    let store = &*store;
    let acme = new_domain(store, "acme").await;
    let prod = new_project(store, &acme, "prod").await;
    let first = at(&acme, &prod.id, "ecs.cloudservers", "first");
    let second = at(&acme, &prod.id, "ecs.cloudservers", "second");
    let full = at(&acme, &prod.id, "ecs.cloudservers", "full");
    let missing = at(&acme, &prod.id, "ecs.cloudservers", "missing");
    register(
        store,
        &[
            resource(&first, ""),
            resource(&second, ""),
            resource(&full, ""),
        ],
    )
    .await;
    assert_eq!(
        set_tags(store, &full, &[("a", "1"), ("b", "1"), ("c", "1")]).await,
        ItemOutcome::Applied
    );

    assert_eq!(
        apply_batch(
            store,
            vec![target(&first, 3), target(&missing, 3), target(&second, 3)],
            set_of(&[("env", "prod")]),
            None,
            SKIP_UNKNOWN
        )
        .await,
        vec![
            ItemOutcome::Applied,
            ItemOutcome::NotFound,
            ItemOutcome::Applied
        ]
    );
    assert_eq!(tags_of(store, &first).await, pairs(&[("env", "prod")]));
    assert_eq!(tags_of(store, &second).await, pairs(&[("env", "prod")]));
    assert!(
        !is_registered(store, &missing).await,
        "a skipped target was registered"
    );

    // A limit failure is not skipped: it undoes the writes to the known targets.
    assert_eq!(
        apply_batch(
            store,
            vec![
                target(&first, 3),
                target(&missing, 3),
                target(&second, 3),
                target(&full, 3),
            ],
            set_of(&[("env", "dev"), ("team", "a")]),
            None,
            SKIP_UNKNOWN
        )
        .await,
        vec![
            ItemOutcome::Applied,
            ItemOutcome::NotFound,
            ItemOutcome::Applied,
            ItemOutcome::LimitExceeded {
                limit: 3,
                would_have: 5
            },
        ]
    );
    assert_eq!(tags_of(store, &first).await, pairs(&[("env", "prod")]));
    assert_eq!(tags_of(store, &second).await, pairs(&[("env", "prod")]));
    assert_eq!(
        tags_of(store, &full).await,
        pairs(&[("a", "1"), ("b", "1"), ("c", "1")])
    );
    assert!(!is_registered(store, &missing).await);

    // Removals skip unknown targets the same way.
    assert_eq!(
        apply_batch(
            store,
            vec![target(&missing, 3), target(&second, 3)],
            TagChange::Remove(vec![by_key("env")]),
            None,
            SKIP_UNKNOWN
        )
        .await,
        vec![ItemOutcome::NotFound, ItemOutcome::Applied]
    );
    assert_eq!(tags_of(store, &second).await, pairs(&[]));
    assert_eq!(tags_of(store, &first).await, pairs(&[("env", "prod")]));

    // Nothing but unknown targets: nothing to write, nothing fails.
    assert_eq!(
        apply_batch(
            store,
            vec![target(&missing, 3)],
            set_of(&[("env", "prod")]),
            None,
            SKIP_UNKNOWN
        )
        .await,
        vec![ItemOutcome::NotFound]
    );
    assert!(!is_registered(store, &missing).await);
}

// ---------------------------------------------------------------------------------------
// System tags

/// System tags are stored apart: listed by `resource_sys_tags` (sorted by key), never by
/// `resource_tags`, and they neither count against the tag limit nor take room from
/// user tags.
async fn sys_tags_are_kept_apart_from_user_tags(store: Arc<dyn Store>) {
    let store = &*store;
    let acme = new_domain(store, "acme").await;
    let prod = new_project(store, &acme, "prod").await;
    let vm = at(&acme, &prod.id, "ecs.cloudservers", "vm");
    let other = at(&acme, &prod.id, "ecs.cloudservers", "other");
    register(store, &[resource(&vm, ""), resource(&other, "")]).await;

    // `vm` is at its limit of 2 user tags...
    assert_eq!(
        apply_one(store, &vm, 2, set_of(&[("a", "1"), ("b", "1")]), false).await,
        ItemOutcome::Applied
    );
    // ...and still takes system tags, along a user change that adds no key, in either
    // mode.
    assert_eq!(
        apply_batch(
            store,
            vec![target(&vm, 2)],
            TagChange::Remove(vec![]),
            Some(set_of(&[
                ("_sys_enterprise_project_id", "0"),
                ("_sys_b", "x")
            ])),
            BatchMode::PerResource
        )
        .await,
        vec![ItemOutcome::Applied]
    );
    assert_eq!(
        apply_batch(
            store,
            vec![target(&vm, 2)],
            TagChange::Set(vec![]),
            Some(set_of(&[("_sys_a", "y")])),
            ALL_OR_NOTHING
        )
        .await,
        vec![ItemOutcome::Applied]
    );
    assert_eq!(
        sys_tags_of(store, &vm).await,
        pairs(&[
            ("_sys_a", "y"),
            ("_sys_b", "x"),
            ("_sys_enterprise_project_id", "0")
        ]),
        "system tags are listed sorted by key"
    );
    assert_eq!(
        tags_of(store, &vm).await,
        pairs(&[("a", "1"), ("b", "1")]),
        "system tags must not be listed as user tags"
    );

    // With 3 system tags, one more user key makes 3 (not 6), over the limit of 2; an
    // overwrite of a user key is still fine.
    assert_eq!(
        apply_batch(
            store,
            vec![target(&vm, 2)],
            set_of(&[("c", "1")]),
            None,
            ALL_OR_NOTHING
        )
        .await,
        vec![ItemOutcome::LimitExceeded {
            limit: 2,
            would_have: 3
        }]
    );
    assert_eq!(
        apply_one(store, &vm, 2, set_of(&[("a", "2")]), false).await,
        ItemOutcome::Applied
    );
    assert_eq!(tags_of(store, &vm).await, pairs(&[("a", "2"), ("b", "1")]));

    // A set overwrites a system tag's value.
    assert_eq!(
        apply_batch(
            store,
            vec![target(&vm, 2)],
            TagChange::Set(vec![]),
            Some(set_of(&[("_sys_enterprise_project_id", "42")])),
            BatchMode::PerResource
        )
        .await,
        vec![ItemOutcome::Applied]
    );
    assert_eq!(
        sys_tags_of(store, &vm).await,
        pairs(&[
            ("_sys_a", "y"),
            ("_sys_b", "x"),
            ("_sys_enterprise_project_id", "42")
        ])
    );

    // System tags take no room from user tags: with 3 of them, `other` still takes its
    // full 2 user tags, in the same batch as a system tag.
    assert_eq!(
        apply_batch(
            store,
            vec![target(&other, 2)],
            TagChange::Set(vec![]),
            Some(set_of(&[("s1", "1"), ("s2", "1"), ("s3", "1")])),
            BatchMode::PerResource
        )
        .await,
        vec![ItemOutcome::Applied]
    );
    assert_eq!(
        apply_batch(
            store,
            vec![target(&other, 2)],
            set_of(&[("a", "user"), ("b", "user")]),
            Some(set_of(&[("a", "sys")])),
            ALL_OR_NOTHING
        )
        .await,
        vec![ItemOutcome::Applied]
    );
    // The same key in both namespaces keeps two independent values.
    assert_eq!(
        tags_of(store, &other).await,
        pairs(&[("a", "user"), ("b", "user")])
    );
    assert_eq!(
        sys_tags_of(store, &other).await,
        pairs(&[("a", "sys"), ("s1", "1"), ("s2", "1"), ("s3", "1")])
    );

    // In emulator mode, a resource registered by its first write takes the system tags
    // of that write.
    let fresh = at(&acme, &prod.id, "ecs.cloudservers", "fresh");
    let outcomes = store
        .apply_tags(TagBatch::from(UniformBatch {
            targets: vec![target(&fresh, 1)],
            change: set_of(&[("a", "1")]),
            sys_change: Some(set_of(&[("_sys_enterprise_project_id", "0")])),
            mode: BatchMode::PerResource,
            auto_register: true,
        }))
        .await
        .expect("apply_tags");
    assert_eq!(outcomes, vec![ItemOutcome::Applied]);
    assert_eq!(tags_of(store, &fresh).await, pairs(&[("a", "1")]));
    assert_eq!(
        sys_tags_of(store, &fresh).await,
        pairs(&[("_sys_enterprise_project_id", "0")])
    );
}

/// A system-tag removal matches by key, or by key and value only when the value is equal;
/// user-tag and system-tag removals never reach into each other's namespace.
async fn sys_tags_remove_by_key_and_value(store: Arc<dyn Store>) {
    let store = &*store;
    let acme = new_domain(store, "acme").await;
    let vm = at(&acme, "", "obs.buckets", "bucket");
    register(store, &[resource(&vm, "")]).await;
    let same = [("a", "1"), ("b", "2"), ("c", "3"), ("d", "")];
    assert_eq!(set_tags(store, &vm, &same).await, ItemOutcome::Applied);
    assert_eq!(
        apply_batch(
            store,
            vec![target(&vm, 10)],
            TagChange::Set(vec![]),
            Some(set_of(&same)),
            BatchMode::PerResource
        )
        .await,
        vec![ItemOutcome::Applied]
    );

    assert_eq!(
        apply_batch(
            store,
            vec![target(&vm, 10)],
            TagChange::Remove(vec![]),
            Some(TagChange::Remove(vec![
                by_key("a"),
                by_pair("b", "wrong"),
                by_pair("c", "3"),
                by_pair("d", ""),
                by_key("absent"),
            ])),
            BatchMode::PerResource
        )
        .await,
        vec![ItemOutcome::Applied]
    );
    assert_eq!(sys_tags_of(store, &vm).await, pairs(&[("b", "2")]));
    assert_eq!(
        tags_of(store, &vm).await,
        pairs(&same),
        "a system-tag removal removed user tags"
    );

    // A user-tag removal leaves the system tag of the same key alone.
    assert_eq!(
        apply_one(store, &vm, 10, TagChange::Remove(vec![by_key("b")]), false).await,
        ItemOutcome::Applied
    );
    assert_eq!(
        tags_of(store, &vm).await,
        pairs(&[("a", "1"), ("c", "3"), ("d", "")])
    );
    assert_eq!(sys_tags_of(store, &vm).await, pairs(&[("b", "2")]));

    // The matching value removes it, in an all-or-nothing batch too.
    assert_eq!(
        apply_batch(
            store,
            vec![target(&vm, 10)],
            TagChange::Remove(vec![]),
            Some(TagChange::Remove(vec![by_pair("b", "2")])),
            ALL_OR_NOTHING
        )
        .await,
        vec![ItemOutcome::Applied]
    );
    assert_eq!(sys_tags_of(store, &vm).await, pairs(&[]));
    assert_eq!(
        tags_of(store, &vm).await,
        pairs(&[("a", "1"), ("c", "3"), ("d", "")])
    );
}

/// A system-tag change is part of its target's change: it is applied exactly when the
/// user-tag change is, and undone with the rest of a rejected all-or-nothing batch.
async fn sys_change_rides_with_the_user_change(store: Arc<dyn Store>) {
    let store = &*store;
    let acme = new_domain(store, "acme").await;
    let prod = new_project(store, &acme, "prod").await;
    let roomy = at(&acme, &prod.id, "ecs.cloudservers", "roomy");
    let full = at(&acme, &prod.id, "ecs.cloudservers", "full");
    let other = at(&acme, &prod.id, "ecs.cloudservers", "other");
    let missing = at(&acme, &prod.id, "ecs.cloudservers", "missing");
    register(
        store,
        &[
            resource(&roomy, ""),
            resource(&full, ""),
            resource(&other, ""),
        ],
    )
    .await;
    let full_tags = [("a", "1"), ("b", "1"), ("c", "1")];
    assert_eq!(
        set_tags(store, &full, &full_tags).await,
        ItemOutcome::Applied
    );
    let over = ItemOutcome::LimitExceeded {
        limit: 3,
        would_have: 4,
    };

    // Per resource: the refused target takes neither change, its neighbours take both.
    assert_eq!(
        apply_batch(
            store,
            vec![target(&full, 3), target(&roomy, 3), target(&missing, 3)],
            set_of(&[("d", "1")]),
            Some(set_of(&[("_sys_p", "1")])),
            BatchMode::PerResource
        )
        .await,
        vec![over, ItemOutcome::Applied, ItemOutcome::NotFound]
    );
    assert_eq!(
        sys_tags_of(store, &full).await,
        pairs(&[]),
        "a refused target took the system change"
    );
    assert_eq!(tags_of(store, &full).await, pairs(&full_tags));
    assert_eq!(sys_tags_of(store, &roomy).await, pairs(&[("_sys_p", "1")]));
    assert_eq!(tags_of(store, &roomy).await, pairs(&[("d", "1")]));
    assert_eq!(
        store
            .resource_sys_tags(&missing)
            .await
            .expect("resource_sys_tags"),
        None
    );

    // All or nothing: a failure elsewhere undoes the system change of targets that
    // could take it, whether a new tag, an overwrite or a removal.
    assert_eq!(
        apply_batch(
            store,
            vec![target(&other, 3), target(&roomy, 3), target(&full, 3)],
            set_of(&[("e", "1")]),
            Some(set_of(&[("_sys_p", "2")])),
            ALL_OR_NOTHING
        )
        .await,
        vec![ItemOutcome::Applied, ItemOutcome::Applied, over]
    );
    assert_eq!(sys_tags_of(store, &other).await, pairs(&[]));
    assert_eq!(tags_of(store, &other).await, pairs(&[]));
    assert_eq!(sys_tags_of(store, &roomy).await, pairs(&[("_sys_p", "1")]));
    assert_eq!(tags_of(store, &roomy).await, pairs(&[("d", "1")]));
    assert_eq!(sys_tags_of(store, &full).await, pairs(&[]));

    assert_eq!(
        apply_batch(
            store,
            vec![target(&roomy, 3), target(&missing, 3)],
            TagChange::Remove(vec![]),
            Some(TagChange::Remove(vec![by_key("_sys_p")])),
            ALL_OR_NOTHING
        )
        .await,
        vec![ItemOutcome::Applied, ItemOutcome::NotFound]
    );
    assert_eq!(
        sys_tags_of(store, &roomy).await,
        pairs(&[("_sys_p", "1")]),
        "a rejected batch removed a system tag"
    );

    // Skipping unknown targets: the known ones take both changes...
    assert_eq!(
        apply_batch(
            store,
            vec![target(&missing, 3), target(&other, 3)],
            set_of(&[("e", "1")]),
            Some(set_of(&[("_sys_p", "4")])),
            SKIP_UNKNOWN
        )
        .await,
        vec![ItemOutcome::NotFound, ItemOutcome::Applied]
    );
    assert_eq!(tags_of(store, &other).await, pairs(&[("e", "1")]));
    assert_eq!(sys_tags_of(store, &other).await, pairs(&[("_sys_p", "4")]));
    assert_eq!(
        store
            .resource_sys_tags(&missing)
            .await
            .expect("resource_sys_tags"),
        None
    );

    // ...but a limit failure still undoes both.
    assert_eq!(
        apply_batch(
            store,
            vec![target(&missing, 3), target(&other, 3), target(&full, 3)],
            set_of(&[("f", "1")]),
            Some(TagChange::Remove(vec![by_key("_sys_p")])),
            SKIP_UNKNOWN
        )
        .await,
        vec![ItemOutcome::NotFound, ItemOutcome::Applied, over]
    );
    assert_eq!(tags_of(store, &other).await, pairs(&[("e", "1")]));
    assert_eq!(sys_tags_of(store, &other).await, pairs(&[("_sys_p", "4")]));

    // In emulator mode, a refused item with a system change leaves no trace either.
    let fresh = at(&acme, &prod.id, "ecs.cloudservers", "fresh");
    let outcomes = store
        .apply_tags(TagBatch::from(UniformBatch {
            targets: vec![target(&fresh, 1)],
            change: set_of(&[("a", "1"), ("b", "1")]),
            sys_change: Some(set_of(&[("_sys_p", "5")])),
            mode: BatchMode::PerResource,
            auto_register: true,
        }))
        .await
        .expect("apply_tags");
    assert_eq!(
        outcomes,
        vec![ItemOutcome::LimitExceeded {
            limit: 1,
            would_have: 2
        }]
    );
    assert_eq!(
        store
            .resource_sys_tags(&fresh)
            .await
            .expect("resource_sys_tags"),
        None
    );
}

/// `resource_sys_tags` tells unknown resources (`None`) from ones without system tags,
/// and removing a resource or its project drops its system tags with it. The resource
/// dropped is always the newest one, so a backend that reuses its internal id on the
/// next registration would show any system tag left behind.
async fn sys_tags_of_unknown_and_removed_resources(store: Arc<dyn Store>) {
    let store = &*store;
    let acme = new_domain(store, "acme").await;
    let p1 = new_project(store, &acme, "p1").await;
    let p2 = new_project(store, &acme, "p2").await;
    let vm1 = at(&acme, &p1.id, "ecs.cloudservers", "vm-1");
    let vm2 = at(&acme, &p2.id, "ecs.cloudservers", "vm-1");
    let bucket = at(&acme, "", "obs.buckets", "bucket");
    let sys_tags = |at: ResourceRef| async move {
        store
            .resource_sys_tags(&at)
            .await
            .expect("resource_sys_tags")
    };
    let sys = pairs(&[("_sys_enterprise_project_id", "0")]);
    let set_sys = |targets: Vec<BatchTarget>| async move {
        let count = targets.len();
        assert_eq!(
            apply_batch(
                store,
                targets,
                set_of(&[("env", "prod")]),
                Some(set_of(&[("_sys_enterprise_project_id", "0")])),
                ALL_OR_NOTHING
            )
            .await,
            vec![ItemOutcome::Applied; count]
        );
    };

    assert_eq!(sys_tags(vm1.clone()).await, None);
    register(store, &[resource(&vm2, ""), resource(&bucket, "")]).await;
    register(store, &[resource(&vm1, "")]).await;
    assert_eq!(sys_tags(vm1.clone()).await, Some(vec![]));
    assert_eq!(
        sys_tags(at(&acme, &p1.id, "ecs.cloudservers", "never")).await,
        None
    );

    set_sys(vec![
        target(&vm2, 10),
        target(&bucket, 10),
        target(&vm1, 10),
    ])
    .await;
    assert_eq!(
        sys_tags(vm1.clone()).await,
        Some(vec![tag("_sys_enterprise_project_id", "0")])
    );

    // Registering a known resource again (a rename) keeps its system tags.
    assert_eq!(register(store, &[resource(&vm1, "renamed")]).await, 0);
    assert_eq!(sys_tags_of(store, &vm1).await, sys);

    // delete_project drops them, for its own resources only; registered again, the
    // resource has none.
    assert!(store.delete_project(&p1.id).await.expect("delete_project"));
    assert_eq!(sys_tags(vm1.clone()).await, None);
    assert_eq!(register(store, &[resource(&vm1, "")]).await, 1);
    assert_eq!(sys_tags_of(store, &vm1).await, pairs(&[]));
    assert_eq!(tags_of(store, &vm1).await, pairs(&[]));
    assert_eq!(sys_tags_of(store, &vm2).await, sys);
    assert_eq!(sys_tags_of(store, &bucket).await, sys);

    // So does remove_resources.
    set_sys(vec![target(&vm1, 10)]).await;
    assert_eq!(sys_tags_of(store, &vm1).await, sys);
    assert_eq!(
        store
            .remove_resources(std::slice::from_ref(&vm1))
            .await
            .expect("remove_resources"),
        1
    );
    assert_eq!(sys_tags(vm1.clone()).await, None);
    assert_eq!(register(store, &[resource(&vm1, "")]).await, 1);
    assert_eq!(sys_tags_of(store, &vm1).await, pairs(&[]));
    assert_eq!(tags_of(store, &vm1).await, pairs(&[]));
    assert_eq!(sys_tags_of(store, &vm2).await, sys);
    assert_eq!(tags_of(store, &vm2).await, pairs(&[("env", "prod")]));
}

// ---------------------------------------------------------------------------------------
// Concurrency and group commit

/// 200 concurrent writers over 20 resources, each writing its own key: every write that
/// was acknowledged is there, with its value, and nothing else is.
async fn concurrent_writes_are_all_kept(store: Arc<dyn Store>) {
    const RESOURCES: usize = 20;
    const WRITERS: usize = 200;
    let acme = new_domain(&*store, "acme").await;
    let prod = new_project(&*store, &acme, "prod").await;
    let refs: Vec<ResourceRef> = (0..RESOURCES)
        .map(|i| at(&acme, &prod.id, "ecs.cloudservers", &format!("vm-{i:02}")))
        .collect();
    let resources: Vec<Resource> = refs.iter().map(|r| resource(r, "")).collect();
    assert_eq!(register(&*store, &resources).await, RESOURCES);

    let mut tasks = Vec::with_capacity(WRITERS);
    for i in 0..WRITERS {
        let store = store.clone();
        let at = refs[i % RESOURCES].clone();
        tasks.push(tokio::spawn(async move {
            let outcomes = store
                .apply_tags(TagBatch::from(UniformBatch {
                    targets: vec![target(&at, WRITERS)],
                    change: TagChange::Set(vec![tag(&format!("k{i:03}"), &format!("v{i}"))]),
                    auto_register: false,
                    sys_change: None,
                    mode: BatchMode::PerResource,
                }))
                .await;
            (i, outcomes)
        }));
    }
    for task in tasks {
        let (i, outcomes) = task.await.expect("a writer task panicked");
        assert_eq!(
            outcomes.unwrap_or_else(|e| panic!("writer {i} failed: {e}")),
            vec![ItemOutcome::Applied],
            "writer {i}"
        );
    }

    for (r, at) in refs.iter().enumerate() {
        let expected: Vec<(String, String)> = (0..WRITERS)
            .filter(|i| i % RESOURCES == r)
            .map(|i| (format!("k{i:03}"), format!("v{i}")))
            .collect();
        assert_eq!(expected.len(), WRITERS / RESOURCES);
        assert_eq!(tags_of(&*store, at).await, expected, "resource {r}");
    }
}

/// Concurrent sets on one resource are serialised: the limit holds exactly, and the tags
/// present are exactly those whose writes were acknowledged as applied.
async fn concurrent_sets_respect_the_limit(store: Arc<dyn Store>) {
    const LIMIT: usize = 10;
    const WRITERS: usize = 60;
    let acme = new_domain(&*store, "acme").await;
    let bucket = at(&acme, "", "obs.buckets", "contended");
    register(&*store, &[resource(&bucket, "")]).await;

    let mut tasks = Vec::with_capacity(WRITERS);
    for i in 0..WRITERS {
        let store = store.clone();
        let bucket = bucket.clone();
        tasks.push(tokio::spawn(async move {
            let outcome = store
                .apply_tags(TagBatch::from(UniformBatch {
                    targets: vec![target(&bucket, LIMIT)],
                    change: TagChange::Set(vec![tag(&format!("k{i:02}"), "v")]),
                    auto_register: false,
                    sys_change: None,
                    mode: BatchMode::PerResource,
                }))
                .await
                .unwrap_or_else(|e| panic!("writer {i} failed: {e}"));
            (i, outcome)
        }));
    }
    let mut applied = BTreeSet::new();
    for task in tasks {
        let (i, outcome) = task.await.expect("a writer task panicked");
        match outcome.as_slice() {
            [ItemOutcome::Applied] => {
                applied.insert(format!("k{i:02}"));
            }
            [ItemOutcome::LimitExceeded {
                limit: LIMIT,
                would_have,
            }] => assert_eq!(*would_have, LIMIT + 1, "writer {i}"),
            other => panic!("writer {i} got {other:?}"),
        }
    }
    assert_eq!(
        applied.len(),
        LIMIT,
        "exactly the limit's worth of writers succeed"
    );
    let stored: BTreeSet<String> = tags_of(&*store, &bucket)
        .await
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(stored, applied);
}

/// Concurrent all-or-nothing batches on one resource: exactly the limit's worth
/// succeed, the rest are refused and undone, and what is stored (user and system tags
/// alike) is exactly what the successful batches wrote. Each batch first writes its key
/// to a roomy witness resource, which a refused batch must take back even while batches
/// committed alongside it keep theirs.
async fn concurrent_all_or_nothing_batches_respect_the_limit(store: Arc<dyn Store>) {
    const LIMIT: usize = 10;
    const WRITERS: usize = 100;
    let acme = new_domain(&*store, "acme").await;
    let bucket = at(&acme, "", "obs.buckets", "contended");
    let witness = at(&acme, "", "obs.buckets", "witness");
    register(&*store, &[resource(&bucket, ""), resource(&witness, "")]).await;

    let mut tasks = Vec::with_capacity(WRITERS);
    for i in 0..WRITERS {
        let store = store.clone();
        let bucket = bucket.clone();
        let witness = witness.clone();
        tasks.push(tokio::spawn(async move {
            let outcomes = store
                .apply_tags(TagBatch::from(UniformBatch {
                    targets: vec![target(&witness, WRITERS), target(&bucket, LIMIT)],
                    change: TagChange::Set(vec![tag(&format!("k{i:03}"), "v")]),
                    auto_register: false,
                    sys_change: Some(TagChange::Set(vec![tag(&format!("s{i:03}"), "v")])),
                    mode: ALL_OR_NOTHING,
                }))
                .await
                .unwrap_or_else(|e| panic!("writer {i} failed: {e}"));
            (i, outcomes)
        }));
    }
    let mut applied = BTreeSet::new();
    let mut refused = 0;
    for task in tasks {
        let (i, outcomes) = task.await.expect("a writer task panicked");
        match outcomes.as_slice() {
            [ItemOutcome::Applied, ItemOutcome::Applied] => {
                applied.insert(i);
            }
            [ItemOutcome::Applied, ItemOutcome::LimitExceeded {
                limit: LIMIT,
                would_have,
            }] => {
                assert_eq!(*would_have, LIMIT + 1, "writer {i}");
                refused += 1;
            }
            other => panic!("writer {i} got {other:?}"),
        }
    }
    assert_eq!(
        applied.len(),
        LIMIT,
        "exactly the limit's worth of batches succeed"
    );
    assert_eq!(refused, WRITERS - LIMIT);

    let keys = |tags: Vec<(String, String)>| -> BTreeSet<String> {
        tags.into_iter().map(|(k, _)| k).collect()
    };
    let expected: BTreeSet<String> = applied.iter().map(|i| format!("k{i:03}")).collect();
    let expected_sys: BTreeSet<String> = applied.iter().map(|i| format!("s{i:03}")).collect();
    assert_eq!(keys(tags_of(&*store, &bucket).await), expected);
    assert_eq!(
        keys(sys_tags_of(&*store, &bucket).await),
        expected_sys,
        "a refused batch's system tags were kept"
    );
    assert_eq!(
        keys(tags_of(&*store, &witness).await),
        expected,
        "a refused batch's write to another target was kept"
    );
    assert_eq!(keys(sys_tags_of(&*store, &witness).await), expected_sys);
}

/// Requests that fail must fail alone: the writes of requests committed alongside them
/// (in one group, for a group-commit backend) survive, and nothing of a failed one does.
async fn group_commit_isolates_failures(store: Arc<dyn Store>) {
    const REQUESTS: usize = 120;
    let acme = new_domain(&*store, "acme").await;
    let bucket = at(&acme, "", "obs.buckets", "shared");
    register(&*store, &[resource(&bucket, "")]).await;
    let ghost = new_id();

    enum Kind {
        UniqueDomain,
        DuplicateDomain,
        OrphanResource,
        Tag,
    }
    let kind = |i: usize| match i % 4 {
        0 => Kind::UniqueDomain,
        1 => Kind::DuplicateDomain,
        2 => Kind::OrphanResource,
        _ => Kind::Tag,
    };

    let mut tasks = Vec::with_capacity(REQUESTS);
    for i in 0..REQUESTS {
        let store = store.clone();
        let bucket = bucket.clone();
        let ghost = ghost.clone();
        let k = kind(i);
        tasks.push(tokio::spawn(async move {
            let result: Result<(), StoreError> = match k {
                Kind::UniqueDomain | Kind::DuplicateDomain => {
                    let name = match k {
                        Kind::UniqueDomain => format!("d{i:03}"),
                        _ => "contested".to_owned(),
                    };
                    store
                        .insert_domain(&Domain {
                            id: new_id(),
                            name,
                            enabled: true,
                        })
                        .await
                }
                Kind::OrphanResource => {
                    // A good resource and one of a missing domain: the call must fail
                    // as a whole.
                    let good = ResourceRef {
                        domain_id: bucket.domain_id.clone(),
                        project_id: String::new(),
                        resource_type: "obs.buckets".to_owned(),
                        resource_id: format!("orphan-partner-{i:03}"),
                    };
                    let orphan = ResourceRef {
                        domain_id: ghost,
                        ..good.clone()
                    };
                    store
                        .register_resources(&[resource(&good, ""), resource(&orphan, "")])
                        .await
                        .map(|_| ())
                }
                Kind::Tag => store
                    .apply_tags(TagBatch::from(UniformBatch {
                        targets: vec![target(&bucket, REQUESTS)],
                        change: TagChange::Set(vec![tag(&format!("k{i:03}"), "v")]),
                        auto_register: false,
                        sys_change: None,
                        mode: BatchMode::PerResource,
                    }))
                    .await
                    .map(|outcomes| assert_eq!(outcomes, vec![ItemOutcome::Applied])),
            };
            (i, result)
        }));
    }

    let mut contested_winners = 0;
    for task in tasks {
        let (i, result) = task.await.expect("a request task panicked");
        match (kind(i), result) {
            (Kind::UniqueDomain | Kind::Tag, r) => {
                r.unwrap_or_else(|e| panic!("request {i} failed: {e}"));
            }
            (Kind::DuplicateDomain, Ok(())) => contested_winners += 1,
            (Kind::DuplicateDomain, Err(StoreError::AlreadyExists(_))) => {}
            (Kind::DuplicateDomain, Err(e)) => panic!("request {i}: {e}, not AlreadyExists"),
            (Kind::OrphanResource, Ok(())) => panic!("request {i}: an orphan was registered"),
            (Kind::OrphanResource, Err(_)) => {}
        }
    }
    assert_eq!(
        contested_winners, 1,
        "exactly one insert of a contested name wins"
    );

    let mut expected_domains: BTreeSet<String> = (0..REQUESTS)
        .filter(|&i| matches!(kind(i), Kind::UniqueDomain))
        .map(|i| format!("d{i:03}"))
        .collect();
    expected_domains.insert("acme".to_owned());
    expected_domains.insert("contested".to_owned());
    assert_eq!(
        domain_names(&store.list_domains().await.expect("list_domains")),
        expected_domains
    );
    assert_eq!(
        list(&*store, ResourceFilter::default()).await,
        vec![resource(&bucket, "")],
        "failed register calls left resources behind"
    );
    let expected_tags: Vec<(String, String)> = (0..REQUESTS)
        .filter(|&i| matches!(kind(i), Kind::Tag))
        .map(|i| (format!("k{i:03}"), "v".to_owned()))
        .collect();
    assert_eq!(tags_of(&*store, &bucket).await, expected_tags);
}

// ---------------------------------------------------------------------------------------
// Unicode

async fn unicode_round_trips_byte_exactly(store: Arc<dyn Store>) {
    let store = &*store;
    let domain = new_domain(store, "测试域").await;
    assert_eq!(
        store
            .domain_by_name("测试域")
            .await
            .expect("domain_by_name"),
        Some(domain.clone())
    );
    let project = new_project(store, &domain, "生产-项目").await;
    let user = new_user(store, &domain, "张三").await;
    assert_eq!(
        store
            .user_by_name(&domain.id, "张三")
            .await
            .expect("user_by_name"),
        Some(user.clone())
    );

    let vm = at(&domain, &project.id, "ecs.cloudservers", "实例-01");
    register(store, &[resource(&vm, "数据库主节点")]).await;
    assert_eq!(
        list(store, ResourceFilter::default()).await,
        vec![resource(&vm, "数据库主节点")]
    );

    let long_key = "标".repeat(36);
    let long_value = "值".repeat(43);
    let nfc = "caf\u{e9}"; // "café", precomposed
    let nfd = "cafe\u{301}"; // "café", decomposed: a different key
    let written = [
        ("环境", "生产"),
        ("部门", "研发中心"),
        ("ключ", "значение"),
        (nfc, "nfc"),
        (nfd, "nfd"),
        (long_key.as_str(), long_value.as_str()),
        ("emoji", "🏷️ 标签"),
        ("Ω", "ω"),
    ];
    assert_eq!(set_tags(store, &vm, &written).await, ItemOutcome::Applied);

    let got = tags_of(store, &vm).await;
    // Sorted by key in code-point order, which for UTF-8 is byte order.
    let mut expected = pairs(&written);
    expected.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    assert_eq!(
        got.len(),
        written.len(),
        "NFC and NFD keys must stay distinct"
    );
    for ((gk, gv), (ek, ev)) in got.iter().zip(&expected) {
        assert_eq!(gk.as_bytes(), ek.as_bytes(), "key bytes");
        assert_eq!(gv.as_bytes(), ev.as_bytes(), "value bytes of {ek:?}");
    }

    // Overwrites, removals and value matches work on non-ASCII text too.
    assert_eq!(
        set_tags(store, &vm, &[("环境", "测试")]).await,
        ItemOutcome::Applied
    );
    let remove = TagChange::Remove(vec![
        by_pair("部门", "研发中心"),
        by_pair("ключ", "ЗНАЧЕНИЕ"),
        by_key(nfd),
    ]);
    assert_eq!(
        apply_one(store, &vm, 50, remove, false).await,
        ItemOutcome::Applied
    );
    let got: BTreeMap<String, String> = tags_of(store, &vm).await.into_iter().collect();
    assert_eq!(got.get("环境").map(String::as_str), Some("测试"));
    assert!(!got.contains_key("部门"));
    assert_eq!(
        got.get("ключ").map(String::as_str),
        Some("значение"),
        "value matching must not fold case"
    );
    assert!(!got.contains_key(nfd));
    assert_eq!(got.get(nfc).map(String::as_str), Some("nfc"));
    assert_eq!(got.len(), written.len() - 2);
}

// ---------------------------------------------------------------------------------------
// delete_project

async fn delete_project_cascades(store: Arc<dyn Store>) {
    let store = &*store;
    let acme = new_domain(store, "acme").await;
    let p1 = new_project(store, &acme, "p1").await;
    let p2 = new_project(store, &acme, "p2").await;
    let alice = new_user(store, &acme, "alice").await;
    let domain_token = token_for(&alice, Scope::Domain);
    let p1_token = token_for(&alice, Scope::Project { id: p1.id.clone() });
    let p2_token = token_for(&alice, Scope::Project { id: p2.id.clone() });
    for t in [&domain_token, &p1_token, &p2_token] {
        store.insert_token(t).await.expect("insert_token");
    }

    let vm1 = at(&acme, &p1.id, "ecs.cloudservers", "vm-1");
    let vol1 = at(&acme, &p1.id, "evs.volumes", "vol-1");
    let vm2 = at(&acme, &p2.id, "ecs.cloudservers", "vm-1");
    let bucket = at(&acme, "", "obs.buckets", "bucket");
    register(
        store,
        &[
            resource(&vm1, ""),
            resource(&vol1, ""),
            resource(&vm2, ""),
            resource(&bucket, ""),
        ],
    )
    .await;
    for r in [&vm1, &vol1, &vm2, &bucket] {
        assert_eq!(
            set_tags(store, r, &[("env", "prod"), ("owner", "alice")]).await,
            ItemOutcome::Applied
        );
    }

    assert!(store.delete_project(&p1.id).await.expect("delete_project"));
    assert!(!store.delete_project(&p1.id).await.expect("delete_project"));
    assert!(!store
        .delete_project(&new_id())
        .await
        .expect("delete_project"));

    assert_eq!(store.project(&p1.id).await.expect("project"), None);
    assert_eq!(
        store
            .list_projects(Some(&acme.id))
            .await
            .expect("list_projects"),
        vec![p2.clone()]
    );
    assert!(list(
        store,
        ResourceFilter {
            project_id: Some(p1.id.clone()),
            ..ResourceFilter::default()
        }
    )
    .await
    .is_empty());
    assert!(!is_registered(store, &vm1).await);
    assert!(!is_registered(store, &vol1).await);
    assert_eq!(
        store.token(&p1_token.token_hash).await.expect("token"),
        None
    );

    // The rest of the domain is untouched.
    assert_eq!(
        store.domain(&acme.id).await.expect("domain"),
        Some(acme.clone())
    );
    assert_eq!(
        store.user(&alice.id).await.expect("user"),
        Some(alice.clone())
    );
    assert_eq!(
        store.token(&domain_token.token_hash).await.expect("token"),
        Some(domain_token.clone())
    );
    assert_eq!(
        store.token(&p2_token.token_hash).await.expect("token"),
        Some(p2_token.clone())
    );
    let both = pairs(&[("env", "prod"), ("owner", "alice")]);
    assert_eq!(tags_of(store, &vm2).await, both);
    assert_eq!(tags_of(store, &bucket).await, both);
    assert_eq!(
        sorted(
            list(store, ResourceFilter::default())
                .await
                .into_iter()
                .map(|r| r.at)
                .collect()
        ),
        sorted(vec![vm2.clone(), bucket.clone()])
    );

    // No tag of the deleted project resurfaces on a resource registered again at the
    // same place.
    assert_eq!(
        register(store, &[resource(&vm1, ""), resource(&vol1, "")]).await,
        2
    );
    assert_eq!(tags_of(store, &vm1).await, pairs(&[]));
    assert_eq!(tags_of(store, &vol1).await, pairs(&[]));
}

// ---------------------------------------------------------------------------------------
// Durability

/// What a store acknowledged is there after it is closed and opened again.
async fn a_fresh_store_is_ready_at_this_binarys_schema(store: Arc<dyn Store>) {
    let version = store.readiness().await.expect("a fresh store is ready");
    assert!(version.expected > 0, "{version:?}");
    assert_eq!(version.found, version.expected);
    // Still ready after writes went through.
    new_domain(&*store, "ready").await;
    assert_eq!(store.readiness().await.expect("ready"), version);
}

async fn durable_across_reopen(backend: &dyn Backend) {
    const WRITERS: usize = 50;
    let store = backend.open().await;
    let acme = new_domain(&*store, "acme").await;
    let prod = new_project(&*store, &acme, "prod").await;
    let alice = new_user(&*store, &acme, "alice").await;
    let token = token_for(
        &alice,
        Scope::Project {
            id: prod.id.clone(),
        },
    );
    store.insert_token(&token).await.expect("insert_token");
    assert!(store
        .revoke_token(&token.token_hash)
        .await
        .expect("revoke_token"));
    let vm = at(&acme, &prod.id, "ecs.cloudservers", "vm-1");
    let gone = at(&acme, &prod.id, "ecs.cloudservers", "vm-gone");
    register(&*store, &[resource(&vm, "web"), resource(&gone, "gone")]).await;
    assert_eq!(
        store
            .remove_resources(std::slice::from_ref(&gone))
            .await
            .expect("remove_resources"),
        1
    );
    // A burst of concurrent writes, acknowledged just before the store is closed.
    let mut tasks = Vec::with_capacity(WRITERS);
    for i in 0..WRITERS {
        let store = store.clone();
        let vm = vm.clone();
        tasks.push(tokio::spawn(async move {
            store
                .apply_tags(TagBatch::from(UniformBatch {
                    targets: vec![target(&vm, WRITERS)],
                    change: TagChange::Set(vec![tag(&format!("k{i:02}"), "标签")]),
                    auto_register: false,
                    sys_change: None,
                    mode: BatchMode::PerResource,
                }))
                .await
        }));
    }
    for task in tasks {
        assert_eq!(
            task.await
                .expect("a writer task panicked")
                .expect("apply_tags"),
            vec![ItemOutcome::Applied]
        );
    }
    assert_eq!(
        Arc::strong_count(&store),
        1,
        "the test holds the last reference"
    );
    drop(store);

    let store = backend.open().await;
    assert_eq!(
        store.domain(&acme.id).await.expect("domain"),
        Some(acme.clone())
    );
    assert_eq!(
        store.project(&prod.id).await.expect("project"),
        Some(prod.clone())
    );
    assert_eq!(
        store.user(&alice.id).await.expect("user"),
        Some(alice.clone())
    );
    assert_eq!(
        store.token(&token.token_hash).await.expect("token"),
        Some(TokenRecord {
            revoked: true,
            ..token.clone()
        })
    );
    assert_eq!(
        list(&*store, ResourceFilter::default()).await,
        vec![resource(&vm, "web")]
    );
    let expected: Vec<(String, String)> = (0..WRITERS)
        .map(|i| (format!("k{i:02}"), "标签".to_owned()))
        .collect();
    assert_eq!(tags_of(&*store, &vm).await, expected);

    // The reopened store takes writes, and they last too.
    assert_eq!(
        apply_one(
            &*store,
            &vm,
            WRITERS,
            TagChange::Remove(vec![by_key("k00")]),
            false
        )
        .await,
        ItemOutcome::Applied
    );
    assert!(store.delete_user(&alice.id).await.expect("delete_user"));
    drop(store);

    let store = backend.open().await;
    assert_eq!(tags_of(&*store, &vm).await, expected[1..].to_vec());
    assert_eq!(store.user(&alice.id).await.expect("user"), None);
    assert_eq!(store.token(&token.token_hash).await.expect("token"), None);
}

// ---------------------------------------------------------------------------------------
// Queries: find_resources, count_resources, tag_keys, tag_values, key_values

const ECS: &str = "ecs.cloudservers";
const EVS: &str = "evs.volumes";
const OBS: &str = "obs.buckets";

/// A resource as a query returns it, in a shape that compares and sorts: by
/// (type, id) first, the order results come in.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Row {
    resource_type: String,
    resource_id: String,
    project_id: String,
    domain_id: String,
    name: String,
    /// Sorted by key, as the store returns them.
    tags: Vec<(String, String)>,
    sys_tags: Vec<(String, String)>,
}

impl Row {
    fn at(&self) -> ResourceRef {
        ResourceRef {
            domain_id: self.domain_id.clone(),
            project_id: self.project_id.clone(),
            resource_type: self.resource_type.clone(),
            resource_id: self.resource_id.clone(),
        }
    }
}

/// The row a resource at `at` is expected to come back as; tags are sorted by key here.
fn row(at: &ResourceRef, name: &str, tags: &[(&str, &str)], sys_tags: &[(&str, &str)]) -> Row {
    Row {
        resource_type: at.resource_type.clone(),
        resource_id: at.resource_id.clone(),
        project_id: at.project_id.clone(),
        domain_id: at.domain_id.clone(),
        name: name.to_owned(),
        tags: sorted(pairs(tags)),
        sys_tags: sorted(pairs(sys_tags)),
    }
}

fn tag_pairs(tags: &[Tag]) -> Vec<(String, String)> {
    tags.iter()
        .map(|t| (t.key.as_str().to_owned(), t.value.as_str().to_owned()))
        .collect()
}

fn row_of(found: &Found) -> Row {
    let at = &found.resource.at;
    Row {
        resource_type: at.resource_type.clone(),
        resource_id: at.resource_id.clone(),
        project_id: at.project_id.clone(),
        domain_id: at.domain_id.clone(),
        name: found.resource.name.clone(),
        tags: tag_pairs(&found.tags),
        sys_tags: tag_pairs(&found.sys_tags),
    }
}

/// The rows of a page, after checking they come in (type, id) order. One id may be used
/// in two projects; the order of such ties is not specified, so the rows are returned
/// sorted for comparison.
fn rows_in_order(found: &[Found], what: &str) -> Vec<Row> {
    let rows: Vec<Row> = found.iter().map(row_of).collect();
    for pair in rows.windows(2) {
        assert!(
            (&pair[0].resource_type, &pair[0].resource_id)
                <= (&pair[1].resource_type, &pair[1].resource_id),
            "{what}: results are not in (type, id) order: {:?} came before {:?}",
            pair[0].at(),
            pair[1].at()
        );
    }
    sorted(rows)
}

/// Registers `rows` and gives each its tags and system tags, in one batch.
async fn populate(store: &dyn Store, rows: &[Row]) {
    let resources: Vec<Resource> = rows.iter().map(|r| resource(&r.at(), &r.name)).collect();
    assert_eq!(register(store, &resources).await, rows.len(), "all new");
    let as_set =
        |list: &[(String, String)]| TagChange::Set(list.iter().map(|(k, v)| tag(k, v)).collect());
    let items: Vec<BatchItem> = rows
        .iter()
        .map(|r| BatchItem {
            target: target(&r.at(), 50),
            change: as_set(&r.tags),
            sys_change: (!r.sys_tags.is_empty()).then(|| as_set(&r.sys_tags)),
        })
        .collect();
    let outcomes = store
        .apply_tags(TagBatch {
            items,
            mode: BatchMode::PerResource,
            auto_register: false,
        })
        .await
        .expect("apply_tags");
    assert_eq!(outcomes, vec![ItemOutcome::Applied; rows.len()]);
}

fn key_only(key: &str) -> TagMatch {
    TagMatch {
        key: key.to_owned(),
        values: Vec::new(),
    }
}

fn key_in(key: &str, values: &[&str]) -> TagMatch {
    TagMatch {
        key: key.to_owned(),
        values: values.iter().map(|v| (*v).to_owned()).collect(),
    }
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

fn scope(domain_id: &str, projects: &[&str], resource_types: &[&str]) -> TagScope {
    TagScope {
        domain_id: domain_id.to_owned(),
        projects: strings(projects),
        resource_types: strings(resource_types),
    }
}

fn key_values_of(list: &[(&str, &[&str])]) -> Vec<KeyValues> {
    list.iter()
        .map(|(key, values)| KeyValues {
            key: (*key).to_owned(),
            values: strings(values),
        })
        .collect()
}

async fn find_all(store: &dyn Store, query: &ResourceQuery) -> FoundPage {
    store
        .find_resources(query, 0, 10_000)
        .await
        .expect("find_resources")
}

async fn count(store: &dyn Store, query: &ResourceQuery) -> u64 {
    store.count_resources(query).await.expect("count_resources")
}

async fn keys_in(
    store: &dyn Store,
    scope: &TagScope,
    after: Option<&str>,
    limit: usize,
) -> Vec<String> {
    store.tag_keys(scope, after, limit).await.expect("tag_keys")
}

async fn values_in(
    store: &dyn Store,
    scope: &TagScope,
    key: &str,
    after: Option<&str>,
    limit: usize,
) -> Vec<String> {
    store
        .tag_values(scope, key, after, limit)
        .await
        .expect("tag_values")
}

async fn key_values_in(store: &dyn Store, scope: &TagScope) -> Vec<KeyValues> {
    store.key_values(scope).await.expect("key_values")
}

/// Checks that a walk's pages are each at most `limit` long and strictly ascending, and
/// returns their concatenation.
fn check_walk(pages: &[Vec<String>], limit: usize, what: &str) -> Vec<String> {
    let walked: Vec<String> = pages.concat();
    for page in pages {
        assert!(
            page.len() <= limit,
            "{what}: a page of {} with limit {limit}",
            page.len()
        );
    }
    for pair in walked.windows(2) {
        assert!(
            pair[0] < pair[1],
            "{what}: not sorted and distinct: {:?} then {:?}",
            pair[0],
            pair[1]
        );
    }
    walked
}

/// Every key of a scope, read `limit` at a time with `after`.
async fn walk_keys(store: &dyn Store, scope: &TagScope, limit: usize) -> Vec<String> {
    let mut pages: Vec<Vec<String>> = Vec::new();
    loop {
        let after = pages.last().and_then(|p| p.last()).cloned();
        let page = keys_in(store, scope, after.as_deref(), limit).await;
        if page.is_empty() {
            break;
        }
        pages.push(page);
        assert!(pages.len() <= 10_000, "tag_keys paging does not end");
    }
    check_walk(&pages, limit, &format!("tag_keys walked {limit} at a time"))
}

/// Every value of `key` in a scope, read `limit` at a time with `after`.
async fn walk_values(store: &dyn Store, scope: &TagScope, key: &str, limit: usize) -> Vec<String> {
    let mut pages: Vec<Vec<String>> = Vec::new();
    loop {
        let after = pages.last().and_then(|p| p.last()).cloned();
        let page = values_in(store, scope, key, after.as_deref(), limit).await;
        if page.is_empty() {
            break;
        }
        pages.push(page);
        assert!(pages.len() <= 10_000, "tag_values paging does not end");
    }
    check_walk(
        &pages,
        limit,
        &format!("tag_values of {key:?} walked {limit} at a time"),
    )
}

/// A small, varied inventory. In domain `acme`, projects `prod` and `dev` and the
/// domain's global resources (project `""`):
///
/// | label | project | type | id | name | tags | system tags |
/// |---|---|---|---|---|---|---|
/// | P1 | prod | ecs | vm-a | web-1 | app=web env=prod owner=alice | _sys_enterprise_project_id=0 |
/// | P2 | prod | ecs | vm-b | Web-2 | app=web env=dev | |
/// | P3 | prod | ecs | vm-c | db-1 | app=db env=prod tier=gold | |
/// | P4 | prod | ecs | vm-d | bare | | _sys_enterprise_project_id=7 |
/// | P5 | prod | evs | vol-a | web-data | env=prod owner=bob | |
/// | P6 | prod | evs | vol-b | | tier= | |
/// | D1 | dev | ecs | vm-a | web-dev | app=web env=dev | |
/// | D2 | dev | evs | vol-c | scratch | | |
/// | G1 | "" | obs | bucket-1 | logs | env=prod owner=alice | |
/// | G2 | "" | obs | bucket-2 | web-assets | | |
///
/// In domain `globex`: X1 (its project gp, ecs vm-a, like P1), X2 (global, like G1),
/// and X3, filed under acme's `prod` project id (ecs vm-z, app=web env=prod), which
/// only the domain keeps out of acme's results.
struct QueryFixture {
    acme: Domain,
    globex: Domain,
    prod: Project,
    dev: Project,
    gp: Project,
    rows: BTreeMap<&'static str, Row>,
}

const ACME_ALL: &[&str] = &["P1", "P2", "P3", "P4", "P5", "P6", "D1", "D2", "G1", "G2"];

impl QueryFixture {
    /// Everything of acme, no conditions.
    fn query(&self) -> ResourceQuery {
        ResourceQuery {
            domain_id: self.acme.id.clone(),
            projects: vec![self.prod.id.clone(), self.dev.id.clone(), String::new()],
            ..ResourceQuery::default()
        }
    }

    fn acme_scope(&self) -> TagScope {
        scope(&self.acme.id, &[&self.prod.id, &self.dev.id, ""], &[])
    }
}

async fn query_fixture(store: &dyn Store) -> QueryFixture {
    let acme = new_domain(store, "acme").await;
    let globex = new_domain(store, "globex").await;
    let prod = new_project(store, &acme, "prod").await;
    let dev = new_project(store, &acme, "dev").await;
    let gp = new_project(store, &globex, "gp").await;
    let sys = "_sys_enterprise_project_id";
    let (p, d, g) = (prod.id.as_str(), dev.id.as_str(), gp.id.as_str());
    let rows: BTreeMap<&'static str, Row> = [
        (
            "P1",
            row(
                &at(&acme, p, ECS, "vm-a"),
                "web-1",
                &[("env", "prod"), ("app", "web"), ("owner", "alice")],
                &[(sys, "0")],
            ),
        ),
        (
            "P2",
            row(
                &at(&acme, p, ECS, "vm-b"),
                "Web-2",
                &[("env", "dev"), ("app", "web")],
                &[],
            ),
        ),
        (
            "P3",
            row(
                &at(&acme, p, ECS, "vm-c"),
                "db-1",
                &[("tier", "gold"), ("env", "prod"), ("app", "db")],
                &[],
            ),
        ),
        (
            "P4",
            row(&at(&acme, p, ECS, "vm-d"), "bare", &[], &[(sys, "7")]),
        ),
        (
            "P5",
            row(
                &at(&acme, p, EVS, "vol-a"),
                "web-data",
                &[("owner", "bob"), ("env", "prod")],
                &[],
            ),
        ),
        (
            "P6",
            row(&at(&acme, p, EVS, "vol-b"), "", &[("tier", "")], &[]),
        ),
        (
            "D1",
            row(
                &at(&acme, d, ECS, "vm-a"),
                "web-dev",
                &[("env", "dev"), ("app", "web")],
                &[],
            ),
        ),
        ("D2", row(&at(&acme, d, EVS, "vol-c"), "scratch", &[], &[])),
        (
            "G1",
            row(
                &at(&acme, "", OBS, "bucket-1"),
                "logs",
                &[("env", "prod"), ("owner", "alice")],
                &[],
            ),
        ),
        (
            "G2",
            row(&at(&acme, "", OBS, "bucket-2"), "web-assets", &[], &[]),
        ),
        (
            "X1",
            row(
                &at(&globex, g, ECS, "vm-a"),
                "web-1",
                &[("env", "prod"), ("app", "web")],
                &[],
            ),
        ),
        (
            "X2",
            row(
                &at(&globex, "", OBS, "bucket-1"),
                "logs",
                &[("env", "prod"), ("owner", "alice")],
                &[],
            ),
        ),
        (
            "X3",
            row(
                &at(&globex, p, ECS, "vm-z"),
                "web-9",
                &[("env", "prod"), ("app", "web")],
                &[],
            ),
        ),
    ]
    .into_iter()
    .collect();
    let all: Vec<Row> = rows.values().cloned().collect();
    populate(store, &all).await;
    QueryFixture {
        acme,
        globex,
        prod,
        dev,
        gp,
        rows,
    }
}

/// The labels of `rows` (by where they are), for readable failures.
fn labels(rows: &BTreeMap<&'static str, Row>, of: &[Row]) -> Vec<String> {
    of.iter()
        .map(|r| {
            rows.iter()
                .find(|(_, x)| x.at() == r.at())
                .map_or_else(|| format!("{:?}", r.at()), |(l, _)| (*l).to_owned())
        })
        .collect()
}

/// Runs `query` and checks it keeps exactly `expected` (labels of `rows`), in (type, id)
/// order, each with its tags and system tags, and that `total_count` and
/// `count_resources` agree.
async fn check_query(
    store: &dyn Store,
    rows: &BTreeMap<&'static str, Row>,
    what: &str,
    query: &ResourceQuery,
    expected: &[&str],
) {
    let page = find_all(store, query).await;
    let got = rows_in_order(&page.resources, what);
    let want = sorted(
        expected
            .iter()
            .map(|l| rows.get(l).expect("a label of the fixture").clone())
            .collect(),
    );
    assert_eq!(
        labels(rows, &got),
        labels(rows, &want),
        "{what}: which resources the query keeps"
    );
    assert_eq!(got, want, "{what}: the resources with their tags");
    assert_eq!(page.total_count, want.len() as u64, "{what}: total_count");
    assert_eq!(
        count(store, query).await,
        want.len() as u64,
        "{what}: count_resources"
    );
}

/// Each operator alone and in combination keeps exactly the resources the semantics of
/// `core::query` say, with their tags sorted by key and their system tags; system tags
/// never match a tag condition.
async fn query_operators_keep_exactly_the_expected_resources(store: Arc<dyn Store>) {
    let store = &*store;
    let fx = query_fixture(store).await;
    let q = fx.query();
    let sys = "_sys_enterprise_project_id";

    // With no condition, every resource of acme in (type, id) order.
    let everything = find_all(store, &q).await;
    let order: Vec<(String, String)> = everything
        .resources
        .iter()
        .map(|f| {
            (
                f.resource.at.resource_type.clone(),
                f.resource.at.resource_id.clone(),
            )
        })
        .collect();
    assert_eq!(
        order,
        [
            (ECS, "vm-a"),
            (ECS, "vm-a"),
            (ECS, "vm-b"),
            (ECS, "vm-c"),
            (ECS, "vm-d"),
            (EVS, "vol-a"),
            (EVS, "vol-b"),
            (EVS, "vol-c"),
            (OBS, "bucket-1"),
            (OBS, "bucket-2"),
        ]
        .iter()
        .map(|(t, i)| ((*t).to_owned(), (*i).to_owned()))
        .collect::<Vec<_>>()
    );

    let all = |m: Vec<TagMatch>| ResourceQuery {
        all: m,
        ..q.clone()
    };
    let any = |m: Vec<TagMatch>| ResourceQuery {
        any: m,
        ..q.clone()
    };
    let not_all = |m: Vec<TagMatch>| ResourceQuery {
        not_all: m,
        ..q.clone()
    };
    let none = |m: Vec<TagMatch>| ResourceQuery {
        none: m,
        ..q.clone()
    };
    let name = |s: &str| ResourceQuery {
        name_contains: Some(s.to_owned()),
        ..q.clone()
    };
    let untagged = ResourceQuery {
        without_any_tag: true,
        ..q.clone()
    };

    let cases: Vec<(&str, ResourceQuery, &[&str])> = vec![
        ("no condition", q.clone(), ACME_ALL),
        // all
        (
            "all: key only",
            all(vec![key_only("env")]),
            &["P1", "P2", "P3", "P5", "D1", "G1"],
        ),
        (
            "all: one value",
            all(vec![key_in("env", &["prod"])]),
            &["P1", "P3", "P5", "G1"],
        ),
        (
            "all: several values are OR-ed",
            all(vec![key_in("env", &["dev", "staging"])]),
            &["P2", "D1"],
        ),
        (
            "all: several values, all present",
            all(vec![key_in("app", &["db", "web"])]),
            &["P1", "P2", "P3", "D1"],
        ),
        (
            "all: the empty value",
            all(vec![key_in("tier", &[""])]),
            &["P6"],
        ),
        (
            "all: the empty value among others",
            all(vec![key_in("tier", &["gold", ""])]),
            &["P3", "P6"],
        ),
        (
            "all: values are case-sensitive",
            all(vec![key_in("env", &["PROD"])]),
            &[],
        ),
        (
            "all: keys are case-sensitive",
            all(vec![key_only("ENV")]),
            &[],
        ),
        (
            "all: two keys are AND-ed (value and key only)",
            all(vec![key_in("env", &["prod"]), key_only("owner")]),
            &["P1", "P5", "G1"],
        ),
        (
            "all: two keys with values",
            all(vec![key_in("env", &["prod"]), key_in("app", &["web"])]),
            &["P1"],
        ),
        (
            "all: two keys only",
            all(vec![key_only("app"), key_only("tier")]),
            &["P3"],
        ),
        // any
        (
            "any: key and pair",
            any(vec![key_only("owner"), key_in("tier", &["gold"])]),
            &["P1", "P3", "P5", "G1"],
        ),
        (
            "any: one pair",
            any(vec![key_in("env", &["dev"])]),
            &["P2", "D1"],
        ),
        ("any: one key", any(vec![key_only("tier")]), &["P3", "P6"]),
        (
            "any: two pairs",
            any(vec![key_in("app", &["db"]), key_in("owner", &["bob"])]),
            &["P3", "P5"],
        ),
        // not_all
        (
            "not_all: pair and key",
            not_all(vec![key_in("env", &["prod"]), key_only("owner")]),
            &["P2", "P3", "P4", "P6", "D1", "D2", "G2"],
        ),
        (
            "not_all: one key",
            not_all(vec![key_only("app")]),
            &["P4", "P5", "P6", "D2", "G1", "G2"],
        ),
        (
            "not_all: one key, several values",
            not_all(vec![key_in("env", &["prod", "dev"])]),
            &["P4", "P6", "D2", "G2"],
        ),
        // none
        (
            "none: two keys",
            none(vec![key_only("env"), key_only("tier")]),
            &["P4", "D2", "G2"],
        ),
        (
            "none: one pair",
            none(vec![key_in("app", &["web"])]),
            &["P3", "P4", "P5", "P6", "D2", "G1", "G2"],
        ),
        (
            "none: two pairs",
            none(vec![key_in("owner", &["alice"]), key_in("tier", &["gold"])]),
            &["P2", "P4", "P5", "P6", "D1", "D2", "G2"],
        ),
        // without_any_tag: system tags are not tags (P4 has one).
        ("without_any_tag", untagged.clone(), &["P4", "D2", "G2"]),
        (
            "without_any_tag ignores the tag lists",
            ResourceQuery {
                all: vec![key_in("env", &["prod"])],
                any: vec![key_only("owner")],
                not_all: vec![key_only("app")],
                none: vec![key_only("env")],
                ..untagged.clone()
            },
            &["P4", "D2", "G2"],
        ),
        (
            "without_any_tag still applies name_contains",
            ResourceQuery {
                name_contains: Some("web".to_owned()),
                ..untagged.clone()
            },
            &["G2"],
        ),
        // name_contains
        ("name: substring", name("web"), &["P1", "P5", "D1", "G2"]),
        ("name: case-sensitive", name("Web"), &["P2"]),
        (
            "name: inner substring",
            name("eb-"),
            &["P1", "P2", "P5", "D1", "G2"],
        ),
        ("name: the whole name", name("web-1"), &["P1"]),
        ("name: longer than any name", name("web-10"), &[]),
        (
            "name: the empty string is in every name",
            name(""),
            ACME_ALL,
        ),
        // combinations
        (
            "all + none",
            ResourceQuery {
                all: vec![key_in("env", &["prod"])],
                none: vec![key_only("owner")],
                ..q.clone()
            },
            &["P3"],
        ),
        (
            "all + not_all",
            ResourceQuery {
                all: vec![key_only("app")],
                not_all: vec![key_in("env", &["prod"])],
                ..q.clone()
            },
            &["P2", "D1"],
        ),
        (
            "any + name",
            ResourceQuery {
                any: vec![key_only("owner"), key_only("tier")],
                name_contains: Some("web".to_owned()),
                ..q.clone()
            },
            &["P1", "P5"],
        ),
        (
            "all + any + none",
            ResourceQuery {
                all: vec![key_in("env", &["prod"])],
                any: vec![key_in("app", &["db"]), key_in("owner", &["bob"])],
                none: vec![key_only("tier")],
                ..q.clone()
            },
            &["P5"],
        ),
        (
            "all four lists + name",
            ResourceQuery {
                all: vec![key_only("env")],
                any: vec![key_only("app")],
                not_all: vec![key_in("env", &["prod"])],
                none: vec![key_only("owner")],
                name_contains: Some("web".to_owned()),
                ..q.clone()
            },
            &["D1"],
        ),
        // system tags are not tags
        (
            "none: a system tag key",
            none(vec![key_only(sys)]),
            ACME_ALL,
        ),
        ("all: a system tag key", all(vec![key_only(sys)]), &[]),
        (
            "any: a system tag pair",
            any(vec![key_in(sys, &["0"])]),
            &[],
        ),
        // empty results
        ("all: an unknown key", all(vec![key_only("nope")]), &[]),
        (
            "all: an unknown value",
            all(vec![key_in("env", &["staging"])]),
            &[],
        ),
        (
            "any: unknown keys and values",
            any(vec![key_only("nope"), key_in("env", &["staging"])]),
            &[],
        ),
        (
            "all and none of one key",
            ResourceQuery {
                all: vec![key_only("env")],
                none: vec![key_only("env")],
                ..q.clone()
            },
            &[],
        ),
        (
            "all and not_all of one key",
            ResourceQuery {
                all: vec![key_in("env", &["prod"])],
                not_all: vec![key_only("env")],
                ..q.clone()
            },
            &[],
        ),
        ("name: not in any name", name("zzz"), &[]),
    ];
    for (what, query, expected) in &cases {
        check_query(store, &fx.rows, what, query, expected).await;
    }
}

/// `total_count` is the number of all matches whatever the page, and `count_resources`
/// agrees; each page is the matching slice of the full result.
async fn query_total_count_ignores_paging(store: Arc<dyn Store>) {
    let store = &*store;
    let fx = query_fixture(store).await;
    let q = fx.query();
    let queries = [
        ("everything", q.clone(), 10),
        (
            "env=prod",
            ResourceQuery {
                all: vec![key_in("env", &["prod"])],
                ..q.clone()
            },
            4,
        ),
        (
            "name web",
            ResourceQuery {
                name_contains: Some("web".to_owned()),
                ..q.clone()
            },
            4,
        ),
        (
            "nothing",
            ResourceQuery {
                all: vec![key_only("nope")],
                ..q.clone()
            },
            0,
        ),
    ];
    let pages: [(u64, u64); 14] = [
        (0, 1),
        (0, 3),
        (2, 2),
        (3, 100),
        (9, 1),
        (3, 1),
        (4, 1),
        (10, 5),
        (50, 5),
        (0, 0),
        (5, 0),
        (0, u64::MAX),
        (u64::MAX, 1),
        (u64::MAX, u64::MAX),
    ];
    for (what, query, n) in &queries {
        let full = find_all(store, query).await;
        assert_eq!(
            full.total_count, *n,
            "{what}: total_count of the full result"
        );
        assert_eq!(full.resources.len() as u64, *n, "{what}: the full result");
        assert_eq!(count(store, query).await, *n, "{what}: count_resources");
        for (offset, limit) in pages {
            let page = store
                .find_resources(query, offset, limit)
                .await
                .expect("find_resources");
            assert_eq!(
                page.total_count, *n,
                "{what}: total_count at offset {offset}, limit {limit}"
            );
            let start = offset.min(*n) as usize;
            let end = offset.saturating_add(limit).min(*n) as usize;
            assert_eq!(
                page.resources,
                full.resources[start..end].to_vec(),
                "{what}: the page at offset {offset}, limit {limit}"
            );
        }
    }
}

/// Walking a query's results a few at a time gives exactly the full result: no
/// duplicates, no gaps, even where one (type, id) is used in several projects. Past the
/// end a page is empty but still counts every match.
async fn query_paging_neither_repeats_nor_skips(store: Arc<dyn Store>) {
    let store = &*store;
    let fx = query_fixture(store).await;
    // Many ties: the same (type, id) in prod, dev and the global resources.
    let mut ties = Vec::new();
    for i in 0..15 {
        for project in [fx.prod.id.as_str(), fx.dev.id.as_str(), ""] {
            let value = if i % 2 == 0 { "even" } else { "odd" };
            ties.push(row(
                &at(&fx.acme, project, ECS, &format!("vm-t{i:02}")),
                &format!("tie-{i}"),
                &[("parity", value)],
                &[],
            ));
        }
    }
    populate(store, &ties).await;

    let q = fx.query();
    let queries = [
        ("everything", q.clone(), 55_usize),
        (
            "parity=even",
            ResourceQuery {
                all: vec![key_in("parity", &["even"])],
                ..q.clone()
            },
            24,
        ),
        (
            "env",
            ResourceQuery {
                all: vec![key_only("env")],
                ..q.clone()
            },
            6,
        ),
        (
            "dev only",
            ResourceQuery {
                projects: vec![fx.dev.id.clone()],
                ..q.clone()
            },
            17,
        ),
    ];
    for (what, query, n) in &queries {
        let full = find_all(store, query).await;
        assert_eq!(full.resources.len(), *n, "{what}: the full result");
        assert_eq!(full.total_count, *n as u64, "{what}: total_count");
        let distinct: BTreeSet<ResourceRef> = full
            .resources
            .iter()
            .map(|f| f.resource.at.clone())
            .collect();
        assert_eq!(
            distinct.len(),
            *n,
            "{what}: the full result repeats a resource"
        );
        rows_in_order(&full.resources, what);
        for limit in [1_u64, 2, 3, 7] {
            let mut walked: Vec<Found> = Vec::new();
            loop {
                let page = store
                    .find_resources(query, walked.len() as u64, limit)
                    .await
                    .expect("find_resources");
                assert_eq!(
                    page.total_count,
                    *n as u64,
                    "{what}: total_count at offset {} limit {limit}",
                    walked.len()
                );
                assert!(
                    page.resources.len() as u64 <= limit,
                    "{what}: page too long"
                );
                if page.resources.is_empty() {
                    break;
                }
                walked.extend(page.resources);
                assert!(
                    walked.len() <= *n,
                    "{what}: walking gives more than the total"
                );
            }
            assert_eq!(
                walked, full.resources,
                "{what}: pages of {limit} concatenate to the full result"
            );
        }
        for offset in [*n as u64, *n as u64 + 1, 1_000] {
            let page = store
                .find_resources(query, offset, 5)
                .await
                .expect("find_resources");
            assert!(
                page.resources.is_empty(),
                "{what}: offset {offset} is past the end"
            );
            assert_eq!(
                page.total_count, *n as u64,
                "{what}: total_count past the end"
            );
        }
    }
}

/// Projects, resource types and the domain restrict what a query looks at; `""` in
/// projects means the domain's global resources; another domain's resources never show,
/// even filed under the same project id.
async fn query_scope_isolates_projects_types_and_domains(store: Arc<dyn Store>) {
    let store = &*store;
    let fx = query_fixture(store).await;
    let q = fx.query();
    let (prod, dev, gp) = (fx.prod.id.clone(), fx.dev.id.clone(), fx.gp.id.clone());
    let in_projects = |projects: &[&str]| ResourceQuery {
        projects: strings(projects),
        ..q.clone()
    };
    let of_types = |types: &[&str]| ResourceQuery {
        resource_types: strings(types),
        ..q.clone()
    };
    let globex = |projects: &[&str]| ResourceQuery {
        domain_id: fx.globex.id.clone(),
        projects: strings(projects),
        ..ResourceQuery::default()
    };
    let cases: Vec<(&str, ResourceQuery, &[&str])> = vec![
        (
            "prod",
            in_projects(&[&prod]),
            &["P1", "P2", "P3", "P4", "P5", "P6"],
        ),
        ("dev", in_projects(&[&dev]), &["D1", "D2"]),
        ("global only", in_projects(&[""]), &["G1", "G2"]),
        (
            "prod and global",
            in_projects(&[&prod, ""]),
            &["P1", "P2", "P3", "P4", "P5", "P6", "G1", "G2"],
        ),
        (
            "a project twice",
            in_projects(&[&prod, &prod]),
            &["P1", "P2", "P3", "P4", "P5", "P6"],
        ),
        ("an unknown project", in_projects(&[&new_id()]), &[]),
        ("a project of another domain", in_projects(&[&gp]), &[]),
        ("evs", of_types(&[EVS]), &["P5", "P6", "D2"]),
        (
            "ecs and obs",
            of_types(&[ECS, OBS]),
            &["P1", "P2", "P3", "P4", "D1", "G1", "G2"],
        ),
        ("a type twice", of_types(&[EVS, EVS]), &["P5", "P6", "D2"]),
        ("an unknown type", of_types(&["nope.things"]), &[]),
        (
            "dev and ecs",
            ResourceQuery {
                projects: vec![dev.clone()],
                resource_types: strings(&[ECS]),
                ..q.clone()
            },
            &["D1"],
        ),
        (
            "global and ecs",
            ResourceQuery {
                projects: vec![String::new()],
                resource_types: strings(&[ECS]),
                ..q.clone()
            },
            &[],
        ),
        (
            "global with a tag condition",
            ResourceQuery {
                projects: vec![String::new()],
                all: vec![key_in("env", &["prod"])],
                ..q.clone()
            },
            &["G1"],
        ),
        (
            "prod without tags",
            ResourceQuery {
                projects: vec![prod.clone()],
                without_any_tag: true,
                ..q.clone()
            },
            &["P4"],
        ),
        (
            "prod and a name",
            ResourceQuery {
                projects: vec![prod.clone()],
                name_contains: Some("web".to_owned()),
                ..q.clone()
            },
            &["P1", "P5"],
        ),
        (
            "globex, all of it",
            globex(&[&gp, "", &prod]),
            &["X1", "X2", "X3"],
        ),
        ("globex, under acme's prod id", globex(&[&prod]), &["X3"]),
        ("globex, global only", globex(&[""]), &["X2"]),
        (
            "globex, a tag condition",
            ResourceQuery {
                all: vec![key_in("env", &["prod"])],
                ..globex(&[&gp, ""])
            },
            &["X1", "X2"],
        ),
        (
            "an unknown domain",
            ResourceQuery {
                domain_id: new_id(),
                ..q.clone()
            },
            &[],
        ),
        (
            "the empty domain id",
            ResourceQuery {
                domain_id: String::new(),
                ..q.clone()
            },
            &[],
        ),
    ];
    for (what, query, expected) in &cases {
        check_query(store, &fx.rows, what, query, expected).await;
    }
}

/// `tag_keys` and `tag_values` list what is in use in a scope, sorted and distinct,
/// system tags aside; `after` pages through them; `key_values` groups every key with
/// its sorted values.
async fn tag_keys_and_values_are_sorted_distinct_scoped_and_paged(store: Arc<dyn Store>) {
    let store = &*store;
    let fx = query_fixture(store).await;
    let sys = "_sys_enterprise_project_id";
    let all = fx.acme_scope();
    let (acme, prod, dev) = (fx.acme.id.as_str(), fx.prod.id.as_str(), fx.dev.id.as_str());
    let gp = fx.gp.id.as_str();
    let globex = fx.globex.id.as_str();

    // Keys, per scope.
    let key_cases: Vec<(&str, TagScope, &[&str])> = vec![
        ("acme", all.clone(), &["app", "env", "owner", "tier"]),
        (
            "prod",
            scope(acme, &[prod], &[]),
            &["app", "env", "owner", "tier"],
        ),
        ("dev", scope(acme, &[dev], &[]), &["app", "env"]),
        ("global", scope(acme, &[""], &[]), &["env", "owner"]),
        (
            "evs",
            scope(acme, &[prod, dev, ""], &[EVS]),
            &["env", "owner", "tier"],
        ),
        ("dev evs", scope(acme, &[dev], &[EVS]), &[]),
        ("prod obs", scope(acme, &[prod], &[OBS]), &[]),
        (
            "globex",
            scope(globex, &[gp, "", prod], &[]),
            &["app", "env", "owner"],
        ),
        (
            "globex under acme's prod id",
            scope(globex, &[prod], &[]),
            &["app", "env"],
        ),
        (
            "an unknown domain",
            scope(&new_id(), &[prod, dev, ""], &[]),
            &[],
        ),
        (
            "acme, an unknown project",
            scope(acme, &[&new_id()], &[]),
            &[],
        ),
        ("acme, globex's project", scope(acme, &[gp], &[]), &[]),
    ];
    for (what, s, expected) in &key_cases {
        assert_eq!(
            keys_in(store, s, None, 1000).await,
            strings(expected),
            "tag_keys of {what}"
        );
    }

    // `after` and `limit`.
    let after_cases: [(Option<&str>, usize, &[&str]); 9] = [
        (Some("b"), 1000, &["env", "owner", "tier"]),
        (Some("env"), 1000, &["owner", "tier"]),
        (Some(""), 1000, &["app", "env", "owner", "tier"]),
        (Some("tier"), 1000, &[]),
        (Some("zzz"), 1000, &[]),
        (None, 2, &["app", "env"]),
        (Some("app"), 2, &["env", "owner"]),
        (None, 0, &[]),
        (Some("a"), 1, &["app"]),
    ];
    for (after, limit, expected) in after_cases {
        assert_eq!(
            keys_in(store, &all, after, limit).await,
            strings(expected),
            "tag_keys after {after:?}, limit {limit}"
        );
    }

    // Values, per scope and key.
    let value_cases: Vec<(&str, TagScope, &str, &[&str])> = vec![
        ("acme", all.clone(), "env", &["dev", "prod"]),
        ("acme", all.clone(), "app", &["db", "web"]),
        ("acme", all.clone(), "owner", &["alice", "bob"]),
        ("acme", all.clone(), "tier", &["", "gold"]),
        ("acme", all.clone(), "nope", &[]),
        ("acme", all.clone(), "ENV", &[]),
        ("acme", all.clone(), sys, &[]),
        ("dev", scope(acme, &[dev], &[]), "env", &["dev"]),
        ("dev", scope(acme, &[dev], &[]), "owner", &[]),
        ("global", scope(acme, &[""], &[]), "owner", &["alice"]),
        (
            "evs",
            scope(acme, &[prod, dev, ""], &[EVS]),
            "owner",
            &["bob"],
        ),
        ("evs", scope(acme, &[prod, dev, ""], &[EVS]), "tier", &[""]),
        (
            "globex",
            scope(globex, &[gp, "", prod], &[]),
            "env",
            &["prod"],
        ),
        ("globex", scope(globex, &[gp, "", prod], &[]), "tier", &[]),
        (
            "an unknown domain",
            scope(&new_id(), &[prod], &[]),
            "env",
            &[],
        ),
    ];
    for (what, s, key, expected) in &value_cases {
        assert_eq!(
            values_in(store, s, key, None, 1000).await,
            strings(expected),
            "tag_values of {key:?} in {what}"
        );
    }
    assert_eq!(
        values_in(store, &all, "env", Some("dev"), 1000).await,
        strings(&["prod"])
    );
    assert_eq!(
        values_in(store, &all, "tier", Some(""), 1000).await,
        strings(&["gold"])
    );
    assert_eq!(
        values_in(store, &all, "tier", None, 1).await,
        strings(&[""])
    );
    assert_eq!(
        values_in(store, &all, "env", None, 0).await,
        Vec::<String>::new()
    );
    assert_eq!(
        values_in(store, &all, "env", Some("prod"), 10).await,
        Vec::<String>::new()
    );

    // key_values.
    let kv_cases: Vec<(&str, TagScope, Vec<KeyValues>)> = vec![
        (
            "acme",
            all.clone(),
            key_values_of(&[
                ("app", &["db", "web"]),
                ("env", &["dev", "prod"]),
                ("owner", &["alice", "bob"]),
                ("tier", &["", "gold"]),
            ]),
        ),
        (
            "dev",
            scope(acme, &[dev], &[]),
            key_values_of(&[("app", &["web"]), ("env", &["dev"])]),
        ),
        (
            "global",
            scope(acme, &[""], &[]),
            key_values_of(&[("env", &["prod"]), ("owner", &["alice"])]),
        ),
        (
            "evs",
            scope(acme, &[prod, dev, ""], &[EVS]),
            key_values_of(&[("env", &["prod"]), ("owner", &["bob"]), ("tier", &[""])]),
        ),
        (
            "globex under acme's prod id",
            scope(globex, &[prod], &[]),
            key_values_of(&[("app", &["web"]), ("env", &["prod"])]),
        ),
        ("prod obs", scope(acme, &[prod], &[OBS]), Vec::new()),
        (
            "an unknown domain",
            scope(&new_id(), &[prod, ""], &[]),
            Vec::new(),
        ),
    ];
    for (what, s, expected) in &kv_cases {
        assert_eq!(
            &key_values_in(store, s).await,
            expected,
            "key_values of {what}"
        );
    }

    // Paging over more keys and values: project lab, 12 resources, each with its own key
    // k00..k11, a shared key m with one value, and n with 7 values used repeatedly.
    let lab = new_project(store, &fx.acme, "lab").await;
    let lab_rows: Vec<Row> = (0..12)
        .map(|i| {
            let own = format!("k{i:02}");
            let n = format!("v{:02}", (i * 5) % 7);
            row(
                &at(&fx.acme, &lab.id, ECS, &format!("lab-{i:02}")),
                "",
                &[(&own, "x"), ("m", "same"), ("n", &n)],
                &[(sys, "0")],
            )
        })
        .collect();
    populate(store, &lab_rows).await;
    let lab_scope = scope(acme, &[&lab.id], &[]);
    let mut lab_keys: Vec<String> = (0..12).map(|i| format!("k{i:02}")).collect();
    lab_keys.extend(strings(&["m", "n"]));
    let n_values: Vec<String> = (0..7).map(|i| format!("v{i:02}")).collect();
    assert_eq!(keys_in(store, &lab_scope, None, 1000).await, lab_keys);
    assert_eq!(
        values_in(store, &lab_scope, "n", None, 1000).await,
        n_values
    );
    assert_eq!(
        values_in(store, &lab_scope, "m", None, 1000).await,
        strings(&["same"])
    );
    let mut lab_kv: Vec<KeyValues> = (0..12)
        .map(|i| KeyValues {
            key: format!("k{i:02}"),
            values: strings(&["x"]),
        })
        .collect();
    lab_kv.push(KeyValues {
        key: "m".to_owned(),
        values: strings(&["same"]),
    });
    lab_kv.push(KeyValues {
        key: "n".to_owned(),
        values: n_values.clone(),
    });
    assert_eq!(key_values_in(store, &lab_scope).await, lab_kv);

    // lab and prod together: the union, still sorted and distinct.
    let both = scope(acme, &[&lab.id, prod], &[]);
    let union: Vec<String> = lab_keys
        .iter()
        .cloned()
        .chain(strings(&["app", "env", "owner", "tier"]))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(keys_in(store, &both, None, 1000).await, union);

    for limit in [1, 2, 3, 5, 100] {
        assert_eq!(
            walk_keys(store, &lab_scope, limit).await,
            lab_keys,
            "lab keys by {limit}"
        );
        assert_eq!(
            walk_keys(store, &both, limit).await,
            union,
            "lab+prod keys by {limit}"
        );
        assert_eq!(
            walk_values(store, &lab_scope, "n", limit).await,
            n_values,
            "values of n by {limit}"
        );
        assert_eq!(
            walk_values(store, &all, "env", limit).await,
            strings(&["dev", "prod"]),
            "values of env by {limit}"
        );
        assert_eq!(
            walk_values(store, &all, "tier", limit).await,
            strings(&["", "gold"]),
            "values of tier by {limit}"
        );
        assert!(walk_keys(store, &scope(acme, &[prod], &[OBS]), limit)
            .await
            .is_empty());
        assert!(walk_values(store, &lab_scope, "nope", limit)
            .await
            .is_empty());
    }
    // The lab's keys did not leak into the other scopes.
    assert_eq!(
        keys_in(store, &all, None, 1000).await,
        strings(&["app", "env", "owner", "tier"])
    );
}

/// A write is seen by the very next read: tags set, changed and removed, resources
/// auto-registered, renamed and removed.
async fn queries_read_their_writes(store: Arc<dyn Store>) {
    let store = &*store;
    let acme = new_domain(store, "acme").await;
    let prod = new_project(store, &acme, "prod").await;
    let vm = at(&acme, &prod.id, ECS, "vm");
    let other = at(&acme, &prod.id, ECS, "other");
    register(store, &[resource(&vm, "vm"), resource(&other, "other")]).await;
    let q = ResourceQuery {
        domain_id: acme.id.clone(),
        projects: vec![prod.id.clone()],
        ..ResourceQuery::default()
    };
    let s = scope(&acme.id, &[&prod.id], &[]);
    let found_ids = |page: &FoundPage| -> Vec<String> {
        page.resources
            .iter()
            .map(|f| f.resource.at.resource_id.clone())
            .collect()
    };
    let with = |m: TagMatch| ResourceQuery {
        all: vec![m],
        ..q.clone()
    };
    let untagged = ResourceQuery {
        without_any_tag: true,
        ..q.clone()
    };

    // Every change is visible to the next query, many times over.
    for i in 0..25 {
        let value = format!("c{i:02}");
        assert_eq!(
            set_tags(store, &vm, &[("color", &value)]).await,
            ItemOutcome::Applied
        );
        let page = find_all(store, &with(key_in("color", &[&value]))).await;
        assert_eq!(found_ids(&page), strings(&["vm"]), "set #{i}");
        assert_eq!(
            tag_pairs(&page.resources[0].tags),
            pairs(&[("color", &value)])
        );
        assert_eq!(page.total_count, 1);
        if i > 0 {
            let before = format!("c{:02}", i - 1);
            assert_eq!(
                count(store, &with(key_in("color", &[&before]))).await,
                0,
                "the value overwritten by set #{i}"
            );
        }
        assert_eq!(values_in(store, &s, "color", None, 10).await, vec![value]);
    }
    assert_eq!(
        set_tags(store, &other, &[("color", "blue"), ("size", "L")]).await,
        ItemOutcome::Applied
    );
    assert_eq!(
        keys_in(store, &s, None, 10).await,
        strings(&["color", "size"])
    );
    assert_eq!(
        values_in(store, &s, "color", None, 10).await,
        strings(&["blue", "c24"])
    );

    // A removed tag leaves the results at once; its key stays listed while in use.
    assert_eq!(
        apply_one(
            store,
            &vm,
            50,
            TagChange::Remove(vec![by_key("color")]),
            false
        )
        .await,
        ItemOutcome::Applied
    );
    assert_eq!(
        found_ids(&find_all(store, &with(key_only("color"))).await),
        strings(&["other"])
    );
    assert_eq!(
        found_ids(&find_all(store, &untagged).await),
        strings(&["vm"])
    );
    assert_eq!(
        keys_in(store, &s, None, 10).await,
        strings(&["color", "size"])
    );
    assert_eq!(
        values_in(store, &s, "color", None, 10).await,
        strings(&["blue"])
    );

    // The last use of a key goes: the key goes.
    assert_eq!(
        apply_one(
            store,
            &other,
            50,
            TagChange::Remove(vec![by_pair("color", "blue")]),
            false
        )
        .await,
        ItemOutcome::Applied
    );
    assert_eq!(keys_in(store, &s, None, 10).await, strings(&["size"]));
    assert!(values_in(store, &s, "color", None, 10).await.is_empty());
    assert_eq!(
        key_values_in(store, &s).await,
        key_values_of(&[("size", &["L"])])
    );
    assert_eq!(count(store, &with(key_only("color"))).await, 0);
    let page = find_all(store, &with(key_only("size"))).await;
    assert_eq!(found_ids(&page), strings(&["other"]));
    assert_eq!(tag_pairs(&page.resources[0].tags), pairs(&[("size", "L")]));

    assert_eq!(
        apply_one(
            store,
            &other,
            50,
            TagChange::Remove(vec![by_key("size")]),
            false
        )
        .await,
        ItemOutcome::Applied
    );
    assert!(keys_in(store, &s, None, 10).await.is_empty());
    assert!(key_values_in(store, &s).await.is_empty());
    assert_eq!(
        found_ids(&find_all(store, &untagged).await),
        strings(&["other", "vm"])
    );

    // Auto-registration, renaming and removal are seen too.
    let fresh = at(&acme, &prod.id, ECS, "fresh");
    assert_eq!(
        apply_one(store, &fresh, 50, set_of(&[("color", "green")]), true).await,
        ItemOutcome::Applied
    );
    let page = find_all(store, &with(key_in("color", &["green"]))).await;
    assert_eq!(found_ids(&page), strings(&["fresh"]));
    assert_eq!(page.resources[0].resource.name, "");
    assert_eq!(keys_in(store, &s, None, 10).await, strings(&["color"]));

    register(store, &[resource(&vm, "renamed-vm")]).await;
    let renamed = ResourceQuery {
        name_contains: Some("renamed".to_owned()),
        ..q.clone()
    };
    assert_eq!(
        found_ids(&find_all(store, &renamed).await),
        strings(&["vm"])
    );

    assert_eq!(
        store
            .remove_resources(std::slice::from_ref(&fresh))
            .await
            .expect("remove_resources"),
        1
    );
    assert_eq!(count(store, &with(key_only("color"))).await, 0);
    assert!(keys_in(store, &s, None, 10).await.is_empty());
    assert_eq!(count(store, &q).await, 2);
}

/// Unicode keys and values, and text that looks like SQL or LIKE patterns, match
/// literally: byte for byte, no wildcards, no injection.
async fn query_matches_unicode_and_sql_lookalikes_literally(store: Arc<dyn Store>) {
    let store = &*store;
    let acme = new_domain(store, "acme").await;
    let prod = new_project(store, &acme, "prod").await;
    let p = prod.id.as_str();
    let inject = "' OR 1=1 --";
    let composed = "\u{e9}"; // é as one code point
    let decomposed = "e\u{301}"; // e + combining acute accent
    let rows: BTreeMap<&'static str, Row> = [
        (
            "U1",
            row(
                &at(&acme, p, ECS, "u1"),
                "名字%1",
                &[("环境", "生产"), ("q", inject)],
                &[],
            ),
        ),
        (
            "U2",
            row(
                &at(&acme, p, ECS, "u2"),
                "a_b",
                &[("环境", "测试"), ("q", "%")],
                &[],
            ),
        ),
        (
            "U3",
            row(&at(&acme, p, ECS, "u3"), "abc", &[("q", "_")], &[]),
        ),
        (
            "U4",
            row(
                &at(&acme, p, ECS, "u4"),
                "100%",
                &[("q", "x"), ("🔑", "🗝️")],
                &[],
            ),
        ),
        (
            "U5",
            row(
                &at(&acme, p, ECS, "u5"),
                "caf\u{e9}",
                &[("q", composed)],
                &[],
            ),
        ),
        (
            "U6",
            row(
                &at(&acme, p, ECS, "u6"),
                "cafe\u{301}",
                &[("q", decomposed)],
                &[],
            ),
        ),
        (
            "U7",
            row(&at(&acme, p, ECS, "u7"), "it's", &[(inject, "%_")], &[]),
        ),
    ]
    .into_iter()
    .collect();
    let all_rows: Vec<Row> = rows.values().cloned().collect();
    populate(store, &all_rows).await;

    let q = ResourceQuery {
        domain_id: acme.id.clone(),
        projects: vec![prod.id.clone()],
        ..ResourceQuery::default()
    };
    let all = |m: Vec<TagMatch>| ResourceQuery {
        all: m,
        ..q.clone()
    };
    let name = |s: &str| ResourceQuery {
        name_contains: Some(s.to_owned()),
        ..q.clone()
    };
    let cases: Vec<(&str, ResourceQuery, &[&str])> = vec![
        ("value %", all(vec![key_in("q", &["%"])]), &["U2"]),
        ("value _", all(vec![key_in("q", &["_"])]), &["U3"]),
        ("value %%", all(vec![key_in("q", &["%%"])]), &[]),
        (
            "value ' OR 1=1 --",
            all(vec![key_in("q", &[inject])]),
            &["U1"],
        ),
        (
            "value ' OR '1'='1",
            all(vec![key_in("q", &["' OR '1'='1"])]),
            &[],
        ),
        (
            "values % and _",
            all(vec![key_in("q", &["%", "_"])]),
            &["U2", "U3"],
        ),
        (
            "any value %",
            ResourceQuery {
                any: vec![key_in("q", &["%"])],
                ..q.clone()
            },
            &["U2"],
        ),
        (
            "none value %",
            ResourceQuery {
                none: vec![key_in("q", &["%"])],
                ..q.clone()
            },
            &["U1", "U3", "U4", "U5", "U6", "U7"],
        ),
        (
            "not_all value _",
            ResourceQuery {
                not_all: vec![key_in("q", &["_"])],
                ..q.clone()
            },
            &["U1", "U2", "U4", "U5", "U6", "U7"],
        ),
        ("key ' OR 1=1 --", all(vec![key_only(inject)]), &["U7"]),
        (
            "key ' OR 1=1 -- = %_",
            all(vec![key_in(inject, &["%_"])]),
            &["U7"],
        ),
        (
            "key ' OR 1=1 -- = %",
            all(vec![key_in(inject, &["%"])]),
            &[],
        ),
        ("key %", all(vec![key_only("%")]), &[]),
        ("key _", all(vec![key_only("_")]), &[]),
        ("key 环境", all(vec![key_only("环境")]), &["U1", "U2"]),
        ("环境=生产", all(vec![key_in("环境", &["生产"])]), &["U1"]),
        ("🔑=🗝️", all(vec![key_in("🔑", &["🗝️"])]), &["U4"]),
        (
            "🔑=🗝 without the variation selector",
            all(vec![key_in("🔑", &["🗝"])]),
            &[],
        ),
        ("composed é", all(vec![key_in("q", &[composed])]), &["U5"]),
        (
            "decomposed é",
            all(vec![key_in("q", &[decomposed])]),
            &["U6"],
        ),
        ("plain e", all(vec![key_in("q", &["e"])]), &[]),
        ("capital É", all(vec![key_in("q", &["\u{c9}"])]), &[]),
        ("name %", name("%"), &["U1", "U4"]),
        ("name _", name("_"), &["U2"]),
        ("name a_b", name("a_b"), &["U2"]),
        ("name a%b", name("a%b"), &[]),
        ("name ab", name("ab"), &["U3"]),
        ("name Ab", name("Ab"), &[]),
        ("name 名字", name("名字"), &["U1"]),
        ("name composed é", name(composed), &["U5"]),
        ("name combining accent", name("\u{301}"), &["U6"]),
        ("name '", name("'"), &["U7"]),
        ("name ' OR 1=1 --", name(inject), &[]),
        ("name ' OR '1'='1", name("' OR '1'='1"), &[]),
        (
            "a type that looks like SQL",
            ResourceQuery {
                resource_types: strings(&["x' OR '1'='1"]),
                ..q.clone()
            },
            &[],
        ),
        (
            "a project that looks like SQL",
            ResourceQuery {
                projects: strings(&["' OR ''='"]),
                ..q.clone()
            },
            &[],
        ),
        (
            "a domain that looks like SQL",
            ResourceQuery {
                domain_id: "' OR 1=1 --".to_owned(),
                ..q.clone()
            },
            &[],
        ),
    ];
    for (what, query, expected) in &cases {
        check_query(store, &rows, what, query, expected).await;
    }

    // Listings sort byte-wise (code point order) and match literally too.
    let s = scope(&acme.id, &[p], &[]);
    let keys = strings(&[inject, "q", "环境", "🔑"]);
    assert_eq!(keys_in(store, &s, None, 100).await, keys);
    assert_eq!(
        keys_in(store, &s, Some("q"), 100).await,
        strings(&["环境", "🔑"])
    );
    assert_eq!(keys_in(store, &s, Some("%"), 1).await, strings(&[inject]));
    let q_values = strings(&["%", inject, "_", decomposed, "x", composed]);
    assert_eq!(values_in(store, &s, "q", None, 100).await, q_values);
    assert_eq!(
        values_in(store, &s, "q", Some("%"), 100).await,
        q_values[1..].to_vec()
    );
    assert_eq!(
        values_in(store, &s, "环境", None, 100).await,
        strings(&["测试", "生产"])
    );
    assert!(values_in(store, &s, "%", None, 100).await.is_empty());
    assert!(values_in(store, &s, "_", None, 100).await.is_empty());
    assert!(values_in(store, &s, "' OR '1'='1", None, 100)
        .await
        .is_empty());
    assert_eq!(
        values_in(store, &s, inject, None, 100).await,
        strings(&["%_"])
    );
    for limit in [1, 2, 4] {
        assert_eq!(walk_keys(store, &s, limit).await, keys);
        assert_eq!(walk_values(store, &s, "q", limit).await, q_values);
    }
    assert!(keys_in(store, &scope("' OR 1=1 --", &[p], &[]), None, 100)
        .await
        .is_empty());
    assert!(
        keys_in(store, &scope(&acme.id, &["' OR ''='"], &[]), None, 100)
            .await
            .is_empty()
    );
}

/// A tiny deterministic generator (Knuth's MMIX LCG), so the random check needs no crate
/// and fails the same way every run.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

const RANDOM_KEYS: &[&str] = &["env", "app", "team", "tier", "cost", "Env"];
const RANDOM_VALUES: &[&str] = &["prod", "dev", "web", "", "Prod", "x%"];
const RANDOM_NAME_CHARS: &[char] = &['a', 'b', 'A', '-', '_', '%', 'é'];

/// `count` random resources of `domain`, spread over `projects` and three types, with
/// ids that repeat across projects and types, random names, 0-4 tags and sometimes a
/// system tag.
fn random_rows(rng: &mut Lcg, domain: &Domain, projects: &[&str], count: usize) -> Vec<Row> {
    let mut seen = BTreeSet::new();
    let mut rows = Vec::new();
    while rows.len() < count {
        let project = *rng.pick(projects);
        let resource_type = *rng.pick(&[ECS, EVS, OBS]);
        let id = format!("r{:03}", rng.below(400));
        if !seen.insert((project, resource_type, id.clone())) {
            continue;
        }
        let name: String = (0..rng.below(7))
            .map(|_| *rng.pick(RANDOM_NAME_CHARS))
            .collect();
        let mut tags: BTreeMap<&str, &str> = BTreeMap::new();
        for _ in 0..rng.below(5) {
            tags.insert(*rng.pick(RANDOM_KEYS), *rng.pick(RANDOM_VALUES));
        }
        let tags: Vec<(&str, &str)> = tags.into_iter().collect();
        let sys: Vec<(&str, &str)> = if rng.one_in(5) {
            vec![("_sys_enterprise_project_id", *rng.pick(&["0", "1"]))]
        } else {
            Vec::new()
        };
        rows.push(row(
            &at(domain, project, resource_type, &id),
            &name,
            &tags,
            &sys,
        ));
    }
    rows
}

/// 0..=max tag matches on distinct keys (sometimes an unused one), each with 0-2 values
/// (sometimes an unused one).
fn random_matches(rng: &mut Lcg, max: usize) -> Vec<TagMatch> {
    let mut out: Vec<TagMatch> = Vec::new();
    for _ in 0..rng.below(max + 1) {
        let key = if rng.one_in(10) {
            "unused"
        } else {
            *rng.pick(RANDOM_KEYS)
        };
        if out.iter().any(|m| m.key == key) {
            continue;
        }
        let mut values: Vec<String> = Vec::new();
        for _ in 0..rng.below(3) {
            let value = if rng.one_in(8) {
                "unused"
            } else {
                *rng.pick(RANDOM_VALUES)
            };
            if !values.iter().any(|v| v == value) {
                values.push(value.to_owned());
            }
        }
        out.push(TagMatch {
            key: key.to_owned(),
            values,
        });
    }
    out
}

fn random_subset(rng: &mut Lcg, items: &[&str]) -> Vec<String> {
    items
        .iter()
        .filter(|_| rng.one_in(2))
        .map(|s| (*s).to_owned())
        .collect()
}

fn random_query(rng: &mut Lcg, domain_id: &str, projects: &[&str]) -> ResourceQuery {
    let mut chosen = random_subset(rng, projects);
    if chosen.is_empty() {
        chosen.push((*rng.pick(projects)).to_owned());
    }
    let resource_types = if rng.one_in(2) {
        Vec::new()
    } else {
        random_subset(rng, &[ECS, EVS, OBS, "nope.things"])
    };
    let maybe = |rng: &mut Lcg| {
        if rng.one_in(2) {
            random_matches(rng, 2)
        } else {
            Vec::new()
        }
    };
    ResourceQuery {
        domain_id: domain_id.to_owned(),
        projects: chosen,
        resource_types,
        all: maybe(rng),
        any: maybe(rng),
        not_all: maybe(rng),
        none: maybe(rng),
        without_any_tag: rng.one_in(8),
        name_contains: rng.one_in(4).then(|| {
            (0..1 + rng.below(2))
                .map(|_| *rng.pick(RANDOM_NAME_CHARS))
                .collect()
        }),
        ..ResourceQuery::default()
    }
}

/// The semantics of `core::query`, evaluated the obvious way.
fn naive_keeps(q: &ResourceQuery, r: &Row) -> bool {
    let matches = |m: &TagMatch| {
        r.tags
            .iter()
            .any(|(k, v)| *k == m.key && (m.values.is_empty() || m.values.contains(v)))
    };
    let in_scope = r.domain_id == q.domain_id
        && q.projects.contains(&r.project_id)
        && (q.resource_types.is_empty() || q.resource_types.contains(&r.resource_type));
    let named = q
        .name_contains
        .as_ref()
        .is_none_or(|s| r.name.contains(s.as_str()));
    let tagged = if q.without_any_tag {
        r.tags.is_empty()
    } else {
        q.all.iter().all(matches)
            && (q.any.is_empty() || q.any.iter().any(matches))
            && (q.not_all.is_empty() || !q.not_all.iter().all(matches))
            && !q.none.iter().any(matches)
    };
    in_scope && named && tagged
}

/// The keys of a scope with their sorted values, evaluated the obvious way.
fn naive_key_values(rows: &[Row], s: &TagScope) -> Vec<KeyValues> {
    let mut map: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in rows.iter().filter(|r| {
        r.domain_id == s.domain_id
            && s.projects.contains(&r.project_id)
            && (s.resource_types.is_empty() || s.resource_types.contains(&r.resource_type))
    }) {
        for (k, v) in &r.tags {
            map.entry(k.clone()).or_default().insert(v.clone());
        }
    }
    map.into_iter()
        .map(|(key, values)| KeyValues {
            key,
            values: values.into_iter().collect(),
        })
        .collect()
}

/// 500 random resources (and 60 more in another domain, some filed under the same
/// project ids); random queries give what a naive evaluation of the semantics gives,
/// whole and page by page, and the tag listings of random scopes agree too.
async fn random_queries_agree_with_a_naive_evaluation(store: Arc<dyn Store>) {
    let store = &*store;
    let mut rng = Lcg(0x7a9d_2024_0001);
    let acme = new_domain(store, "acme").await;
    let globex = new_domain(store, "globex").await;
    let p0 = new_project(store, &acme, "p0").await;
    let p1 = new_project(store, &acme, "p1").await;
    let gp = new_project(store, &globex, "gp").await;
    let projects = [p0.id.as_str(), p1.id.as_str(), ""];
    let mut rows = random_rows(&mut rng, &acme, &projects, 500);
    rows.extend(random_rows(
        &mut rng,
        &globex,
        &[gp.id.as_str(), "", p0.id.as_str()],
        60,
    ));
    populate(store, &rows).await;

    let mut interesting = 0;
    for i in 0..30 {
        let q = random_query(&mut rng, &acme.id, &projects);
        let what = format!("random query #{i}: {q:?}");
        let expected: Vec<Row> = sorted(
            rows.iter()
                .filter(|r| naive_keeps(&q, r))
                .cloned()
                .collect(),
        );
        let in_scope = rows
            .iter()
            .filter(|r| {
                naive_keeps(
                    &ResourceQuery {
                        domain_id: q.domain_id.clone(),
                        projects: q.projects.clone(),
                        resource_types: q.resource_types.clone(),
                        ..ResourceQuery::default()
                    },
                    r,
                )
            })
            .count();
        if !expected.is_empty() && expected.len() < in_scope {
            interesting += 1;
        }
        let full = find_all(store, &q).await;
        let got = rows_in_order(&full.resources, &what);
        if got != expected {
            let at_set = |v: &[Row]| v.iter().map(Row::at).collect::<BTreeSet<_>>();
            let (g, e) = (at_set(&got), at_set(&expected));
            panic!(
                "{what}\n got {} resources, expected {}\n unexpected: {:?}\n missing: {:?}",
                got.len(),
                expected.len(),
                g.difference(&e).collect::<Vec<_>>(),
                e.difference(&g).collect::<Vec<_>>()
            );
        }
        let n = expected.len() as u64;
        assert_eq!(full.total_count, n, "{what}: total_count");
        assert_eq!(count(store, &q).await, n, "{what}: count_resources");
        for _ in 0..3 {
            let offset = rng.below(expected.len() + 3) as u64;
            let limit = 1 + rng.below(10) as u64;
            let page = store
                .find_resources(&q, offset, limit)
                .await
                .expect("find_resources");
            let start = offset.min(n) as usize;
            let end = (offset + limit).min(n) as usize;
            assert_eq!(page.total_count, n, "{what}: total_count of a page");
            assert_eq!(
                page.resources,
                full.resources[start..end].to_vec(),
                "{what}: the page at offset {offset}, limit {limit}"
            );
        }
    }
    assert!(
        interesting >= 10,
        "only {interesting} of the random queries kept some but not all of their scope"
    );

    for i in 0..10 {
        let mut chosen = random_subset(&mut rng, &projects);
        if chosen.is_empty() {
            chosen.push(String::new());
        }
        let resource_types = if rng.one_in(2) {
            Vec::new()
        } else {
            random_subset(&mut rng, &[ECS, EVS, OBS])
        };
        let s = TagScope {
            domain_id: acme.id.clone(),
            projects: chosen,
            resource_types,
        };
        let what = format!("random scope #{i}: {s:?}");
        let expected = naive_key_values(&rows, &s);
        assert_eq!(
            key_values_in(store, &s).await,
            expected,
            "{what}: key_values"
        );
        let expected_keys: Vec<String> = expected.iter().map(|kv| kv.key.clone()).collect();
        assert_eq!(
            walk_keys(store, &s, 2).await,
            expected_keys,
            "{what}: tag_keys"
        );
        for kv in &expected {
            assert_eq!(
                walk_values(store, &s, &kv.key, 2).await,
                kv.values,
                "{what}: tag_values of {:?}",
                kv.key
            );
        }
    }
}

backend_suite!(sqlite, sqlite_backend);
backend_suite!(postgres, postgres_backend);
