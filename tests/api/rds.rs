//! RDS instances: `tags/action` create and delete, the page's key and value rules, and
//! error messages in the language of `X-Language`.

use serde_json::{json, Value};

use crate::TestServer;

fn action_path(s: &TestServer, instance: &str) -> String {
    format!(
        "/v3/{}/instances/{instance}/tags/action",
        s.creds.project_id
    )
}

async fn instance_tags(s: &TestServer, token: &str, id: &str) -> Vec<(String, String)> {
    s.tms_tags(token, "rds", id).await
}

const INSTANCE: &str = "61a4ea66210545909d74a05c27a7179ein07";

#[tokio::test]
async fn the_pages_examples_add_and_delete() {
    let s = TestServer::start().await;
    s.register_in("rds", &[INSTANCE]).await;
    let token = s.project_token().await;
    let r = s
        .post(
            &action_path(&s, INSTANCE),
            Some(&token),
            &json!({"action": "create", "tags": [
        {"key": "key1", "value": "value1"}, {"key": "key2", "value": "value2"}]}),
        )
        .await;
    assert!(
        r.status == 204 && r.text.is_empty(),
        "{} {}",
        r.status,
        r.text
    );
    assert_eq!(
        instance_tags(&s, &token, INSTANCE).await,
        vec![
            ("key1".into(), "value1".into()),
            ("key2".into(), "value2".into())
        ]
    );
    let r = s.post(&action_path(&s, INSTANCE), Some(&token), &json!({"action": "delete", "tags": [{"key": "key1"}, {"key": "key2", "value": "value2"}]})).await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert!(instance_tags(&s, &token, INSTANCE).await.is_empty());
}

#[tokio::test]
async fn delete_by_key_and_value_removes_only_a_matching_tag() {
    let s = TestServer::start().await;
    s.register_in("rds", &["i"]).await;
    let token = s.project_token().await;
    s.post(&action_path(&s, "i"), Some(&token), &json!({"action": "create", "tags": [{"key": "a", "value": "1"}, {"key": "b", "value": "2"}]})).await;
    let r = s
        .post(
            &action_path(&s, "i"),
            Some(&token),
            &json!({"action": "delete", "tags": [{"key": "a", "value": "other"}, {"key": "nope"}]}),
        )
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(instance_tags(&s, &token, "i").await.len(), 2);
    let r = s
        .post(
            &action_path(&s, "i"),
            Some(&token),
            &json!({"action": "delete", "tags": [{"key": "a", "value": "1"}, {"key": "b"}]}),
        )
        .await;
    assert_eq!(r.status, 204);
    assert!(instance_tags(&s, &token, "i").await.is_empty());
}

#[tokio::test]
async fn key_and_value_rules_of_the_page() {
    let s = TestServer::start().await;
    s.register_in("rds", &["i"]).await;
    let token = s.project_token().await;
    let create = |tags: Value| json!({"action": "create", "tags": tags});
    for (key, value) in [
        ("键".repeat(36), "值".repeat(43)),
        ("A_b-9".to_owned(), "".to_owned()),
        ("k".to_owned(), "1.2_a-B".to_owned()),
    ] {
        let r = s
            .post(
                &action_path(&s, "i"),
                Some(&token),
                &create(json!([{"key": key, "value": value}])),
            )
            .await;
        assert_eq!(r.status, 204, "{key:?}={value:?}: {}", r.text);
    }
    let before = instance_tags(&s, &token, "i").await;
    let mut bad: Vec<Value> = vec![
        json!([{"key": "键".repeat(37), "value": "v"}]),
        json!([{"key": "k", "value": "值".repeat(44)}]),
        json!([{"key": "", "value": "v"}]),
        json!([{"key": " ", "value": "v"}]),
        json!([{"key": "k", "value": " "}]),
        json!([{"key": "k"}]),
        json!([{"key": "a", "value": "1"}, {"key": "a", "value": "2"}]),
        json!([]),
    ];
    for c in ['.', ' ', '=', '@', ':', '/'] {
        bad.push(json!([{"key": format!("a{c}b"), "value": "v"}]));
    }
    for c in [' ', '=', '@', ':', '/'] {
        bad.push(json!([{"key": "k", "value": format!("a{c}b")}]));
    }
    bad.push(json!([{"key": "ok", "value": "v"}, {"key": "bad key", "value": "v"}]));
    for tags in &bad {
        let r = s
            .post(&action_path(&s, "i"), Some(&token), &create(tags.clone()))
            .await;
        assert_eq!(r.status, 400, "{tags} was accepted");
        assert_eq!(r.body["error_code"], "DBS.200001", "{}", r.text);
    }
    let r = s
        .post(
            &action_path(&s, "i"),
            Some(&token),
            &json!({"action": "update", "tags": [{"key": "k", "value": "v"}]}),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        instance_tags(&s, &token, "i").await,
        before,
        "rejected requests wrote nothing"
    );
}

