//! TMS batch tagging, exactly per the seed page: limits at n and n+1, character rules
//! in Unicode characters, overwrite, failed_resources, and the nested error body.

use serde_json::{json, Value};

use crate::{Options, TestServer};

fn create_body(server: &TestServer, ids: &[&str], tags: Value) -> Value {
    let resources: Vec<Value> = ids
        .iter()
        .map(|id| json!({"resource_id": id, "resource_type": "disk"}))
        .collect();
    json!({"project_id": server.creds.project_id, "resources": resources, "tags": tags})
}

fn tags(n: usize) -> Value {
    Value::Array(
        (0..n)
            .map(|i| json!({"key": format!("k{i}"), "value": format!("v{i}")}))
            .collect(),
    )
}

const CREATE: &str = "/v1.0/resource-tags/batch-create";
const DELETE: &str = "/v1.0/resource-tags/batch-delete";

#[tokio::test]
async fn tags_are_created_read_back_and_overwritten() {
    let s = TestServer::start().await;
    s.register_disks(&["d1", "d2"]).await;
    let token = s.domain_token().await;

    let r = s
        .post(
            CREATE,
            Some(&token),
            &create_body(
                &s,
                &["d1", "d2"],
                json!([{"key": "ENV", "value": "dev"}, {"key": "DEPT", "value": ""}]),
            ),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body, json!({"failed_resources": []}));
    assert_eq!(
        s.disk_tags(&token, "d1").await,
        vec![("DEPT".into(), "".into()), ("ENV".into(), "dev".into())]
    );

    let r = s
        .post(
            CREATE,
            Some(&token),
            &create_body(&s, &["d1"], json!([{"key": "ENV", "value": "prod"}])),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        s.disk_tags(&token, "d1").await,
        vec![("DEPT".into(), "".into()), ("ENV".into(), "prod".into())]
    );
    assert_eq!(
        s.disk_tags(&token, "d2").await,
        vec![("DEPT".into(), "".into()), ("ENV".into(), "dev".into())]
    );
}

#[tokio::test]
async fn unknown_resources_are_reported_while_the_others_are_tagged() {
    let s = TestServer::start().await;
    s.register_disks(&["known"]).await;
    let token = s.domain_token().await;
    let r = s
        .post(
            CREATE,
            Some(&token),
            &create_body(
                &s,
                &["known", "ghost"],
                json!([{"key": "ENV", "value": "dev"}]),
            ),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let failed = r.body["failed_resources"]
        .as_array()
        .expect("failed_resources");
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["resource_id"], "ghost");
    assert_eq!(failed[0]["resource_type"], "disk");
    assert_eq!(failed[0]["error_code"], "TMS.0005");
    assert!(failed[0]["error_msg"]
        .as_str()
        .is_some_and(|m| m.contains("ghost")));
    assert_eq!(
        s.disk_tags(&token, "known").await,
        vec![("ENV".into(), "dev".into())]
    );
    let r = s
        .get(
            &format!(
                "/v2.0/resources/ghost/tags?project_id={}&resource_type=disk",
                s.creds.project_id
            ),
            Some(&token),
        )
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(r.tms_code(), "TMS.0005");
}

#[tokio::test]
async fn at_most_50_resources_per_call() {
    let s = TestServer::start().await;
    let ids: Vec<String> = (0..51).map(|i| format!("disk-{i}")).collect();
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    s.register_disks(&ids).await;
    let token = s.domain_token().await;

    let r = s
        .post(CREATE, Some(&token), &create_body(&s, &ids, tags(1)))
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(r.tms_code(), "TMS.0002");
    assert!(r.tms_msg().contains("resources"), "{}", r.tms_msg());
    assert!(
        s.disk_tags(&token, "disk-0").await.is_empty(),
        "a rejected batch wrote nothing"
    );

    let r = s
        .post(CREATE, Some(&token), &create_body(&s, &ids[..50], tags(1)))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["failed_resources"], json!([]));
    assert_eq!(s.disk_tags(&token, "disk-49").await.len(), 1);
    assert!(s.disk_tags(&token, "disk-50").await.is_empty());
}

#[tokio::test]
async fn at_most_10_tags_per_call() {
    let s = TestServer::start().await;
    s.register_disks(&["d"]).await;
    let token = s.domain_token().await;
    let r = s
        .post(CREATE, Some(&token), &create_body(&s, &["d"], tags(11)))
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.tms_code(), "TMS.0002");
    assert!(s.disk_tags(&token, "d").await.is_empty());
    let r = s
        .post(CREATE, Some(&token), &create_body(&s, &["d"], tags(10)))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(s.disk_tags(&token, "d").await.len(), 10);
}

