//! The real binary as an operator runs it: first-run output, SIGTERM, and SIGKILL
//! losing no acknowledged write.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use serde_json::json;
use tokio::io::AsyncReadExt;
use tokio::process::Child;

use crate::tagd_process::{admin_token, credential, free_port, sigterm, spawn_with};

async fn spawn(dir: &Path, port: u16) -> Child {
    spawn_with(dir, port, &[], &[]).await
}

async fn token(port: u16, dir: &Path) -> String {
    admin_token(
        &format!("http://127.0.0.1:{port}"),
        dir,
        json!({"domain": {"name": "tagd"}}),
    )
    .await
}

#[tokio::test]
async fn first_run_prints_how_to_start_and_keeps_the_password_private() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let mut child = spawn(dir.path(), port).await;
    let mode = std::fs::metadata(dir.path().join("credentials"))
        .expect("credentials")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(dir.path().join("tagd.db").exists());

    // SIGTERM: a clean exit, and the welcome text told how to get a token.
    sigterm(&child);
    let exit = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("exits")
        .expect("wait");
    assert!(exit.success(), "{exit:?}");
    let mut out = String::new();
    child
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut out)
        .await
        .expect("read");
    assert!(out.contains("/v3/auth/tokens"), "{out}");
    assert!(out.contains("batch-create"), "{out}");
    assert!(
        !out.contains(&credential(dir.path(), "password")),
        "the password is not printed"
    );
}

#[tokio::test]
async fn acknowledged_writes_survive_sigkill() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let mut child = spawn(dir.path(), port).await;
    let token = token(port, dir.path()).await;
    let project = credential(dir.path(), "project_id");
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let r = http
        .post(format!("{base}/tagd/v1/resources"))
        .header("X-Auth-Token", &token)
        .json(&json!({"resources": (0..20).map(|i| json!({"project_id": project, "resource_type": "disk", "resource_id": format!("d{i}")})).collect::<Vec<_>>()}))
        .send()
        .await
        .expect("register");
    assert_eq!(r.status(), 200);

    // Concurrent writers; every write acknowledged before the kill must be there after.
    let mut tasks = Vec::new();
    for w in 0..16 {
        let (http, base, token, project) =
            (http.clone(), base.clone(), token.clone(), project.clone());
        tasks.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for n in 0..1000 {
                let id = format!("d{}", (w + n) % 20);
                let body = json!({"project_id": project, "resources": [{"resource_id": id, "resource_type": "disk"}],
                    "tags": [{"key": format!("w{w}"), "value": format!("{n}")}]});
                match http.post(format!("{base}/v1.0/resource-tags/batch-create")).header("X-Auth-Token", &token).json(&body).send().await {
                    Ok(r) if r.status() == 200 => acked.push((id, w, n)),
                    _ => break,
                }
            }
            acked
        }));
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    child.kill().await.expect("SIGKILL");
    let mut acked = Vec::new();
    for t in tasks {
        acked.extend(t.await.expect("task"));
    }
    assert!(
        acked.len() > 50,
        "too few writes before the kill: {}",
        acked.len()
    );

    let port = free_port();
    let _child = spawn(dir.path(), port).await;
    let base = format!("http://127.0.0.1:{port}");
    // The latest acknowledged value of each (resource, writer) must be at least that new:
    // a later unacknowledged write may have landed too, but never an older state.
    let mut latest = std::collections::HashMap::new();
    for (id, w, n) in &acked {
        let e = latest.entry((id.clone(), *w)).or_insert(*n);
        *e = (*e).max(*n);
    }
    for ((id, w), n) in latest {
        let r = http
            .get(format!(
                "{base}/v2.0/resources/{id}/tags?project_id={project}&resource_type=disk"
            ))
            .header("X-Auth-Token", &token)
            .send()
            .await
            .expect("read");
        let body: serde_json::Value = r.json().await.expect("json");
        let value = body["tags"]
            .as_array()
            .and_then(|tags| tags.iter().find(|t| t["key"] == format!("w{w}")))
            .and_then(|t| t["value"].as_str())
            .and_then(|v| v.parse::<usize>().ok());
        assert!(
            value.is_some_and(|v| v >= n),
            "{id} w{w}: acknowledged {n}, found {value:?}"
        );
    }
}

