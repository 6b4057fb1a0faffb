//! `tagd admin copy-store`, run as the real binary: a deployment built through the
//! public store API is copied and read back through the same API on the other side,
//! in every direction the command supports.
//!
//! The PostgreSQL tests each use a throwaway schema on the server `TAGD_TEST_DATABASE_URL`
//! names (see `tagd::store::throwaway`).

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

use tagd::core::model::{
    new_id, AccessKey, Domain, KeyStatus, Project, Resource, ResourceRef, Scope, Temporary,
    TokenRecord, User,
};
use tagd::core::predefined::PredefinedTag;
use tagd::core::query::{KeyValues, TagScope};
use tagd::core::tagging::{BatchItem, BatchMode, BatchTarget, TagBatch, TagChange};
use tagd::core::tags::Tag;
use tagd::store::postgres::PoolOptions;
use tagd::store::throwaway::ThrowawayDatabase;
use tagd::store::{ResourceFilter, Store};

// ---------------------------------------------------------------------------------------
// Fixtures

fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}

async fn open(url: &str) -> Arc<dyn Store> {
    tagd::store::open(url, PoolOptions::default())
        .await
        .unwrap_or_else(|e| panic!("open {url}: {e}"))
}

/// Runs `tagd admin copy-store`.
fn copy_store(from: &str, to: &str, force: bool) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tagd"));
    command
        .args(["admin", "copy-store", "--from", from, "--to", to])
        .env("TAGD_LOG", "warn");
    if force {
        command.arg("--force");
    }
    command.output().expect("run tagd")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn assert_copied(output: &Output) -> String {
    assert!(
        output.status.success(),
        "copy-store failed: {}",
        stderr(output)
    );
    stdout(output)
}

/// The number of rows the summary printed for `table`.
fn printed_rows(summary: &str, table: &str) -> u64 {
    summary
        .lines()
        .find_map(|line| {
            let mut words = line.split_whitespace();
            (words.next() == Some(table)).then(|| words.next()?.parse().ok())?
        })
        .unwrap_or_else(|| panic!("no row count for {table} in:\n{summary}"))
}

fn tag(key: &str, value: &str) -> Tag {
    tagd::api::tms::RULES
        .tags([(key, value)].into_iter())
        .expect("a valid tag")
        .remove(0)
}

fn user(domain: &Domain, name: &str, is_admin: bool, enabled: bool) -> User {
    User {
        id: new_id(),
        domain_id: domain.id.clone(),
        name: name.into(),
        // Stored as given: the copy must carry it byte for byte.
        password_hash: format!("$argon2id$v=19$m=19456,t=2,p=1$c2FsdC17bmFtZX0${name}"),
        is_admin,
        enabled,
    }
}

/// What the deployment holds besides what listing reveals: the secrets a client
/// presents (token hashes, access keys).
struct Deployment {
    domain: Domain,
    project: Project,
    token_hashes: Vec<String>,
    access_keys: Vec<String>,
}