#[tokio::test]
async fn lengths_are_counted_in_unicode_characters() {
    let s = TestServer::start().await;
    s.register_disks(&["d"]).await;
    let token = s.domain_token().await;
    let key36 = "键".repeat(36);
    let value43 = "值".repeat(43);
    let r = s
        .post(
            CREATE,
            Some(&token),
            &create_body(&s, &["d"], json!([{"key": key36, "value": value43}])),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        s.disk_tags(&token, "d").await,
        vec![(key36.clone(), value43.clone())]
    );

    let r = s
        .post(
            CREATE,
            Some(&token),
            &create_body(&s, &["d"], json!([{"key": "键".repeat(37), "value": "v"}])),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.tms_code(), "TMS.0009");
    assert!(r.tms_msg().contains("37 characters"), "{}", r.tms_msg());
    let r = s
        .post(
            CREATE,
            Some(&token),
            &create_body(&s, &["d"], json!([{"key": "k", "value": "值".repeat(44)}])),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.tms_code(), "TMS.0010");
    assert_eq!(
        s.disk_tags(&token, "d").await.len(),
        1,
        "rejected requests changed nothing"
    );
}

#[tokio::test]
async fn character_rules_of_the_page() {
    let s = TestServer::start().await;
    s.register_disks(&["d"]).await;
    let token = s.domain_token().await;
    let ok = s
        .post(
            CREATE,
            Some(&token),
            &create_body(&s, &["d"], json!([{"key": "a-B_9", "value": "1.2-x_Y"}])),
        )
        .await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    for (key, value, code) in [
        ("a.b", "v", "TMS.0009"),
        ("a b", "v", "TMS.0009"),
        ("", "v", "TMS.0009"),
        ("k=v", "v", "TMS.0009"),
        ("k", "a b", "TMS.0010"),
        ("k", "a/b", "TMS.0010"),
        ("k", "a:b", "TMS.0010"),
        // Letters that draw nothing (D76): `ENV` plus a Hangul filler looks like `ENV`.
        ("ENV\u{3164}", "v", "TMS.0009"),
        ("\u{3164}", "v", "TMS.0009"),
        ("ENV\u{FFA0}", "v", "TMS.0009"),
        ("k", "dev\u{3164}", "TMS.0010"),
    ] {
        let r = s
            .post(
                CREATE,
                Some(&token),
                &create_body(&s, &["d"], json!([{"key": key, "value": value}])),
            )
            .await;
        assert_eq!(r.status, 400, "{key:?}={value:?} was accepted");
        assert_eq!(r.tms_code(), code, "{key:?}={value:?}: {}", r.text);
    }
    assert_eq!(
        s.disk_tags(&token, "d").await,
        vec![("a-B_9".into(), "1.2-x_Y".into())]
    );
    // Letters of other scripts are letters, look-alikes of Latin ones included (D76).
    let cyrillic = s
        .post(
            CREATE,
            Some(&token),
            &create_body(&s, &["d"], json!([{"key": "\u{0415}NV", "value": "\u{0440}rod"}])),
        )
        .await;
    assert_eq!(cyrillic.status, 200, "{}", cyrillic.text);
}

#[tokio::test]
async fn duplicate_keys_in_one_request_are_rejected() {
    let s = TestServer::start().await;
    s.register_disks(&["d"]).await;
    let token = s.domain_token().await;
    let r = s
        .post(
            CREATE,
            Some(&token),
            &create_body(
                &s,
                &["d"],
                json!([{"key": "a", "value": "1"}, {"key": "a", "value": "2"}]),
            ),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.tms_code(), "TMS.0009");
    assert!(r.tms_msg().contains("more than once"), "{}", r.tms_msg());
    assert!(s.disk_tags(&token, "d").await.is_empty());
}

