//! Crash safety (issue 8): tagd under a mixed write load is killed with SIGKILL at
//! random moments, again and again, on SQLite and on PostgreSQL. After every restart the
//! store opens and answers, every write acknowledged before a kill is there, and every
//! batch is either wholly applied or wholly absent.
//!
//! Each writer owns three disks and runs a sequence of TMS batches on them, one at a
//! time: op `n` sets `w<w>` and `w<w>-copy` to `n` on all three disks, except every
//! fourth op, which deletes both keys from all three. So the six tag slots of a writer
//! must always agree (all absent, or all the same value), and the state must be that of
//! an op at or after the last one acknowledged and no later than the last one sent.
//!
//! `TAGD_CRASH_KILLS` sets the number of kills per backend (default 6; the full run in
//! docs/security.md uses 25).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tagd::datagen::Lcg;
use tagd::store::throwaway::ThrowawayDatabase;
use tokio::process::Child;
use tokio::sync::Mutex;

#[path = "api/tagd_process.rs"]
mod tagd_process;
use tagd_process::{admin_token, credential, free_port, spawn_with};

const WRITERS: usize = 12;
const DISKS_PER_WRITER: usize = 3;

fn kills() -> usize {
    std::env::var("TAGD_CRASH_KILLS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(6)
}

/// What one writer has sent and what it has heard back.
#[derive(Clone, Copy, Default, Debug)]
struct Progress {
    /// The next op to send.
    next: u64,
    /// The last op answered 2xx, if any.
    acked: Option<u64>,
}

fn is_delete(op: u64) -> bool {
    op % 4 == 3
}

fn disk(w: usize, d: usize) -> String {
    format!("crash-w{w}-d{d}")
}

/// A running tagd and what talking to it needs.
struct Server {
    child: Child,
    base: String,
}

async fn start(dir: &Path, database_url: Option<&str>) -> Server {
    let port = free_port();
    let args: Vec<&str> = match database_url {
        Some(url) => vec!["--database-url", url],
        None => Vec::new(),
    };
    Server {
        child: spawn_with(dir, port, &args, &[]).await,
        base: format!("http://127.0.0.1:{port}"),
    }
}

/// The body of op `op` of writer `w`.
fn op_body(project: &str, w: usize, op: u64) -> (&'static str, Value) {
    let resources: Vec<Value> = (0..DISKS_PER_WRITER)
        .map(|d| json!({"resource_id": disk(w, d), "resource_type": "disk"}))
        .collect();
    if is_delete(op) {
        let tags = json!([{"key": format!("w{w}")}, {"key": format!("w{w}-copy")}]);
        (
            "batch-delete",
            json!({"project_id": project, "resources": resources, "tags": tags}),
        )
    } else {
        let tags = json!([{"key": format!("w{w}"), "value": op.to_string()},
            {"key": format!("w{w}-copy"), "value": op.to_string()}]);
        (
            "batch-create",
            json!({"project_id": project, "resources": resources, "tags": tags}),
        )
    }
}

/// Runs writer `w` until its request fails (the server was killed).
async fn write_until_killed(
    http: reqwest::Client,
    base: String,
    token: String,
    project: String,
    w: usize,
    progress: Arc<Mutex<Progress>>,
) {
    loop {
        let op = progress.lock().await.next;
        let (action, body) = op_body(&project, w, op);
        // Counted as sent before it goes: once sent it may land even unanswered.
        progress.lock().await.next = op + 1;
        let answer = http
            .post(format!("{base}/v1.0/resource-tags/{action}"))
            .header("X-Auth-Token", &token)
            .json(&body)
            .send()
            .await;
        match answer {
            Ok(r) if r.status().is_success() => {
                let body: Value = r.json().await.unwrap_or(Value::Null);
                assert!(
                    body["failed_resources"]
                        .as_array()
                        .is_none_or(|f| f.is_empty()),
                    "writer {w} op {op}: {body}"
                );
                progress.lock().await.acked = Some(op);
            }
            Ok(r) => panic!("writer {w} op {op}: answered {}", r.status()),
            Err(_) => return,
        }
    }
}

/// Reads writer `w`'s six tag slots and checks them against what it sent and heard.
async fn check_writer(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    project: &str,
    w: usize,
    progress: Progress,
) {
    let mut slots: Vec<Option<String>> = Vec::new();
    for d in 0..DISKS_PER_WRITER {
        let r = http
            .get(format!(
                "{base}/v2.0/resources/{}/tags?project_id={project}&resource_type=disk",
                disk(w, d)
            ))
            .header("X-Auth-Token", token)
            .send()
            .await
            .expect("read");
        assert_eq!(r.status(), 200, "reading {}", disk(w, d));
        let body: Value = r.json().await.expect("json");
        let tags: BTreeMap<String, String> = body["tags"]
            .as_array()
            .expect("tags")
            .iter()
            .map(|t| {
                (
                    t["key"].as_str().unwrap_or_default().to_owned(),
                    t["value"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        for key in [format!("w{w}"), format!("w{w}-copy")] {
            slots.push(tags.get(&key).cloned());
        }
    }
    assert!(
        slots.windows(2).all(|p| p[0] == p[1]),
        "writer {w}: a batch was applied in part: {slots:?}"
    );
    // Ops that may explain the state: from the last acknowledged to the last sent.
    let first = progress.acked.unwrap_or(0);
    let last_sent = progress.next.checked_sub(1);
    let explained = match (&slots[0], last_sent) {
        (None, None) => true,
        (None, Some(last)) => progress.acked.is_none() || (first..=last).any(is_delete),
        (Some(v), Some(last)) => v
            .parse::<u64>()
            .is_ok_and(|v| v >= first && v <= last && !is_delete(v)),
        (Some(_), None) => false,
    };
    assert!(
        explained,
        "writer {w}: state {:?} after acknowledged op {:?} and sent ops up to {last_sent:?}",
        slots[0], progress.acked
    );
}

async fn kill_and_check(dir: &Path, database_url: Option<&str>) {
    let http = reqwest::Client::new();
    let mut server = start(dir, database_url).await;
    let token = admin_token(&server.base, dir, json!({"domain": {"name": "tagd"}})).await;
    let project = credential(dir, "project_id");
    let resources: Vec<Value> = (0..WRITERS)
        .flat_map(|w| (0..DISKS_PER_WRITER).map(move |d| (w, d)))
        .map(|(w, d)| json!({"project_id": project, "resource_type": "disk", "resource_id": disk(w, d)}))
        .collect();
    let r = http
        .post(format!("{}/tagd/v1/resources", server.base))
        .header("X-Auth-Token", &token)
        .json(&json!({ "resources": resources }))
        .send()
        .await
        .expect("register");
    assert_eq!(r.status(), 200);

    let progress: Vec<Arc<Mutex<Progress>>> = (0..WRITERS).map(|_| Arc::default()).collect();
    let mut rng = Lcg::new(0x5eed_c4a5);
    let mut acked_total = 0;
    for _kill in 0..kills() {
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                tokio::spawn(write_until_killed(
                    http.clone(),
                    server.base.clone(),
                    token.clone(),
                    project.clone(),
                    w,
                    progress[w].clone(),
                ))
            })
            .collect();
        // A random moment: early in a group, mid-commit, between groups.
        let after = Duration::from_millis(150 + u64::from(rng.below(900)));
        tokio::time::sleep(after).await;
        server.child.kill().await.expect("SIGKILL");
        for writer in writers {
            writer.await.expect("a writer panicked");
        }

        server = start(dir, database_url).await;
        for (w, p) in progress.iter().enumerate() {
            let p = *p.lock().await;
            acked_total += usize::from(p.acked.is_some());
            check_writer(&http, &server.base, &token, &project, w, p).await;
        }
    }
    let sent: u64 = {
        let mut sent = 0;
        for p in &progress {
            sent += p.lock().await.next;
        }
        sent
    };
    assert!(
        sent > (WRITERS * kills()) as u64,
        "too few writes between kills to prove anything: {sent}"
    );
    assert!(acked_total > 0, "no write was ever acknowledged");
    eprintln!(
        "crash: {} kills survived, {sent} batches sent, backend {}",
        kills(),
        if database_url.is_some() {
            "postgres"
        } else {
            "sqlite"
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_keeps_every_acknowledged_batch_through_repeated_sigkill() {
    let dir = tempfile::tempdir().expect("tempdir");
    kill_and_check(dir.path(), None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_keeps_every_acknowledged_batch_through_repeated_sigkill() {
    let database = ThrowawayDatabase::create().await;
    let dir = tempfile::tempdir().expect("tempdir");
    kill_and_check(dir.path(), Some(&database.url)).await;
}
