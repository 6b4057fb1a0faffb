//! The connection limits that protect the server from its clients (issue 8): slow heads
//! are cut off, oversized heads and header floods get 431, and connections beyond the
//! cap wait to be accepted instead of being served. Each test starts the real binary
//! with small limits and talks raw HTTP/1.1 to it over loopback.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[path = "api/tagd_process.rs"]
mod tagd_process;
use tagd_process::{free_port, sigterm, spawn_with};

/// Sends `head` (and nothing else) and reads until the server closes the connection or
/// `wait` passes; what was read.
async fn exchange(port: u16, head: &[u8], wait: Duration) -> Vec<u8> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    stream.write_all(head).await.expect("write");
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(wait, stream.read_to_end(&mut answer)).await;
    answer
}

fn status_line(answer: &[u8]) -> String {
    String::from_utf8_lossy(answer)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn a_head_sent_too_slowly_is_cut_off_and_others_are_still_served() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let _tagd = spawn_with(dir.path(), port, &["--header-read-timeout-secs", "1"], &[]).await;

    // Half a head, then silence: the connection is closed after about a second.
    let mut slow = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    slow.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Trickle: ")
        .await
        .expect("write");
    let started = Instant::now();
    let mut answer = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), slow.read_to_end(&mut answer)).await;
    assert!(
        closed.is_ok(),
        "a half-sent head held its connection for 5 s"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "cut off before the timeout: {:?}",
        started.elapsed()
    );
    assert!(
        answer.is_empty() || status_line(&answer).contains("408"),
        "unexpected answer to a stalled head: {:?}",
        String::from_utf8_lossy(&answer)
    );

    // A prompt client on a fresh connection is served as usual.
    let answer = exchange(
        port,
        b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
        Duration::from_secs(5),
    )
    .await;
    assert!(
        status_line(&answer).contains(" 200 "),
        "{}",
        status_line(&answer)
    );
}

#[tokio::test]
async fn oversized_heads_and_header_floods_get_431() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let _tagd = spawn_with(
        dir.path(),
        port,
        &["--max-header-bytes", "8192", "--max-headers", "32"],
        &[],
    )
    .await;

    let huge = format!(
        "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Huge: {}\r\nConnection: close\r\n\r\n",
        "a".repeat(20_000)
    );
    let answer = exchange(port, huge.as_bytes(), Duration::from_secs(5)).await;
    assert!(
        status_line(&answer).contains(" 431 "),
        "a 20 KB header: {}",
        status_line(&answer)
    );

    let mut flood = String::from("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    for i in 0..40 {
        flood.push_str(&format!("X-H{i}: v\r\n"));
    }
    flood.push_str("Connection: close\r\n\r\n");
    let answer = exchange(port, flood.as_bytes(), Duration::from_secs(5)).await;
    assert!(
        status_line(&answer).contains(" 431 "),
        "41 headers over a limit of 32: {}",
        status_line(&answer)
    );

    // Within both limits: served.
    let mut fine = String::from("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    for i in 0..20 {
        fine.push_str(&format!("X-H{i}: {}\r\n", "v".repeat(100)));
    }
    fine.push_str("Connection: close\r\n\r\n");
    let answer = exchange(port, fine.as_bytes(), Duration::from_secs(5)).await;
    assert!(
        status_line(&answer).contains(" 200 "),
        "{}",
        status_line(&answer)
    );
}

#[tokio::test]
async fn connections_beyond_the_cap_wait_their_turn() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    // spawn_with polls until one request is answered; that connection is closed again.
    let _tagd = spawn_with(dir.path(), port, &["--max-connections", "2"], &[]).await;
    // Give the probe connection's slot time to be returned.
    tokio::time::sleep(Duration::from_millis(200)).await;

    let hold = |_| async {
        let stream = TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect");
        // Accepted and served (so holding a slot) once a request is answered on it.
        let mut stream = stream;
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            .await
            .expect("write");
        let mut buf = [0u8; 1024];
        let n = stream.read(&mut buf).await.expect("read");
        assert!(status_line(&buf[..n]).contains(" 200 "));
        stream
    };
    let first = hold(0).await;
    let _second = hold(1).await;

    // A third client connects (the kernel queues it) but is not served while both
    // slots are held.
    let waiting = tokio::spawn(async move {
        let started = Instant::now();
        let answer = exchange(
            port,
            b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
            Duration::from_secs(10),
        )
        .await;
        (started.elapsed(), answer)
    });
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(!waiting.is_finished(), "a third connection was served");

    // One client leaves: the waiting one is served.
    drop(first);
    let (elapsed, answer) = waiting.await.expect("task");
    assert!(
        status_line(&answer).contains(" 200 "),
        "{}",
        status_line(&answer)
    );
    assert!(elapsed >= Duration::from_millis(700), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
}