#[tokio::test]
async fn resource_types_and_project_rules() {
    let s = TestServer::start().await;
    s.register_disks(&["d"]).await;
    s.register(json!([{"resource_type": "cdn", "resource_id": "www.example.com"}]))
        .await;
    let token = s.domain_token().await;

    let r = s.post(CREATE, Some(&token), &json!({"project_id": s.creds.project_id, "resources": [{"resource_id": "d", "resource_type": "Disk"}], "tags": tags(1)})).await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.tms_code(),
        "TMS.5027",
        "resource types are case-sensitive"
    );

    let r = s
        .post(
            CREATE,
            Some(&token),
            &json!({"resources": [{"resource_id": "d", "resource_type": "disk"}], "tags": tags(1)}),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.tms_code(), "TMS.2011", "a regional type needs project_id");

    // A global type needs no project.
    let r = s.post(CREATE, Some(&token), &json!({"resources": [{"resource_id": "www.example.com", "resource_type": "cdn"}], "tags": tags(2)})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["failed_resources"], json!([]));
    let r = s
        .get(
            "/v2.0/resources/www.example.com/tags?resource_type=cdn",
            Some(&token),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["tags"].as_array().map(Vec::len), Some(2));
}

#[tokio::test]
async fn a_resource_never_exceeds_its_tag_limit() {
    let s = TestServer::start().await;
    s.register_disks(&["full", "roomy"]).await;
    let token = s.domain_token().await;
    // 20 tags is the disk limit: reach it exactly in two calls.
    let first: Vec<Value> = (0..10)
        .map(|i| json!({"key": format!("a{i}"), "value": ""}))
        .collect();
    let second: Vec<Value> = (0..10)
        .map(|i| json!({"key": format!("b{i}"), "value": ""}))
        .collect();
    for batch in [&first, &second] {
        let r = s
            .post(
                CREATE,
                Some(&token),
                &create_body(&s, &["full"], Value::Array(batch.clone())),
            )
            .await;
        assert_eq!(r.body["failed_resources"], json!([]), "{}", r.text);
    }
    assert_eq!(s.disk_tags(&token, "full").await.len(), 20);

    // Overwriting existing keys at the limit is fine; a 21st key is not.
    let r = s
        .post(
            CREATE,
            Some(&token),
            &create_body(&s, &["full"], json!([{"key": "a0", "value": "new"}])),
        )
        .await;
    assert_eq!(r.body["failed_resources"], json!([]), "{}", r.text);
    let r = s
        .post(
            CREATE,
            Some(&token),
            &create_body(&s, &["full", "roomy"], json!([{"key": "c", "value": "x"}])),
        )
        .await;
    assert_eq!(r.status, 200);
    let failed = r.body["failed_resources"].as_array().expect("failed");
    assert_eq!(failed.len(), 1, "{}", r.text);
    assert_eq!(failed[0]["resource_id"], "full");
    assert_eq!(failed[0]["error_code"], "TMS.0014");
    let full = s.disk_tags(&token, "full").await;
    assert_eq!(full.len(), 20);
    assert!(!full.iter().any(|(k, _)| k == "c"));
    assert!(full.contains(&("a0".into(), "new".into())));
    assert_eq!(
        s.disk_tags(&token, "roomy").await,
        vec![("c".into(), "x".into())]
    );
}

#[tokio::test]
async fn batch_delete_by_key_and_by_key_and_value() {
    let s = TestServer::start().await;
    s.register_disks(&["d"]).await;
    let token = s.domain_token().await;
    s.post(CREATE, Some(&token), &create_body(&s, &["d"], json!([{"key": "a", "value": "1"}, {"key": "b", "value": "2"}, {"key": "c", "value": "3"}]))).await;
    let r = s.post(DELETE, Some(&token), &create_body(&s, &["d"], json!([{"key": "a"}, {"key": "b", "value": "wrong"}, {"key": "missing", "value": "x"}]))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body, json!({"failed_resources": []}));
    assert_eq!(
        s.disk_tags(&token, "d").await,
        vec![("b".into(), "2".into()), ("c".into(), "3".into())]
    );
    let r = s
        .post(
            DELETE,
            Some(&token),
            &create_body(&s, &["d"], json!([{"key": "b", "value": "2"}])),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        s.disk_tags(&token, "d").await,
        vec![("c".into(), "3".into())]
    );
    let r = s
        .post(
            DELETE,
            Some(&token),
            &create_body(&s, &["nope"], json!([{"key": "c"}])),
        )
        .await;
    assert_eq!(r.body["failed_resources"][0]["error_code"], "TMS.0005");
}

