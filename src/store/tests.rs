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

use super::sqlite::SqliteStore;
use super::{ResourceFilter, Store, StoreError};
use crate::core::model::{
    new_id, now_unix, Domain, Project, Resource, ResourceRef, Scope, TokenRecord, User,
};
use crate::core::tagging::{
    BatchMode, BatchTarget, ItemOutcome, TagBatch, TagChange, UniformBatch,
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

fn sqlite_backend() -> SqliteBackend {
    SqliteBackend {
        dir: tempfile::tempdir().expect("create a temporary directory"),
    }
}

/// Expands to one `#[tokio::test]` per check, each against a fresh `$backend()`.
macro_rules! backend_suite {
    ($name:ident, $backend:ident) => {
        backend_suite!(@expand $name, $backend;
            store: [
                domains_round_trip,
                projects_round_trip,
                users_round_trip,
                delete_domain_cascades,
                orphans_are_not_reported_as_duplicates,
                tokens_round_trip,
                token_context_joins_user_domain_and_project,
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
                    let backend = super::$backend();
                    let store = backend.open().await;
                    super::$check(store).await;
                }
            )*
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $reopen_check() {
                    let backend = super::$backend();
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

backend_suite!(sqlite, sqlite_backend);