/// SIGTERM lets a request that is in flight finish and be answered, then exits; a
/// request that never completes holds the exit back only for `--shutdown-grace-secs`.
#[tokio::test]
async fn shutdown_drains_in_flight_requests_within_the_grace() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let mut tagd = spawn_with(dir.path(), port, &["--shutdown-grace-secs", "2"], &[]).await;
    let body = br#"{"auth": {"identity": {"methods": ["password"]}}}"#;
    let head = format!(
        "POST /v3/auth/tokens HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    // In flight: the head and half the body are sent.
    let mut finishing = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    finishing
        .write_all(&[head.as_bytes(), &body[..10]].concat())
        .await
        .expect("write");
    // Never completed: half a body, then silence.
    let mut stalled = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    stalled
        .write_all(&[head.as_bytes(), &body[..10]].concat())
        .await
        .expect("write");
    tokio::time::sleep(Duration::from_millis(200)).await;

    sigterm(&tagd);
    let started = Instant::now();
    tokio::time::sleep(Duration::from_millis(300)).await;

    // The in-flight request completes and is answered (401: no such user).
    finishing.write_all(&body[10..]).await.expect("finish");
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), finishing.read_to_end(&mut answer))
        .await
        .expect("answered before the exit")
        .expect("read");
    assert!(
        status_line(&answer).starts_with("HTTP/1.1 4"),
        "{}",
        status_line(&answer)
    );

    // The stalled one is given up on after the grace: the process exits.
    let status = tokio::time::timeout(Duration::from_secs(10), tagd.wait())
        .await
        .expect("tagd exited within the grace")
        .expect("wait");
    assert!(status.success(), "{status}");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(1500) && took < Duration::from_secs(6),
        "exited after {took:?} with a grace of 2 s"
    );
    drop(stalled);
}

/// The resident memory of process `pid`, in bytes (Linux).
fn resident_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .and_then(|kb| kb.trim().parse::<u64>().ok())
        .expect("VmRSS")
        * 1024
}

/// Failed logins need no credential, so nothing they leave behind may grow with what
/// the client sends: 300 logins with 1 MB user names are refused with 400 before any
/// lookup or hash, and the server's memory grows by less than 20 MB (it grew by
/// 386 MB when each name was remembered for the lockout).
#[tokio::test]
async fn failed_logins_with_huge_names_leave_no_memory_behind() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let tagd = spawn_with(dir.path(), port, &[], &[]).await;
    let pid = tagd.id().expect("pid");
    let http = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/v3/auth/tokens");
    let login = |name: String| {
        serde_json::json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": name, "password": "not-the-password", "domain": {"name": "tagd"}}}}}})
    };
    // Warm up the allocator and the connection with small failed logins.
    for i in 0..20 {
        let r = http
            .post(&url)
            .json(&login(format!("nobody-{i}")))
            .send()
            .await
            .expect("login");
        assert_eq!(r.status(), 401);
    }
    let before = resident_bytes(pid);
    for i in 0..300 {
        let name = format!("{i:03}{}", "n".repeat(1_000_000));
        let r = http
            .post(&url)
            .json(&login(name))
            .send()
            .await
            .expect("login");
        assert_eq!(r.status(), 400, "login {i}");
    }
    let after = resident_bytes(pid);
    let grown = after.saturating_sub(before);
    assert!(
        grown < 20 * 1024 * 1024,
        "resident memory grew by {} MB ({before} -> {after} bytes)",
        grown / (1024 * 1024)
    );
}