/// Builds a small deployment of every kind of row: two domains, projects, users (one
/// disabled), tokens of both scopes (one revoked), a permanent and a temporary access
/// key, `resources` registered resources (plus one global) with tags, a system tag,
/// predefined tags and the server key's fingerprint.
async fn populate(store: &dyn Store, resources: usize) -> Deployment {
    let domain = Domain {
        id: new_id(),
        name: "acme".into(),
        enabled: true,
    };
    let project = Project {
        id: new_id(),
        domain_id: domain.id.clone(),
        name: "cn-north-4".into(),
        enabled: true,
    };
    let admin = user(&domain, "admin", true, true);
    assert!(store
        .insert_first_identity(&domain, &project, &admin)
        .await
        .expect("first identity"));
    let other = Domain {
        id: new_id(),
        name: "other".into(),
        enabled: false,
    };
    store.insert_domain(&other).await.expect("domain");
    store
        .insert_project(&Project {
            id: new_id(),
            domain_id: other.id.clone(),
            name: "cn-east-3".into(),
            enabled: false,
        })
        .await
        .expect("project");
    let dormant = user(&other, "dormant", false, false);
    store.insert_user(&dormant).await.expect("user");

    let now = tagd::core::model::now_unix();
    let tokens = [
        TokenRecord {
            token_hash: "a".repeat(64),
            user_id: admin.id.clone(),
            domain_id: domain.id.clone(),
            scope: Scope::Domain,
            methods: vec!["password".into()],
            issued_at: now,
            expires_at: now + 3600,
            revoked: false,
        },
        TokenRecord {
            token_hash: "b".repeat(64),
            user_id: admin.id.clone(),
            domain_id: domain.id.clone(),
            scope: Scope::Project {
                id: project.id.clone(),
            },
            methods: vec!["password".into(), "token".into()],
            issued_at: now - 10,
            expires_at: now + 60,
            revoked: true,
        },
    ];
    for token in &tokens {
        store.insert_token(token).await.expect("token");
    }

    let keys = [
        AccessKey {
            access: "AKPERMANENT0000000001".into(),
            user_id: admin.id.clone(),
            // Every byte value, as a sealed secret may hold any.
            sealed_secret: (0..=255).collect(),
            status: KeyStatus::Active,
            description: "ci".into(),
            created_at: now,
            temporary: None,
        },
        AccessKey {
            access: "AKTEMPORARY000000002".into(),
            user_id: admin.id.clone(),
            sealed_secret: vec![0, 1, 2, 0xff, 0],
            status: KeyStatus::Inactive,
            description: String::new(),
            created_at: now,
            temporary: Some(Temporary {
                security_token_hash: "c".repeat(64),
                expires_at: now + 900,
                scope: Scope::Project {
                    id: project.id.clone(),
                },
                source_token_hash: Some("a".repeat(64)),
                source_access: Some("AKPERMANENT0000000001".into()),
            }),
        },
    ];
    for key in &keys {
        assert!(store.insert_access_key(key, 2).await.expect("access key"));
    }
    store
        .claim_setting("server_key_fingerprint", "fp-0123456789abcdef")
        .await
        .expect("setting");

    let mut inventory: Vec<Resource> = (0..resources)
        .map(|i| Resource {
            at: ResourceRef {
                domain_id: domain.id.clone(),
                project_id: project.id.clone(),
                resource_type: "disk".into(),
                resource_id: format!("disk-{i:05}"),
            },
            name: format!("volume {i}"),
        })
        .collect();
    inventory.push(Resource {
        at: ResourceRef {
            domain_id: domain.id.clone(),
            project_id: String::new(),
            resource_type: "cdn".into(),
            resource_id: "cdn-global".into(),
        },
        name: "edge 标签".into(),
    });
    store
        .register_resources(&inventory)
        .await
        .expect("register resources");
    let items = inventory
        .iter()
        .enumerate()
        .map(|(i, r)| BatchItem {
            target: BatchTarget {
                at: r.at.clone(),
                tag_limit: 20,
            },
            change: TagChange::Set(vec![
                tag("env", if i % 2 == 0 { "prod" } else { "dev" }),
                tag("owner", &format!("u{i}")),
                tag("标签", ""),
            ]),
            sys_change: (i == 0)
                .then(|| TagChange::Set(vec![tag("_sys_enterprise_project_id", "0")])),
        })
        .collect();
    store
        .apply_tags(TagBatch {
            items,
            mode: BatchMode::PerResource,
            auto_register: false,
        })
        .await
        .expect("apply tags");
    assert!(store
        .add_predefined_tags(
            &domain.id,
            &[("env".into(), "prod".into()), ("env".into(), "dev".into())],
            500,
        )
        .await
        .expect("predefined tags"));

    Deployment {
        domain,
        project,
        token_hashes: tokens.iter().map(|t| t.token_hash.clone()).collect(),
        access_keys: keys.iter().map(|k| k.access.clone()).collect(),
    }
}

type TokenSnapshot = (TokenRecord, Option<User>, Option<Domain>, Option<Project>);
type KeySnapshot = (AccessKey, Option<User>, Option<Domain>, Option<Project>);
/// A resource with its tags and its system tags.
type ResourceSnapshot = (Resource, Option<Vec<Tag>>, Option<Vec<Tag>>);

/// Everything a store answers about a deployment, through the public API.
#[derive(Debug, PartialEq)]
struct Snapshot {
    domains: Vec<Domain>,
    projects: Vec<Project>,
    users: Vec<User>,
    tokens: Vec<Option<TokenSnapshot>>,
    access_keys: Vec<Option<KeySnapshot>>,
    resources: Vec<ResourceSnapshot>,
    predefined: Vec<Vec<PredefinedTag>>,
    fingerprint: Option<String>,
}

