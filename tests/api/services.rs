//! What the five APIs share: one tag store, one limit per resource whichever API writes,
//! and project isolation.

use std::sync::Arc;

use serde_json::{json, Value};

use crate::TestServer;

/// Creates tag `key=value` on resource `id` through the per-service API that owns
/// `resource_type`; returns the HTTP status.
async fn write_through_service(
    s: &TestServer,
    token: &str,
    resource_type: &str,
    id: &str,
    key: &str,
    value: &str,
) -> u16 {
    let pid = &s.creds.project_id;
    let tag = json!({"key": key, "value": value});
    let (path, body) = match resource_type {
        "workspace-desktop" => (
            format!("/v2/{pid}/desktops/batch-tags"),
            json!({"desktops": [{"desktop_id": id, "tags": [tag]}]}),
        ),
        "fabric-workspace" => (
            format!("/v1/{pid}/fabric-workspace/{id}/tags/create"),
            json!({"tags": [tag]}),
        ),
        "rds" => (
            format!("/v3/{pid}/instances/{id}/tags/action"),
            json!({"action": "create", "tags": [tag]}),
        ),
        "dis" => (
            format!("/v2/{pid}/stream/{id}/tags/action"),
            json!({"action": "create", "tags": [tag]}),
        ),
        other => panic!("no per-service API for {other}"),
    };
    let r = s.post(&path, Some(token), &body).await;
    r.status
}

const SERVICE_TYPES: [&str; 4] = ["workspace-desktop", "fabric-workspace", "rds", "dis"];

