//! The embedded store's files against a failing or hostile filesystem, through the real
//! binary: a write the kernel refuses stops the store until a restart (D80), a damaged
//! database stops the start (D81), the data directory and database files are private
//! (D82), and an empty database does not re-run the first start over another store's
//! credentials (D84).
//!
//! A write is made to fail by lowering the running tagd's file-size limit (`prlimit`,
//! `RLIMIT_FSIZE`): the kernel then refuses its writes to the database and WAL with
//! `EFBIG`, through the same `write` calls a full disk refuses with `ENOSPC`. Unlike a
//! small mount, it needs no privilege, so the test runs everywhere and never skips.

#[path = "api/tagd_process.rs"]
mod tagd_process;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{json, Value};
use tagd_process::{admin_token, credential, free_port, serve_command, sigterm, spawn_with};
use tokio::process::{Child, Command};

/// The permission bits of `path`, in octal as `ls` and `chmod` spell them.
fn mode(path: &Path) -> String {
    let mode = std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode();
    format!("{:o}", mode & 0o777)
}

/// Runs `command` and expects it to stop by itself, failing, within 30 s; its stderr.
/// A tagd that serves instead fails the test (and is killed).
async fn refused_start(mut command: Command, port: u16) -> String {
    let mut child = command
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tagd");
    let status = match tokio::time::timeout(Duration::from_secs(30), child.wait()).await {
        Ok(status) => status.expect("wait"),
        Err(_) => {
            let ready = reqwest::get(format!("http://127.0.0.1:{port}/readyz"))
                .await
                .map(|r| r.status().as_u16());
            panic!("tagd started when it should have refused (/readyz: {ready:?})");
        }
    };
    let mut err = String::new();
    if let Some(mut stderr) = child.stderr.take() {
        use tokio::io::AsyncReadExt;
        let _ = stderr.read_to_string(&mut err).await;
    }
    assert!(!status.success(), "tagd exited 0: {err}");
    err
}

/// Tags `disk-{n}` with `ENV=v{n}` through TMS; the status and body.
async fn tag(base: &str, token: &str, project: &str, n: usize) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("{base}/v1.0/resource-tags/batch-create"))
        .header("X-Auth-Token", token)
        .json(&json!({"project_id": project,
            "resources": [{"resource_id": format!("disk-{n}"), "resource_type": "disk"}],
            "tags": [{"key": "ENV", "value": format!("v{n}")}]}))
        .send()
        .await
        .expect("batch-create");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// `disk-{n}`'s tags as TMS reads them; the status and body.
async fn tags_of(base: &str, token: &str, project: &str, n: usize) -> (u16, Value) {
    let r = reqwest::Client::new()
        .get(format!(
            "{base}/v2.0/resources/disk-{n}/tags?project_id={project}&resource_type=disk"
        ))
        .header("X-Auth-Token", token)
        .send()
        .await
        .expect("read tags");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn readyz(base: &str) -> u16 {
    reqwest::get(format!("{base}/readyz"))
        .await
        .expect("readyz")
        .status()
        .as_u16()
}

/// Sets the soft file-size limit of process `pid` (`None`: unlimited).
fn limit_file_size(child: &Child, bytes: Option<u64>) {
    let pid = rustix::process::Pid::from_raw(child.id().expect("running") as i32).expect("a pid");
    rustix::process::prlimit(
        Some(pid),
        rustix::process::Resource::Fsize,
        rustix::process::Rlimit {
            current: bytes,
            maximum: None,
        },
    )
    .expect("prlimit");
}

/// `tagd serve --auto-register` on `data` whose file-size limit a test may lower: with
/// SIGXFSZ ignored (an ignored signal stays ignored across exec), a write past the
/// limit fails with EFBIG instead of killing the process.
async fn spawn_limitable(data: &Path, port: u16) -> Child {
    let child = Command::new("sh")
        .args([
            "-c",
            "trap '' XFSZ; exec \"$0\" \"$@\"",
            env!("CARGO_BIN_EXE_tagd"),
        ])
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--auto-register",
        ])
        .arg("--data-dir")
        .arg(data)
        .env_remove("TAGD_DATABASE_URL")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn tagd");
    tagd_process::wait_until_serving(port).await;
    child
}

