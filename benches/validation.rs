//! Parsing and validating one typical request body per API dialect, into the batch the
//! store applies.
//!
//! Every tag write pays this before it reaches the store, so it should stay a small
//! fraction of a request. Each case parses with `tagd::api::parse_json` (what the
//! `JsonBody` extractor runs), checks the tags with the dialect's `RULES` and places each
//! resource with `known_type`, `validate_resource_id` and `locate`, as the handlers do.
//! Authorisation reads the store and is left out. The `rules` group isolates the
//! character checks, ASCII against other scripts.
//!
//! Run with `cargo bench --bench validation`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use serde::Deserialize;

use tagd::api::single_tag::TaggedResource;
use tagd::api::{dis, fabric, parse_json, rds, tms, workspace, WireTag};
use tagd::core::admin::validate_resource_id;
use tagd::core::providers::{DIS_STREAM, FABRIC_WORKSPACE, RDS_INSTANCE, WORKSPACE_DESKTOP};
use tagd::core::tagging::{
    known_type, locate, BatchItem, BatchMode, TagBatch, TagChange, UniformBatch,
};
use tagd::core::CoreError;

const DOMAIN: &str = "0a1b2c3d4e5f60718293a4b5c6d7e8f9";
const PROJECT: &str = "0123456789abcdef0123456789abcdef";

// The dialects' body types are private to their modules; these mirror them field for
// field (same names, types and serde attributes), so serde does the same work. Keep
// them in step with src/api/{tms,workspace,fabric,single_tag}.rs.

/// `tms::BatchBody<CreateTagBody>`.
#[derive(Deserialize)]
struct TmsBatchBody {
    #[serde(default)]
    project_id: Option<String>,
    resources: Vec<TmsResourceBody>,
    tags: Vec<TmsCreateTagBody>,
}

/// `tms::ResourceBody`.
#[derive(Deserialize)]
struct TmsResourceBody {
    resource_id: String,
    resource_type: String,
}

/// `tms::CreateTagBody`.
#[derive(Deserialize)]
struct TmsCreateTagBody {
    key: String,
    value: String,
}

/// `workspace::BatchBody`.
#[derive(Deserialize)]
struct WorkspaceBatchBody {
    desktops: Vec<DesktopTags>,
}

/// `workspace::DesktopTags`.
#[derive(Deserialize)]
struct DesktopTags {
    desktop_id: String,
    tags: Vec<WireTag>,
}

/// `fabric::TagsBody`.
#[derive(Deserialize)]
struct FabricTagsBody {
    #[serde(default)]
    tags: Option<Vec<WireTag>>,
    #[serde(default)]
    #[allow(dead_code)]
    sys_tags: Option<Vec<WireTag>>,
}

/// `single_tag::ActionBody` (RDS and DIS `tags/action`).
#[derive(Deserialize)]
struct ActionBody {
    action: String,
    tags: Vec<WireTag>,
}

/// One resource of a per-service API, placed in the caller's project
/// (`ProjectCaller::target`).
fn target(
    resource_type: &str,
    field: &str,
    id: &str,
    change: TagChange,
) -> Result<BatchItem, CoreError> {
    validate_resource_id(field, id)?;
    Ok(BatchItem {
        target: locate(
            DOMAIN,
            Some(PROJECT),
            known_type("resource_type", resource_type)?,
            id,
        )?,
        change,
        sys_change: None,
    })
}

/// `POST /v1.0/resource-tags/batch-create`: the tags once, every resource placed.
fn tms_batch_create(body: &[u8]) -> Result<TagBatch, CoreError> {
    let body: TmsBatchBody = parse_json(body)?;
    let tags = tms::RULES.tags(body.tags.iter().map(|t| (t.key.as_str(), t.value.as_str())))?;
    if body.resources.len() > tms::MAX_RESOURCES_PER_REQUEST {
        return Err(CoreError::TooMany {
            field: "resources",
            max: tms::MAX_RESOURCES_PER_REQUEST,
            got: body.resources.len(),
        });
    }
    let project = body.project_id.as_deref().filter(|p| !p.is_empty());
    let mut targets = Vec::with_capacity(body.resources.len());
    for (i, r) in body.resources.iter().enumerate() {
        let rt = known_type(&format!("resources[{i}].resource_type"), &r.resource_type)?;
        validate_resource_id(&format!("resources[{i}].resource_id"), &r.resource_id)?;
        targets.push(locate(DOMAIN, project, rt, &r.resource_id)?);
    }
    Ok(TagBatch::from(UniformBatch {
        targets,
        change: TagChange::Set(tags),
        sys_change: None,
        mode: BatchMode::PerResource,
        auto_register: false,
    }))
}

