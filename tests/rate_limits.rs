//! Rate limits like the cloud's API gateway (issue 8): past its budget a credential, or
//! a project, gets 429 with `Retry-After` and a flat `APIGW.0308` body in every API;
//! refused writes change nothing; failed authentications spend no one's budget; and
//! the budget comes back after the advertised wait. Each test starts the real binary
//! on loopback with small limits.

use std::time::{Duration, Instant};

use reqwest::{Client, Response, StatusCode};
use serde_json::{json, Value};

#[path = "api/tagd_process.rs"]
mod tagd_process;
use tagd_process::{admin_token, credential, free_port, spawn_with};

struct Server {
    _dir: tempfile::TempDir,
    _child: tokio::process::Child,
    base: String,
    project: String,
    http: Client,
}

async fn start(limits: &[&str]) -> Server {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let mut args = vec!["--auto-register"];
    args.extend_from_slice(limits);
    let child = spawn_with(dir.path(), port, &args, &[]).await;
    let project = credential(dir.path(), "project_id");
    Server {
        _dir: dir,
        _child: child,
        base: format!("http://127.0.0.1:{port}"),
        project,
        http: Client::new(),
    }
}

impl Server {
    async fn project_token(&self) -> String {
        admin_token(
            &self.base,
            self._dir.path(),
            json!({"project": {"id": self.project}}),
        )
        .await
    }

    async fn domain_token(&self) -> String {
        admin_token(
            &self.base,
            self._dir.path(),
            json!({"domain": {"name": credential(self._dir.path(), "domain_name")}}),
        )
        .await
    }

    /// The tags of RDS instance `id`, read through the RDS API.
    async fn rds_tags(&self, token: &str, id: &str) -> Response {
        self.http
            .get(format!(
                "{}/v3/{}/instances/{id}/tags",
                self.base, self.project
            ))
            .header("X-Auth-Token", token)
            .send()
            .await
            .expect("request")
    }

    async fn rds_tag(&self, token: &str, id: &str, key: &str) -> Response {
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
    }
}

/// Checks a 429 is the gateway's: `Retry-After` in whole seconds, the flat `APIGW.0308`
/// body naming `policy`, and the request id of the header repeated in the body.
async fn assert_throttled(response: Response, policy: &str) -> u64 {
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("Retry-After in seconds");
    assert!((1..=5).contains(&retry_after), "Retry-After {retry_after}");
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .expect("ascii")
        .to_owned();
    let body: Value = response.json().await.expect("JSON body");
    assert_eq!(body["error_code"], "APIGW.0308", "{body}");
    assert_eq!(body["request_id"], request_id.as_str(), "{body}");
    let message = body["error_msg"].as_str().expect("error_msg");
    assert!(
        message.contains(&format!("policy {policy} over ratelimit")),
        "{message}"
    );
    retry_after
}

#[tokio::test]
async fn a_credential_past_its_budget_gets_429_and_its_budget_comes_back() {
    // One request a second, three at once.
    let server = start(&[
        "--rate-limit-per-credential",
        "1",
        "--rate-limit-burst-secs",
        "3",
    ])
    .await;
    let busy = server.project_token().await;
    let other = server.project_token().await;

    // Failed authentications are refused before they are counted: a flood with a
    // wrong token spends nobody's budget.
    for _ in 0..10 {
        let r = server.rds_tags("not-a-token", "db-1").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }

    let started = Instant::now();
    let mut served = 0u64;
    let mut refused = None;
    for _ in 0..10 {
        let r = server.rds_tags(&busy, "db-1").await;
        if r.status() == StatusCode::TOO_MANY_REQUESTS {
            refused = Some(r);
            break;
        }
        assert_eq!(r.status(), StatusCode::OK);
        served += 1;
    }
    let elapsed = started.elapsed().as_secs();
    let refused = refused.expect("ten requests at once passed a budget of three a second");
    // The burst of three, plus at most one a second that passed meanwhile.
    assert!(
        (3..=3 + elapsed + 1).contains(&served),
        "{served} served in {elapsed} s before the first 429"
    );
    let retry_after = assert_throttled(refused, "user").await;

    // A write refused by the limit changes nothing.
    let r = server.rds_tag(&busy, "db-1", "refused").await;
    assert_throttled(r, "user").await;

    // Another credential of the same user has a budget of its own.
    let r = server.rds_tags(&other, "db-1").await;
    assert_eq!(r.status(), StatusCode::OK);

    // After the advertised wait, the busy credential is served again.
    tokio::time::sleep(Duration::from_secs(retry_after)).await;
    let r = server.rds_tags(&busy, "db-1").await;
    assert_eq!(r.status(), StatusCode::OK);
    let tags: Value = r.json().await.expect("JSON");
    assert_eq!(tags["tags"], json!([]), "the refused write left a tag");
}

