//! What survives a restart: tags, tokens and the inventory are in the store, not in memory.

use serde_json::json;

use crate::TestServer;

#[tokio::test]
async fn tags_and_tokens_survive_a_restart() {
    let s = TestServer::start().await;
    s.register_disks(&["d"]).await;
    let token = s.domain_token().await;
    let r = s
        .post("/v1.0/resource-tags/batch-create", Some(&token), &json!({"project_id": s.creds.project_id,
            "resources": [{"resource_id": "d", "resource_type": "disk"}], "tags": [{"key": "ENV", "value": "prod"}]}))
        .await;
    assert_eq!(r.status, 200);
    let password = s.creds.password.clone();

    let s = s.restart().await;
    assert_eq!(
        s.creds.password, password,
        "a restart does not bootstrap again"
    );
    assert_eq!(
        s.disk_tags(&token, "d").await,
        vec![("ENV".into(), "prod".into())]
    );
}

#[tokio::test]
async fn concurrent_writes_are_all_kept() {
    let s = TestServer::start().await;
    let ids: Vec<String> = (0..8).map(|i| format!("disk-{i}")).collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    s.register_disks(&refs).await;
    let token = s.domain_token().await;
    let s = std::sync::Arc::new(s);
    let mut tasks = Vec::new();
    for writer in 0..64 {
        let s = s.clone();
        let token = token.clone();
        let id = ids[writer % ids.len()].clone();
        tasks.push(tokio::spawn(async move {
            let body = json!({"project_id": s.creds.project_id, "resources": [{"resource_id": id, "resource_type": "disk"}],
                "tags": [{"key": format!("w{}", writer / 8), "value": format!("{writer}")}]});
            s.post("/v1.0/resource-tags/batch-create", Some(&token), &body).await.status
        }));
    }
    for t in tasks {
        assert_eq!(t.await.expect("task"), 200);
    }
    for (i, id) in ids.iter().enumerate() {
        let tags = s.disk_tags(&token, id).await;
        let expected: Vec<(String, String)> = (0..8)
            .map(|w| (format!("w{w}"), format!("{}", w * 8 + i)))
            .collect();
        assert_eq!(tags, expected, "{id}");
    }
}