/// `POST /v2/{project_id}/desktops/batch-tags`: each desktop with its own tags.
fn workspace_batch_tags(body: &[u8]) -> Result<TagBatch, CoreError> {
    let body: WorkspaceBatchBody = parse_json(body)?;
    let mut items = Vec::with_capacity(body.desktops.len());
    for (i, d) in body.desktops.iter().enumerate() {
        let change = TagChange::Set(workspace::RULES.tags(d.tags.iter().map(WireTag::pair))?);
        items.push(target(
            WORKSPACE_DESKTOP,
            &format!("desktops[{i}].desktop_id"),
            &d.desktop_id,
            change,
        )?);
    }
    Ok(TagBatch {
        items,
        mode: BatchMode::AllOrNothing { skip_unknown: true },
        auto_register: false,
    })
}

/// `POST /v1/{project_id}/fabric-workspace/{workspace_id}/tags/create`.
fn fabric_tags_create(workspace_id: &str, body: &[u8]) -> Result<TagBatch, CoreError> {
    let body: FabricTagsBody = parse_json(body)?;
    let tags = body.tags.as_deref().unwrap_or_default();
    let change = TagChange::Set(fabric::RULES.tags(tags.iter().map(WireTag::pair))?);
    Ok(TagBatch {
        items: vec![target(
            FABRIC_WORKSPACE,
            "workspace_id",
            workspace_id,
            change,
        )?],
        mode: BatchMode::AllOrNothing {
            skip_unknown: false,
        },
        auto_register: false,
    })
}

/// `POST .../{id}/tags/action` with `create`, as `single_tag::action` runs it.
fn tags_action<S: TaggedResource>(id: &str, body: &[u8]) -> Result<TagBatch, CoreError> {
    let body: ActionBody = parse_json(body)?;
    assert_eq!(body.action, "create");
    let change = S::set_change(&body.tags)?;
    Ok(TagBatch {
        items: vec![target(S::RESOURCE_TYPE, S::ID_PARAM, id, change)?],
        mode: BatchMode::AllOrNothing {
            skip_unknown: false,
        },
        auto_register: false,
    })
}

fn tags_json(tags: &[(String, String)]) -> String {
    let tags: Vec<_> = tags
        .iter()
        .map(|(k, v)| serde_json::json!({ "key": k, "value": v }))
        .collect();
    serde_json::to_string(&tags).expect("tags serialise")
}

/// `n` tags as the SDKs send them: short ASCII keys and values.
fn ascii_tags(n: usize) -> Vec<(String, String)> {
    (0..n)
        .map(|i| (format!("key-{i}_name"), format!("value-{i}_v2")))
        .collect()
}

/// `n` tags in other scripts, near the length limits: CJK keys, mixed-script values.
fn unicode_tags(n: usize, cjk_only: bool) -> Vec<(String, String)> {
    (0..n)
        .map(|i| {
            let key = format!("部门{i}-研发中心_北京数据平台组");
            let value = if cjk_only {
                format!("生产环境{i}.主集群-华北区")
            } else {
                format!("Прод{i}-本番環境-שלום_ñandú")
            };
            (key, value)
        })
        .collect()
}

/// Asserts a batch holds `items` items, each setting `tags` tags.
fn check(batch: Result<TagBatch, CoreError>, items: usize, tags: usize) {
    let batch = batch.expect("the body validates");
    assert_eq!(batch.items.len(), items);
    for item in &batch.items {
        match &item.change {
            TagChange::Set(set) => assert_eq!(set.len(), tags),
            other => panic!("expected a set, got {other:?}"),
        }
    }
}

