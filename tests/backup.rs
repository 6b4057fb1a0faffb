//! `tagd admin backup` and `tagd admin restore` on the real binary (issue 8).
//!
//! A backup is taken while writers keep tagging over HTTP: it must hold every write
//! acknowledged before it started, pass SQLite's integrity check, and restored into a
//! fresh data directory serve exactly its own content. Restore is refused while tagd
//! serves the data directory, and for files that are not tagd databases, changing
//! nothing; backup does not replace a file without `--force`.
//!
//! Every write of the writers tags a resource of its own (`bk-w<w>-<n>`, registered by
//! `--auto-register`) with `backup-op = w<w>-<n>`. A writer waits for each answer before
//! its next request, so what a snapshot holds of one writer is ops `0..k` for some `k`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

#[path = "api/tagd_process.rs"]
mod tagd_process;
use tagd_process::{admin_token, credential, free_port, sigterm, spawn_with};

const KEY: &str = "backup-op";
const WRITERS: usize = 4;
/// Resources loaded before the writers start, so the snapshot takes a while.
const PRELOADED: usize = 20_000;

/// A running tagd and what talking to it needs.
struct Server {
    child: tokio::process::Child,
    base: String,
    token: String,
    project: String,
}

async fn start(dir: &Path, args: &[&str]) -> Server {
    let port = free_port();
    let child = spawn_with(dir, port, args, &[]).await;
    let base = format!("http://127.0.0.1:{port}");
    let domain = credential(dir, "domain_name");
    let token = admin_token(&base, dir, json!({"domain": {"name": domain}})).await;
    Server {
        child,
        base,
        token,
        project: credential(dir, "project_id"),
    }
}

/// Stops a server gracefully and waits for it to exit.
async fn stop(mut server: Server) {
    sigterm(&server.child);
    let status = tokio::time::timeout(Duration::from_secs(30), server.child.wait())
        .await
        .expect("tagd stops within 30 s")
        .expect("wait");
    assert!(status.success(), "tagd exited with {status}");
}

/// The outcome of one `tagd admin ...` run.
struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

