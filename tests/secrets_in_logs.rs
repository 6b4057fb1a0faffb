//! Secrets never reach the logs (issue 8, identity hardening). A real tagd logs at
//! `trace`, the most verbose level, while it issues a token, refuses a wrong password,
//! hands out a permanent and a temporary access key, and verifies a signed request and
//! token requests, good and forged. Its whole log (access lines included) is then
//! searched for every secret it saw, once as text and once as JSON lines.

use std::process::Stdio;
use std::time::{Duration, SystemTime};

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{json, Value};
use tagd::auth::signature::{self, Algorithm, RawRequest};

#[path = "api/tagd_process.rs"]
mod tagd_process;
use tagd_process::{
    admin_token, credential, free_port, serve_command, sigterm, wait_until_serving,
};

const WRONG_PASSWORD: &str = "Wrong-Password-5ecret-9f3a";
const FORGED_TOKEN: &str = "forged-token-5ecret-77c1d0e2";

fn password_auth(password: &str, scope: Value) -> Value {
    json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "admin", "password": password, "domain": {"name": "tagd"}}}},
        "scope": scope}})
}

/// A GET signed with SDK-HMAC-SHA256 the way the SDKs sign it.
async fn signed_get(
    http: &reqwest::Client,
    addr: &str,
    target: &str,
    project: &str,
    keys: (&str, &str, Option<&str>),
) -> reqwest::StatusCode {
    let (access, secret, security_token) = keys;
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let now = time::OffsetDateTime::from(SystemTime::now());
    let date = format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    );
    let mut headers = HeaderMap::new();
    let mut put = |name: &str, value: &str| {
        headers.insert(
            HeaderName::from_bytes(name.as_bytes()).expect("name"),
            HeaderValue::from_str(value).expect("value"),
        );
    };
    put("host", addr);
    put("x-sdk-date", &date);
    put("x-project-id", project);
    if let Some(t) = security_token {
        put("x-security-token", t);
    }
    let mut signed: Vec<String> = headers.keys().map(|k| k.as_str().to_owned()).collect();
    signed.sort();
    let canonical = signature::canonical_request(
        &RawRequest {
            method: "GET",
            raw_path: path,
            raw_query: query,
            headers: &headers,
            body: b"",
        },
        &signed,
        &signature::payload_hash(b""),
    )
    .expect("canonical request");
    let sig = signature::sign(&Algorithm::SdkHmacSha256, access, secret, &date, &canonical);
    let mut req = http.get(format!("http://{addr}{target}")).header(
        "Authorization",
        format!(
            "SDK-HMAC-SHA256 Access={access}, SignedHeaders={}, Signature={sig}",
            signed.join(";")
        ),
    );
    for (name, value) in headers.iter() {
        if name != "host" {
            req = req.header(name, value);
        }
    }
    req.send().await.expect("signed request").status()
}

#[tokio::test]
async fn no_secret_reaches_the_log_even_at_trace_level() {
    no_secret_reaches_the_log("text").await;
}

/// The JSON format writes fields its own way (every field of the request span on every
/// line): searched the same.
#[tokio::test]
async fn no_secret_reaches_the_json_log_even_at_trace_level() {
    no_secret_reaches_the_log("json").await;
}