#[tokio::test]
async fn an_instance_holds_at_most_20_tags() {
    let s = TestServer::start().await;
    s.register_in("rds", &["i"]).await;
    let token = s.project_token().await;
    let tags: Vec<Value> = (0..20)
        .map(|i| json!({"key": format!("k{i}"), "value": ""}))
        .collect();
    let r = s
        .post(
            &action_path(&s, "i"),
            Some(&token),
            &json!({"action": "create", "tags": tags}),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    let r = s.post(&action_path(&s, "i"), Some(&token), &json!({"action": "create", "tags": [{"key": "k0", "value": "x"}, {"key": "k20", "value": "x"}]})).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["error_code"], "DBS.200087");
    let now = instance_tags(&s, &token, "i").await;
    assert_eq!(now.len(), 20);
    assert!(
        now.contains(&("k0".into(), "".into())),
        "the overwrite in the refused request was undone too"
    );
}

#[tokio::test]
async fn x_language_selects_the_language_of_error_messages() {
    let s = TestServer::start().await;
    s.register_in("rds", &["i"]).await;
    let token = s.project_token().await;
    let long_key = json!({"action": "create", "tags": [{"key": "k".repeat(37), "value": "v"}]});
    let cases: Vec<(Option<&str>, &str, Value, u16)> = vec![
        (Some("zh-cn"), "i", long_key.clone(), 400),
        (
            Some("zh-cn"),
            "missing",
            json!({"action": "create", "tags": [{"key": "k", "value": "v"}]}),
            404,
        ),
        (Some("zh-cn"), "i", json!({"action": 1}), 400),
        (
            Some("zh-cn"),
            "i",
            json!({"action": "create", "tags": [{"key": "k"}]}),
            400,
        ),
    ];
    for (language, instance, body, status) in cases {
        let headers: Vec<(&str, &str)> = language.iter().map(|l| ("X-Language", *l)).collect();
        let r = s
            .send_with(
                reqwest::Method::POST,
                &action_path(&s, instance),
                Some(&token),
                &headers,
                Some(&body),
            )
            .await;
        assert_eq!(r.status, status, "{}", r.text);
        let msg = r.body["error_msg"].as_str().expect("error_msg");
        assert!(
            msg.chars().any(|c| ('\u{4E00}'..='\u{9FFF}').contains(&c)),
            "not Chinese: {msg}"
        );
        assert!(
            !msg.contains("invalid") && !msg.contains("not found"),
            "English left in: {msg}"
        );
    }
    let r = s
        .send_with(
            reqwest::Method::POST,
            &action_path(&s, "i"),
            Some(&token),
            &[("X-Language", "zh-cn")],
            Some(&long_key),
        )
        .await;
    let zh = r.body["error_msg"].as_str().expect("msg").to_owned();
    assert!(
        zh.contains("37") && zh.contains("36"),
        "the specifics survive translation: {zh}"
    );
    for language in [None, Some("en-us")] {
        let headers: Vec<(&str, &str)> = language.iter().map(|l| ("X-Language", *l)).collect();
        let r = s
            .send_with(
                reqwest::Method::POST,
                &action_path(&s, "i"),
                Some(&token),
                &headers,
                Some(&long_key),
            )
            .await;
        let msg = r.body["error_msg"].as_str().expect("msg");
        assert!(msg.contains("37 characters; at most 36"), "{msg}");
        assert!(msg.is_ascii(), "English by default: {msg}");
    }
    // Authentication failures and unknown routes speak it too.
    let r = s
        .send_with(
            reqwest::Method::POST,
            &action_path(&s, "i"),
            None,
            &[("X-Language", "zh-cn")],
            Some(&long_key),
        )
        .await;
    assert_eq!(r.status, 401);
    assert!(
        r.body["error_msg"]
            .as_str()
            .is_some_and(|m| m.contains("认证失败")),
        "{}",
        r.text
    );
}

#[tokio::test]
async fn unknown_instances_other_projects_and_bad_tokens_change_nothing() {
    let s = TestServer::start().await;
    s.register_in("rds", &["i"]).await;
    let token = s.project_token().await;
    let body = json!({"action": "create", "tags": [{"key": "k", "value": "v"}]});
    let r = s
        .post(&action_path(&s, "missing"), Some(&token), &body)
        .await;
    assert_eq!(
        (r.status, r.body["error_code"].as_str()),
        (404, Some("DBS.200002"))
    );
    assert_eq!(TestServer::fields(&r.body), ["error_code", "error_msg"]);
    let r = s.post(&action_path(&s, "i"), None, &body).await;
    assert_eq!(
        (r.status, r.body["error_code"].as_str()),
        (401, Some("APIGW.0301"))
    );
    let other = s.other_project_token("cn-east-3").await;
    let r = s.post(&action_path(&s, "i"), Some(&other), &body).await;
    assert_eq!(
        (r.status, r.body["error_code"].as_str()),
        (403, Some("DBS.200010")),
        "{}",
        r.text
    );
    assert_eq!(TestServer::fields(&r.body), ["error_code", "error_msg"]);
    assert!(instance_tags(&s, &token, "i").await.is_empty());
}
