//! The resource inventory through the admin HTTP API and the admin CLI.

use serde_json::json;

use crate::TestServer;

#[tokio::test]
async fn administrators_register_list_and_remove_resources() {
    let s = TestServer::start().await;
    let token = s.domain_token().await;
    let pid = s.creds.project_id.clone();
    let r = s
        .post(
            "/tagd/v1/resources",
            Some(&token),
            &json!({"resources": [
            {"project_id": pid, "resource_type": "disk", "resource_id": "d1", "name": "boot"},
            {"project_id": pid, "resource_type": "ecs", "resource_id": "vm1"}]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body, json!({"registered": 2, "updated": 0}));
    let r = s.post("/tagd/v1/resources", Some(&token), &json!({"resources": [{"project_id": pid, "resource_type": "disk", "resource_id": "d1", "name": "root"}]})).await;
    assert_eq!(r.body, json!({"registered": 0, "updated": 1}));

    let r = s
        .get("/tagd/v1/resources?resource_type=disk", Some(&token))
        .await;
    assert_eq!(
        r.body["resources"],
        json!([{"project_id": pid, "resource_type": "disk", "resource_id": "d1", "name": "root"}])
    );

    let r = s.post("/tagd/v1/resources/delete", Some(&token), &json!({"resources": [{"project_id": pid, "resource_type": "disk", "resource_id": "d1"}]})).await;
    assert_eq!(r.body, json!({"removed": 1}));
    let r = s.get("/tagd/v1/resources", Some(&token)).await;
    assert_eq!(r.body["resources"].as_array().map(Vec::len), Some(1));
    // An offset past i64 is past the end: an empty page, never page one again.
    for offset in ["9223372036854775807", "9223372036854775808", "18446744073709551615"] {
        let r = s
            .get(&format!("/tagd/v1/resources?offset={offset}"), Some(&token))
            .await;
        assert_eq!(r.status, 200, "{offset}: {}", r.text);
        assert_eq!(r.body["resources"], json!([]), "offset {offset}");
    }

    for bad in [
        json!({"resources": [{"project_id": pid, "resource_type": "floppy", "resource_id": "x"}]}),
        json!({"resources": [{"resource_type": "disk", "resource_id": "x"}]}),
        json!({"resources": [{"project_id": pid, "resource_type": "disk", "resource_id": ""}]}),
        json!({"resources": []}),
    ] {
        let r = s.post("/tagd/v1/resources", Some(&token), &bad).await;
        assert_eq!(r.status, 400, "{bad}: {}", r.text);
        assert!(r.body["error_code"]
            .as_str()
            .is_some_and(|c| c.starts_with("TAGD.")));
    }
    let r = s.post("/tagd/v1/resources", Some(&token), &json!({"resources": [{"project_id": "not-mine", "resource_type": "disk", "resource_id": "x"}]})).await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn only_administrators_use_the_admin_api() {
    let s = TestServer::start().await;
    let token = s
        .user_token("bob", json!({"domain": {"name": s.creds.domain_name}}))
        .await;
    let r = s.get("/tagd/v1/resources", Some(&token)).await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert_eq!(r.body["error_code"], "TAGD.0403");
    let r = s.get("/tagd/v1/resources", None).await;
    assert_eq!(r.status, 401);
}

#[tokio::test]
async fn the_cli_imports_csv_and_json_and_reads_passwords_from_stdin() {
    let s = TestServer::start().await;
    let pid = &s.creds.project_id;
    let csv = s.dir.join("resources.csv");
    std::fs::write(&csv, format!("project_id,resource_type,resource_id,name\n{pid},disk,c1,first\n{pid},disk,c2,\n,cdn,cdn.example.com,site\n")).expect("csv");
    let out = s
        .cli(&["resource", "import", csv.to_str().expect("path")], None)
        .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("3 newly registered"));

    let json_file = s.dir.join("resources.json");
    std::fs::write(
        &json_file,
        json!([{"project_id": pid, "resource_type": "disk", "resource_id": "j1"}]).to_string(),
    )
    .expect("json");
    let out = s
        .cli(
            &["resource", "import", json_file.to_str().expect("path")],
            None,
        )
        .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = s.cli(&["resource", "list", "--type", "disk"], None).await;
    let listed = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(listed.lines().count(), 1 + 3, "a header and 3 rows: {listed}");

    // A bad row names its line and registers nothing more.
    std::fs::write(
        &csv,
        format!("project_id,resource_type,resource_id,name\n{pid},disk,ok1,\n{pid},tape,bad,\n"),
    )
    .expect("csv");
    let out = s
        .cli(&["resource", "import", csv.to_str().expect("path")], None)
        .await;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("tape") && stderr.contains("resources[1].resource_type"),
        "{stderr}"
    );
    let out = s.cli(&["resource", "list", "--type", "disk"], None).await;
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1 + 3);

    let out = s.cli(&["user", "create", "eve"], Some("")).await;
    assert!(!out.status.success(), "an empty stdin is not a password");
    let out = s.cli(&["user", "create", "eve"], Some("short\n")).await;
    assert!(!out.status.success(), "passwords have a minimum length");
    let token = s.user_token("carol", json!({"project": {"id": pid}})).await;
    assert!(token.len() >= 32);
}

#[tokio::test]
async fn the_admin_api_takes_csv_too() {
    let s = TestServer::start().await;
    let token = s.domain_token().await;
    let pid = s.creds.project_id.clone();
    let csv = format!("project_id,resource_type,resource_id,name\n{pid},disk,c1,first\n{pid},disk,c2,\n,cdn,cdn.example.com,site\n");
    let r = s
        .http
        .post(s.url("/tagd/v1/resources"))
        .header("X-Auth-Token", &token)
        .header("Content-Type", "text/csv")
        .body(csv)
        .send()
        .await
        .expect("post");
    let status = r.status().as_u16();
    let body: serde_json::Value = r.json().await.expect("json");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"registered": 3, "updated": 0}));
    let bad = format!("project_id,resource_type,resource_id,name\n{pid},disk,ok,\n{pid},disk\n");
    let r = s
        .http
        .post(s.url("/tagd/v1/resources"))
        .header("X-Auth-Token", &token)
        .header("Content-Type", "text/csv; charset=utf-8")
        .body(bad)
        .send()
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 400);
    let body: serde_json::Value = r.json().await.expect("json");
    assert!(
        body["error_msg"]
            .as_str()
            .is_some_and(|m| m.contains("line 3")),
        "{body}"
    );
    let r = s
        .get("/tagd/v1/resources?resource_type=disk", Some(&token))
        .await;
    assert_eq!(
        r.body["resources"].as_array().map(Vec::len),
        Some(2),
        "the bad file registered nothing"
    );
}