#[tokio::test]
async fn malformed_bodies_get_a_nested_400_naming_the_field() {
    let s = TestServer::start().await;
    s.register_disks(&["d"]).await;
    let token = s.domain_token().await;
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"{not json".to_vec(), "key must be a string"),
        (b"".to_vec(), "EOF"),
        (br#"{"project_id": "p", "resources": "disk", "tags": []}"#.to_vec(), "resources"),
        (br#"{"project_id": "p", "resources": [{"resource_id": 7, "resource_type": "disk"}], "tags": []}"#.to_vec(), "resources[0].resource_id"),
        (br#"{"project_id": "p", "resources": [{"resource_id": "d", "resource_type": "disk"}]}"#.to_vec(), "tags"),
        (br#"{"project_id": "p", "resources": [{"resource_id": "d", "resource_type": "disk"}], "tags": [{"key": "k"}]}"#.to_vec(), "value"),
        (b"\xff\xfe".to_vec(), "must be a JSON object"),
        (b"[1,2]".to_vec(), "must be a JSON object"),
        // A whole, valid body followed by more: refused, not acted on.
        (
            format!(
                r#"{{"project_id": "{}", "resources": [{{"resource_id": "d", "resource_type": "disk"}}], "tags": [{{"key": "k", "value": "v"}}]}}}}}}garbage{{"#,
                s.creds.project_id
            )
            .into_bytes(),
            "trailing characters",
        ),
    ];
    for (body, needle) in cases {
        let r = s
            .send(
                reqwest::Method::POST,
                CREATE,
                Some(&token),
                Some(body.clone()),
            )
            .await;
        assert_eq!(
            r.status,
            400,
            "{:?} -> {}",
            String::from_utf8_lossy(&body),
            r.text
        );
        assert_eq!(r.tms_code(), "TMS.0002");
        assert!(
            r.tms_msg().contains(needle),
            "{:?}: {} lacks {needle:?}",
            String::from_utf8_lossy(&body),
            r.tms_msg()
        );
    }
    let r = s
        .post(
            CREATE,
            Some(&token),
            &json!({"project_id": s.creds.project_id, "resources": [], "tags": tags(1)}),
        )
        .await;
    assert_eq!((r.status, r.tms_code()), (400, "TMS.0002"));
    let r = s
        .post(CREATE, Some(&token), &create_body(&s, &["d"], json!([])))
        .await;
    assert_eq!((r.status, r.tms_code()), (400, "TMS.0012"));
    assert!(s.disk_tags(&token, "d").await.is_empty());
}

#[tokio::test]
async fn bodies_over_the_limit_get_413() {
    let s = TestServer::start_with(Options {
        max_body_bytes: Some(4096),
        ..Default::default()
    })
    .await;
    s.register_disks(&["d"]).await;
    let token = s.domain_token().await;
    let padding = "x".repeat(5000);
    let r = s.post(CREATE, Some(&token), &json!({"project_id": s.creds.project_id, "pad": padding, "resources": [{"resource_id": "d", "resource_type": "disk"}], "tags": tags(1)})).await;
    assert_eq!(r.status, 413, "{}", r.text);
    assert_eq!(r.tms_code(), "TMS.0002");
    assert!(s.disk_tags(&token, "d").await.is_empty());
}

#[tokio::test]
async fn unknown_routes_and_wrong_methods_answer_in_the_tms_body() {
    let s = TestServer::start().await;
    let token = s.domain_token().await;
    let r = s
        .get("/v1.0/resource-tags/batch-nothing", Some(&token))
        .await;
    assert_eq!((r.status, r.tms_code()), (404, "TMS.0005"));
    let r = s.get(CREATE, Some(&token)).await;
    assert_eq!(r.status, 405, "{}", r.text);
    assert_eq!(r.tms_code(), "TMS.0002");
    // A trailing slash is a different route, never a redirect.
    let r = s
        .post(
            "/v1.0/resource-tags/batch-create/",
            Some(&token),
            &json!({}),
        )
        .await;
    assert_eq!(r.status, 404);
    let r = s.get("/not-an-api", None).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.body["error_code"], "APIGW.0101");
}

#[tokio::test]
async fn every_response_carries_a_request_id() {
    let s = TestServer::start().await;
    let token = s.domain_token().await;
    for r in [
        s.post(CREATE, None, &json!({})).await,
        s.post(CREATE, Some(&token), &json!({})).await,
        s.get("/v1.0/tms/providers", Some(&token)).await,
        s.get("/nowhere", None).await,
    ] {
        let id = r.header("x-request-id").unwrap_or_default();
        assert!(id.len() >= 16, "{} has no request id", r.text);
    }
    let r = s
        .http
        .get(s.url("/v1.0/tms/providers"))
        .header("X-Auth-Token", &token)
        .header("X-Request-Id", "client-chosen-42")
        .send()
        .await
        .expect("request");
    assert_eq!(r.headers()["x-request-id"], "client-chosen-42");
}

#[tokio::test]
async fn callers_need_a_valid_token_for_the_right_domain_and_project() {
    let s = TestServer::start().await;
    s.register_disks(&["d"]).await;
    let body = create_body(&s, &["d"], tags(1));

    let r = s.post(CREATE, None, &body).await;
    assert_eq!((r.status, r.tms_code()), (401, "TMS.0003"));
    let r = s.post(CREATE, Some("0123456789abcdef"), &body).await;
    assert_eq!((r.status, r.tms_code()), (401, "TMS.0003"));

    // Another domain's administrator, and a project-scoped token of another project.
    let out = s.cli(&["domain", "create", "other"], None).await;
    assert!(out.status.success());
    let out = s
        .cli(
            &["project", "create", "--domain", "other", "cn-south-1"],
            None,
        )
        .await;
    assert!(out.status.success());
    let out = s
        .cli(
            &["user", "create", "--domain", "other", "--admin", "mallory"],
            Some("mallory-password\n"),
        )
        .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let resp = s.post("/v3/auth/tokens", None, &json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "mallory", "password": "mallory-password", "domain": {"name": "other"}}}}, "scope": {"domain": {"name": "other"}}}})).await;
    assert_eq!(resp.status, 201, "{}", resp.text);
    let foreign = resp.header("x-subject-token").expect("token");
    let r = s.post(CREATE, Some(&foreign), &body).await;
    assert_eq!((r.status, r.tms_code()), (403, "TMS.0004"), "{}", r.text);
    let r = s
        .get(
            &format!(
                "/v2.0/resources/d/tags?project_id={}&resource_type=disk",
                s.creds.project_id
            ),
            Some(&foreign),
        )
        .await;
    assert_eq!(r.status, 403);

    let out = s
        .cli(
            &["project", "create", "--domain", "tagd", "cn-east-3"],
            None,
        )
        .await;
    assert!(out.status.success());
    let east = s.token(json!({"project": {"name": "cn-east-3"}})).await;
    let r = s.post(CREATE, Some(&east), &body).await;
    assert_eq!((r.status, r.tms_code()), (403, "TMS.0004"));

    // The right project's token works, and so does the domain's.
    let own = s.project_token().await;
    let r = s.post(CREATE, Some(&own), &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let domain = s.domain_token().await;
    assert_eq!(s.disk_tags(&domain, "d").await.len(), 1);
}

