//! Filter evaluation over 100,000 resources x 5 tags (`tagd::datagen`'s data, as
//! `tagd admin generate` writes it), through the SQLite store's query methods.
//!
//! Exact counts are what make tag queries slow in plain SQL, so the store answers them
//! from an in-memory tag index (compressed bitmaps) whenever the index matches its
//! snapshot. The index is private to the store; these calls are the ones the dialects
//! make, so each includes the read transaction that checks the index is current. Cases
//! from W4: a two-key filter with its first 100 and the exact total, the same as a
//! count, `without_any_tag`, and first pages of tag keys and of one key's values.
//!
//! Run with `cargo bench --bench filter`.

#[path = "shared/sqlite_store.rs"]
mod sqlite_store;

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use tokio::runtime::Runtime;

use tagd::core::model::{Resource, ResourceRef};
use tagd::core::query::{ResourceQuery, TagMatch, TagScope};
use tagd::store::Store;

use sqlite_store::{DOMAIN, PROJECT};

const TYPE: &str = "disk";
const TAGGED: usize = 100_000;
/// Resources registered without tags, for `without_any_tag` to find.
const UNTAGGED: usize = 1_000;

fn matching(key: &str, value: &str) -> TagMatch {
    TagMatch {
        key: key.to_owned(),
        values: vec![value.to_owned()],
    }
}

fn in_project() -> ResourceQuery {
    ResourceQuery {
        domain_id: DOMAIN.to_owned(),
        projects: vec![PROJECT.to_owned()],
        resource_types: vec![TYPE.to_owned()],
        ..ResourceQuery::default()
    }
}

/// The generated data, and the tag index built (a query asks for it; the writer builds
/// it before the next write, the untagged resources, returns).
async fn setup(path: &std::path::Path) -> Arc<dyn Store> {
    let store = sqlite_store::open_with_project(path).await;
    tagd::datagen::generate(
        store.clone(),
        DOMAIN,
        PROJECT,
        TYPE,
        TAGGED,
        1,
        5_000,
        |_| {},
    )
    .await
    .expect("generate");
    store
        .count_resources(&in_project())
        .await
        .expect("count_resources");
    let untagged: Vec<Resource> = (0..UNTAGGED)
        .map(|i| Resource {
            at: ResourceRef {
                domain_id: DOMAIN.to_owned(),
                project_id: PROJECT.to_owned(),
                resource_type: TYPE.to_owned(),
                resource_id: format!("untagged-{i:05}"),
            },
            name: format!("spare {i}"),
        })
        .collect();
    store
        .register_resources(&untagged)
        .await
        .expect("register_resources");
    store
}

fn filters(c: &mut Criterion) {
    let rt = Runtime::new().expect("tokio runtime");
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = rt.block_on(setup(&dir.path().join("tagd.db")));

    let two_keys = ResourceQuery {
        all: vec![matching("env", "prod"), matching("team", "t3")],
        ..in_project()
    };
    let without_any_tag = ResourceQuery {
        without_any_tag: true,
        ..in_project()
    };
    let scope = TagScope {
        domain_id: DOMAIN.to_owned(),
        projects: vec![PROJECT.to_owned()],
        resource_types: vec![TYPE.to_owned()],
    };

    // Each once, checked against what the generator makes: env=prod on about a
    // quarter and team=t3 on a tenth, so about 2,500 of both.
    rt.block_on(async {
        let page = store
            .find_resources(&two_keys, 0, 100)
            .await
            .expect("find_resources");
        assert!(
            (1_500..3_500).contains(&page.total_count),
            "{} match env=prod and team=t3",
            page.total_count
        );
        assert_eq!(page.resources.len(), 100);
        let count = store.count_resources(&two_keys).await.expect("count");
        assert_eq!(count, page.total_count);
        let untagged = store
            .find_resources(&without_any_tag, 0, 100)
            .await
            .expect("find_resources");
        assert_eq!(untagged.total_count, UNTAGGED as u64);
        assert_eq!(untagged.resources.len(), 100);
        let keys = store.tag_keys(&scope, None, 100).await.expect("tag_keys");
        assert_eq!(keys.len(), 100);
        assert!(keys.iter().any(|k| k == "env"));
        let owners = store
            .tag_values(&scope, "owner", None, 100)
            .await
            .expect("tag_values");
        assert_eq!(owners.len(), 100);
    });

    let mut g = c.benchmark_group("filter");
    g.sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    let store = &store;
    let (two_keys, without_any_tag, scope) = (&two_keys, &without_any_tag, &scope);
    g.bench_function("two_keys_first_100_and_total", |b| {
        b.to_async(&rt)
            .iter(|| async move { black_box(store.find_resources(two_keys, 0, 100).await) })
    });
    g.bench_function("two_keys_count", |b| {
        b.to_async(&rt)
            .iter(|| async move { black_box(store.count_resources(two_keys).await) })
    });
    g.bench_function("without_any_tag_first_100_and_total", |b| {
        b.to_async(&rt)
            .iter(|| async move { black_box(store.find_resources(without_any_tag, 0, 100).await) })
    });
    g.bench_function("tag_keys_first_100", |b| {
        b.to_async(&rt)
            .iter(|| async move { black_box(store.tag_keys(scope, None, 100).await) })
    });
    g.bench_function("tag_values_owner_first_100", |b| {
        b.to_async(&rt)
            .iter(|| async move { black_box(store.tag_values(scope, "owner", None, 100).await) })
    });
    g.finish();
}

criterion_group!(benches, filters);
criterion_main!(benches);