/// Before D80 the store went on acknowledging writes once the disk took them again,
/// after a commit whose write had failed: what the failed fsync lost stayed lost. Now
/// the first failed write stops the store: every request gets 503 in its API's error
/// body and `/readyz` is 503, until tagd is restarted; the restart finds every
/// acknowledged write.
#[tokio::test]
async fn a_failed_write_stops_the_store_until_tagd_is_restarted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let child = spawn_limitable(&data, port).await;
    let token = admin_token(&base, &data, json!({"domain": {"name": "tagd"}})).await;
    let project = credential(&data, "project_id");

    let mut acknowledged = Vec::new();
    for n in 0..5 {
        assert_eq!(tag(&base, &token, &project, n).await.0, 200);
        acknowledged.push(n);
    }

    // The disk refuses every write.
    limit_file_size(&child, Some(0));
    let (status, _) = tag(&base, &token, &project, 5).await;
    assert!(
        status >= 500,
        "a write the disk refused was answered {status}"
    );

    // The disk takes writes again; the store must not.
    limit_file_size(&child, None);
    for n in 6..9 {
        let (status, body) = tag(&base, &token, &project, n).await;
        assert_eq!(status, 503, "a write after the failure: {body}");
        assert!(
            body["error"]["error_code"].is_string(),
            "TMS's error body: {body}"
        );
    }
    let (status, body) = tags_of(&base, &token, &project, 0).await;
    assert_eq!(status, 503, "a read after the failure: {body}");
    assert_eq!(readyz(&base).await, 503);
    drop(child);

    // Restarted, it checks the database and serves every acknowledged write.
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let _child = spawn_with(&data, port, &[], &[]).await;
    assert_eq!(readyz(&base).await, 200);
    let token = admin_token(&base, &data, json!({"domain": {"name": "tagd"}})).await;
    for n in acknowledged {
        let (status, body) = tags_of(&base, &token, &project, n).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            body["tags"],
            json!([{"key": "ENV", "value": format!("v{n}")}])
        );
    }
}

/// Before D81 a database with a damaged page of the tags table started, logged that the
/// tag index could not be built, and answered `/readyz` 200 while its reads failed.
/// Now the start checks the database and refuses it, naming the file and what to do.
#[tokio::test]
async fn a_damaged_database_is_refused_at_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let child = spawn_with(&data, port, &["--auto-register"], &[]).await;
    let token = admin_token(&base, &data, json!({"domain": {"name": "tagd"}})).await;
    let project = credential(&data, "project_id");
    for n in 0..20 {
        assert_eq!(tag(&base, &token, &project, n).await.0, 200);
    }
    sigterm(&child);
    let mut child = child;
    child.wait().await.expect("tagd stops");

    // Everything folded into the main file, then the tags table's root page overwritten.
    let db = data.join("tagd.db");
    let (page, page_size): (i64, i64) = {
        let conn = rusqlite::Connection::open(&db).expect("open");
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .expect("checkpoint");
        let page = conn
            .query_row(
                "SELECT rootpage FROM sqlite_schema WHERE name = 'tags'",
                [],
                |r| r.get(0),
            )
            .expect("root page");
        let size = conn
            .pragma_query_value(None, "page_size", |r| r.get(0))
            .expect("page size");
        (page, size)
    };
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .open(&db)
            .expect("open the database file");
        file.seek(SeekFrom::Start(((page - 1) * page_size) as u64))
            .expect("seek");
        file.write_all(&[0xA5; 64]).expect("damage");
        file.sync_all().expect("sync");
    }

    let port = free_port();
    let err = refused_start(serve_command(&data, port, &[], &[]), port).await;
    assert!(
        err.contains("is damaged") && err.contains(&db.display().to_string()),
        "{err}"
    );
    assert!(err.contains("tagd admin restore"), "{err}");
}

/// Before D84 a data directory pointed at an empty database (a wrong URL, a recreated
/// database) ran a new first start and overwrote its `credentials`. Now the start is
/// refused, naming the directory and what to do, and nothing there changes.
#[tokio::test]
async fn an_empty_database_does_not_overwrite_another_stores_credentials() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let port = free_port();
    let mut child = spawn_with(&data, port, &[], &[]).await;
    sigterm(&child);
    child.wait().await.expect("tagd stops");
    let credentials = std::fs::read(data.join("credentials")).expect("credentials");
    let key = std::fs::read(data.join("server.key")).expect("server key");

    let empty = dir.path().join("elsewhere.db");
    let url = format!("sqlite://{}", empty.display());
    let port = free_port();
    let err = refused_start(
        serve_command(&data, port, &["--database-url", &url], &[]),
        port,
    )
    .await;
    assert!(
        err.contains(&format!("the data directory {}", data.display()))
            && err.contains("credentials")
            && err.contains("--database-url"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(data.join("credentials")).expect("credentials"),
        credentials
    );
    assert_eq!(std::fs::read(data.join("server.key")).expect("key"), key);
    assert!(!data.join("credentials.new").exists());

    // Its own store still starts.
    let port = free_port();
    let _child = spawn_with(&data, port, &[], &[]).await;
    assert_eq!(readyz(&format!("http://127.0.0.1:{port}")).await, 200);
}