#[tokio::test]
async fn a_tag_written_through_any_api_is_seen_through_tms_and_back() {
    let s = TestServer::start().await;
    let token = s.project_token().await;
    for rt in SERVICE_TYPES {
        s.register_in(rt, &["shared-1"]).await;
        assert_eq!(
            write_through_service(&s, &token, rt, "shared-1", "via", "service").await,
            204,
            "{rt}"
        );
        // TMS sees it under the mapped resource type, and can overwrite it...
        assert_eq!(
            s.tms_tags(&token, rt, "shared-1").await,
            vec![("via".into(), "service".into())],
            "{rt}"
        );
        let r = s
            .post("/v1.0/resource-tags/batch-create", Some(&token), &json!({"project_id": s.creds.project_id,
                "resources": [{"resource_id": "shared-1", "resource_type": rt}], "tags": [{"key": "via", "value": "tms"}]}))
            .await;
        assert_eq!(r.body, json!({"failed_resources": []}), "{rt}: {}", r.text);
        // ...which the service's own write then sees as an existing key.
        assert_eq!(
            write_through_service(&s, &token, rt, "shared-1", "second", "x").await,
            204
        );
        assert_eq!(
            s.tms_tags(&token, rt, "shared-1").await,
            vec![("second".into(), "x".into()), ("via".into(), "tms".into())],
            "{rt}"
        );
    }
    // The same id under different types is different resources.
    assert_eq!(s.tms_tags(&token, "rds", "shared-1").await.len(), 2);
    let r = s
        .get(
            &format!(
                "/v2.0/resources/shared-1/tags?project_id={}&resource_type=disk",
                s.creds.project_id
            ),
            Some(&token),
        )
        .await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn the_limit_holds_whichever_api_writes() {
    let s = TestServer::start().await;
    let token = s.project_token().await;
    for rt in SERVICE_TYPES {
        s.register_in(rt, &["full"]).await;
        // 19 through TMS in two calls, the 20th through the service: at the limit.
        for chunk in [0..10, 10..19] {
            let tags: Vec<Value> = chunk
                .map(|i| json!({"key": format!("t{i}"), "value": ""}))
                .collect();
            let r = s
                .post(
                    "/v1.0/resource-tags/batch-create",
                    Some(&token),
                    &json!({"project_id": s.creds.project_id,
                    "resources": [{"resource_id": "full", "resource_type": rt}], "tags": tags}),
                )
                .await;
            assert_eq!(r.body["failed_resources"], json!([]), "{rt}: {}", r.text);
        }
        assert_eq!(
            write_through_service(&s, &token, rt, "full", "s19", "").await,
            204,
            "{rt}"
        );
        assert_eq!(
            write_through_service(&s, &token, rt, "full", "s20", "").await,
            400,
            "{rt}: a 21st tag"
        );
        let r = s
            .post("/v1.0/resource-tags/batch-create", Some(&token), &json!({"project_id": s.creds.project_id,
                "resources": [{"resource_id": "full", "resource_type": rt}], "tags": [{"key": "t99", "value": ""}]}))
            .await;
        assert_eq!(
            r.body["failed_resources"][0]["error_code"], "TMS.0014",
            "{rt}"
        );
        assert_eq!(s.tms_tags(&token, rt, "full").await.len(), 20, "{rt}");
    }
}

#[tokio::test]
async fn concurrent_writers_never_pass_the_limit_nor_lose_an_acknowledged_write() {
    let s = Arc::new(TestServer::start().await);
    let token = s.project_token().await;
    for rt in SERVICE_TYPES {
        s.register_in(rt, &["hot"]).await;
    }
    // 40 writers per resource type, each adding its own key, half through the service's
    // API and half through TMS; the limit is 20.
    let mut tasks = Vec::new();
    for rt in SERVICE_TYPES {
        for w in 0..40 {
            let (s, token) = (s.clone(), token.clone());
            tasks.push(tokio::spawn(async move {
                let key = format!("w{w:02}");
                let ok = if w % 2 == 0 {
                    write_through_service(&s, &token, rt, "hot", &key, "v").await == 204
                } else {
                    let r = s
                        .post("/v1.0/resource-tags/batch-create", Some(&token), &json!({"project_id": s.creds.project_id,
                            "resources": [{"resource_id": "hot", "resource_type": rt}], "tags": [{"key": key, "value": "v"}]}))
                        .await;
                    assert_eq!(r.status, 200);
                    r.body["failed_resources"] == json!([])
                };
                (rt, key, ok)
            }));
        }
    }
    let mut acknowledged: std::collections::HashMap<&str, Vec<String>> = Default::default();
    for t in tasks {
        let (rt, key, ok) = t.await.expect("writer");
        if ok {
            acknowledged.entry(rt).or_default().push(key);
        }
    }
    for rt in SERVICE_TYPES {
        let mut acked = acknowledged.remove(rt).unwrap_or_default();
        acked.sort();
        let stored: Vec<String> = s
            .tms_tags(&token, rt, "hot")
            .await
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(acked.len(), 20, "{rt}: exactly the limit is acknowledged");
        assert_eq!(
            stored, acked,
            "{rt}: every acknowledged write is there, and nothing else"
        );
    }
}

#[tokio::test]
async fn every_service_refuses_missing_tokens_and_other_projects() {
    let s = TestServer::start().await;
    let token = s.project_token().await;
    let other = s.other_project_token("cn-east-3").await;
    for rt in SERVICE_TYPES {
        s.register_in(rt, &["mine"]).await;
        assert_eq!(
            write_through_service(&s, "not-a-token", rt, "mine", "k", "v").await,
            401,
            "{rt}"
        );
        assert_eq!(
            write_through_service(&s, &other, rt, "mine", "k", "v").await,
            403,
            "{rt}"
        );
        assert!(
            s.tms_tags(&token, rt, "mine").await.is_empty(),
            "{rt}: nothing written"
        );
    }
    // A project id that is not the caller's at all.
    let r = s
        .post(
            "/v3/0123456789abcdef0123456789abcdef/instances/mine/tags/action",
            Some(&token),
            &json!({"action": "create", "tags": [{"key": "k", "value": "v"}]}),
        )
        .await;
    assert_eq!(r.status, 403);
}