#[tokio::test]
async fn the_commands_printed_on_first_start_work_as_printed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let mut child = spawn(dir.path(), port).await;
    let mut stdout = child.stdout.take().expect("stdout");
    // The welcome text is printed before the server starts answering; read what is there.
    let mut buf = vec![0u8; 64 * 1024];
    let n = tokio::time::timeout(Duration::from_secs(5), stdout.read(&mut buf))
        .await
        .expect("output")
        .expect("read");
    let out = String::from_utf8_lossy(&buf[..n]).to_string();
    let script: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("  "))
        .map(str::trim)
        .collect();
    assert_eq!(script.len(), 4, "token, register, tag, read: {out}");
    let script = script
        .join("\n")
        .replace("   (or start with --auto-register)", "");
    let run = std::process::Command::new("bash")
        .args(["-euo", "pipefail", "-c", &script])
        .output()
        .expect("bash");
    let printed = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{script}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(printed.contains(r#"{"failed_resources":[]}"#), "{printed}");
    assert!(
        printed.contains(r#"{"tags":[{"key":"ENV","value":"dev"}]}"#),
        "{printed}"
    );
}

#[tokio::test]
async fn auto_register_works_as_a_bare_flag_and_as_an_environment_variable() {
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)]);
    let cases: [Case; 2] = [
        (&["--auto-register"], &[]),
        (&[], &[("TAGD_AUTO_REGISTER", "1")]),
    ];
    for (args, env) in cases {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let _child = spawn_with(dir.path(), port, args, env).await;
        let token = token(port, dir.path()).await;
        let project = credential(dir.path(), "project_id");
        let r = reqwest::Client::new()
            .post(format!(
                "http://127.0.0.1:{port}/v1.0/resource-tags/batch-create"
            ))
            .header("X-Auth-Token", &token)
            .json(&json!({"project_id": project, "resources": [{"resource_id": "unregistered", "resource_type": "disk"}],
                "tags": [{"key": "k", "value": "v"}]}))
            .send()
            .await
            .expect("post");
        let body: serde_json::Value = r.json().await.expect("json");
        assert_eq!(body, json!({"failed_resources": []}), "{args:?} {env:?}");
    }
}

#[tokio::test]
async fn the_data_directory_is_private() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let port = free_port();
    let _child = spawn(&data, port).await;
    let mode = std::fs::metadata(&data)
        .expect("data dir")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700);
    assert!(!data.join("credentials.new").exists());
}

/// `tagd serve` on `database_url`: it must stop by itself, failing; returns stderr.
fn serve_fails(dir: &Path, database_url: &str) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tagd"))
        .args(["serve", "--listen", &format!("127.0.0.1:{}", free_port())])
        .arg("--data-dir")
        .arg(dir)
        .args(["--database-url", database_url])
        .output()
        .expect("run tagd");
    assert!(!out.status.success(), "tagd started on {database_url}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test]
async fn serve_names_an_unreachable_database_without_its_password() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Nothing listens on port 1 of loopback: refused at once.
    let err = serve_fails(dir.path(), "postgres://tagd:s3cret-pw@127.0.0.1:1/tags");
    assert!(
        err.contains("cannot reach the database at postgres://127.0.0.1:1/tags")
            && err.contains("Connection refused"),
        "{err}"
    );
    assert!(!err.contains("s3cret-pw"), "{err}");
    let err = serve_fails(dir.path(), "mysql://tagd:s3cret-pw@127.0.0.1/tags");
    assert!(err.contains("unsupported database URL"), "{err}");
    assert!(!err.contains("s3cret-pw"), "{err}");
}

#[tokio::test]
async fn serve_refuses_a_postgres_schema_newer_than_itself() {
    let database = tagd::store::throwaway::ThrowawayDatabase::create().await;
    let (client, connection) = database
        .config()
        .connect(tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    client
        .batch_execute(
            "CREATE TABLE tagd_schema (singleton BOOLEAN PRIMARY KEY, version BIGINT NOT NULL);
             INSERT INTO tagd_schema VALUES (TRUE, 999);",
        )
        .await
        .expect("a newer tagd's schema");
    let dir = tempfile::tempdir().expect("tempdir");
    let err = serve_fails(dir.path(), &database.url);
    assert!(
        err.contains("schema is at version 999") && err.contains("upgrade tagd"),
        "{err}"
    );
    let version: i64 = client
        .query_one("SELECT version FROM tagd_schema", &[])
        .await
        .expect("still there")
        .get(0);
    assert_eq!(version, 999, "the newer schema is left alone");
}

#[tokio::test]
async fn serve_on_postgres_creates_the_data_directory_for_its_credentials() {
    let database = tagd::store::throwaway::ThrowawayDatabase::create().await;
    let parent = tempfile::tempdir().expect("tempdir");
    let dir = parent.path().join("not").join("there");
    let port = free_port();
    let _child = spawn_with(&dir, port, &["--database-url", &database.url], &[]).await;
    let mode = |p: &Path| std::fs::metadata(p).expect("exists").permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join("credentials")), 0o600);
    assert!(
        !dir.join("tagd.db").exists(),
        "nothing of SQLite on PostgreSQL"
    );
    let _token = token(port, &dir).await;
}
