//! HTTPS with rustls (issue 8): a self-signed certificate made for the test, the real
//! binary serving it on loopback, and a client that trusts only that certificate. The
//! whole API works over it; plain HTTP and clients that do not trust the certificate
//! get nothing; a client that never finishes its handshake is cut off without holding
//! up anyone; and bad certificate settings stop the start with a message naming them.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

#[path = "api/tagd_process.rs"]
mod tagd_process;
use tagd_process::{credential, free_port};

/// A certificate for 127.0.0.1 and localhost, written as `cert.pem` and `key.pem` in
/// `dir`; the certificate's PEM.
fn self_signed(dir: &Path) -> String {
    let certified =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .expect("certificate");
    let cert = certified.cert.pem();
    std::fs::write(dir.join("cert.pem"), &cert).expect("write cert");
    std::fs::write(dir.join("key.pem"), certified.signing_key.serialize_pem()).expect("write key");
    cert
}

fn tagd(data: &Path, port: u16, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tagd"));
    command
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(data)
        .args(args)
        .env_remove("TAGD_DATABASE_URL")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    command
}

/// Every string in `value` that looks like an absolute URL.
fn collect_urls(value: &serde_json::Value, into: &mut Vec<String>) {
    match value {
        serde_json::Value::String(s) if s.contains("://") => into.push(s.clone()),
        serde_json::Value::Array(items) => items.iter().for_each(|v| collect_urls(v, into)),
        serde_json::Value::Object(map) => map.values().for_each(|v| collect_urls(v, into)),
        _ => {}
    }
}

/// A client that trusts exactly the certificate `cert_pem`.
fn trusting(cert_pem: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert_pem.as_bytes()).expect("pem"))
        .build()
        .expect("client")
}

/// Starts tagd with HTTPS and waits until `client` gets an answer from it.
async fn start_https(dir: &Path, port: u16, client: &reqwest::Client, extra: &[&str]) -> Child {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let mut args = vec![
        "--tls-cert-file",
        cert.to_str().expect("utf-8"),
        "--tls-key-file",
        key.to_str().expect("utf-8"),
    ];
    args.extend_from_slice(extra);
    let child = tagd(&dir.join("data"), port, &args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn tagd");
    for _ in 0..400 {
        if client
            .get(format!("https://127.0.0.1:{port}/"))
            .send()
            .await
            .is_ok()
        {
            return child;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("tagd did not answer HTTPS on port {port}");
}

#[tokio::test]
async fn the_api_is_served_over_https_to_clients_that_trust_the_certificate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cert = self_signed(dir.path());
    let client = trusting(&cert);
    let port = free_port();
    let _tagd = start_https(dir.path(), port, &client, &["--auto-register"]).await;
    let base = format!("https://127.0.0.1:{port}");
    let data = dir.path().join("data");

    // A token, a tag write and its read-back, all over TLS.
    let body = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": credential(&data, "user_name"), "password": credential(&data, "password"),
        "domain": {"name": credential(&data, "domain_name")}}}},
        "scope": {"project": {"id": credential(&data, "project_id")}}}});
    let r = client
        .post(format!("{base}/v3/auth/tokens"))
        .json(&body)
        .send()
        .await
        .expect("token");
    assert_eq!(r.status(), 201);
    let token = r.headers()["x-subject-token"]
        .to_str()
        .expect("ascii")
        .to_owned();
    // Every link tagd hands out over HTTPS is HTTPS: the catalogue the SDKs follow,
    // the version documents, the project links. A client following an http:// link
    // would send its token in clear text.
    let issued: serde_json::Value = r.json().await.expect("token body");
    let mut links = Vec::new();
    collect_urls(&issued, &mut links);
    for (path, with_token) in [("/", false), ("/v1.0", false), ("/v3/auth/projects", true)] {
        let mut request = client.get(format!("{base}{path}"));
        if with_token {
            request = request.header("X-Auth-Token", &token);
        }
        let body: serde_json::Value = request.send().await.expect(path).json().await.expect(path);
        collect_urls(&body, &mut links);
    }
    assert!(links.len() >= 8, "links found: {links:?}");
    for link in &links {
        assert!(
            *link == base || link.starts_with(&format!("{base}/")),
            "{link} is not {base} or under it"
        );
    }
    let project = credential(&data, "project_id");
    let r = client
        .post(format!("{base}/v2/{project}/stream/s-1/tags/action"))
        .header("X-Auth-Token", &token)
        .json(&json!({"action": "create", "tags": [{"key": "env", "value": "tls"}]}))
        .send()
        .await
        .expect("tag");
    assert_eq!(r.status(), 204);
    let r = client
        .get(format!("{base}/v2/{project}/stream/s-1/tags"))
        .header("X-Auth-Token", &token)
        .send()
        .await
        .expect("read");
    assert_eq!(r.status(), 200);
    let tags: serde_json::Value = r.json().await.expect("JSON");
    assert_eq!(tags["tags"], json!([{"key": "env", "value": "tls"}]));

    // `tagd healthcheck` with the server's own options probes it over TLS.
    let (cert_file, key_file) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let out = Command::new(env!("CARGO_BIN_EXE_tagd"))
        .args(["healthcheck", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--tls-cert-file")
        .arg(&cert_file)
        .arg("--tls-key-file")
        .arg(&key_file)
        .output()
        .await
        .expect("run tagd healthcheck");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && said.contains("200"),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Plain HTTP on the HTTPS port gets no HTTP answer.
    let plain = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/"))
        .send()
        .await;
    assert!(plain.is_err(), "plain HTTP was answered: {plain:?}");

    // A client that does not trust the certificate refuses the connection.
    let other = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()])
        .expect("certificate")
        .cert
        .pem();
    let untrusting = trusting(&other).get(format!("{base}/")).send().await;
    assert!(untrusting.is_err(), "an untrusted certificate was accepted");
}

