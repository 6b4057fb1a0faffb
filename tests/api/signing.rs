//! AK/SK-signed requests, as the official SDKs send them: accepted when every signed
//! byte matches, refused with the gateway's flat 401 otherwise, changing nothing.

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{json, Value};
use tagd::auth::signature::{self, Algorithm, RawRequest};

use crate::{Reply, TestServer};

/// An access key pair.
#[derive(Clone)]
struct Keys {
    access: String,
    secret: String,
    security_token: Option<String>,
}

/// What to do to a request after signing it, or to its signature.
#[derive(Default, Clone)]
struct Twist {
    date: Option<String>,
    body_after_signing: Option<Vec<u8>>,
    unsigned: Vec<&'static str>,
    extra_headers: Vec<(&'static str, String)>,
    omit_security_token: bool,
}

fn sdk_now() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    )
}

/// A plain signed GET of `target`.
async fn signed_get(s: &TestServer, target: &str, keys: &Keys) -> Reply {
    send_signed(s, "GET", target, None, keys, Twist::default()).await
}

async fn send_signed(
    s: &TestServer,
    method: &str,
    target: &str,
    body: Option<&Value>,
    keys: &Keys,
    twist: Twist,
) -> Reply {
    let body_bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut headers = HeaderMap::new();
    let mut put = |name: &str, value: &str| {
        headers.insert(
            HeaderName::from_bytes(name.as_bytes()).expect("name"),
            HeaderValue::from_str(value).expect("value"),
        );
    };
    put("host", &s.addr.to_string());
    put("content-type", "application/json");
    put("x-sdk-date", &twist.date.clone().unwrap_or_else(sdk_now));
    put("x-project-id", &s.creds.project_id);
    if let Some(t) = &keys.security_token {
        if !twist.omit_security_token {
            put("x-security-token", t);
        }
    }
    let mut signed: Vec<String> = headers
        .keys()
        .map(|k| k.as_str().to_owned())
        .filter(|k| !twist.unsigned.contains(&k.as_str()))
        .collect();
    signed.sort();
    let canonical = signature::canonical_request(
        &RawRequest {
            method,
            raw_path: path,
            raw_query: query,
            headers: &headers,
            body: &body_bytes,
        },
        &signed,
        &signature::payload_hash(&body_bytes),
    )
    .expect("canonical request");
    let date = headers["x-sdk-date"].to_str().expect("date").to_owned();
    let sig = signature::sign(
        &Algorithm::SdkHmacSha256,
        &keys.access,
        &keys.secret,
        &date,
        &canonical,
    );
    let authorization = format!(
        "SDK-HMAC-SHA256 Access={}, SignedHeaders={}, Signature={sig}",
        keys.access,
        signed.join(";")
    );
    let mut req = s
        .http
        .request(method.parse().expect("method"), s.url(target))
        .header("Authorization", authorization);
    for (name, value) in headers.iter() {
        if name != "host" {
            req = req.header(name, value);
        }
    }
    for (name, value) in &twist.extra_headers {
        req = req.header(*name, value);
    }
    let sent = twist.body_after_signing.unwrap_or(body_bytes);
    if !sent.is_empty() {
        req = req.body(sent);
    }
    Reply::from_response(req.send().await.expect("request")).await
}