#[tokio::test]
async fn expired_tokens_are_refused() {
    let s = TestServer::start_with(Options {
        token_lifetime_secs: Some(1),
        ..Default::default()
    })
    .await;
    let token = s.domain_token().await;
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let r = s.get("/v1.0/tms/providers", Some(&token)).await;
    assert_eq!((r.status, r.tms_code()), (401, "TMS.0003"));
    assert!(r.tms_msg().contains("expired"), "{}", r.tms_msg());
}

#[tokio::test]
async fn emulator_mode_takes_any_well_formed_id_as_existing() {
    let s = TestServer::start_with(Options {
        auto_register: true,
        ..Default::default()
    })
    .await;
    let token = s.domain_token().await;
    let r = s
        .post(
            CREATE,
            Some(&token),
            &create_body(&s, &["never-registered"], tags(2)),
        )
        .await;
    assert_eq!(r.body, json!({"failed_resources": []}), "{}", r.text);
    assert_eq!(s.disk_tags(&token, "never-registered").await.len(), 2);
    assert!(s.disk_tags(&token, "also-unknown").await.is_empty());
    let r = s
        .post(CREATE, Some(&token), &create_body(&s, &["bad/id"], tags(1)))
        .await;
    assert_eq!(r.status, 400, "ids must still be well formed");
}

