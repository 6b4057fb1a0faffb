//! Metrics and logs of a real tagd (issue 9): `/metrics` on the admin listener counts
//! requests by route template, dialect and status, auth failures by reason, rate-limited
//! requests, group commits and each project's resources and tags; it is not served on
//! the public port; JSON logs are one object per line with one access line per request,
//! carrying the id the response carried.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use tokio::process::Child;

#[path = "api/tagd_process.rs"]
mod tagd_process;
use tagd_process::{
    admin_token, credential, free_port, serve_command, sigterm, spawn_with, wait_until_serving,
};

/// A running tagd with an admin listener.
struct Server {
    dir: tempfile::TempDir,
    _child: Child,
    base: String,
    admin: String,
    project: String,
    http: Client,
}

async fn start(extra: &[&str]) -> Server {
    let dir = tempfile::tempdir().expect("tempdir");
    let (port, admin_port) = (free_port(), free_port());
    let admin = format!("127.0.0.1:{admin_port}");
    let mut args = vec!["--auto-register", "--admin-listen", &admin];
    args.extend_from_slice(extra);
    let child = spawn_with(dir.path(), port, &args, &[]).await;
    let project = credential(dir.path(), "project_id");
    Server {
        dir,
        _child: child,
        base: format!("http://127.0.0.1:{port}"),
        admin: format!("http://{admin}"),
        project,
        http: Client::new(),
    }
}

impl Server {
    async fn token(&self) -> String {
        admin_token(
            &self.base,
            self.dir.path(),
            json!({"project": {"id": self.project}}),
        )
        .await
    }

    /// Creates tag `key` on RDS instance `id` through the RDS API.
    async fn rds_tag(&self, token: &str, id: &str, key: &str) -> StatusCode {
        self.http
            .post(format!(
                "{}/v3/{}/instances/{id}/tags/action",
                self.base, self.project
            ))
            .header("X-Auth-Token", token)
            .json(&json!({"action": "create", "tags": [{"key": key, "value": "v"}]}))
            .send()
            .await
            .expect("request")
            .status()
    }

    async fn rds_tags(&self, token: Option<&str>, id: &str) -> StatusCode {
        let mut req = self.http.get(format!(
            "{}/v3/{}/instances/{id}/tags",
            self.base, self.project
        ));
        if let Some(token) = token {
            req = req.header("X-Auth-Token", token);
        }
        req.send().await.expect("request").status()
    }

    async fn scrape(&self) -> String {
        let r = self
            .http
            .get(format!("{}/metrics", self.admin))
            .send()
            .await
            .expect("scrape");
        assert_eq!(r.status(), StatusCode::OK);
        assert!(
            r.headers()["content-type"]
                .to_str()
                .expect("ascii")
                .starts_with("text/plain; version=0.0.4"),
            "{:?}",
            r.headers()["content-type"]
        );
        r.text().await.expect("text")
    }
}

/// The value of the sample `series` (name and labels exactly as exposed), if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let value = line.strip_prefix(series)?.strip_prefix(' ')?;
        Some(value.parse().expect("a number"))
    })
}

fn value(text: &str, series: &str) -> f64 {
    sample(text, series).unwrap_or_else(|| panic!("no sample {series} in\n{text}"))
}

const ACTION: &str = "/v3/{project_id}/instances/{instance_id}/tags/action";
const READ: &str = "/v3/{project_id}/instances/{instance_id}/tags";