async fn no_secret_reaches_the_log(format: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let log_path = dir.path().join("tagd.log");
    let log = std::fs::File::create(&log_path).expect("log file");
    let data = dir.path().join("data");
    let mut child = serve_command(
        &data,
        port,
        &[],
        &[("TAGD_LOG", "trace"), ("TAGD_LOG_FORMAT", format)],
    )
    .stdout(Stdio::null())
    .stderr(log)
    .spawn()
    .expect("spawn tagd");
    wait_until_serving(port).await;
    let http = reqwest::Client::new();
    let base = format!("http://{addr}");
    let password = credential(&data, "password");
    let project = credential(&data, "project_id");

    let mut secrets: Vec<(&str, String)> = vec![
        ("the administrator's password", password.clone()),
        ("a wrong password", WRONG_PASSWORD.to_owned()),
        ("a forged token", FORGED_TOKEN.to_owned()),
    ];

    // A wrong password, then the right one.
    let r = http
        .post(format!("{base}/v3/auth/tokens"))
        .json(&password_auth(
            WRONG_PASSWORD,
            json!({"domain": {"name": "tagd"}}),
        ))
        .send()
        .await
        .expect("auth");
    assert_eq!(r.status(), 401);
    let token = admin_token(&base, &data, json!({"domain": {"name": "tagd"}})).await;
    secrets.push(("a domain token", token.clone()));
    let project_token = admin_token(&base, &data, json!({"project": {"id": project}})).await;
    secrets.push(("a project token", project_token.clone()));

    // Token validation, a token request and a forged token.
    let r = http
        .get(format!("{base}/v3/auth/tokens"))
        .header("X-Auth-Token", &token)
        .header("X-Subject-Token", &token)
        .send()
        .await
        .expect("validate");
    let user_id = r.json::<Value>().await.expect("json")["token"]["user"]["id"]
        .as_str()
        .expect("user id")
        .to_owned();
    let r = http
        .get(format!("{base}/v1.0/tag-keys"))
        .header("X-Auth-Token", FORGED_TOKEN)
        .send()
        .await
        .expect("forged");
    assert_eq!(r.status(), 401);

    // A permanent key, and a temporary one.
    let r = http
        .post(format!("{base}/v3.0/OS-CREDENTIAL/credentials"))
        .header("X-Auth-Token", &token)
        .json(&json!({"credential": {"user_id": user_id, "description": "log test"}}))
        .send()
        .await
        .expect("create key");
    assert_eq!(r.status(), 201);
    let body: Value = r.json().await.expect("json");
    let access = body["credential"]["access"]
        .as_str()
        .expect("access")
        .to_owned();
    let secret = body["credential"]["secret"]
        .as_str()
        .expect("secret")
        .to_owned();
    secrets.push(("a secret key", secret.clone()));
    let r = http
        .post(format!("{base}/v3.0/OS-CREDENTIAL/securitytokens"))
        .header("X-Auth-Token", &project_token)
        .json(&json!({"auth": {"identity": {"methods": ["token"], "token": {"duration_seconds": 900}}}}))
        .send()
        .await
        .expect("temporary key");
    assert_eq!(r.status(), 201);
    let body: Value = r.json().await.expect("json");
    let temporary = &body["credential"];
    let (t_access, t_secret, t_token) = (
        temporary["access"].as_str().expect("access").to_owned(),
        temporary["secret"].as_str().expect("secret").to_owned(),
        temporary["securitytoken"]
            .as_str()
            .expect("securitytoken")
            .to_owned(),
    );
    secrets.push(("a temporary secret key", t_secret.clone()));
    secrets.push(("a security token", t_token.clone()));

    // Signed requests with both keys, and one with a wrong secret.
    let target = format!("/v3/{project}/tags");
    let status = signed_get(&http, &addr, &target, &project, (&access, &secret, None)).await;
    assert_eq!(status, 200);
    let status = signed_get(
        &http,
        &addr,
        &target,
        &project,
        (&t_access, &t_secret, Some(&t_token)),
    )
    .await;
    assert_eq!(status, 200);
    let status = signed_get(
        &http,
        &addr,
        &target,
        &project,
        (&access, "not-the-secret", None),
    )
    .await;
    assert_eq!(status, 401);

    // SIGTERM, so everything buffered is written.
    sigterm(&child);
    tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("tagd stopped")
        .expect("wait");

    let text = std::fs::read_to_string(&log_path).expect("read log");
    // The whole run's log was captured, access lines included, or this test would
    // prove nothing.
    assert!(text.contains("tagd is listening"), "{text}");
    assert!(text.contains("tagd stopped"), "{text}");
    assert!(text.contains("tagd::access"), "{text}");
    if format == "json" {
        for line in text.lines() {
            serde_json::from_str::<Value>(line)
                .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
        }
    }
    for (what, secret) in &secrets {
        assert!(
            !text.contains(secret.as_str()),
            "{what} appears in the log at line {:?}",
            text.lines().position(|l| l.contains(secret.as_str()))
        );
    }
}