async fn snapshot(store: &dyn Store, deployment: &Deployment) -> Snapshot {
    let mut domains = store.list_domains().await.expect("domains");
    domains.sort_by(|a, b| a.id.cmp(&b.id));
    let mut projects = store.list_projects(None).await.expect("projects");
    projects.sort_by(|a, b| a.id.cmp(&b.id));
    let mut users = Vec::new();
    let mut predefined = Vec::new();
    for d in &domains {
        users.extend(store.list_users(&d.id).await.expect("users"));
        predefined.push(store.predefined_tags(&d.id).await.expect("predefined"));
    }
    let mut tokens = Vec::new();
    for hash in &deployment.token_hashes {
        let context = store.token_context(hash).await.expect("token context");
        tokens.push(context.map(|c| (c.token, c.user, c.domain, c.project)));
    }
    let mut access_keys = Vec::new();
    for access in &deployment.access_keys {
        let context = store.access_key_context(access).await.expect("key context");
        access_keys.push(context.map(|c| (c.key, c.user, c.domain, c.project)));
    }
    let mut listed = store
        .list_resources(&ResourceFilter::default())
        .await
        .expect("resources");
    listed.sort_by(|a, b| a.at.cmp(&b.at));
    let mut resources = Vec::new();
    for r in listed {
        let tags = store.resource_tags(&r.at).await.expect("tags");
        let sys = store.resource_sys_tags(&r.at).await.expect("sys tags");
        resources.push((r, tags, sys));
    }
    Snapshot {
        domains,
        projects,
        users,
        tokens,
        access_keys,
        resources,
        predefined,
        fingerprint: store
            .setting("server_key_fingerprint")
            .await
            .expect("setting"),
    }
}

/// Registers a resource the source never had; the store must give it a fresh row id.
async fn register_fresh(store: &dyn Store, deployment: &Deployment, id: &str) {
    let fresh = Resource {
        at: ResourceRef {
            domain_id: deployment.domain.id.clone(),
            project_id: deployment.project.id.clone(),
            resource_type: "disk".into(),
            resource_id: id.into(),
        },
        name: String::new(),
    };
    let created = store
        .register_resources(std::slice::from_ref(&fresh))
        .await
        .unwrap_or_else(|e| panic!("registering {id} after the copy: {e}"));
    assert_eq!(created, 1);
    assert_eq!(
        store.resource_tags(&fresh.at).await.expect("tags"),
        Some(vec![]),
        "the fresh resource took over another's row id and its tags"
    );
}

/// A SQLite source in a temporary directory, filled by `populate`.
async fn sqlite_source(dir: &Path, resources: usize) -> (String, Deployment) {
    let url = sqlite_url(&dir.join("source.db"));
    let store = open(&url).await;
    let deployment = populate(&*store, resources).await;
    (url, deployment)
}

