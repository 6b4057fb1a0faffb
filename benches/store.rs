//! Tag upserts against the real SQLite store, in a temporary directory.
//!
//! Storage, not HTTP, bounds tagd's writes, so this is where a write's cost is decided:
//! one `apply_tags` call is one savepoint in the writer's group transaction, and it
//! returns only once the group is durable (WAL, `synchronous=FULL`). Each iteration
//! therefore includes an fsync, and the figures say as much about the disk as about
//! tagd. The cases: the W1 batch (50 resources x 10 tags, as TMS batch-create sends it),
//! one tag on one resource (W2's `tags/action`), and 16 W1 batches at once, which group
//! commit folds into few transactions. The tag index is built first, as a running server
//! has it after its first query, so the writes also keep it in step.
//!
//! Run with `cargo bench --bench store`.

#[path = "shared/sqlite_store.rs"]
mod sqlite_store;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, SamplingMode, Throughput};
use tokio::runtime::Runtime;

use tagd::core::model::{Resource, ResourceRef};
use tagd::core::query::ResourceQuery;
use tagd::core::tagging::{BatchMode, BatchTarget, ItemOutcome, TagBatch, TagChange, UniformBatch};
use tagd::core::tags::Tag;
use tagd::store::Store;

use sqlite_store::{DOMAIN, PROJECT};

/// Resources registered up front; the W1 batches walk through them 50 at a time.
const RESOURCES: usize = 10_000;
const BATCH: usize = 50;

fn at(i: usize) -> ResourceRef {
    ResourceRef {
        domain_id: DOMAIN.to_owned(),
        project_id: PROJECT.to_owned(),
        resource_type: "disk".to_owned(),
        resource_id: format!("disk-{i:07}"),
    }
}

/// Validated tags, built the way a dialect builds them (through its rules).
fn tags(n: usize, round: u64) -> Vec<Tag> {
    let raw: Vec<(String, String)> = (0..n)
        .map(|k| (format!("key-{k}"), format!("value-{round}")))
        .collect();
    tagd::api::tms::RULES
        .tags(raw.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .expect("valid tags")
}

/// The W1 batch on the `round`th window of 50 resources, with values new to that round.
fn w1_batch(round: u64) -> TagBatch {
    let first = (round as usize * BATCH) % RESOURCES;
    TagBatch::from(UniformBatch {
        targets: (first..first + BATCH)
            .map(|i| BatchTarget {
                at: at(i),
                tag_limit: 20,
            })
            .collect(),
        change: TagChange::Set(tags(10, round)),
        sys_change: None,
        mode: BatchMode::PerResource,
        auto_register: false,
    })
}

/// One tag on one resource, all or nothing, as `tags/action` sends it.
fn one_tag(round: u64) -> TagBatch {
    TagBatch::from(UniformBatch {
        targets: vec![BatchTarget {
            at: at(round as usize % RESOURCES),
            tag_limit: 20,
        }],
        change: TagChange::Set(tags(1, round)),
        sys_change: None,
        mode: BatchMode::AllOrNothing {
            skip_unknown: false,
        },
        auto_register: false,
    })
}

async fn apply(store: &dyn Store, batch: TagBatch) -> Vec<ItemOutcome> {
    store.apply_tags(batch).await.expect("apply_tags")
}

/// A store with the bench domain, project and resources, and its tag index built.
async fn setup(path: &std::path::Path) -> Arc<dyn Store> {
    let store = sqlite_store::open_with_project(path).await;
    // A query asks the writer for the index; it is built before the next write returns.
    store
        .count_resources(&ResourceQuery {
            domain_id: DOMAIN.to_owned(),
            ..ResourceQuery::default()
        })
        .await
        .expect("count_resources");
    let resources: Vec<Resource> = (0..RESOURCES)
        .map(|i| Resource {
            at: at(i),
            name: format!("volume {i}"),
        })
        .collect();
    let new = store
        .register_resources(&resources)
        .await
        .expect("register_resources");
    assert_eq!(new, RESOURCES);
    store
}

fn upserts(c: &mut Criterion) {
    let rt = Runtime::new().expect("tokio runtime");
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = rt.block_on(setup(&dir.path().join("tagd.db")));

    // Once each, checked: every resource applied, the tags read back.
    let round = AtomicU64::new(0);
    let next = || round.fetch_add(1, Ordering::Relaxed);
    rt.block_on(async {
        let outcomes = apply(&*store, w1_batch(next())).await;
        assert_eq!(outcomes, vec![ItemOutcome::Applied; BATCH]);
        let read = store.resource_tags(&at(0)).await.expect("resource_tags");
        assert_eq!(read.map(|t| t.len()), Some(10));
        let outcomes = apply(&*store, one_tag(next())).await;
        assert_eq!(outcomes, vec![ItemOutcome::Applied]);
    });

    // Flat sampling and few samples: an fsync costs from a fraction of a millisecond to
    // several on a busy disk, and linear sampling would stretch the run far past its
    // measurement time when the warm-up happened to be quick.
    let mut g = c.benchmark_group("store");
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));

    g.throughput(Throughput::Elements((BATCH * 10) as u64));
    g.bench_function("apply_tags_50x10", |b| {
        b.to_async(&rt).iter_batched(
            || w1_batch(next()),
            |batch| {
                let store = store.clone();
                async move { apply(&*store, batch).await }
            },
            BatchSize::SmallInput,
        )
    });

    g.throughput(Throughput::Elements(1));
    g.bench_function("apply_tags_one_tag", |b| {
        b.to_async(&rt).iter_batched(
            || one_tag(next()),
            |batch| {
                let store = store.clone();
                async move { apply(&*store, batch).await }
            },
            BatchSize::SmallInput,
        )
    });

    // 16 clients' W1 batches in flight together, as W1's 16 connections send them.
    g.throughput(Throughput::Elements((16 * BATCH * 10) as u64));
    g.bench_function("apply_tags_50x10_16_concurrent", |b| {
        b.to_async(&rt).iter_batched(
            || (0..16).map(|_| w1_batch(next())).collect::<Vec<_>>(),
            |batches| {
                let store = store.clone();
                async move {
                    let tasks: Vec<_> = batches
                        .into_iter()
                        .map(|batch| {
                            let store = store.clone();
                            tokio::spawn(async move { apply(&*store, batch).await })
                        })
                        .collect();
                    for task in tasks {
                        task.await.expect("the write task");
                    }
                }
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(benches, upserts);
criterion_main!(benches);
