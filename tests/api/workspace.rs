//! Workspace desktops: batch tagging with unknown ids filtered out, the companions, and
//! the flat error body with `error_detail`.

use serde_json::{json, Value};

use crate::TestServer;

fn batch_path(s: &TestServer) -> String {
    format!("/v2/{}/desktops/batch-tags", s.creds.project_id)
}

fn tags(n: usize) -> Value {
    Value::Array(
        (0..n)
            .map(|i| json!({"key": format!("k{i}"), "value": format!("v{i}")}))
            .collect(),
    )
}

fn desktops(ids: &[&str], tags: Value) -> Value {
    json!({"desktops": ids.iter().map(|id| json!({"desktop_id": id, "tags": tags})).collect::<Vec<_>>()})
}

async fn desktop_tags(s: &TestServer, token: &str, id: &str) -> Vec<(String, String)> {
    s.tms_tags(token, "workspace-desktop", id).await
}

#[tokio::test]
async fn the_pages_example_tags_known_desktops_and_skips_unknown_ones() {
    let s = TestServer::start().await;
    s.register_in("workspace-desktop", &["string", "d2"]).await;
    let token = s.project_token().await;
    // The page's example request, as printed.
    let r = s.post(&batch_path(&s), Some(&token), &json!({"desktops": [{"desktop_id": "string", "tags": [{"key": "string", "value": ""}]}]})).await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert!(r.text.is_empty());
    assert_eq!(
        desktop_tags(&s, &token, "string").await,
        vec![("string".into(), "".into())]
    );

    let r = s
        .post(
            &batch_path(&s),
            Some(&token),
            &desktops(&["d2", "no-such-desktop"], tags(2)),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(desktop_tags(&s, &token, "d2").await.len(), 2);
    // Existing keys are overwritten.
    let r = s
        .post(
            &batch_path(&s),
            Some(&token),
            &desktops(&["d2"], json!([{"key": "k0", "value": "new"}])),
        )
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(
        desktop_tags(&s, &token, "d2").await,
        vec![("k0".into(), "new".into()), ("k1".into(), "v1".into())]
    );
}

#[tokio::test]
async fn at_most_100_desktops_and_20_tags_each() {
    let s = TestServer::start().await;
    let ids: Vec<String> = (0..101).map(|i| format!("desk-{i}")).collect();
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    s.register_in("workspace-desktop", &ids).await;
    let token = s.project_token().await;
    let r = s
        .post(&batch_path(&s), Some(&token), &desktops(&ids, tags(1)))
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(r.body["error_msg"]
        .as_str()
        .is_some_and(|m| m.contains("desktops")));
    assert!(desktop_tags(&s, &token, "desk-0").await.is_empty());
    let r = s
        .post(
            &batch_path(&s),
            Some(&token),
            &desktops(&ids[..100], tags(20)),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(desktop_tags(&s, &token, "desk-99").await.len(), 20);
    let r = s
        .post(
            &batch_path(&s),
            Some(&token),
            &desktops(&ids[100..], tags(21)),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(desktop_tags(&s, &token, "desk-100").await.is_empty());
    let r = s
        .post(&batch_path(&s), Some(&token), &json!({"desktops": []}))
        .await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn key_and_value_rules_of_the_page() {
    let s = TestServer::start().await;
    s.register_in("workspace-desktop", &["d"]).await;
    let token = s.project_token().await;
    let ok = [
        ("键".repeat(128), "值".repeat(43)),
        ("a-b_C9".to_owned(), "".to_owned()),
    ];
    for (key, value) in &ok {
        let r = s
            .post(
                &batch_path(&s),
                Some(&token),
                &desktops(&["d"], json!([{"key": key, "value": value}])),
            )
            .await;
        assert_eq!(r.status, 204, "{key:?}={value:?}: {}", r.text);
    }
    // A missing value is an empty one.
    let r = s
        .post(
            &batch_path(&s),
            Some(&token),
            &desktops(&["d"], json!([{"key": "novalue"}])),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    let before = desktop_tags(&s, &token, "d").await;
    assert!(before.contains(&("novalue".into(), "".into())));
    let mut bad: Vec<(String, String)> = vec![
        ("键".repeat(129), "v".into()),
        ("k".into(), "值".repeat(44)),
        ("".into(), "v".into()),
        ("_sys_reserved".into(), "v".into()),
        (" lead".into(), "v".into()),
    ];
    for c in ['=', '*', '<', '>', ',', '|', '/', '.', ':', '@', '+'] {
        bad.push((format!("a{c}b"), "v".into()));
        bad.push(("k".into(), format!("a{c}b")));
    }
    for (key, value) in &bad {
        let r = s
            .post(
                &batch_path(&s),
                Some(&token),
                &desktops(&["d"], json!([{"key": key, "value": value}])),
            )
            .await;
        assert_eq!(r.status, 400, "{key:?}={value:?} was accepted");
        assert_eq!(r.body["error_code"], "WKS.0002", "{}", r.text);
    }
    let r = s
        .post(
            &batch_path(&s),
            Some(&token),
            &desktops(
                &["d"],
                json!([{"key": "dup", "value": "1"}, {"key": "dup", "value": "2"}]),
            ),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        desktop_tags(&s, &token, "d").await,
        before,
        "rejected requests wrote nothing"
    );
}

#[tokio::test]
async fn one_bad_desktop_rejects_the_whole_batch() {
    let s = TestServer::start().await;
    s.register_in("workspace-desktop", &["a", "b"]).await;
    let token = s.project_token().await;
    let r = s
        .post(&batch_path(&s), Some(&token), &desktops(&["b"], tags(20)))
        .await;
    assert_eq!(r.status, 204);
    // "a" alone is fine, but "b" would pass its limit of 20: nothing is written.
    let r = s
        .post(
            &batch_path(&s),
            Some(&token),
            &json!({"desktops": [
        {"desktop_id": "a", "tags": [{"key": "x", "value": "1"}]},
        {"desktop_id": "b", "tags": [{"key": "x", "value": "1"}]}]}),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(r.body["error_code"], "WKS.0003");
    assert!(desktop_tags(&s, &token, "a").await.is_empty());
    assert_eq!(desktop_tags(&s, &token, "b").await.len(), 20);
    // A bad tag on the second desktop also undoes the first.
    let r = s
        .post(
            &batch_path(&s),
            Some(&token),
            &json!({"desktops": [
        {"desktop_id": "a", "tags": [{"key": "x", "value": "1"}]},
        {"desktop_id": "b", "tags": [{"key": "bad/key", "value": "1"}]}]}),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(desktop_tags(&s, &token, "a").await.is_empty());
}

#[tokio::test]
async fn batch_delete_takes_a_json_body() {
    let s = TestServer::start().await;
    s.register_in("workspace-desktop", &["d1", "d2"]).await;
    let token = s.project_token().await;
    s.post(
        &batch_path(&s),
        Some(&token),
        &desktops(&["d1", "d2"], tags(3)),
    )
    .await;
    let body = json!({"desktops": [
        {"desktop_id": "d1", "tags": [{"key": "k0"}, {"key": "k1", "value": "wrong"}, {"key": "missing", "value": "x"}]},
        {"desktop_id": "ghost", "tags": [{"key": "k0"}]}]});
    let r = s
        .send_with(
            reqwest::Method::DELETE,
            &batch_path(&s),
            Some(&token),
            &[],
            Some(&body),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(
        desktop_tags(&s, &token, "d1").await,
        vec![("k1".into(), "v1".into()), ("k2".into(), "v2".into())]
    );
    assert_eq!(desktop_tags(&s, &token, "d2").await.len(), 3);
    let r = s
        .send_with(
            reqwest::Method::DELETE,
            &batch_path(&s),
            Some(&token),
            &[],
            Some(&json!({"desktops": "x"})),
        )
        .await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn single_desktop_companions() {
    let s = TestServer::start().await;
    s.register_in("workspace-desktop", &["d"]).await;
    let token = s.project_token().await;
    let pid = s.creds.project_id.clone();
    let action = format!("/v2/{pid}/desktops/d/tags/action");
    let r = s.post(&action, Some(&token), &json!({"action": "create", "tags": [{"key": "a", "value": "1"}, {"key": "中文", "value": "2"}]})).await;
    assert_eq!(r.status, 204, "{}", r.text);
    let r = s
        .post(
            &action,
            Some(&token),
            &json!({"action": "delete", "tags": [{"key": "a"}]}),
        )
        .await;
    assert_eq!(r.status, 204);
    let r = s
        .post(
            &action,
            Some(&token),
            &json!({"action": "rename", "tags": [{"key": "a"}]}),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.body["error_msg"]
        .as_str()
        .is_some_and(|m| m.contains("action")));

    let r = s
        .post(
            &format!("/v2/{pid}/desktops/d/tags"),
            Some(&token),
            &json!({"tag": {"key": "b", "value": "3"}}),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(
        desktop_tags(&s, &token, "d").await,
        vec![("b".into(), "3".into()), ("中文".into(), "2".into())]
    );

    let r = s
        .send_with(
            reqwest::Method::DELETE,
            &format!("/v2/{pid}/desktops/d/tags/%E4%B8%AD%E6%96%87"),
            Some(&token),
            &[],
            None,
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    let r = s
        .send_with(
            reqwest::Method::DELETE,
            &format!("/v2/{pid}/desktops/d/tags/never-there"),
            Some(&token),
            &[],
            None,
        )
        .await;
    assert_eq!(r.status, 204, "deleting a missing tag is success");
    assert_eq!(
        desktop_tags(&s, &token, "d").await,
        vec![("b".into(), "3".into())]
    );

    for (method, path, body) in [
        (
            reqwest::Method::POST,
            format!("/v2/{pid}/desktops/ghost/tags/action"),
            Some(json!({"action": "create", "tags": [{"key": "a", "value": "1"}]})),
        ),
        (
            reqwest::Method::POST,
            format!("/v2/{pid}/desktops/ghost/tags"),
            Some(json!({"tag": {"key": "a", "value": "1"}})),
        ),
        (
            reqwest::Method::DELETE,
            format!("/v2/{pid}/desktops/ghost/tags/a"),
            None,
        ),
    ] {
        let r = s
            .send_with(method, &path, Some(&token), &[], body.as_ref())
            .await;
        assert_eq!(r.status, 404, "{path}: {}", r.text);
        assert_eq!(r.body["error_code"], "WKS.0004");
    }
}

#[tokio::test]
async fn error_bodies_have_the_documented_fields() {
    let s = TestServer::start().await;
    s.register_in("workspace-desktop", &["d"]).await;
    let token = s.project_token().await;
    let r = s
        .post(&batch_path(&s), Some(&token), &json!({"desktops": 1}))
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        TestServer::fields(&r.body),
        ["error_code", "error_detail", "error_msg"]
    );
    let r = s
        .post(&batch_path(&s), None, &desktops(&["d"], tags(1)))
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(
        TestServer::fields(&r.body),
        ["error_code", "error_detail", "error_msg"]
    );
    assert_eq!(r.body["error_code"], "APIGW.0301");
    let other = s.other_project_token("cn-east-3").await;
    let r = s
        .post(&batch_path(&s), Some(&other), &desktops(&["d"], tags(1)))
        .await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert_eq!(
        TestServer::fields(&r.body),
        [
            "encoded_authorization_message",
            "error_code",
            "error_detail",
            "error_msg"
        ]
    );
    assert!(r.body["encoded_authorization_message"]
        .as_str()
        .is_some_and(|m| !m.is_empty()));
    let r = s.get(&batch_path(&s), Some(&token)).await;
    assert_eq!(r.status, 405);
    assert_eq!(
        TestServer::fields(&r.body),
        ["error_code", "error_detail", "error_msg"]
    );
    assert!(
        desktop_tags(&s, &token, "d").await.is_empty(),
        "no refused request wrote anything"
    );
}

#[tokio::test]
async fn a_tag_keyed_action_can_be_deleted_singly() {
    let s = TestServer::start().await;
    s.register_in("workspace-desktop", &["d"]).await;
    let token = s.project_token().await;
    let pid = s.creds.project_id.clone();
    let r = s
        .post(
            &format!("/v2/{pid}/desktops/d/tags"),
            Some(&token),
            &json!({"tag": {"key": "action", "value": "x"}}),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    let r = s
        .send_with(
            reqwest::Method::DELETE,
            &format!("/v2/{pid}/desktops/d/tags/action"),
            Some(&token),
            &[],
            None,
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert!(desktop_tags(&s, &token, "d").await.is_empty());
}