#[tokio::test]
async fn metrics_count_requests_auth_failures_store_work_and_project_totals() {
    let s = start(&[]).await;
    let token = s.token().await;
    // Three writes on two instances: two raw paths, one route template.
    assert_eq!(s.rds_tag(&token, "i-1", "a").await, StatusCode::NO_CONTENT);
    assert_eq!(s.rds_tag(&token, "i-1", "b").await, StatusCode::NO_CONTENT);
    assert_eq!(s.rds_tag(&token, "i-2", "a").await, StatusCode::NO_CONTENT);
    assert_eq!(s.rds_tags(Some(&token), "i-1").await, StatusCode::OK);
    assert_eq!(s.rds_tags(None, "i-1").await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        s.rds_tags(Some("forged-token"), "i-1").await,
        StatusCode::UNAUTHORIZED
    );
    let unknown = s
        .http
        .get(format!("{}/v1.0/no-such-api/123", s.base))
        .send()
        .await
        .expect("request");
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);

    let text = s.scrape().await;
    let requests = |route: &str, status: u16| {
        value(
            &text,
            &format!(
                "tagd_http_requests_total{{dialect=\"rds\",route=\"{route}\",status=\"{status}\"}}"
            ),
        )
    };
    assert_eq!(requests(ACTION, 204), 3.0);
    assert_eq!(requests(READ, 200), 1.0);
    assert_eq!(requests(READ, 401), 2.0);
    assert_eq!(
        value(
            &text,
            "tagd_http_requests_total{dialect=\"tms\",route=\"unmatched\",status=\"404\"}"
        ),
        1.0
    );
    assert_eq!(
        value(
            &text,
            &format!(
                "tagd_http_request_duration_seconds_count{{dialect=\"rds\",route=\"{ACTION}\"}}"
            )
        ),
        3.0
    );
    assert!(
        sample(
            &text,
            &format!("tagd_http_request_duration_seconds_bucket{{dialect=\"rds\",route=\"{ACTION}\",le=\"+Inf\"}}")
        ) == Some(3.0),
        "{text}"
    );
    // Route labels are templates: no raw id or path reaches a label.
    for raw in ["i-1", "i-2", s.project.as_str(), "no-such-api"] {
        assert!(
            !text
                .lines()
                .any(|l| l.contains("route=") && l.contains(raw)),
            "{raw} in a route label:\n{text}"
        );
    }
    assert_eq!(
        value(&text, "tagd_auth_failures_total{reason=\"missing_token\"}"),
        1.0
    );
    assert_eq!(
        value(&text, "tagd_auth_failures_total{reason=\"invalid_token\"}"),
        1.0
    );
    assert_eq!(
        value(&text, "tagd_auth_failures_total{reason=\"bad_signature\"}"),
        0.0
    );
    assert_eq!(
        value(&text, "tagd_rate_limited_total{policy=\"credential\"}"),
        0.0
    );
    // Every write went through the writer's group commit, and was timed as a store call.
    let writes = value(
        &text,
        "tagd_store_operation_duration_seconds_count{backend=\"sqlite\",kind=\"write\",operation=\"apply_tags\"}",
    );
    assert_eq!(writes, 3.0);
    let batches = value(&text, "tagd_store_write_batch_size_count");
    let batched = value(&text, "tagd_store_write_batch_size_sum");
    assert!(batches >= 3.0, "{batches} group commits for 3 tag writes");
    assert!(batched >= batches, "{batched} writes in {batches} groups");
    assert_eq!(
        value(&text, "tagd_store_group_commit_duration_seconds_count"),
        batches
    );
    // i-1 has two tags, i-2 one.
    let domain = credential(s.dir.path(), "domain_id");
    let labels = format!("{{domain=\"{domain}\",project=\"{}\"}}", s.project);
    assert_eq!(
        value(&text, &format!("tagd_project_resources{labels}")),
        2.0
    );
    assert_eq!(value(&text, &format!("tagd_project_tags{labels}")), 3.0);

    // More tags move the gauges at the next scrape.
    assert_eq!(s.rds_tag(&token, "i-3", "c").await, StatusCode::NO_CONTENT);
    let text = s.scrape().await;
    assert_eq!(
        value(&text, &format!("tagd_project_resources{labels}")),
        3.0
    );
    assert_eq!(value(&text, &format!("tagd_project_tags{labels}")), 4.0);
    assert_eq!(
        value(
            &text,
            &format!(
                "tagd_http_requests_total{{dialect=\"rds\",route=\"{ACTION}\",status=\"204\"}}"
            )
        ),
        4.0
    );
}