fn dialects(c: &mut Criterion) {
    let mut g = c.benchmark_group("validation");

    // TMS: 50 resources x 10 tags, the W1 request.
    let resources: Vec<_> = (0..50)
        .map(|i| serde_json::json!({ "resource_id": format!("disk-{i:07}"), "resource_type": "disk" }))
        .collect();
    let tms_body = format!(
        r#"{{"project_id":"{PROJECT}","resources":{},"tags":{}}}"#,
        serde_json::to_string(&resources).expect("resources serialise"),
        tags_json(&ascii_tags(10))
    );
    check(tms_batch_create(tms_body.as_bytes()), 50, 10);
    g.throughput(Throughput::Elements(500));
    g.bench_function("tms_batch_create_50x10", |b| {
        b.iter(|| tms_batch_create(black_box(tms_body.as_bytes())))
    });

    // Workspace: 50 desktops with 10 tags each.
    let desktops = |tags: &[(String, String)]| {
        let tags = tags_json(tags);
        let desktops: Vec<_> = (0..50)
            .map(|i| format!(r#"{{"desktop_id":"desktop-{i:04}","tags":{tags}}}"#))
            .collect();
        format!(r#"{{"desktops":[{}]}}"#, desktops.join(","))
    };
    let ws_body = desktops(&ascii_tags(10));
    check(workspace_batch_tags(ws_body.as_bytes()), 50, 10);
    g.throughput(Throughput::Elements(500));
    g.bench_function("workspace_batch_tags_50x10", |b| {
        b.iter(|| workspace_batch_tags(black_box(ws_body.as_bytes())))
    });

    // The same request in CJK and mixed scripts, near the length limits.
    let ws_unicode = desktops(&unicode_tags(10, false));
    check(workspace_batch_tags(ws_unicode.as_bytes()), 50, 10);
    g.bench_function("workspace_batch_tags_50x10_unicode", |b| {
        b.iter(|| workspace_batch_tags(black_box(ws_unicode.as_bytes())))
    });

    // One resource with 10 tags: Fabric, RDS and DIS.
    let one = |tags: &[(String, String)]| format!(r#"{{"tags":{}}}"#, tags_json(tags));
    let action =
        |tags: &[(String, String)]| format!(r#"{{"action":"create","tags":{}}}"#, tags_json(tags));
    let fabric_body = one(&ascii_tags(10));
    let workspace_id = "3f2a9c1e-5b7d-4e8f-9a0b-1c2d3e4f5a6b";
    check(
        fabric_tags_create(workspace_id, fabric_body.as_bytes()),
        1,
        10,
    );
    g.throughput(Throughput::Elements(10));
    g.bench_function("fabric_tags_create_10", |b| {
        b.iter(|| fabric_tags_create(workspace_id, black_box(fabric_body.as_bytes())))
    });

    let rds_body = action(&ascii_tags(10));
    let instance = "a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6in01";
    check(
        tags_action::<rds::Rds>(instance, rds_body.as_bytes()),
        1,
        10,
    );
    g.bench_function("rds_tags_action_10", |b| {
        b.iter(|| tags_action::<rds::Rds>(instance, black_box(rds_body.as_bytes())))
    });

    let dis_body = action(&ascii_tags(10));
    let stream = "stream-0000042";
    check(tags_action::<dis::Dis>(stream, dis_body.as_bytes()), 1, 10);
    g.bench_function("dis_tags_action_10", |b| {
        b.iter(|| tags_action::<dis::Dis>(stream, black_box(dis_body.as_bytes())))
    });

    // DIS admits only ASCII and CJK: its own character class, in CJK.
    let dis_cjk = action(&unicode_tags(10, true));
    check(tags_action::<dis::Dis>(stream, dis_cjk.as_bytes()), 1, 10);
    g.bench_function("dis_tags_action_10_cjk", |b| {
        b.iter(|| tags_action::<dis::Dis>(stream, black_box(dis_cjk.as_bytes())))
    });
    g.finish();

    // Sanity: the resource types the cases name are the ones the catalogue knows.
    for t in [
        WORKSPACE_DESKTOP,
        FABRIC_WORKSPACE,
        RDS_INSTANCE,
        DIS_STREAM,
    ] {
        known_type("resource_type", t).expect("a known type");
    }
}

/// The character rules alone, on 20 already-parsed tags (the most a per-service call
/// carries): ASCII against CJK and mixed scripts, which take `char::is_alphanumeric`'s
/// slower path.
fn rules(c: &mut Criterion) {
    let mut g = c.benchmark_group("rules");
    g.throughput(Throughput::Elements(20));
    for (name, tags) in [
        ("workspace_ascii_20", ascii_tags(20)),
        ("workspace_unicode_20", unicode_tags(20, false)),
    ] {
        let pairs = || tags.iter().map(|(k, v)| (k.as_str(), v.as_str()));
        assert_eq!(workspace::RULES.tags(pairs()).expect("valid").len(), 20);
        g.bench_function(name, |b| {
            b.iter(|| workspace::RULES.tags(black_box(pairs())))
        });
    }
    let cjk = unicode_tags(20, true);
    let pairs = || cjk.iter().map(|(k, v)| (k.as_str(), v.as_str()));
    assert_eq!(dis::RULES.tags(pairs()).expect("valid").len(), 20);
    g.bench_function("dis_cjk_20", |b| {
        b.iter(|| dis::RULES.tags(black_box(pairs())))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(50)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = dialects, rules
}
criterion_main!(benches);