#[tokio::test]
async fn a_project_past_its_budget_gets_429_whoever_calls() {
    // One request a second per project, two at once; no limit per credential.
    let server = start(&[
        "--rate-limit-per-project",
        "1",
        "--rate-limit-burst-secs",
        "2",
    ])
    .await;
    let first = server.project_token().await;
    let second = server.project_token().await;

    let mut refused = None;
    for i in 0..10 {
        let token = if i % 2 == 0 { &first } else { &second };
        let r = server.rds_tag(token, "db-1", &format!("k{i}")).await;
        if r.status() == StatusCode::TOO_MANY_REQUESTS {
            refused = Some((i, r));
            break;
        }
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
    }
    let (refused_at, response) =
        refused.expect("ten writes at once passed a project budget of two a second");
    assert!(refused_at >= 2, "refused after {refused_at} requests");
    let retry_after = assert_throttled(response, "project").await;

    // The refused write is absent; the admitted ones are all there.
    tokio::time::sleep(Duration::from_secs(retry_after)).await;
    let r = server.rds_tags(&first, "db-1").await;
    assert_eq!(r.status(), StatusCode::OK);
    let tags: Value = r.json().await.expect("JSON");
    let mut keys: Vec<String> = tags["tags"]
        .as_array()
        .expect("tags")
        .iter()
        .map(|t| t["key"].as_str().expect("key").to_owned())
        .collect();
    keys.sort();
    let expected: Vec<String> = (0..refused_at).map(|i| format!("k{i}")).collect();
    assert_eq!(keys, expected);

    // A domain-scoped caller of TMS counts against its domain, not this project: it is
    // served even while the project's budget is spent.
    let mut spent = false;
    for i in 0..5 {
        let r = server.rds_tags(&first, &format!("spend-{i}")).await;
        spent |= r.status() == StatusCode::TOO_MANY_REQUESTS;
    }
    assert!(spent, "five reads at once passed a project budget of two");
    let domain = server.domain_token().await;
    let r = server
        .http
        .get(format!("{}/v1.0/tms/providers", server.base))
        .header("X-Auth-Token", &domain)
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn without_limits_configured_nothing_is_throttled() {
    let server = start(&[]).await;
    let token = server.project_token().await;
    for _ in 0..200 {
        let r = server.rds_tags(&token, "db-1").await;
        assert_eq!(r.status(), StatusCode::OK);
    }
}

/// Tokens are credentials too: minting one counts against the budget of the credential
/// it is minted with (a token, or the user for a password), so a flood of token
/// requests is throttled like any other and does not fill the store with tokens.
#[tokio::test]
async fn minting_tokens_counts_against_the_credentials_budget() {
    // One a second: a login takes argon2's time, so a larger budget could refill as
    // fast as logins are checked.
    let server = start(&["--rate-limit-per-credential", "1"]).await;
    let source = server.domain_token().await;
    let mint = json!({"auth": {"identity": {"methods": ["token"], "token": {"id": source}},
        "scope": {"project": {"id": server.project}}}});
    let mut issued = 0;
    let mut refused = None;
    for _ in 0..50 {
        let r = server
            .http
            .post(format!("{}/v3/auth/tokens?nocatalog", server.base))
            .json(&mint)
            .send()
            .await
            .expect("request");
        if r.status() == StatusCode::TOO_MANY_REQUESTS {
            refused = Some(r);
            break;
        }
        assert_eq!(r.status(), StatusCode::CREATED);
        issued += 1;
    }
    let refused = refused.expect("token minting was never throttled");
    assert_throttled(refused, "user").await;
    assert!(
        issued <= 2,
        "{issued} tokens minted from one token in a burst of 1"
    );

    // Password logins count under the user: past the budget the right password gets
    // 429 too, not another token.
    let domain = credential(server._dir.path(), "domain_name");
    let login = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": credential(server._dir.path(), "user_name"),
        "password": credential(server._dir.path(), "password"),
        "domain": {"name": domain}}}}, "scope": {"domain": {"name": domain}}}});
    let mut throttled = false;
    for _ in 0..12 {
        let r = server
            .http
            .post(format!("{}/v3/auth/tokens?nocatalog", server.base))
            .json(&login)
            .send()
            .await
            .expect("request");
        if r.status() == StatusCode::TOO_MANY_REQUESTS {
            assert_throttled(r, "user").await;
            throttled = true;
            break;
        }
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    assert!(
        throttled,
        "12 password logins in a row were never throttled"
    );
}