#[tokio::test]
async fn providers_catalogue_pages_and_filters() {
    let s = TestServer::start().await;
    let token = s.domain_token().await;
    let r = s.get("/v1.0/tms/providers?limit=200", Some(&token)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let providers = r.body["providers"].as_array().expect("providers");
    assert_eq!(r.body["total_count"].as_u64(), Some(providers.len() as u64));
    let types: Vec<&str> = providers
        .iter()
        .flat_map(|p| p["resource_types"].as_array().expect("types").iter())
        .map(|t| t["resource_type"].as_str().expect("name"))
        .collect();
    for wanted in [
        "ecs",
        "scaling_group",
        "images",
        "disk",
        "vpcs",
        "security-groups",
        "shared_bandwidth",
        "eip",
        "cdn",
        "workspace-desktop",
        "fabric-workspace",
        "rds",
        "dis",
    ] {
        assert!(types.contains(&wanted), "{wanted} missing from {types:?}");
    }
    let cdn = providers
        .iter()
        .find(|p| p["provider"] == "cdn")
        .expect("cdn");
    assert_eq!(cdn["resource_types"][0]["global"], true);
    let evs = providers
        .iter()
        .find(|p| p["provider"] == "evs")
        .expect("evs");
    assert_eq!(
        evs["resource_types"][0]["regions"],
        json!([s.creds.project_name])
    );

    let page = s
        .get("/v1.0/tms/providers?limit=2&offset=1", Some(&token))
        .await;
    assert_eq!(page.body["providers"].as_array().map(Vec::len), Some(2));
    assert_eq!(page.body["providers"][0], providers[1]);
    let one = s
        .get(
            "/v1.0/tms/providers?provider=rds&locale=zh-cn",
            Some(&token),
        )
        .await;
    assert_eq!(one.body["total_count"], 1);
    assert_eq!(one.body["providers"][0]["provider"], "rds");
    for (bad, code) in [
        ("limit=0", "TMS.0007"),
        ("limit=201", "TMS.0007"),
        ("limit=x", "TMS.0007"),
        ("offset=-1", "TMS.0017"),
        ("locale=fr", "TMS.0002"),
    ] {
        let r = s
            .get(&format!("/v1.0/tms/providers?{bad}"), Some(&token))
            .await;
        assert_eq!((r.status, r.tms_code()), (400, code), "{bad}");
    }
    let r = s.get("/v1.0/tms/providers", None).await;
    assert_eq!(r.status, 401);
}

#[tokio::test]
async fn reading_one_resource_needs_its_type() {
    let s = TestServer::start().await;
    let token = s.domain_token().await;
    let r = s
        .get(
            &format!("/v2.0/resources/d/tags?project_id={}", s.creds.project_id),
            Some(&token),
        )
        .await;
    assert_eq!((r.status, r.tms_code()), (400, "TMS.0002"));
    let r = s
        .get("/v2.0/resources/d/tags?resource_type=disk", Some(&token))
        .await;
    assert_eq!((r.status, r.tms_code()), (400, "TMS.2011"));
}

#[tokio::test]
async fn project_tokens_stay_inside_their_project() {
    let s = TestServer::start().await;
    s.register(json!([{"resource_type": "cdn", "resource_id": "site"}]))
        .await;
    s.register_disks(&["d"]).await;
    let project = s.project_token().await;
    // Global resources belong to the domain: a project token may neither write nor read them.
    let r = s.post(CREATE, Some(&project), &json!({"resources": [{"resource_id": "site", "resource_type": "cdn"}], "tags": tags(1)})).await;
    assert_eq!((r.status, r.tms_code()), (403, "TMS.0004"), "{}", r.text);
    let r = s
        .get(
            "/v2.0/resources/site/tags?resource_type=cdn",
            Some(&project),
        )
        .await;
    assert_eq!((r.status, r.tms_code()), (403, "TMS.0004"));
    // Mixed with one of its own resources, the whole request is refused.
    let r = s.post(CREATE, Some(&project), &json!({"project_id": s.creds.project_id, "resources": [
        {"resource_id": "d", "resource_type": "disk"}, {"resource_id": "site", "resource_type": "cdn"}], "tags": tags(1)})).await;
    assert_eq!(r.status, 403);
    let domain = s.domain_token().await;
    assert!(s.disk_tags(&domain, "d").await.is_empty());
    let r = s
        .get("/v2.0/resources/site/tags?resource_type=cdn", Some(&domain))
        .await;
    assert_eq!(r.body["tags"], json!([]));
}

#[tokio::test]
async fn reading_another_projects_resource_is_forbidden() {
    let s = TestServer::start().await;
    s.register_disks(&["d"]).await;
    assert!(s
        .cli(&["project", "create", "cn-east-3"], None)
        .await
        .status
        .success());
    let east = s.token(json!({"project": {"name": "cn-east-3"}})).await;
    let r = s
        .get(
            &format!(
                "/v2.0/resources/d/tags?project_id={}&resource_type=disk",
                s.creds.project_id
            ),
            Some(&east),
        )
        .await;
    assert_eq!((r.status, r.tms_code()), (403, "TMS.0004"));
}

#[tokio::test]
async fn undecodable_paths_get_the_tms_body() {
    let s = TestServer::start().await;
    let token = s.domain_token().await;
    let r = s
        .get(
            &format!(
                "/v2.0/resources/%FF%FE/tags?project_id={}&resource_type=disk",
                s.creds.project_id
            ),
            Some(&token),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(r.tms_code(), "TMS.0002");
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("application/json")
    );
}

#[tokio::test]
async fn batch_delete_follows_the_same_limits_and_rules() {
    let s = TestServer::start().await;
    let ids: Vec<String> = (0..51).map(|i| format!("disk-{i}")).collect();
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    s.register_disks(&ids).await;
    let token = s.domain_token().await;
    let r = s
        .post(CREATE, Some(&token), &create_body(&s, &ids[..50], tags(10)))
        .await;
    assert_eq!(r.body["failed_resources"], json!([]));

    let keys = |n: usize| Value::Array((0..n).map(|i| json!({"key": format!("k{i}")})).collect());
    for (body, code) in [
        (create_body(&s, &ids, keys(1)), "TMS.0002"),
        (create_body(&s, &ids[..1], keys(11)), "TMS.0002"),
        (create_body(&s, &ids[..1], json!([])), "TMS.0012"),
        (
            create_body(&s, &ids[..1], json!([{"key": "bad key"}])),
            "TMS.0009",
        ),
        (
            create_body(&s, &ids[..1], json!([{"key": "k0", "value": "bad value"}])),
            "TMS.0010",
        ),
    ] {
        let r = s.post(DELETE, Some(&token), &body).await;
        assert_eq!((r.status, r.tms_code()), (400, code), "{}", r.text);
    }
    let r = s
        .post(DELETE, None, &create_body(&s, &ids[..1], keys(1)))
        .await;
    assert_eq!((r.status, r.tms_code()), (401, "TMS.0003"));
    let r = s
        .send(
            reqwest::Method::POST,
            DELETE,
            Some(&token),
            Some(b"{\"resources\": 1}".to_vec()),
        )
        .await;
    assert_eq!((r.status, r.tms_code()), (400, "TMS.0002"));
    assert_eq!(
        s.disk_tags(&token, "disk-0").await.len(),
        10,
        "rejected deletes removed nothing"
    );

    let r = s
        .post(DELETE, Some(&token), &create_body(&s, &ids[..50], keys(10)))
        .await;
    assert_eq!(r.body["failed_resources"], json!([]), "{}", r.text);
    assert!(s.disk_tags(&token, "disk-49").await.is_empty());
}

#[tokio::test]
async fn the_pages_example_request_is_accepted() {
    let s = TestServer::start().await;
    s.register(json!([
        {"project_id": s.creds.project_id, "resource_type": "disk", "resource_id": "a28531fa-a8d5-468e-8417-86a80962ee5e"},
        {"project_id": s.creds.project_id, "resource_type": "vpc", "resource_id": "a28531fa-a8d5-468e-8417-86a8096ddddd"}
    ])).await;
    let token = s.domain_token().await;
    let r = s
        .post(
            CREATE,
            Some(&token),
            &json!({
        "project_id": s.creds.project_id,
        "resources": [
            {"resource_id": "a28531fa-a8d5-468e-8417-86a80962ee5e", "resource_type": "disk"},
            {"resource_id": "a28531fa-a8d5-468e-8417-86a8096ddddd", "resource_type": "vpc"}],
        "tags": [{"key": "ENV", "value": "dev"}, {"key": "DEPT", "value": "pdd"}]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body, json!({"failed_resources": []}));
    let r = s
        .post(
            CREATE,
            Some(&token),
            &json!({"project_id": s.creds.project_id,
        "resources": [{"resource_id": "x", "resource_type": "floppy"}], "tags": tags(1)}),
        )
        .await;
    assert_eq!((r.status, r.tms_code()), (400, "TMS.5027"));
    assert!(
        r.tms_msg().contains("resources[0].resource_type"),
        "{}",
        r.tms_msg()
    );
}
