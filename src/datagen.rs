//! Reproducible synthetic data for benchmarks: resources with a realistic skew of tags
//! (a few keys on every resource, many rare keys), written straight through the store.
//!
//! The same seed always yields the same data, so figures from different runs compare.

use std::sync::Arc;

use crate::core::model::{Resource, ResourceRef};
use crate::core::port::{Store, StoreError};
use crate::core::tagging::{BatchItem, BatchMode, BatchTarget, TagBatch, TagChange};
use crate::core::tags::{Tag, TagKey, TagValue};

/// A small, fast, deterministic generator (64-bit LCG, high bits out).
pub struct Lcg(u64);

impl Lcg {
    pub fn new(seed: u64) -> Self {
        Self(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    pub fn next_u32(&mut self) -> u32 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) as u32
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: u32) -> u32 {
        ((self.next_u32() as u64 * n as u64) >> 31) as u32
    }
}

/// The five tags of resource number `i`: `env` (prod on a quarter), `team` (10
/// values), `owner` (1,000 values), `cost-center` (100 values), and one of 10,000 rare
/// keys, chosen with a strong skew towards the first ones.
pub fn tags_of(rng: &mut Lcg) -> Vec<(String, String)> {
    const ENVS: [&str; 4] = ["prod", "dev", "test", "staging"];
    let rare = {
        let r = rng.below(1_000_000) as f64 / 1_000_000.0;
        (r * r * r * 10_000.0) as u32
    };
    vec![
        ("env".into(), ENVS[rng.below(4) as usize].into()),
        ("team".into(), format!("t{}", rng.below(10))),
        ("owner".into(), format!("u{}", rng.below(1000))),
        ("cost-center".into(), format!("cc{}", rng.below(100))),
        (format!("k{rare}"), format!("v{}", rng.below(10))),
    ]
}

/// Registers `count` resources `{type}-0000000...` of `resource_type` in `project_id`
/// and tags them, `batch` resources per transaction; calls `progress` with the number
/// done so far.
#[allow(clippy::too_many_arguments)]
pub async fn generate(
    store: Arc<dyn Store>,
    domain_id: &str,
    project_id: &str,
    resource_type: &str,
    count: usize,
    seed: u64,
    batch: usize,
    mut progress: impl FnMut(usize),
) -> Result<(), StoreError> {
    let mut rng = Lcg::new(seed);
    let mut done = 0;
    while done < count {
        let n = batch.min(count - done);
        let resources: Vec<(Resource, Vec<(String, String)>)> = (done..done + n)
            .map(|i| {
                let resource = Resource {
                    at: ResourceRef {
                        domain_id: domain_id.to_owned(),
                        project_id: project_id.to_owned(),
                        resource_type: resource_type.to_owned(),
                        resource_id: format!("{resource_type}-{i:07}"),
                    },
                    name: format!("volume {i}"),
                };
                (resource, tags_of(&mut rng))
            })
            .collect();
        load(store.as_ref(), resources).await?;
        done += n;
        progress(done);
    }
    Ok(())
}

/// Registers resources and sets each one's tags, in one transaction for the lot: the
/// bulk load under [`generate`], and of tests that need a large store fast. Tags are
/// taken as they are, unchecked (a benchmark or a test chooses them).
pub async fn load(
    store: &dyn Store,
    resources: Vec<(Resource, Vec<(String, String)>)>,
) -> Result<(), StoreError> {
    let registered: Vec<Resource> = resources.iter().map(|(r, _)| r.clone()).collect();
    store.register_resources(&registered).await?;
    let items = resources
        .into_iter()
        .map(|(resource, tags)| BatchItem {
            target: BatchTarget {
                at: resource.at,
                tag_limit: tags.len().max(1),
            },
            change: TagChange::Set(
                tags.into_iter()
                    .map(|(k, v)| Tag {
                        key: TagKey::from_stored(k),
                        value: TagValue::from_stored(v),
                    })
                    .collect(),
            ),
            sys_change: None,
        })
        .collect();
    store
        .apply_tags(TagBatch {
            items,
            mode: BatchMode::PerResource,
            auto_register: false,
        })
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_tags() {
        let a: Vec<_> = (0..50)
            .map({
                let mut r = Lcg::new(7);
                move |_| tags_of(&mut r)
            })
            .collect();
        let b: Vec<_> = (0..50)
            .map({
                let mut r = Lcg::new(7);
                move |_| tags_of(&mut r)
            })
            .collect();
        assert_eq!(a, b);
        assert!(a.iter().all(|t| t.len() == 5));
        let prod = {
            let mut r = Lcg::new(1);
            (0..10_000)
                .filter(|_| tags_of(&mut r)[0].1 == "prod")
                .count()
        };
        assert!(
            (2_000..3_000).contains(&prod),
            "about a quarter is prod: {prod}"
        );
    }
}
