//! One tenant's data and load against another's (issue 16, item 3): a domain with a
//! great many distinct keys must not slow another domain's listings, and its heavy
//! listings must not take the connections another domain writes with. Latencies are
//! compared with a baseline measured in the same run, never with absolute times.

use std::time::{Duration, Instant};

use serde_json::json;
use tagd::core::model::{Resource, ResourceRef};
use tagd::core::tagging::{BatchItem, BatchMode, BatchTarget, TagBatch, TagChange};
use tagd::api::tms::RULES;
use tagd::core::tags::Tag;

use super::{Options, TestServer};

/// Resources of the large domain, each with this many keys of its own.
const LARGE_RESOURCES: usize = 8_000;
const KEYS_EACH: usize = 20;

/// Writes the large domain's resources and tags straight through a second store on the
/// server's database: 160,000 distinct keys, all sorting before the small domain's.
async fn fill_large_domain(s: &TestServer) {
    let store = tagd::store::open(&s.database_url(), Default::default())
        .await
        .expect("a second store on the server's database");
    // One global resource (project "") whose key sorts after all the others: a listing
    // of the global resources, what `region_id=nowhere` leaves a domain-scoped caller,
    // walks every key of the domain before it finds it.
    let global = ResourceRef {
        domain_id: s.creds.domain_id.clone(),
        project_id: String::new(),
        resource_type: "cdn".into(),
        resource_id: "global-1".into(),
    };
    store
        .register_resources(&[Resource {
            at: global.clone(),
            name: String::new(),
        }])
        .await
        .expect("register");
    store
        .apply_tags(TagBatch {
            items: vec![BatchItem {
                target: BatchTarget {
                    at: global,
                    tag_limit: 50,
                },
                change: TagChange::Set(vec![Tag {
                    key: RULES.key("zzz-global").expect("a key"),
                    value: RULES.value("", "v").expect("a value"),
                }]),
                sys_change: None,
            }],
            mode: BatchMode::PerResource,
            auto_register: false,
        })
        .await
        .expect("tags");
    for chunk in (0..LARGE_RESOURCES).collect::<Vec<_>>().chunks(1_000) {
        let resources = chunk
            .iter()
            .map(|i| {
                let id = format!("big-{i:06}");
                let tags = (0..KEYS_EACH)
                    .map(|k| (format!("a-{id}-{k:02}"), "v".to_owned()))
                    .collect();
                let at = ResourceRef {
                    domain_id: s.creds.domain_id.clone(),
                    project_id: s.creds.project_id.clone(),
                    resource_type: "disk".into(),
                    resource_id: id,
                };
                (
                    Resource {
                        at,
                        name: String::new(),
                    },
                    tags,
                )
            })
            .collect();
        tagd::datagen::load(store.as_ref(), resources)
            .await
            .expect("resources and tags");
    }
}

/// The median time of `n` runs of `call`, each checked by `call` itself.
async fn median<F: std::future::Future<Output = ()>>(n: usize, mut call: impl FnMut() -> F) -> Duration {
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let started = Instant::now();
        call().await;
        times.push(started.elapsed());
    }
    times.sort();
    times[n / 2]
}

/// A token of the small domain's administrator, with the body that came with it.
async fn olive(s: &TestServer, scope: serde_json::Value) -> (String, serde_json::Value) {
    let body = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "olive", "password": "olive-password", "domain": {"name": "small"}}}},
        "scope": scope}});
    let r = s.post("/v3/auth/tokens", None, &body).await;
    assert_eq!(r.status, 201, "{}", r.text);
    (r.header("x-subject-token").expect("token"), r.body)
}

/// One tag write of the small domain, on one of its five disks.
async fn write(s: &TestServer, token: &str, project: &str, n: usize) -> super::Reply {
    let body = json!({"project_id": project,
        "resources": [{"resource_id": format!("disk-{}", n % 5), "resource_type": "disk"}],
        "tags": [{"key": format!("z-key-{}", n % 7), "value": format!("v{n}")}]});
    s.post("/v1.0/resource-tags/batch-create", Some(token), &body)
        .await
}

/// The small domain's key listing, checked.
async fn list(s: &TestServer, token: &str) {
    let r = s.get("/v1.0/tag-keys?limit=200", Some(token)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["keys"].as_array().map(Vec::len), Some(7), "{}", r.text);
}

#[tokio::test]
async fn a_large_domain_neither_slows_another_domains_listings_nor_starves_its_writes() {
    // A small pool with a short wait, so that a starved writer shows within seconds.
    let s = TestServer::start_with(Options {
        auto_register: true,
        database_max_connections: Some(4),
        database_acquire_timeout_secs: Some(2),
        ..Default::default()
    })
    .await;
    for args in [
        &["domain", "create", "small"][..],
        &["project", "create", "--domain", "small", "cn-south-1"],
    ] {
        let out = s.cli(args, None).await;
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let out = s
        .cli(
            &["user", "create", "--domain", "small", "--admin", "olive"],
            Some("olive-password\n"),
        )
        .await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (small, _) = olive(&s, json!({"domain": {"name": "small"}})).await;
    let (_, scoped) = olive(&s, json!({"project": {"name": "cn-south-1", "domain": {"name": "small"}}})).await;
    let project = scoped["token"]["project"]["id"].as_str().expect("project id").to_owned();
    for n in 0..7 {
        let r = write(&s, &small, &project, n).await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    let baseline = median(15, || list(&s, &small)).await;

    fill_large_domain(&s).await;
    let s = s.restart().await;
    let beside_large = median(15, || list(&s, &small)).await;
    eprintln!("small domain's listing: {baseline:?} alone, {beside_large:?} beside the large domain");
    assert!(
        beside_large < baseline * 10,
        "the small domain's listing took {beside_large:?} beside the large domain, {baseline:?} before it"
    );

    // 20 listings at once by a non-admin user of the large domain, each walking its
    // 160,000 keys for a region that holds none, while the small domain writes.
    let out = s
        .cli(
            &["user", "create", "--domain", &s.creds.domain_name, "heavy"],
            Some("a-long-password\n"),
        )
        .await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let heavy = s
        .token_for("heavy", "a-long-password", json!({"domain": {"name": s.creds.domain_name}}))
        .await;
    let heavy_calls: Vec<_> = (0..20)
        .map(|_| {
            let (http, url, token) = (s.http.clone(), s.url("/v1.0/tag-keys?region_id=nowhere"), heavy.clone());
            tokio::spawn(async move { http.get(url).header("X-Auth-Token", token).send().await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut under_load = Vec::new();
    for n in 0..10 {
        let r = write(&s, &small, &project, n).await;
        assert_eq!(r.status, 200, "write {n} of the small domain under load: {}", r.text);
        let started = Instant::now();
        list(&s, &small).await;
        under_load.push(started.elapsed());
        let ready = s.get("/readyz", None).await;
        assert_eq!(ready.status, 200, "readiness under load: {}", ready.text);
    }
    under_load.sort();
    let under_load = under_load[under_load.len() / 2];
    eprintln!("small domain's listing under the large domain's load: {under_load:?}");
    assert!(
        under_load < baseline * 10,
        "the small domain's listing took {under_load:?} under the large domain's load, {baseline:?} before it"
    );
    for call in heavy_calls {
        // The large domain's own calls may wait or fail; they must not hang.
        let _ = call.await.expect("task");
    }
}