#[tokio::test]
async fn a_client_that_never_finishes_its_handshake_is_cut_off_without_holding_others() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cert = self_signed(dir.path());
    let client = trusting(&cert);
    let port = free_port();
    let _tagd = start_https(
        dir.path(),
        port,
        &client,
        &["--header-read-timeout-secs", "1", "--max-connections", "2"],
    )
    .await;

    // One silent connection: it holds one of the two slots, not the accept loop.
    let mut silent = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let r = client
        .get(format!("https://127.0.0.1:{port}/"))
        .send()
        .await
        .expect("served while another client is silent");
    assert_eq!(r.status(), 200);

    // The silent one is closed after about the header-read timeout.
    let started = Instant::now();
    let mut buf = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), silent.read_to_end(&mut buf)).await;
    assert!(
        closed.is_ok(),
        "a silent TLS client held its connection for 5 s"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn bad_tls_settings_stop_the_start_with_a_clear_message() {
    let dir = tempfile::tempdir().expect("tempdir");
    self_signed(dir.path());
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "not a certificate\n").expect("write");
    let other_key = dir.path().join("other-key.pem");
    std::fs::write(
        &other_key,
        rcgen::KeyPair::generate().expect("key").serialize_pem(),
    )
    .expect("write");

    let cases: [(&[&Path], &str); 4] = [
        (&[&cert], "tls_cert_file and tls_key_file go together"),
        (&[&junk, &key], "junk.pem"),
        (&[&cert, &junk], "junk.pem"),
        (&[&cert, &other_key], "do not go together"),
    ];
    for (files, expected) in cases {
        let mut args: Vec<&str> = vec!["--tls-cert-file", files[0].to_str().expect("utf-8")];
        if let Some(key) = files.get(1) {
            args.extend(["--tls-key-file", key.to_str().expect("utf-8")]);
        }
        let out = tagd(&dir.path().join("data"), free_port(), &args)
            .output()
            .await
            .expect("run tagd");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "started with {files:?}");
        assert!(
            stderr.contains(expected),
            "{files:?}: expected {expected:?} in {stderr}"
        );
        // The start stopped before touching the store.
        assert!(
            !dir.path().join("data").join("tagd.db").exists(),
            "{files:?} created a database"
        );
    }
}