#[tokio::test]
async fn metrics_are_served_only_on_the_admin_listener() {
    let s = start(&[]).await;
    let public = s
        .http
        .get(format!("{}/metrics", s.base))
        .send()
        .await
        .expect("request");
    assert_eq!(public.status(), StatusCode::NOT_FOUND);
    let body: Value = public.json().await.expect("JSON");
    assert_eq!(body["error_code"], "APIGW.0101", "{body}");
    let elsewhere = s
        .http
        .get(format!("{}/v3/auth/tokens", s.admin))
        .send()
        .await
        .expect("request");
    assert_eq!(elsewhere.status(), StatusCode::NOT_FOUND);
    // The public port's /metrics was one more request answered 404 in the gateway's
    // shape (by the route of version documents, `/{api_version}`), not a scrape.
    let text = s.scrape().await;
    assert!(
        text.lines().any(|l| l.starts_with(
            "tagd_http_requests_total{dialect=\"gateway\",route=\"/{api_version}\",status=\"404\"}"
        )),
        "{text}"
    );
}

#[tokio::test]
async fn requests_refused_by_the_rate_limit_are_counted_by_policy() {
    let s = start(&["--rate-limit-per-credential", "1"]).await;
    let token = s.token().await;
    let mut refused = 0;
    for _ in 0..5 {
        if s.rds_tags(Some(&token), "i-1").await == StatusCode::TOO_MANY_REQUESTS {
            refused += 1;
        }
    }
    assert!(
        refused >= 3,
        "only {refused} of 5 requests at once were refused"
    );
    let text = s.scrape().await;
    assert_eq!(
        value(&text, "tagd_rate_limited_total{policy=\"credential\"}"),
        f64::from(refused)
    );
    assert_eq!(
        value(&text, "tagd_rate_limited_total{policy=\"project\"}"),
        0.0
    );
    assert_eq!(
        value(
            &text,
            &format!("tagd_http_requests_total{{dialect=\"rds\",route=\"{READ}\",status=\"429\"}}")
        ),
        f64::from(refused)
    );
}

/// Starts tagd with its log in `log` (JSON lines); returns once it answers.
async fn spawn_logging_json(dir: &Path, port: u16, log: &Path) -> Child {
    let child = serve_command(dir, port, &["--auto-register", "--log-format", "json"], &[])
        .env_remove("TAGD_LOG")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).expect("log file"))
        .spawn()
        .expect("spawn tagd");
    wait_until_serving(port).await;
    child
}

