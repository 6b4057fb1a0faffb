//! The real `tagd` binary as a child process, for the tests that need one: a free
//! loopback port, a start that waits until it answers, and its first-run credentials.
//! Shared by the `api` crates and `tests/multi_replica.rs` (included by path).

// Each test crate that includes this file uses only part of it.
#![allow(dead_code)]

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// `tagd serve` on `port` with `dir` as data directory, extra `args` and `env`; returns
/// once it answers HTTP. Its stdout (the first-run welcome) is piped, its log dropped;
/// it is killed when the handle is dropped.
pub async fn spawn_with(dir: &Path, port: u16, args: &[&str], env: &[(&str, &str)]) -> Child {
    let child = serve_command(dir, port, args, env)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn tagd");
    wait_until_serving(port).await;
    child
}

/// The command `spawn_with` runs, for a test that wants its output elsewhere: killed
/// when dropped, with no `TAGD_DATABASE_URL` from the environment.
pub fn serve_command(dir: &Path, port: u16, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tagd"));
    command
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(dir)
        .args(args)
        .envs(env.iter().copied())
        .env_remove("TAGD_DATABASE_URL")
        .kill_on_drop(true);
    command
}

/// Waits until something answers HTTP on 127.0.0.1:`port` (10 s at most).
pub async fn wait_until_serving(port: u16) {
    let http = reqwest::Client::new();
    for _ in 0..400 {
        if http
            .get(format!("http://127.0.0.1:{port}/"))
            .send()
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("tagd on port {port} did not start");
}

/// A field of the credentials the first start wrote to `<dir>/credentials`.
pub fn credential(dir: &Path, name: &str) -> String {
    let text = std::fs::read_to_string(dir.join("credentials")).expect("credentials");
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} = \"")))
        .and_then(|r| r.strip_suffix('"'))
        .expect("field")
        .to_owned()
}

/// A token of the first-run administrator (credentials in `dir`) from the tagd at
/// `base` (`http://127.0.0.1:PORT`), with `scope` (a Keystone scope object).
pub async fn admin_token(base: &str, dir: &Path, scope: serde_json::Value) -> String {
    let body = serde_json::json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": credential(dir, "user_name"), "password": credential(dir, "password"),
        "domain": {"name": credential(dir, "domain_name")}}}}, "scope": scope}});
    let r = reqwest::Client::new()
        .post(format!("{base}/v3/auth/tokens"))
        .json(&body)
        .send()
        .await
        .expect("token");
    assert_eq!(r.status(), 201, "no token for the administrator");
    r.headers()["x-subject-token"]
        .to_str()
        .expect("ascii")
        .to_owned()
}

/// Sends SIGTERM to `child` (a graceful stop, unlike the SIGKILL of `Child::kill`).
pub fn sigterm(child: &Child) {
    let pid = child.id().expect("the process is running").to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(status.success(), "kill -TERM {pid}");
}