// ---------------------------------------------------------------------------------------
// Tests

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_to_postgres_copies_the_whole_deployment() {
    let db = ThrowawayDatabase::create().await;
    let dir = tempfile::tempdir().expect("temporary directory");
    let (from, deployment) = sqlite_source(dir.path(), 30).await;

    let summary = assert_copied(&copy_store(&from, &db.url, false));
    for (table, rows) in [
        ("domains", 2),
        ("projects", 2),
        ("users", 2),
        ("tokens", 2),
        ("access_keys", 2),
        ("settings", 2), // the fingerprint and SQLite's write sequence
        ("resources", 31),
        ("tags", 93),
        ("sys_tags", 1),
        ("predefined_tags", 2),
    ] {
        assert_eq!(printed_rows(&summary, table), rows, "{table}\n{summary}");
    }

    let source = open(&from).await;
    let target = open(&db.url).await;
    let expected = snapshot(&*source, &deployment).await;
    assert!(expected.access_keys.iter().all(Option::is_some));
    assert!(expected.tokens.iter().all(Option::is_some));
    assert_eq!(snapshot(&*target, &deployment).await, expected);
    register_fresh(&*target, &deployment, "disk-after-copy").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_target_with_data_is_refused_without_force_and_replaced_with_it() {
    let db = ThrowawayDatabase::create().await;
    let dir = tempfile::tempdir().expect("temporary directory");
    let (from, deployment) = sqlite_source(dir.path(), 5).await;
    assert_copied(&copy_store(&from, &db.url, false));
    let target = open(&db.url).await;
    let first = snapshot(&*target, &deployment).await;

    // The source moves on; copying again must not silently merge or overwrite.
    let source = open(&from).await;
    register_fresh(&*source, &deployment, "disk-later").await;
    let refused = copy_store(&from, &db.url, false);
    assert!(!refused.status.success(), "{}", stdout(&refused));
    assert!(stderr(&refused).contains("--force"), "{}", stderr(&refused));
    assert_eq!(snapshot(&*target, &deployment).await, first);

    // Rows the source does not have disappear with --force.
    register_fresh(&*target, &deployment, "disk-only-in-the-target").await;
    let summary = assert_copied(&copy_store(&from, &db.url, true));
    assert_eq!(printed_rows(&summary, "resources"), 7);
    assert_eq!(
        snapshot(&*target, &deployment).await,
        snapshot(&*source, &deployment).await
    );
    register_fresh(&*target, &deployment, "disk-after-the-second-copy").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_copy_that_fails_halfway_leaves_the_target_as_it_was() {
    let db = ThrowawayDatabase::create().await;
    let dir = tempfile::tempdir().expect("temporary directory");
    let (from, deployment) = sqlite_source(dir.path(), 4).await;
    let sqlite_target = sqlite_url(&dir.path().join("target.db"));
    for to in [&db.url, &sqlite_target] {
        assert_copied(&copy_store(&from, to, false));
    }
    let targets = [open(&db.url).await, open(&sqlite_target).await];
    let mut before = Vec::new();
    for target in &targets {
        before.push(snapshot(&**target, &deployment).await);
    }

    // A source the target's foreign keys refuse (a tag of no resource, written past
    // SQLite's foreign keys), and one more resource to tell a partial copy by.
    let source = open(&from).await;
    register_fresh(&*source, &deployment, "disk-new").await;
    rusqlite::Connection::open(dir.path().join("source.db"))
        .expect("open the source")
        .execute_batch(
            "PRAGMA foreign_keys = OFF;
             INSERT INTO tags (rid, key, value) VALUES (999999, 'orphan', 'x');",
        )
        .expect("an orphan tag");
    for (to, (target, before)) in [&db.url, &sqlite_target]
        .into_iter()
        .zip(targets.iter().zip(&before))
    {
        let failed = copy_store(&from, to, true);
        assert!(!failed.status.success(), "{}", stdout(&failed));
        assert!(
            stderr(&failed).contains("FOREIGN KEY") || stderr(&failed).contains("foreign key"),
            "{}",
            stderr(&failed)
        );
        assert_eq!(&snapshot(&**target, &deployment).await, before, "{to}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_to_sqlite_round_trip_keeps_everything() {
    let db = ThrowawayDatabase::create().await;
    let dir = tempfile::tempdir().expect("temporary directory");
    let (from, deployment) = sqlite_source(dir.path(), 12).await;
    assert_copied(&copy_store(&from, &db.url, false));
    let back = sqlite_url(&dir.path().join("back.db"));
    let summary = assert_copied(&copy_store(&db.url, &back, false));
    assert_eq!(printed_rows(&summary, "tags"), 39);

    let source = open(&from).await;
    let returned = open(&back).await;
    assert_eq!(
        snapshot(&*returned, &deployment).await,
        snapshot(&*source, &deployment).await
    );
    register_fresh(&*returned, &deployment, "disk-back-home").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_to_postgres_copies_between_schemas_of_one_database() {
    let (first, second) = (
        ThrowawayDatabase::create().await,
        ThrowawayDatabase::create().await,
    );
    let dir = tempfile::tempdir().expect("temporary directory");
    let (from, deployment) = sqlite_source(dir.path(), 6).await;
    assert_copied(&copy_store(&from, &first.url, false));
    let summary = assert_copied(&copy_store(&first.url, &second.url, false));
    assert_eq!(printed_rows(&summary, "tags"), 21);

    let source = open(&from).await;
    let target = open(&second.url).await;
    assert_eq!(
        snapshot(&*target, &deployment).await,
        snapshot(&*source, &deployment).await
    );
    register_fresh(&*target, &deployment, "disk-after-copy").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_to_sqlite_copies_the_whole_deployment() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let (from, deployment) = sqlite_source(dir.path(), 8).await;
    let to = sqlite_url(&dir.path().join("copy.db"));
    let summary = assert_copied(&copy_store(&from, &to, false));
    assert_eq!(printed_rows(&summary, "resources"), 9);

    let source = open(&from).await;
    let target = open(&to).await;
    assert_eq!(
        snapshot(&*target, &deployment).await,
        snapshot(&*source, &deployment).await
    );
    register_fresh(&*target, &deployment, "disk-after-copy").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_store_is_never_copied_onto_itself() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let (from, deployment) = sqlite_source(dir.path(), 3).await;
    let before = snapshot(&*open(&from).await, &deployment).await;
    // The same file under another spelling of its path.
    let again = sqlite_url(&dir.path().join(".").join("source.db"));
    let refused = copy_store(&from, &again, true);
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("the same database"),
        "{}",
        stderr(&refused)
    );
    assert_eq!(snapshot(&*open(&from).await, &deployment).await, before);
}

#[tokio::test(flavor = "multi_thread")]
async fn twenty_thousand_tags_cross_in_chunks() {
    let db = ThrowawayDatabase::create().await;
    let dir = tempfile::tempdir().expect("temporary directory");
    let from = sqlite_url(&dir.path().join("bulk.db"));
    let source = open(&from).await;
    let deployment = populate(&*source, 0).await;
    // 4,000 resources with five tags each: several chunks per table.
    tagd::datagen::generate(
        source.clone(),
        &deployment.domain.id,
        &deployment.project.id,
        "disk",
        4_000,
        7,
        2_000,
        |_| {},
    )
    .await
    .expect("generate");

    let summary = assert_copied(&copy_store(&from, &db.url, false));
    assert_eq!(printed_rows(&summary, "resources"), 4_001);
    assert_eq!(printed_rows(&summary, "tags"), 20_003);

    let target = open(&db.url).await;
    let scope = TagScope {
        domain_id: deployment.domain.id.clone(),
        projects: vec![deployment.project.id.clone()],
        resource_types: vec![],
    };
    let keys: Vec<KeyValues> = source.key_values(&scope).await.expect("source");
    assert_eq!(target.key_values(&scope).await.expect("target"), keys);
    // PostgreSQL lists keys by the domain each tag row carries, which SQLite leaves
    // empty: the copy fills it (D85).
    let listed = source
        .tag_keys(&scope, None, 100_000)
        .await
        .expect("source");
    assert!(!listed.is_empty());
    assert_eq!(
        target
            .tag_keys(&scope, None, 100_000)
            .await
            .expect("target"),
        listed
    );
    for i in (0..4_000).step_by(397) {
        let at = ResourceRef {
            domain_id: deployment.domain.id.clone(),
            project_id: deployment.project.id.clone(),
            resource_type: "disk".into(),
            resource_id: format!("disk-{i:07}"),
        };
        assert_eq!(
            target.resource_tags(&at).await.expect("target tags"),
            source.resource_tags(&at).await.expect("source tags"),
        );
    }
    register_fresh(&*target, &deployment, "disk-after-bulk").await;
}

/// PostgreSQL's row ids are BIGINT, the SQLite store's tag index holds 32 bits: before
/// D83 a copy kept a larger id, which the index then cut down to another resource's
/// (another tenant's, maybe). Now such a copy into SQLite is refused, naming the id and
/// what to do, and the target is left empty.
#[tokio::test(flavor = "multi_thread")]
async fn a_row_id_beyond_32_bits_is_not_copied_into_sqlite() {
    let db = ThrowawayDatabase::create().await;
    let dir = tempfile::tempdir().expect("temporary directory");
    let (from, deployment) = sqlite_source(dir.path(), 3).await;
    assert_copied(&copy_store(&from, &db.url, false));
    let (client, connection) = db
        .config()
        .connect(tokio_postgres::NoTls)
        .await
        .expect("connect to the test database");
    tokio::spawn(connection);
    client
        .batch_execute("ALTER TABLE resources ALTER COLUMN rid RESTART WITH 4294967297")
        .await
        .expect("move the identity past 2^32");
    register_fresh(&*open(&db.url).await, &deployment, "disk-far").await;

    let to = sqlite_url(&dir.path().join("target.db"));
    let refused = copy_store(&db.url, &to, false);
    assert!(!refused.status.success(), "{}", stdout(&refused));
    let err = stderr(&refused);
    assert!(
        err.contains("row id 4294967297") && err.contains("nothing was committed"),
        "{err}"
    );
    let target = open(&to).await;
    assert!(target
        .list_resources(&ResourceFilter::default())
        .await
        .expect("list")
        .is_empty());
}