/// Creates a permanent access key for the administrator through the IAM API.
async fn admin_keys(s: &TestServer) -> Keys {
    let token = s.domain_token().await;
    let user_id = user_id(s, &token).await;
    let r = s
        .post(
            "/v3.0/OS-CREDENTIAL/credentials",
            Some(&token),
            &json!({"credential": {"user_id": user_id, "description": "tests"}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    Keys {
        access: r.body["credential"]["access"]
            .as_str()
            .expect("access")
            .to_owned(),
        secret: r.body["credential"]["secret"]
            .as_str()
            .expect("secret")
            .to_owned(),
        security_token: None,
    }
}

async fn user_id(s: &TestServer, token: &str) -> String {
    let r = s
        .send_with(
            reqwest::Method::GET,
            "/v3/auth/tokens",
            Some(token),
            &[("X-Subject-Token", token)],
            None,
        )
        .await;
    r.body["token"]["user"]["id"]
        .as_str()
        .expect("user id")
        .to_owned()
}

fn create_body(s: &TestServer, id: &str, value: &str) -> Value {
    json!({"project_id": s.creds.project_id, "resources": [{"resource_id": id, "resource_type": "disk"}],
        "tags": [{"key": "ENV", "value": value}]})
}

const CREATE: &str = "/v1.0/resource-tags/batch-create";

fn assert_gateway_401(r: &Reply) {
    assert_eq!(r.status, 401, "{}", r.text);
    assert_eq!(r.body["error_code"], "APIGW.0301", "{}", r.text);
    let id = r.header("x-request-id").expect("X-Request-Id");
    assert_eq!(r.body["request_id"].as_str(), Some(id.as_str()));
}

#[tokio::test]
async fn signed_requests_work_on_every_api() {
    let s = TestServer::start().await;
    s.register_disks(&["d"]).await;
    s.register_in("rds", &["i"]).await;
    let keys = admin_keys(&s).await;
    let r = send_signed(
        &s,
        "POST",
        CREATE,
        Some(&create_body(&s, "d", "signed")),
        &keys,
        Twist::default(),
    )
    .await;
    assert_eq!(r.body, json!({"failed_resources": []}), "{}", r.text);
    let read = format!(
        "/v2.0/resources/d/tags?project_id={}&resource_type=disk",
        s.creds.project_id
    );
    let r = send_signed(&s, "GET", &read, None, &keys, Twist::default()).await;
    assert_eq!(
        r.body["tags"],
        json!([{"key": "ENV", "value": "signed"}]),
        "{}",
        r.text
    );
    let r = send_signed(
        &s,
        "POST",
        &format!("/v3/{}/instances/i/tags/action", s.creds.project_id),
        Some(&json!({"action": "create", "tags": [{"key": "k", "value": "v"}]})),
        &keys,
        Twist::default(),
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.text);
    let r = send_signed(
        &s,
        "GET",
        &format!("/v3/projects?name={}", s.creds.project_name),
        None,
        &keys,
        Twist::default(),
    )
    .await;
    assert_eq!(
        r.body["projects"][0]["id"],
        s.creds.project_id.as_str(),
        "{}",
        r.text
    );
}

#[tokio::test]
async fn tampering_and_staleness_are_refused_and_change_nothing() {
    let s = TestServer::start().await;
    s.register_disks(&["d"]).await;
    let keys = admin_keys(&s).await;
    let token = s.domain_token().await;
    let body = create_body(&s, "d", "x");
    let stale = {
        let then = time::OffsetDateTime::now_utc() - time::Duration::minutes(16);
        format!(
            "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
            then.year(),
            u8::from(then.month()),
            then.day(),
            then.hour(),
            then.minute(),
            then.second()
        )
    };
    let future = {
        let then = time::OffsetDateTime::now_utc() + time::Duration::minutes(16);
        format!(
            "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
            then.year(),
            u8::from(then.month()),
            then.day(),
            then.hour(),
            then.minute(),
            then.second()
        )
    };
    let wrong_secret = Keys {
        secret: "wrong-secret".into(),
        ..keys.clone()
    };
    let unknown = Keys {
        access: "AKUNKNOWN00000000000".into(),
        ..keys.clone()
    };
    let cases: Vec<(&str, Keys, Twist)> = vec![
        ("wrong secret key", wrong_secret, Twist::default()),
        ("unknown access key", unknown, Twist::default()),
        (
            "body changed after signing",
            keys.clone(),
            Twist {
                body_after_signing: Some(create_body(&s, "d", "y").to_string().into_bytes()),
                ..Twist::default()
            },
        ),
        (
            "date 16 minutes old",
            keys.clone(),
            Twist {
                date: Some(stale),
                ..Twist::default()
            },
        ),
        (
            "date 16 minutes ahead",
            keys.clone(),
            Twist {
                date: Some(future),
                ..Twist::default()
            },
        ),
        (
            "host not signed",
            keys.clone(),
            Twist {
                unsigned: vec!["host"],
                ..Twist::default()
            },
        ),
        (
            "date not signed",
            keys.clone(),
            Twist {
                unsigned: vec!["x-sdk-date"],
                ..Twist::default()
            },
        ),
        // The signature decides even when a valid token rides along.
        (
            "valid token, bad signature",
            Keys {
                secret: "nope".into(),
                ..keys.clone()
            },
            Twist {
                extra_headers: vec![("X-Auth-Token", token.clone())],
                ..Twist::default()
            },
        ),
    ];
    for (what, keys, twist) in cases {
        let r = send_signed(&s, "POST", CREATE, Some(&body), &keys, twist).await;
        assert_gateway_401(&r);
        assert!(
            s.disk_tags(&token, "d").await.is_empty(),
            "{what}: something was written"
        );
    }
    // A garbled Authorization header is refused too, never a 5xx.
    for garbage in [
        "SDK-HMAC-SHA256",
        "Basic dXNlcjpwYXNz",
        "SDK-HMAC-SHA256 Access=x, SignedHeaders=host, Signature=zz",
    ] {
        let r = s
            .send_with(
                reqwest::Method::POST,
                CREATE,
                None,
                &[("Authorization", garbage)],
                Some(&body),
            )
            .await;
        assert_gateway_401(&r);
    }
}

#[tokio::test]
async fn access_keys_are_managed_through_iam() {
    let s = TestServer::start().await;
    let token = s.domain_token().await;
    let admin_id = user_id(&s, &token).await;
    let keys = admin_keys(&s).await;
    let r = s.get("/v3.0/OS-CREDENTIAL/credentials", Some(&token)).await;
    assert_eq!(r.status, 200);
    let listed = &r.body["credentials"];
    assert_eq!(listed.as_array().map(Vec::len), Some(1));
    assert_eq!(listed[0]["access"], keys.access.as_str());
    assert_eq!(listed[0]["status"], "active");
    assert!(
        listed[0].get("secret").is_none() && !r.text.contains(&keys.secret),
        "the secret is shown once only"
    );
    let r = s
        .get(
            &format!("/v3.0/OS-CREDENTIAL/credentials/{}", keys.access),
            Some(&token),
        )
        .await;
    assert_eq!(r.body["credential"]["user_id"], admin_id.as_str());
    assert!(!r.text.contains(&keys.secret));

    // Disable, and the key stops signing at once, though the server had just looked
    // it up; enable, and it signs again.
    let read = "/v1.0/tms/providers";
    assert_eq!(signed_get(&s, read, &keys).await.status, 200);
    let path = format!("/v3.0/OS-CREDENTIAL/credentials/{}", keys.access);
    let r = s
        .send_with(
            reqwest::Method::PUT,
            &path,
            Some(&token),
            &[],
            Some(&json!({"credential": {"status": "inactive"}})),
        )
        .await;
    assert_eq!(
        (r.status, r.body["credential"]["status"].as_str()),
        (200, Some("inactive")),
        "{}",
        r.text
    );
    assert_gateway_401(&signed_get(&s, read, &keys).await);
    s.send_with(
        reqwest::Method::PUT,
        &path,
        Some(&token),
        &[],
        Some(&json!({"credential": {"status": "active"}})),
    )
    .await;
    assert_eq!(signed_get(&s, read, &keys).await.status, 200);
    let r = s
        .send_with(
            reqwest::Method::PUT,
            &path,
            Some(&token),
            &[],
            Some(&json!({"credential": {"status": "paused"}})),
        )
        .await;
    assert_eq!(r.status, 400);

    // Two keys per user at most.
    let second = s
        .post(
            "/v3.0/OS-CREDENTIAL/credentials",
            Some(&token),
            &json!({"credential": {"user_id": admin_id}}),
        )
        .await;
    assert_eq!(second.status, 201);
    let third = s
        .post(
            "/v3.0/OS-CREDENTIAL/credentials",
            Some(&token),
            &json!({"credential": {"user_id": admin_id}}),
        )
        .await;
    assert_eq!(third.status, 409, "{}", third.text);

    // Deleted keys stop signing.
    let r = s
        .send_with(reqwest::Method::DELETE, &path, Some(&token), &[], None)
        .await;
    assert_eq!(r.status, 204);
    assert_gateway_401(&signed_get(&s, read, &keys).await);
    assert_eq!(s.get(&path, Some(&token)).await.status, 404);

    // A user who is not an administrator manages only its own keys.
    let bob = s
        .user_token("bob", json!({"domain": {"name": s.creds.domain_name}}))
        .await;
    let r = s
        .post(
            "/v3.0/OS-CREDENTIAL/credentials",
            Some(&bob),
            &json!({"credential": {"user_id": admin_id}}),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text);
    let bob_id = user_id(&s, &bob).await;
    let r = s
        .post(
            "/v3.0/OS-CREDENTIAL/credentials",
            Some(&bob),
            &json!({"credential": {"user_id": bob_id}}),
        )
        .await;
    assert_eq!(r.status, 201);
    let second_admin_key = second.body["credential"]["access"]
        .as_str()
        .expect("access");
    let r = s
        .get(
            &format!("/v3.0/OS-CREDENTIAL/credentials/{second_admin_key}"),
            Some(&bob),
        )
        .await;
    assert_eq!(r.status, 404, "another user's key is not even visible");
}

#[tokio::test]
async fn temporary_keys_need_their_security_token_and_keep_their_scope() {
    let s = TestServer::start().await;
    s.register_disks(&["d"]).await;
    let project_token = s.project_token().await;
    let r = s
        .post("/v3.0/OS-CREDENTIAL/securitytokens", Some(&project_token), &json!({"auth": {"identity": {"methods": ["token"], "token": {"duration_seconds": 900}}}}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let c = &r.body["credential"];
    let temporary = Keys {
        access: c["access"].as_str().expect("access").into(),
        secret: c["secret"].as_str().expect("secret").into(),
        security_token: Some(c["securitytoken"].as_str().expect("securitytoken").into()),
    };
    assert!(c["expires_at"].as_str().is_some_and(|e| e.ends_with('Z')));
    let r = send_signed(
        &s,
        "POST",
        CREATE,
        Some(&create_body(&s, "d", "temp")),
        &temporary,
        Twist::default(),
    )
    .await;
    assert_eq!(r.body, json!({"failed_resources": []}), "{}", r.text);

    let without = send_signed(
        &s,
        "POST",
        CREATE,
        Some(&create_body(&s, "d", "x")),
        &temporary,
        Twist {
            omit_security_token: true,
            ..Twist::default()
        },
    )
    .await;
    assert_gateway_401(&without);
    let wrong = Keys {
        security_token: Some("not-the-token".into()),
        ..temporary.clone()
    };
    assert_gateway_401(
        &send_signed(
            &s,
            "POST",
            CREATE,
            Some(&create_body(&s, "d", "x")),
            &wrong,
            Twist::default(),
        )
        .await,
    );

    // Issued from a project token, the key acts only in that project.
    let other = s.other_project_token("cn-east-3").await;
    let east = user_projects(&s, &other).await;
    let r = send_signed(&s, "POST", CREATE, Some(&json!({"project_id": east, "resources": [{"resource_id": "d", "resource_type": "disk"}],
        "tags": [{"key": "k", "value": "v"}]})), &temporary, Twist::default()).await;
    assert_eq!(r.status, 403, "{}", r.text);
    let domain = s.domain_token().await;
    assert_eq!(
        s.disk_tags(&domain, "d").await,
        vec![("ENV".into(), "temp".into())]
    );

    for bad in [json!(100), json!(86_401)] {
        let r = s
            .post("/v3.0/OS-CREDENTIAL/securitytokens", Some(&project_token), &json!({"auth": {"identity": {"methods": ["token"], "token": {"duration_seconds": bad}}}}))
            .await;
        assert_eq!(r.status, 400, "{bad}");
    }
}

async fn user_projects(s: &TestServer, token: &str) -> String {
    let r = s.get("/v3/auth/projects", Some(token)).await;
    r.body["projects"][0]["id"]
        .as_str()
        .expect("project")
        .to_owned()
}

#[tokio::test]
async fn secrets_are_sealed_at_rest() {
    let s = TestServer::start().await;
    let keys = admin_keys(&s).await;
    let stored = s.stored_bytes().await;
    assert!(stored.len() > keys.secret.len(), "the store holds the key");
    assert!(
        !stored
            .windows(keys.secret.len())
            .any(|w| w == keys.secret.as_bytes()),
        "the secret is stored in clear"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(s.dir.join("server.key"))
        .expect("server key")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[tokio::test]
async fn signed_requests_reach_the_per_service_apis_with_encoded_paths() {
    let s = TestServer::start().await;
    let pid = s.creds.project_id.clone();
    s.register_in("workspace-desktop", &["desk"]).await;
    s.register_in("fabric-workspace", &["ws-1"]).await;
    s.register_in("dis", &["st"]).await;
    let keys = admin_keys(&s).await;
    let ok = |r: &Reply| assert_eq!(r.status, 204, "{}", r.text);
    ok(&send_signed(
        &s,
        "POST",
        &format!("/v2/{pid}/desktops/batch-tags"),
        Some(&json!({"desktops": [{"desktop_id": "desk", "tags": [{"key": "k", "value": "v"}]}]})),
        &keys,
        Twist::default(),
    )
    .await);
    ok(&send_signed(
        &s,
        "POST",
        &format!("/v1/{pid}/fabric-workspace/ws-1/tags/create"),
        Some(&json!({"tags": [{"key": "a b", "value": "c"}]})),
        &keys,
        Twist::default(),
    )
    .await);
    let r = send_signed(
        &s,
        "GET",
        &format!("/v1/{pid}/fabric-workspace/ws-1/tags?limit=10&offset=0"),
        None,
        &keys,
        Twist::default(),
    )
    .await;
    assert_eq!(
        r.body["tags"],
        json!([{"key": "a b", "value": "c"}]),
        "{}",
        r.text
    );
    ok(&send_signed(
        &s,
        "POST",
        &format!("/v2/{pid}/stream/st/tags"),
        Some(&json!({"tag": {"key": "环境", "value": "生产"}})),
        &keys,
        Twist::default(),
    )
    .await);
    // A percent-encoded CJK key in the path: canonicalised from the raw target.
    ok(&send_signed(
        &s,
        "DELETE",
        &format!("/v2/{pid}/stream/st/tags/%E7%8E%AF%E5%A2%83"),
        None,
        &keys,
        Twist::default(),
    )
    .await);
    let token = s.project_token().await;
    assert!(s.tms_tags(&token, "dis", "st").await.is_empty());
    assert_eq!(
        s.tms_tags(&token, "workspace-desktop", "desk").await.len(),
        1
    );
}

#[tokio::test]
async fn a_declared_payload_hash_cannot_swap_the_body() {
    let s = TestServer::start().await;
    s.register_disks(&["d"]).await;
    let keys = admin_keys(&s).await;
    let original = create_body(&s, "d", "good");
    let original_hash = tagd::auth::signature::payload_hash(original.to_string().as_bytes());
    for declared in [original_hash, "UNSIGNED-PAYLOAD".to_owned()] {
        let r = send_signed(
            &s,
            "POST",
            CREATE,
            Some(&original),
            &keys,
            Twist {
                body_after_signing: Some(create_body(&s, "d", "EVIL").to_string().into_bytes()),
                extra_headers: vec![("X-Sdk-Content-Sha256", declared.clone())],
                ..Twist::default()
            },
        )
        .await;
        assert_gateway_401(&r);
    }
    let token = s.domain_token().await;
    assert!(s.disk_tags(&token, "d").await.is_empty());
}

#[tokio::test]
async fn unknown_keys_fail_like_wrong_secrets() {
    let s = TestServer::start().await;
    let keys = admin_keys(&s).await;
    let wrong = send_signed(
        &s,
        "GET",
        "/v1.0/tms/providers",
        None,
        &Keys {
            secret: "x".repeat(40),
            ..keys.clone()
        },
        Twist::default(),
    )
    .await;
    let unknown = send_signed(
        &s,
        "GET",
        "/v1.0/tms/providers",
        None,
        &Keys {
            access: "AKNOSUCHKEY000000000".into(),
            ..keys.clone()
        },
        Twist::default(),
    )
    .await;
    assert_gateway_401(&wrong);
    assert_gateway_401(&unknown);
    assert_eq!(
        wrong.body["error_msg"], unknown.body["error_msg"],
        "the answer does not tell whether a key exists"
    );
}

#[tokio::test]
async fn only_domain_wide_permanent_credentials_manage_permanent_keys() {
    let s = TestServer::start().await;
    let domain = s.domain_token().await;
    let admin_id = user_id(&s, &domain).await;
    let project = s.project_token().await;
    let body = json!({"credential": {"user_id": admin_id}});
    let r = s
        .post("/v3.0/OS-CREDENTIAL/credentials", Some(&project), &body)
        .await;
    assert_eq!(
        r.status, 403,
        "a project token must not mint a domain-wide key: {}",
        r.text
    );
    let r = s
        .get("/v3.0/OS-CREDENTIAL/credentials", Some(&project))
        .await;
    assert_eq!(r.status, 403);
    // Nor may a temporary key, even one issued from a domain token.
    let temporary = temporary_keys(&s, &domain).await;
    let r = send_signed(
        &s,
        "POST",
        "/v3.0/OS-CREDENTIAL/credentials",
        Some(&body),
        &temporary,
        Twist::default(),
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.text);
    // A permanent key may (it already is domain-wide).
    let keys = admin_keys(&s).await;
    let r = send_signed(
        &s,
        "GET",
        "/v3.0/OS-CREDENTIAL/credentials",
        None,
        &keys,
        Twist::default(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);

    // The same holds for one existing key: a project token or a temporary key may
    // neither read, disable nor delete it, and the key stays as it was.
    let one = format!("/v3.0/OS-CREDENTIAL/credentials/{}", keys.access);
    let disable = json!({"credential": {"status": "inactive"}});
    let by_project = [
        (reqwest::Method::GET, None),
        (reqwest::Method::PUT, Some(disable.to_string().into_bytes())),
        (reqwest::Method::DELETE, None),
    ];
    for (method, body) in by_project {
        let r = s.send(method.clone(), &one, Some(&project), body).await;
        assert_eq!(r.status, 403, "{method} by a project token: {}", r.text);
    }
    for (method, body) in [("PUT", Some(&disable)), ("DELETE", None)] {
        let r = send_signed(&s, method, &one, body, &temporary, Twist::default()).await;
        assert_eq!(r.status, 403, "{method} by a temporary key: {}", r.text);
    }
    let r = s.get(&one, Some(&domain)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["credential"]["status"], "active", "{}", r.text);
}

async fn temporary_keys(s: &TestServer, token: &str) -> Keys {
    let r = s
        .post(
            "/v3.0/OS-CREDENTIAL/securitytokens",
            Some(token),
            &json!({"auth": {"identity": {"methods": ["token"]}}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    temporary_keys_in(&r.body)
}

/// Revokes `token` with the administrator's token `admin`.
async fn revoke_token(s: &TestServer, admin: &str, token: &str) {
    let revoke = s
        .send_with(
            reqwest::Method::DELETE,
            "/v3/auth/tokens",
            Some(admin),
            &[("X-Subject-Token", token)],
            None,
        )
        .await;
    assert_eq!(revoke.status, 204, "{}", revoke.text);
}

/// The temporary key pair in a `securitytokens` answer.
fn temporary_keys_in(body: &Value) -> Keys {
    let c = &body["credential"];
    Keys {
        access: c["access"].as_str().expect("access").into(),
        secret: c["secret"].as_str().expect("secret").into(),
        security_token: Some(c["securitytoken"].as_str().expect("securitytoken").into()),
    }
}

#[tokio::test]
async fn temporary_keys_die_with_their_token_and_need_a_signed_security_token() {
    let s = TestServer::start().await;
    let holder = s.domain_token().await;
    let keys = temporary_keys(&s, &holder).await;
    assert_eq!(
        send_signed(
            &s,
            "GET",
            "/v1.0/tms/providers",
            None,
            &keys,
            Twist::default()
        )
        .await
        .status,
        200
    );
    // Sent but left out of SignedHeaders: refused.
    let r = send_signed(
        &s,
        "GET",
        "/v1.0/tms/providers",
        None,
        &keys,
        Twist {
            unsigned: vec!["x-security-token"],
            ..Twist::default()
        },
    )
    .await;
    assert_gateway_401(&r);
    // Revoking the token the key came from revokes the key.
    let admin = s.domain_token().await;
    revoke_token(&s, &admin, &holder).await;
    assert_gateway_401(
        &send_signed(
            &s,
            "GET",
            "/v1.0/tms/providers",
            None,
            &keys,
            Twist::default(),
        )
        .await,
    );
}

#[tokio::test]
async fn keys_never_reach_another_project_or_domain() {
    let s = TestServer::start().await;
    let pid = s.creds.project_id.clone();
    s.register_in("rds", &["i"]).await;
    let body = json!({"action": "create", "tags": [{"key": "k", "value": "v"}]});
    let path = format!("/v3/{pid}/instances/i/tags/action");

    // A temporary key from another project's token.
    let east = s.other_project_token("cn-east-3").await;
    let east_keys = temporary_keys(&s, &east).await;
    let r = send_signed(&s, "POST", &path, Some(&body), &east_keys, Twist::default()).await;
    assert_eq!(r.status, 403, "{}", r.text);

    // A permanent key of another domain's administrator.
    assert!(s
        .cli(&["domain", "create", "other"], None)
        .await
        .status
        .success());
    let out = s
        .cli(
            &["user", "create", "--domain", "other", "--admin", "mallory"],
            Some("mallory-password\n"),
        )
        .await;
    assert!(out.status.success());
    let out = s
        .cli(
            &[
                "credential",
                "create",
                "--domain",
                "other",
                "--user",
                "mallory",
            ],
            None,
        )
        .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let foreign = keys_from_cli(&out.stdout);
    let r = send_signed(&s, "POST", &path, Some(&body), &foreign, Twist::default()).await;
    assert_eq!(r.status, 403, "{}", r.text);

    let token = s.project_token().await;
    assert!(s.tms_tags(&token, "rds", "i").await.is_empty());
}

fn keys_from_cli(stdout: &[u8]) -> Keys {
    let text = String::from_utf8_lossy(stdout);
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} = ")))
            .unwrap_or_else(|| panic!("{name} in {text}"))
            .to_owned()
    };
    Keys {
        access: field("access_key"),
        secret: field("secret_key"),
        security_token: None,
    }
}

/// The CLI is another process: the server trusts what it looked up for at most
/// `credential_cache_ms` (one second by default) before it sees such a change.
async fn seen_by_the_server_after_another_process_changed_a_credential() {
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
}

#[tokio::test]
async fn the_admin_cli_manages_keys_the_server_honours() {
    let s = TestServer::start().await;
    let out = s
        .cli(
            &[
                "credential",
                "create",
                "--user",
                "admin",
                "--description",
                "ci",
            ],
            None,
        )
        .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let keys = keys_from_cli(&out.stdout);
    let read = "/v1.0/tms/providers";
    assert_eq!(signed_get(&s, read, &keys).await.status, 200);
    let out = s
        .cli(&["credential", "list", "--user", "admin"], None)
        .await;
    let listed = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        listed.contains(&keys.access)
            && listed.contains("active")
            && !listed.contains(&keys.secret),
        "{listed}"
    );
    assert!(s
        .cli(&["credential", "disable", &keys.access], None)
        .await
        .status
        .success());
    seen_by_the_server_after_another_process_changed_a_credential().await;
    assert_gateway_401(&signed_get(&s, read, &keys).await);
    assert!(s
        .cli(&["credential", "enable", &keys.access], None)
        .await
        .status
        .success());
    seen_by_the_server_after_another_process_changed_a_credential().await;
    assert_eq!(signed_get(&s, read, &keys).await.status, 200);
    let out = s
        .cli(&["credential", "delete", "AKNOSUCHKEY000000000"], None)
        .await;
    assert!(
        !out.status.success(),
        "an unknown key is an error, not a silent success"
    );
    assert!(s
        .cli(&["credential", "delete", &keys.access], None)
        .await
        .status
        .success());
    seen_by_the_server_after_another_process_changed_a_credential().await;
    assert_gateway_401(&signed_get(&s, read, &keys).await);
}

#[tokio::test]
async fn a_process_with_another_server_key_refuses_to_run() {
    let s = TestServer::start().await;
    let _keys = admin_keys(&s).await;
    let original = std::fs::read_to_string(s.dir.join("server.key")).expect("server key");
    // Another key file: the admin CLI refuses instead of sealing secrets nobody can open.
    std::fs::write(s.dir.join("server.key"), "ab".repeat(32)).expect("write");
    let out = s
        .cli(&["credential", "create", "--user", "admin"], None)
        .await;
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("server key"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // No key file at all: same, and none is invented.
    std::fs::remove_file(s.dir.join("server.key")).expect("remove");
    let out = s
        .cli(&["credential", "create", "--user", "admin"], None)
        .await;
    assert!(!out.status.success());
    assert!(
        !s.dir.join("server.key").exists(),
        "a key file was invented"
    );
    std::fs::write(s.dir.join("server.key"), original).expect("restore");
    assert!(s
        .cli(&["credential", "list", "--user", "admin"], None)
        .await
        .status
        .success());
}

/// A temporary key minted by a signed request with `keys`.
async fn temporary_keys_signed_with(s: &TestServer, keys: &Keys) -> Result<Keys, Reply> {
    let body = json!({"auth": {"identity": {"methods": ["token"]}}});
    let r = send_signed(
        s,
        "POST",
        "/v3.0/OS-CREDENTIAL/securitytokens",
        Some(&body),
        keys,
        Twist::default(),
    )
    .await;
    if r.status != 201 {
        return Err(r);
    }
    Ok(temporary_keys_in(&r.body))
}

/// Every key of a line minted key from key, starting from a token, dies when the token
/// is revoked: none outlives it by having been minted from another temporary key.
#[tokio::test]
async fn every_temporary_key_minted_down_the_line_dies_with_the_root_token() {
    let s = TestServer::start().await;
    s.register_disks(&["d"]).await;
    let root = s.domain_token().await;
    let first = temporary_keys(&s, &root).await;
    let second = temporary_keys_signed_with(&s, &first)
        .await
        .unwrap_or_else(|r| panic!("a temporary key mints another: {}", r.text));
    let third = temporary_keys_signed_with(&s, &second)
        .await
        .unwrap_or_else(|r| panic!("and that one a third: {}", r.text));
    let read = "/v1.0/tms/providers";
    for keys in [&first, &second, &third] {
        assert_eq!(signed_get(&s, read, keys).await.status, 200);
    }

    let admin = s.domain_token().await;
    revoke_token(&s, &admin, &root).await;
    for keys in [&first, &second, &third] {
        assert_gateway_401(&signed_get(&s, read, keys).await);
        let write = send_signed(
            &s,
            "POST",
            CREATE,
            Some(&create_body(&s, "d", "after-revocation")),
            keys,
            Twist::default(),
        )
        .await;
        assert_gateway_401(&write);
        match temporary_keys_signed_with(&s, keys).await {
            Ok(_) => panic!("a dead key minted another"),
            Err(r) => assert_gateway_401(&r),
        }
    }
    let tags = s
        .get(
            &format!("/v2.0/resources/d/tags?project_id={}&resource_type=disk", s.creds.project_id),
            Some(&admin),
        )
        .await;
    assert_eq!(tags.body["tags"], json!([]), "nothing was written after the revocation");
}

/// A temporary key minted with a permanent access key (directly or through another
/// temporary key) stops working when that key is disabled or deleted, and works again
/// when it is enabled.
#[tokio::test]
async fn temporary_keys_die_with_the_permanent_key_they_came_from() {
    let s = TestServer::start().await;
    let token = s.domain_token().await;
    let permanent = admin_keys(&s).await;
    let child = temporary_keys_signed_with(&s, &permanent)
        .await
        .unwrap_or_else(|r| panic!("a permanent key mints a temporary one: {}", r.text));
    let grandchild = temporary_keys_signed_with(&s, &child)
        .await
        .unwrap_or_else(|r| panic!("{}", r.text));
    let read = "/v1.0/tms/providers";
    for keys in [&child, &grandchild] {
        assert_eq!(signed_get(&s, read, keys).await.status, 200);
    }

    let path = format!("/v3.0/OS-CREDENTIAL/credentials/{}", permanent.access);
    let set_status = |status: &'static str| {
        let (s, path, token) = (&s, &path, &token);
        async move {
            let r = s
                .send_with(
                    reqwest::Method::PUT,
                    path,
                    Some(token),
                    &[],
                    Some(&json!({"credential": {"status": status}})),
                )
                .await;
            assert_eq!(r.status, 200, "{}", r.text);
        }
    };
    set_status("inactive").await;
    for keys in [&permanent, &child, &grandchild] {
        assert_gateway_401(&signed_get(&s, read, keys).await);
    }
    set_status("active").await;
    for keys in [&child, &grandchild] {
        assert_eq!(signed_get(&s, read, keys).await.status, 200);
    }

    let r = s
        .send_with(reqwest::Method::DELETE, &path, Some(&token), &[], None)
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    for keys in [&child, &grandchild] {
        assert_gateway_401(&signed_get(&s, read, keys).await);
    }
}

/// A new password ends the sessions of whoever knew the old one: the user's tokens,
/// and the temporary keys minted from them, stop working; a login with the new
/// password works.
#[tokio::test]
async fn setting_a_password_revokes_the_users_tokens_and_their_keys() {
    let s = TestServer::start().await;
    let token = s.domain_token().await;
    let keys = temporary_keys(&s, &token).await;
    let read = "/v1.0/tms/providers";
    assert_eq!(s.get(read, Some(&token)).await.status, 200);
    assert_eq!(signed_get(&s, read, &keys).await.status, 200);

    let out = s
        .cli(
            &["user", "set-password", &s.creds.user_name],
            Some("a-brand-new-password\n"),
        )
        .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    seen_by_the_server_after_another_process_changed_a_credential().await;

    let r = s.get(read, Some(&token)).await;
    assert_eq!(r.status, 401, "the old token: {}", r.text);
    assert_gateway_401(&signed_get(&s, read, &keys).await);
    let fresh = s
        .token_for(
            &s.creds.user_name,
            "a-brand-new-password",
            json!({"domain": {"name": s.creds.domain_name}}),
        )
        .await;
    assert_eq!(s.get(read, Some(&fresh)).await.status, 200);
}