/// Before D82 an existing data directory kept mode 0755 and the database files were
/// 0644. Now the directory is made 0700 and the database, its WAL and shared-memory
/// files 0600, on a fresh start and on one that finds them open to others.
#[tokio::test]
async fn the_data_directory_and_database_files_are_private() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    std::fs::create_dir(&data).expect("mkdir");
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let files = ["tagd.db", "tagd.db-wal", "tagd.db-shm"];
    for round in 0..2 {
        let port = free_port();
        let base = format!("http://127.0.0.1:{port}");
        let mut child = spawn_with(&data, port, &["--auto-register"], &[]).await;
        let token = admin_token(&base, &data, json!({"domain": {"name": "tagd"}})).await;
        let project = credential(&data, "project_id");
        assert_eq!(tag(&base, &token, &project, round).await.0, 200);
        assert_eq!(mode(&data), "700", "round {round}: the data directory");
        for file in files {
            assert_eq!(mode(&data.join(file)), "600", "round {round}: {file}");
        }
        // Left open to others, as an older tagd left them, for the next round.
        child.kill().await.expect("kill");
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        for file in files {
            let _ =
                std::fs::set_permissions(data.join(file), std::fs::Permissions::from_mode(0o644));
        }
    }
}

/// Before D82 the backup's temporary copy was made with the default mode and a killed
/// backup left it behind for good. Now the copy is private, and the next backup removes
/// one left by a killed run (nobody holds its lock) but not the file it writes.
#[tokio::test]
async fn a_backup_is_private_and_removes_a_killed_backups_temporary_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let _child = spawn_with(&data, port, &["--auto-register"], &[]).await;
    let token = admin_token(&base, &data, json!({"domain": {"name": "tagd"}})).await;
    let project = credential(&data, "project_id");
    assert_eq!(tag(&base, &token, &project, 1).await.0, 200);

    let out = dir.path().join("backups");
    std::fs::create_dir(&out).expect("mkdir");
    // What a backup killed mid-copy leaves: another process's name, its lock gone.
    let stale = out.join(".tagd.bak.backup-4000000-0123456789abcdef.tmp");
    std::fs::write(&stale, b"half a snapshot").expect("stale file");
    let unrelated = out.join(".notes.tmp");
    std::fs::write(&unrelated, b"not ours").expect("unrelated file");

    let to = out.join("tagd.bak");
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_tagd"))
        .args(["admin", "--data-dir"])
        .arg(&data)
        .arg("backup")
        .arg(&to)
        .env_remove("TAGD_DATABASE_URL")
        .env_remove("TAGD_DATA_DIR")
        .output()
        .expect("tagd admin backup");
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(mode(&to), "600");
    assert!(
        !stale.exists(),
        "the killed backup's temporary file is still there"
    );
    assert!(
        unrelated.exists(),
        "a file that is not a backup's was removed"
    );
    let left: Vec<String> = std::fs::read_dir(&out)
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".backup-"))
        .collect();
    assert!(left.is_empty(), "temporary files left: {left:?}");
}

/// Tags 50 resources `{prefix}-0..49` with 10 tags each in one TMS call; the status.
async fn tag_many(base: &str, token: &str, project: &str, prefix: &str) -> u16 {
    let resources: Vec<Value> = (0..50)
        .map(|i| json!({"resource_id": format!("{prefix}-{i}"), "resource_type": "disk"}))
        .collect();
    let tags: Vec<Value> = (0..10)
        .map(|k| json!({"key": format!("k{k}"), "value": prefix}))
        .collect();
    let r = reqwest::Client::new()
        .post(format!("{base}/v1.0/resource-tags/batch-create"))
        .header("X-Auth-Token", token)
        .json(&json!({"project_id": project, "resources": resources, "tags": tags}))
        .send()
        .await
        .expect("batch-create");
    r.status().as_u16()
}

