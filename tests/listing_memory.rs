//! The memory of unpaged listings (issue 16, item 5): `GET /v3/{project_id}/tags` holds a
//! whole project's tags while it answers, so concurrent calls beyond
//! `max_concurrent_unpaged_listings` must wait their turn instead of all allocating at
//! once. Observed from outside: the peak resident memory of the real binary (Linux's
//! VmHWM, reset between phases through /proc/PID/clear_refs) for 16 calls at once is
//! compared with that of one call, in the same run.

use std::path::Path;

use serde_json::json;
use tagd::core::model::{Resource, ResourceRef};

#[path = "api/tagd_process.rs"]
mod tagd_process;
use tagd_process::{admin_token, credential, free_port, spawn_with};

const INSTANCES: usize = 5_000;
const KEYS_EACH: usize = 20;

/// RDS instances with 20 keys each, every value distinct: the answer lists 100,000
/// values.
async fn fill(dir: &Path) {
    let store = tagd::store::open(
        &format!("sqlite://{}", dir.join("tagd.db").display()),
        Default::default(),
    )
    .await
    .expect("the store");
    let (domain, project) = (credential(dir, "domain_id"), credential(dir, "project_id"));
    for chunk in (0..INSTANCES).collect::<Vec<_>>().chunks(1_000) {
        let resources = chunk
            .iter()
            .map(|i| {
                let at = ResourceRef {
                    domain_id: domain.clone(),
                    project_id: project.clone(),
                    resource_type: "rds".into(),
                    resource_id: format!("rds-{i:06}"),
                };
                let tags = (0..KEYS_EACH)
                    .map(|k| (format!("key-{k:02}"), format!("{}-{k:02}", at.resource_id)))
                    .collect();
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

/// A field of /proc/PID/status, in KiB.
fn status_kib(pid: u32, field: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    text.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} in /proc/{pid}/status"))
}

/// How far above its resident memory at the start the process peaked while `calls`
/// listings ran at once, and the size of one answer, in KiB.
async fn peak_growth(
    pid: u32,
    http: &reqwest::Client,
    url: &str,
    token: &str,
    calls: usize,
) -> (u64, u64) {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").expect("reset the peak");
    let before = status_kib(pid, "VmRSS:");
    let mut running = Vec::new();
    for _ in 0..calls {
        let request = http.get(url).header("X-Auth-Token", token).send();
        running.push(tokio::spawn(async move {
            let r = request.await.expect("listing");
            assert_eq!(r.status(), 200);
            let bytes = r.bytes().await.expect("body");
            let body: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
            assert_eq!(body["tags"].as_array().map(Vec::len), Some(KEYS_EACH));
            assert_eq!(
                body["tags"][0]["values"].as_array().map(Vec::len),
                Some(INSTANCES)
            );
            bytes.len() as u64 / 1024
        }));
    }
    let mut answer = 0;
    for call in running {
        answer = call.await.expect("call");
    }
    (status_kib(pid, "VmHWM:").saturating_sub(before), answer)
}

#[tokio::test]
async fn concurrent_unpaged_listings_beyond_the_bound_wait_instead_of_all_allocating() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let mut first = spawn_with(dir.path(), port, &[], &[]).await;
    first.kill().await.expect("stop the first start");
    fill(dir.path()).await;

    let tagd = spawn_with(
        dir.path(),
        port,
        &[],
        &[("TAGD_MAX_CONCURRENT_UNPAGED_LISTINGS", "1")],
    )
    .await;
    let pid = tagd.id().expect("running");
    let base = format!("http://127.0.0.1:{port}");
    let project = credential(dir.path(), "project_id");
    let token = admin_token(&base, dir.path(), json!({"project": {"id": project}})).await;
    let http = reqwest::Client::new();
    let url = format!("{base}/v3/{project}/tags");
    // Warm: the tag index built, the allocator's heaps in place.
    for _ in 0..2 {
        peak_growth(pid, &http, &url, &token, 1).await;
    }
    let (one, answer) = peak_growth(pid, &http, &url, &token, 1).await;
    let (sixteen, _) = peak_growth(pid, &http, &url, &token, 16).await;
    eprintln!(
        "peak growth: one listing {one} KiB, sixteen at once {sixteen} KiB; answer {answer} KiB"
    );
    // One listing at a time peaks at a few times its answer, whichever thread runs it;
    // sixteen allocating at once peak at sixteen times that.
    let bound = 4 * one.max(answer);
    assert!(
        sixteen < bound,
        "16 listings at once grew the peak by {sixteen} KiB, over {bound} KiB (one listing: {one} KiB, answer {answer} KiB)"
    );
}