#[tokio::test]
async fn json_logs_have_one_access_line_per_request_with_its_request_id() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("tagd.log");
    let data = dir.path().join("data");
    let port = free_port();
    let mut child = spawn_logging_json(&data, port, &log).await;
    let base = format!("http://127.0.0.1:{port}");
    let project = credential(&data, "project_id");
    let domain = credential(&data, "domain_id");
    let token = admin_token(&base, &data, json!({"project": {"id": project}})).await;
    let http = Client::new();

    // (request id, expected status, expected route); ids of our own, and ones tagd makes.
    let mut sent: Vec<(String, u16, &str)> = Vec::new();
    for (i, given) in [Some("obs-given-1"), None, Some("obs-given-2"), None]
        .into_iter()
        .enumerate()
    {
        let mut req = http
            .post(format!("{base}/v3/{project}/instances/i-{i}/tags/action"))
            .header("X-Auth-Token", &token)
            .json(&json!({"action": "create", "tags": [{"key": "k", "value": "v"}]}));
        if let Some(id) = given {
            req = req.header("X-Request-Id", id);
        }
        let r = req.send().await.expect("request");
        let id = r.headers()["x-request-id"]
            .to_str()
            .expect("ascii")
            .to_owned();
        if let Some(given) = given {
            assert_eq!(id, given);
        }
        sent.push((id, r.status().as_u16(), ACTION));
    }
    let r = http
        .get(format!("{base}/v3/{project}/instances/i-0/tags"))
        .send()
        .await
        .expect("request");
    let id = r.headers()["x-request-id"]
        .to_str()
        .expect("ascii")
        .to_owned();
    sent.push((id, r.status().as_u16(), READ));
    let r = http
        .get(format!("{base}/nowhere/at/all"))
        .send()
        .await
        .expect("request");
    let id = r.headers()["x-request-id"]
        .to_str()
        .expect("ascii")
        .to_owned();
    sent.push((id, r.status().as_u16(), "unmatched"));

    sigterm(&child);
    let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;

    let text = std::fs::read_to_string(&log).expect("read log");
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(
        lines.iter().any(|l| l["message"] == "tagd is listening"),
        "the start was not logged:\n{text}"
    );
    let access: Vec<&Value> = lines
        .iter()
        .filter(|l| l["target"] == "tagd::access")
        .collect();
    for (id, status, route) in &sent {
        let mine: Vec<&&Value> = access.iter().filter(|l| l["request_id"] == *id).collect();
        assert_eq!(mine.len(), 1, "access lines for request {id}:\n{text}");
        let line = mine[0];
        assert_eq!(line["level"], "INFO", "{line}");
        assert_eq!(line["status"], *status, "{line}");
        assert_eq!(line["route"], *route, "{line}");
        assert!(line["duration_ms"].as_f64().is_some(), "{line}");
        assert!(line["method"].is_string(), "{line}");
        // The request's span carries the same id.
        assert_eq!(line["span"]["request_id"], *id, "{line}");
    }
    let authed = access
        .iter()
        .find(|l| l["request_id"] == sent[0].0)
        .expect("line");
    assert_eq!(authed["dialect"], "rds", "{authed}");
    assert_eq!(authed["domain"], domain.as_str(), "{authed}");
    assert_eq!(authed["project"], project.as_str(), "{authed}");
    assert_eq!(authed["method"], "POST", "{authed}");
    let anonymous = access
        .iter()
        .find(|l| l["request_id"] == sent[4].0)
        .expect("line");
    assert_eq!(anonymous["status"], 401, "{anonymous}");
    assert!(anonymous.get("domain").is_none(), "{anonymous}");
    let unmatched = access
        .iter()
        .find(|l| l["request_id"] == sent[5].0)
        .expect("line");
    assert_eq!(unmatched["dialect"], "gateway", "{unmatched}");
    // Every access line belongs to a request: the token request and the start's probes
    // are the only others.
    assert!(
        access.len() <= sent.len() + 1 + 400,
        "{} access lines",
        access.len()
    );
    assert!(!text.contains(&token), "the token reached the log");
}

/// Sends `bytes` on a fresh connection and reads until the server closes it (or 5 s).
async fn raw_exchange(base: &str, bytes: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    stream.write_all(bytes).await.expect("write");
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn connections_refused_before_any_route_are_counted_by_reason() {
    let s = start(&[
        "--max-header-bytes",
        "8192",
        "--header-read-timeout-secs",
        "1",
    ])
    .await;
    let mut huge = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
    huge.extend(std::iter::repeat_n(b'a', 9000));
    huge.extend_from_slice(b"\r\n\r\n");
    let answer = raw_exchange(&s.base, &huge).await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer:?}");
    let answer = raw_exchange(&s.base, b"NOT HTTP AT ALL\r\n\r\n").await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer:?}");
    // Half a head, then silence past the header-read timeout.
    raw_exchange(&s.base, b"GET / HTTP/1.1\r\nHost: x\r\n").await;

    let text = s.scrape().await;
    for (reason, expected) in [
        ("head_too_large", 1.0),
        ("malformed_head", 1.0),
        ("head_timeout", 1.0),
        ("tls_handshake_failed", 0.0),
    ] {
        assert_eq!(
            value(
                &text,
                &format!("tagd_http_connections_refused_total{{reason=\"{reason}\"}}")
            ),
            expected,
            "{reason}"
        );
    }
    // None of them reached a route, so none is a request.
    assert!(
        !text.contains("status=\"431\""),
        "a 431 was counted as a request"
    );
}