/// SQLite's automatic checkpoint ignores its own errors, so before D80 a checkpoint
/// that could not write the database file went unseen and commits went on being
/// acknowledged. The writer now checkpoints itself: here no file may be written past
/// 5 MB, which the WAL (emptied first) reaches only after many batches but a checkpoint
/// into the database file (7.5 MB) at once. So the checkpoint, not a commit, is what
/// fails; the store stops, and a restart finds every acknowledged batch.
#[tokio::test]
async fn a_failed_checkpoint_stops_the_store_until_tagd_is_restarted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let port = free_port();
    let mut child = spawn_with(&data, port, &[], &[]).await;
    sigterm(&child);
    child.wait().await.expect("tagd stops");
    let generate = std::process::Command::new(env!("CARGO_BIN_EXE_tagd"))
        .args(["admin", "--data-dir"])
        .arg(&data)
        .args([
            "generate",
            "--project",
            "cn-north-4",
            "--resources",
            "20000",
        ])
        .env_remove("TAGD_DATABASE_URL")
        .env_remove("TAGD_DATA_DIR")
        .output()
        .expect("tagd admin generate");
    assert!(
        generate.status.success(),
        "{}",
        String::from_utf8_lossy(&generate.stderr)
    );
    let db = data.join("tagd.db");
    // The WAL emptied, so what it holds later is what this tagd wrote.
    rusqlite::Connection::open(&db)
        .and_then(|c| c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())))
        .expect("checkpoint");
    let db_size = std::fs::metadata(&db).expect("database").len();
    const LIMIT: u64 = 5 << 20;
    assert!(
        db_size > LIMIT + (1 << 20),
        "the database is only {db_size} bytes"
    );

    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let child = spawn_limitable(&data, port).await;
    let token = admin_token(&base, &data, json!({"domain": {"name": "tagd"}})).await;
    let project = credential(&data, "project_id");
    limit_file_size(&child, Some(LIMIT));

    let wal = data.join("tagd.db-wal");
    let mut acknowledged = Vec::new();
    let mut refused = None;
    for n in 0..100 {
        let prefix = format!("batch{n}");
        match tag_many(&base, &token, &project, &prefix).await {
            200 => acknowledged.push(prefix),
            status => {
                refused = Some(status);
                break;
            }
        }
    }
    let wal_size = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
    assert_eq!(
        refused,
        Some(503),
        "after {} acknowledged batches (WAL {wal_size} bytes)",
        acknowledged.len()
    );
    assert!(
        wal_size < LIMIT,
        "the WAL reached the limit ({wal_size} bytes): a commit failed, not a checkpoint"
    );
    limit_file_size(&child, None);
    assert_eq!(tag_many(&base, &token, &project, "after").await, 503);
    assert_eq!(readyz(&base).await, 503);
    drop(child);

    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let _child = spawn_with(&data, port, &[], &[]).await;
    assert_eq!(readyz(&base).await, 200);
    let token = admin_token(&base, &data, json!({"domain": {"name": "tagd"}})).await;
    for prefix in &acknowledged {
        let r = reqwest::Client::new()
            .get(format!(
                "{base}/v2.0/resources/{prefix}-49/tags?project_id={project}&resource_type=disk"
            ))
            .header("X-Auth-Token", &token)
            .send()
            .await
            .expect("read tags");
        assert_eq!(r.status(), 200, "{prefix}");
        let body: Value = r.json().await.expect("json");
        assert_eq!(
            body["tags"].as_array().map(Vec::len),
            Some(10),
            "{prefix}: {body}"
        );
    }
}

/// The same on PostgreSQL: a data directory pointed at a recreated (empty) database.
#[tokio::test]
async fn a_recreated_postgres_database_does_not_overwrite_the_credentials() {
    let first = tagd::store::throwaway::ThrowawayDatabase::create().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let port = free_port();
    let mut child = spawn_with(&data, port, &["--database-url", &first.url], &[]).await;
    sigterm(&child);
    child.wait().await.expect("tagd stops");
    let credentials = std::fs::read(data.join("credentials")).expect("credentials");

    let recreated = tagd::store::throwaway::ThrowawayDatabase::create().await;
    let port = free_port();
    let err = refused_start(
        serve_command(&data, port, &["--database-url", &recreated.url], &[]),
        port,
    )
    .await;
    assert!(
        err.contains(&format!("the data directory {}", data.display()))
            && err.contains("credentials"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(data.join("credentials")).expect("credentials"),
        credentials
    );
}
