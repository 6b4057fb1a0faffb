//! Health endpoints and `tagd healthcheck`, as an orchestrator uses them: no credential,
//! 200 while ready, 503 and a non-zero exit when the store cannot serve.

use std::time::Duration;

use serde_json::Value;

use crate::{Backend, TestServer, BACKEND};

async fn healthcheck(args: &[&str]) -> (bool, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_tagd"))
        .arg("healthcheck")
        .args(args)
        .env_remove("TAGD_LISTEN")
        .env_remove("TAGD_CONFIG")
        .output()
        .await
        .expect("run tagd healthcheck");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test]
async fn healthz_and_readyz_answer_without_a_credential() {
    let server = TestServer::start().await;
    let r = server
        .http
        .get(server.url("/healthz"))
        .send()
        .await
        .expect("healthz");
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.expect("JSON")["status"], "ok");

    let r = server
        .http
        .get(server.url("/readyz"))
        .send()
        .await
        .expect("readyz");
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.expect("JSON");
    assert_eq!(body["status"], "ready");
    assert!(
        body["schema_version"].as_i64().is_some_and(|v| v > 0),
        "{body}"
    );
}

#[tokio::test]
async fn the_healthcheck_command_exits_0_only_while_the_server_is_ready() {
    let server = TestServer::start().await;
    let listen = server.addr.to_string();
    let (ok, text) = healthcheck(&["--listen", &listen]).await;
    assert!(ok, "{text}");
    assert!(text.contains("200") && text.contains("ready"), "{text}");
    let (ok, text) = healthcheck(&["--listen", &listen, "--live"]).await;
    assert!(ok, "{text}");

    // An unspecified address (a server listening on all interfaces) is probed on loopback.
    let all = format!("0.0.0.0:{}", server.addr.port());
    let (ok, text) = healthcheck(&["--listen", &all]).await;
    assert!(ok, "{text}");

    // Nothing listening: exit 1, saying so.
    server.stop().await;
    let (ok, text) = healthcheck(&["--listen", &listen, "--timeout-secs", "2"]).await;
    assert!(!ok, "{text}");
    assert!(text.contains("cannot connect"), "{text}");
}

#[tokio::test]
async fn readyz_is_503_while_the_sqlite_writer_cannot_write() {
    if BACKEND != Backend::Sqlite {
        return; // A PostgreSQL store has no single writer to get stuck.
    }
    let server = TestServer::start().await;
    // Another process holding the database's write lock: tagd's writer waits for it.
    let db = server.dir.join("tagd.db");
    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    let holder = std::thread::spawn(move || {
        let conn = rusqlite::Connection::open(db).expect("open");
        conn.execute_batch("BEGIN EXCLUSIVE").expect("lock");
        locked_tx.send(()).expect("signal");
        // Long enough that both probes below find it still held (each waits 2 s).
        std::thread::sleep(Duration::from_secs(7));
        conn.execute_batch("COMMIT").expect("unlock");
    });
    locked_rx.recv().expect("locked");
    let r = server
        .http
        .get(server.url("/readyz"))
        .send()
        .await
        .expect("readyz");
    assert_eq!(r.status(), 503);
    let body: Value = r.json().await.expect("JSON");
    assert_eq!(body["status"], "not ready", "{body}");
    let (ok, text) = healthcheck(&["--listen", &server.addr.to_string()]).await;
    assert!(!ok, "{text}");
    assert!(text.contains("503"), "{text}");
    // Still alive meanwhile.
    let r = server
        .http
        .get(server.url("/healthz"))
        .send()
        .await
        .expect("healthz");
    assert_eq!(r.status(), 200);

    holder.join().expect("holder");
    let r = server
        .http
        .get(server.url("/readyz"))
        .send()
        .await
        .expect("readyz");
    assert_eq!(r.status(), 200, "ready again once the lock is gone");
}