/// Runs `tagd admin <store args> <args>`.
async fn admin(store: &[&str], args: &[&str]) -> Run {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_tagd"))
        .arg("admin")
        .args(store)
        .args(args)
        .env_remove("TAGD_DATABASE_URL")
        .env_remove("TAGD_DATA_DIR")
        .env_remove("TAGD_CONFIG")
        .env_remove("TAGD_SERVER_KEY")
        .output()
        .await
        .expect("run tagd admin");
    Run {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

async fn admin_in(dir: &Path, args: &[&str]) -> Run {
    let dir = dir.to_str().expect("utf-8 path");
    admin(&["--data-dir", dir], args).await
}

/// Tags resource `id` (registered on the way) with `backup-op = value`.
async fn tag(http: &reqwest::Client, s: &Server, id: &str, value: &str) -> reqwest::Response {
    http.post(format!("{}/v1.0/resource-tags/batch-create", s.base))
        .header("X-Auth-Token", &s.token)
        .json(&json!({"project_id": s.project,
            "resources": [{"resource_id": id, "resource_type": "disk"}],
            "tags": [{"key": KEY, "value": value}]}))
        .send()
        .await
        .expect("tag request")
}

/// What one writer has sent and heard back: ops `0..acked` were answered 2xx, ops
/// `0..sent` may have landed.
#[derive(Default)]
struct Progress {
    sent: AtomicU64,
    acked: AtomicU64,
}

async fn write_until(
    http: reqwest::Client,
    server: Arc<Server>,
    w: usize,
    progress: Arc<Progress>,
    stop: Arc<AtomicBool>,
) {
    let mut n = 0u64;
    while !stop.load(Ordering::Acquire) {
        progress.sent.store(n + 1, Ordering::Release);
        let r = tag(
            &http,
            &server,
            &format!("bk-w{w}-{n}"),
            &format!("w{w}-{n}"),
        )
        .await;
        let status = r.status();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        assert!(
            status.is_success()
                && body["failed_resources"]
                    .as_array()
                    .is_none_or(Vec::is_empty),
            "writer {w} op {n}: {status} {body}"
        );
        progress.acked.store(n + 1, Ordering::Release);
        n += 1;
    }
}

/// The `backup-op` values in a database file, read with SQLite directly.
fn ops_in_file(path: &Path) -> BTreeSet<String> {
    let conn =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("open the database file");
    let mut stmt = conn
        .prepare("SELECT value FROM tags WHERE key = ?1")
        .expect("prepare");
    let values = stmt
        .query_map([KEY], |r| r.get::<_, String>(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    values
}

fn integrity(path: &Path) -> (String, String, i64) {
    let conn =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("open the database file");
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity_check");
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .expect("journal_mode");
    let resources: i64 = conn
        .query_row("SELECT count(*) FROM resources", [], |r| r.get(0))
        .expect("count");
    (check, mode, resources)
}

/// Every `backup-op` value in use, read over HTTP page by page.
async fn ops_over_http(http: &reqwest::Client, s: &Server) -> BTreeSet<String> {
    let mut values = BTreeSet::new();
    let mut marker = String::new();
    loop {
        let r = http
            .get(format!(
                "{}/v1.0/tag-values?key={KEY}&limit=200&marker={marker}",
                s.base
            ))
            .header("X-Auth-Token", &s.token)
            .send()
            .await
            .expect("tag-values");
        assert_eq!(r.status(), 200);
        let body: Value = r.json().await.expect("json");
        for v in body["values"].as_array().expect("values") {
            assert!(
                values.insert(v.as_str().expect("string").to_owned()),
                "{v} twice"
            );
        }
        marker = body["page_info"]["next_marker"]
            .as_str()
            .expect("next_marker")
            .to_owned();
        if marker.is_empty() {
            return values;
        }
    }
}

/// One resource's tags over HTTP; `None` when it is not there.
async fn tags_of(http: &reqwest::Client, s: &Server, id: &str) -> Option<BTreeMap<String, String>> {
    let r = http
        .get(format!(
            "{}/v2.0/resources/{id}/tags?project_id={}&resource_type=disk",
            s.base, s.project
        ))
        .header("X-Auth-Token", &s.token)
        .send()
        .await
        .expect("read tags");
    if r.status() == 404 {
        return None;
    }
    assert_eq!(r.status(), 200, "reading {id}");
    let body: Value = r.json().await.expect("json");
    Some(
        body["tags"]
            .as_array()
            .expect("tags")
            .iter()
            .map(|t| {
                (
                    t["key"].as_str().expect("key").to_owned(),
                    t["value"].as_str().expect("value").to_owned(),
                )
            })
            .collect(),
    )
}

/// The op numbers of writer `w` among `values`.
fn ops_of(values: &BTreeSet<String>, w: usize) -> BTreeSet<u64> {
    let prefix = format!("w{w}-");
    values
        .iter()
        .filter_map(|v| v.strip_prefix(&prefix))
        .map(|n| n.parse().expect("op number"))
        .collect()
}

/// Files in `dir` (names only), to see that a refused command left nothing behind.
fn listing(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect()
}

fn copy_keys(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for file in ["server.key", "credentials"] {
        std::fs::copy(from.join(file), to.join(file)).expect("copy the key files");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_while_serving_holds_every_acknowledged_write_and_restores_exactly() {
    let root = tempfile::tempdir().expect("tempdir");
    let live = root.path().join("live");
    let backup = root.path().join("tagd-backup.db");
    let http = reqwest::Client::new();
    let server = Arc::new(start(&live, &["--auto-register"]).await);

    let generated = admin_in(
        &live,
        &[
            "generate",
            "--project",
            &server.project,
            "--resources",
            &PRELOADED.to_string(),
        ],
    )
    .await;
    assert!(generated.ok, "generate: {}", generated.stderr);

    let stop_writers = Arc::new(AtomicBool::new(false));
    let progress: Vec<Arc<Progress>> = (0..WRITERS).map(|_| Arc::default()).collect();
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            tokio::spawn(write_until(
                http.clone(),
                server.clone(),
                w,
                progress[w].clone(),
                stop_writers.clone(),
            ))
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(800)).await;

    let acked_before: Vec<u64> = progress
        .iter()
        .map(|p| p.acked.load(Ordering::Acquire))
        .collect();
    let started = Instant::now();
    let run = admin_in(&live, &["backup", backup.to_str().expect("utf-8")]).await;
    let took = started.elapsed();
    let sent_after: Vec<u64> = progress
        .iter()
        .map(|p| p.sent.load(Ordering::Acquire))
        .collect();
    let acked_after: Vec<u64> = progress
        .iter()
        .map(|p| p.acked.load(Ordering::Acquire))
        .collect();
    assert!(run.ok, "backup failed: {}", run.stderr);
    assert!(run.stdout.contains("backed up"), "{}", run.stdout);
    tokio::time::sleep(Duration::from_millis(800)).await;
    stop_writers.store(true, Ordering::Release);
    for writer in writers {
        writer.await.expect("a writer panicked");
    }
    let acked_end: u64 = progress
        .iter()
        .map(|p| p.acked.load(Ordering::Acquire))
        .sum();
    eprintln!(
        "backup of {PRELOADED} preloaded resources and {} acknowledged writes took {took:.2?} while serving; {} writes acknowledged during it; {}",
        acked_before.iter().sum::<u64>(),
        acked_after.iter().sum::<u64>() - acked_before.iter().sum::<u64>(),
        run.stdout.lines().next().unwrap_or_default()
    );
    assert!(
        acked_end > sent_after.iter().sum::<u64>(),
        "the server stopped answering writes after the backup"
    );

    // (a) The backup: sound, standalone, and holding every write acknowledged before it
    // started, and nothing not yet sent when it ended.
    let (check, mode, resources) = integrity(&backup);
    assert_eq!(check, "ok");
    assert_eq!(
        mode, "delete",
        "the backup is a standalone rollback-journal file"
    );
    assert!(!PathBuf::from(format!("{}-wal", backup.display())).exists());
    let in_backup = ops_in_file(&backup);
    assert_eq!(resources as usize, PRELOADED + in_backup.len());
    for w in 0..WRITERS {
        let ops = ops_of(&in_backup, w);
        let k = ops.len() as u64;
        assert_eq!(ops, (0..k).collect(), "writer {w}: not a prefix of its ops");
        assert!(
            k >= acked_before[w],
            "writer {w}: {k} ops in the backup, {} acknowledged before it started",
            acked_before[w]
        );
        assert!(
            k <= sent_after[w],
            "writer {w}: ops in the backup never sent"
        );
    }
    assert!(
        acked_before.iter().sum::<u64>() > 0,
        "no write before the backup"
    );

    // (b) Restored into a fresh data directory with the original key files, tagd serves
    // exactly the backup's content.
    let server = Arc::into_inner(server).expect("the writers are done");
    stop(server).await;
    let fresh = root.path().join("restored");
    copy_keys(&live, &fresh);
    let run = admin_in(&fresh, &["restore", backup.to_str().expect("utf-8")]).await;
    assert!(run.ok, "restore failed: {}", run.stderr);
    assert!(run.stdout.contains("server key"), "{}", run.stdout);
    let restored = start(&fresh, &[]).await;
    assert_eq!(ops_over_http(&http, &restored).await, in_backup);
    for (w, p) in progress.iter().enumerate() {
        let k = ops_of(&in_backup, w).len() as u64;
        if k > 0 {
            let last = format!("bk-w{w}-{}", k - 1);
            let want = BTreeMap::from([(KEY.to_owned(), format!("w{w}-{}", k - 1))]);
            assert_eq!(tags_of(&http, &restored, &last).await, Some(want), "{last}");
        }
        if k < p.sent.load(Ordering::Acquire) {
            let after = format!("bk-w{w}-{k}");
            assert_eq!(tags_of(&http, &restored, &after).await, None, "{after}");
        }
    }
    let first = tags_of(&http, &restored, "disk-0000000")
        .await
        .expect("a preloaded disk");
    assert_eq!(
        first.len(),
        5,
        "a preloaded disk keeps its five tags: {first:?}"
    );
    stop(restored).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_is_refused_while_tagd_serves_the_data_directory() {
    let root = tempfile::tempdir().expect("tempdir");
    let dir = root.path().join("data");
    let backup = root.path().join("old.db");
    let http = reqwest::Client::new();
    let server = start(&dir, &["--auto-register"]).await;
    assert!(tag(&http, &server, "disk-a", "before")
        .await
        .status()
        .is_success());
    let run = admin_in(&dir, &["backup", backup.to_str().expect("utf-8")]).await;
    assert!(run.ok, "backup failed: {}", run.stderr);
    assert!(tag(&http, &server, "disk-a", "after")
        .await
        .status()
        .is_success());

    let files = listing(&dir);
    let run = admin_in(&dir, &["restore", backup.to_str().expect("utf-8")]).await;
    assert!(
        !run.ok,
        "a restore under a running tagd must fail: {}",
        run.stdout
    );
    assert!(run.stderr.contains("stop it"), "{}", run.stderr);
    assert_eq!(
        listing(&dir),
        files,
        "the refused restore left files behind"
    );
    let want = BTreeMap::from([(KEY.to_owned(), "after".to_owned())]);
    assert_eq!(tags_of(&http, &server, "disk-a").await, Some(want.clone()));
    stop(server).await;

    // Once stopped, the same restore goes through and brings the older value back.
    let run = admin_in(&dir, &["restore", backup.to_str().expect("utf-8")]).await;
    assert!(run.ok, "restore failed: {}", run.stderr);
    let server = start(&dir, &[]).await;
    let old = BTreeMap::from([(KEY.to_owned(), "before".to_owned())]);
    assert_eq!(tags_of(&http, &server, "disk-a").await, Some(old));
    stop(server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_does_not_replace_an_existing_file_without_force() {
    let root = tempfile::tempdir().expect("tempdir");
    let dir = root.path().join("data");
    let target = root.path().join("precious.db");
    std::fs::write(&target, "precious").expect("write");
    let http = reqwest::Client::new();
    let server = start(&dir, &["--auto-register"]).await;
    assert!(tag(&http, &server, "disk-a", "kept")
        .await
        .status()
        .is_success());

    let run = admin_in(&dir, &["backup", target.to_str().expect("utf-8")]).await;
    assert!(!run.ok, "backup replaced a file without --force");
    assert!(run.stderr.contains("--force"), "{}", run.stderr);
    assert_eq!(std::fs::read(&target).expect("read"), b"precious");
    assert_eq!(
        listing(root.path()),
        BTreeSet::from(["data".into(), "precious.db".into()])
    );

    let run = admin_in(
        &dir,
        &["backup", "--force", target.to_str().expect("utf-8")],
    )
    .await;
    assert!(run.ok, "backup --force failed: {}", run.stderr);
    assert_eq!(integrity(&target).0, "ok");
    assert_eq!(ops_in_file(&target), BTreeSet::from(["kept".to_owned()]));
    assert_eq!(
        listing(root.path()),
        BTreeSet::from(["data".into(), "precious.db".into()])
    );
    stop(server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_refuses_a_file_that_is_not_a_tagd_database() {
    let root = tempfile::tempdir().expect("tempdir");
    let dir = root.path().join("data");
    let http = reqwest::Client::new();
    let server = start(&dir, &["--auto-register"]).await;
    assert!(tag(&http, &server, "disk-a", "kept")
        .await
        .status()
        .is_success());
    let good = root.path().join("good.db");
    assert!(
        admin_in(&dir, &["backup", good.to_str().expect("utf-8")])
            .await
            .ok
    );
    stop(server).await;

    let text = root.path().join("notes.txt");
    std::fs::write(&text, "not a database\n".repeat(1000)).expect("write");
    let foreign = root.path().join("foreign.db");
    {
        let conn = rusqlite::Connection::open(&foreign).expect("create");
        conn.execute_batch(
            "CREATE TABLE tags (rid INTEGER, key TEXT, value TEXT); PRAGMA user_version = 3;",
        )
        .expect("schema");
    }
    let too_new = root.path().join("too-new.db");
    std::fs::copy(&good, &too_new).expect("copy");
    rusqlite::Connection::open(&too_new)
        .and_then(|c| c.pragma_update(None, "user_version", 999))
        .expect("bump the version");
    let damaged = root.path().join("damaged.db");
    let mut bytes = std::fs::read(&good).expect("read");
    let page = 4096;
    assert!(bytes.len() > 3 * page, "the backup spans several pages");
    bytes[2 * page..3 * page].fill(0x5a);
    std::fs::write(&damaged, bytes).expect("write");

    let db = dir.join("tagd.db");
    let before = std::fs::read(&db).expect("read the database");
    let files = listing(&dir);
    for (file, why) in [
        (&text, "not a SQLite database"),
        (&foreign, "not tagd's"),
        (&too_new, "newer than this tagd knows"),
        (&damaged, ""),
    ] {
        let run = admin_in(&dir, &["restore", file.to_str().expect("utf-8")]).await;
        assert!(!run.ok, "{} was restored", file.display());
        assert!(
            run.stderr.contains(why),
            "{}: {}",
            file.display(),
            run.stderr
        );
        assert!(
            run.stderr.contains("is not a backup tagd can restore"),
            "{}",
            run.stderr
        );
        assert_eq!(
            std::fs::read(&db).expect("read"),
            before,
            "{} changed the database",
            file.display()
        );
        assert_eq!(listing(&dir), files, "{} left files behind", file.display());
    }

    let server = start(&dir, &[]).await;
    let want = BTreeMap::from([(KEY.to_owned(), "kept".to_owned())]);
    assert_eq!(tags_of(&http, &server, "disk-a").await, Some(want));
    stop(server).await;
}

#[tokio::test]
async fn backup_and_restore_refuse_postgresql() {
    let url = "postgres://tagd:hunter2@127.0.0.1:1/tagd";
    let run = admin(&["--database-url", url], &["backup", "/nonexistent/x.db"]).await;
    assert!(!run.ok);
    assert!(
        run.stderr.contains("pg_dump") && !run.stderr.contains("hunter2"),
        "{}",
        run.stderr
    );
    let run = admin(&["--database-url", url], &["restore", "/nonexistent/x.db"]).await;
    assert!(!run.ok);
    assert!(run.stderr.contains("pg_restore"), "{}", run.stderr);
}
