//! DIS reads: one stream's tags, the project's keys, and `resource_instances/action`
//! (filter and count): every operator alone and combined, `matches` as a string or a
//! JSON-encoded list, paging with string and number values, the 10 keys × 10 values
//! limits at n and n+1, read-your-writes, project isolation and tags written through TMS.

use std::collections::HashSet;

use serde_json::{json, Value};

use crate::{Reply, TestServer};

const TYPE: &str = "dis";

fn filter_path(s: &TestServer) -> String {
    format!(
        "/v2/{}/stream/resource_instances/action",
        s.creds.project_id
    )
}

fn project_tags_path(s: &TestServer) -> String {
    format!("/v2/{}/stream/tags", s.creds.project_id)
}

fn stream_tags_path(s: &TestServer, id: &str) -> String {
    format!("/v2/{}/stream/{id}/tags", s.creds.project_id)
}

async fn register_named(s: &TestServer, streams: &[(&str, &str)]) {
    let resources: Vec<Value> = streams
        .iter()
        .map(|(id, name)| {
            json!({"project_id": s.creds.project_id, "resource_type": TYPE,
                   "resource_id": id, "name": name})
        })
        .collect();
    s.register(Value::Array(resources)).await;
}

/// Tags a stream through DIS's own `tags/action`.
async fn tag(s: &TestServer, token: &str, id: &str, pairs: &[(&str, &str)]) {
    let tags: Vec<Value> = pairs
        .iter()
        .map(|(k, v)| json!({"key": k, "value": v}))
        .collect();
    let r = s
        .post(
            &format!("/v2/{}/stream/{id}/tags/action", s.creds.project_id),
            Some(token),
            &json!({"action": "create", "tags": tags}),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
}

/// Five named streams:
/// s1 web-1 {env=prod, team=a}; s2 web-2 {env=dev, team=b}; s3 db-1 {env=prod};
/// s4 db-2 {}; s5 cache {team=a, tier=gold}.
async fn fixture() -> (TestServer, String) {
    let s = TestServer::start().await;
    register_named(
        &s,
        &[
            ("s1", "web-1"),
            ("s2", "web-2"),
            ("s3", "db-1"),
            ("s4", "db-2"),
            ("s5", "cache"),
        ],
    )
    .await;
    let token = s.project_token().await;
    tag(&s, &token, "s1", &[("env", "prod"), ("team", "a")]).await;
    tag(&s, &token, "s2", &[("env", "dev"), ("team", "b")]).await;
    tag(&s, &token, "s3", &[("env", "prod")]).await;
    tag(&s, &token, "s5", &[("team", "a"), ("tier", "gold")]).await;
    (s, token)
}

fn ids(body: &Value) -> Vec<String> {
    body["resources"]
        .as_array()
        .unwrap_or_else(|| panic!("no resources in {body}"))
        .iter()
        .map(|r| r["resource_id"].as_str().expect("resource_id").to_owned())
        .collect()
}

fn with_action(action: &str, mut body: Value) -> Value {
    body["action"] = json!(action);
    body
}

/// Filters with `body` and checks that `count` agrees; returns the ids.
async fn filtered(s: &TestServer, token: &str, body: Value) -> Vec<String> {
    let r = s
        .post(
            &filter_path(s),
            Some(token),
            &with_action("filter", body.clone()),
        )
        .await;
    assert_eq!(r.status, 200, "{body}: {}", r.text);
    assert_eq!(TestServer::fields(&r.body), ["resources", "total_count"]);
    let found = ids(&r.body);
    assert_eq!(
        r.body["total_count"].as_u64(),
        Some(found.len() as u64),
        "{body}"
    );
    let c = s
        .post(
            &filter_path(s),
            Some(token),
            &with_action("count", body.clone()),
        )
        .await;
    assert_eq!(c.status, 200, "{}", c.text);
    assert_eq!(TestServer::fields(&c.body), ["total_count"]);
    assert_eq!(
        c.body["total_count"].as_u64(),
        Some(found.len() as u64),
        "{body}"
    );
    found
}

fn assert_bad(r: &Reply, what: &str) {
    assert_eq!(r.status, 400, "{what}: {}", r.text);
    assert_eq!(r.body["error_code"], "DIS.4200", "{what}: {}", r.text);
    assert_eq!(
        TestServer::fields(&r.body),
        ["error_code", "error_msg"],
        "{what}"
    );
}

#[tokio::test]
async fn one_streams_tags_and_the_projects_keys() {
    let (s, token) = fixture().await;
    let r = s.get(&stream_tags_path(&s, "s1"), Some(&token)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.body,
        json!({"tags": [{"key": "env", "value": "prod"}, {"key": "team", "value": "a"}]})
    );
    let r = s.get(&stream_tags_path(&s, "s4"), Some(&token)).await;
    assert_eq!(r.body, json!({"tags": []}));
    let r = s.get(&stream_tags_path(&s, "ghost"), Some(&token)).await;
    assert_eq!(r.status, 404, "{}", r.text);
    assert_eq!(r.body["error_code"], "DIS.4301");
    let r = s.get(&project_tags_path(&s), Some(&token)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.body,
        json!({"tags": [
            {"key": "env", "values": ["dev", "prod"]},
            {"key": "team", "values": ["a", "b"]},
            {"key": "tier", "values": ["gold"]}]})
    );
    for path in [stream_tags_path(&s, "s1"), project_tags_path(&s)] {
        let r = s.get(&path, None).await;
        assert_eq!(r.status, 401);
        assert_eq!(r.body["error_code"], "APIGW.0301");
    }
    let s2 = TestServer::start().await;
    let t2 = s2.project_token().await;
    let r = s2.get(&project_tags_path(&s2), Some(&t2)).await;
    assert_eq!(r.body, json!({"tags": []}));
}

#[tokio::test]
async fn streams_named_like_the_static_segments_are_still_streams() {
    let s = TestServer::start().await;
    s.register_in(TYPE, &["tags", "resource_instances"]).await;
    let token = s.project_token().await;
    tag(&s, &token, "tags", &[("a", "1")]).await;
    tag(&s, &token, "resource_instances", &[("b", "2")]).await;
    let r = s.get(&stream_tags_path(&s, "tags"), Some(&token)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body, json!({"tags": [{"key": "a", "value": "1"}]}));
    let r = s
        .get(&stream_tags_path(&s, "resource_instances"), Some(&token))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body, json!({"tags": [{"key": "b", "value": "2"}]}));
    let r = s.get(&project_tags_path(&s), Some(&token)).await;
    assert_eq!(
        r.body,
        json!({"tags": [{"key": "a", "values": ["1"]}, {"key": "b", "values": ["2"]}]})
    );
}

#[tokio::test]
async fn each_operator_alone() {
    let (s, token) = fixture().await;
    let f = |body: Value| filtered(&s, &token, body);
    assert_eq!(f(json!({})).await, ["s1", "s2", "s3", "s4", "s5"]);
    assert_eq!(
        f(json!({"tags": [{"key": "env", "values": []}]})).await,
        ["s1", "s2", "s3"]
    );
    assert_eq!(
        f(json!({"tags": [{"key": "env"}]})).await,
        ["s1", "s2", "s3"]
    );
    assert_eq!(
        f(json!({"tags": [{"key": "env", "values": ["prod"]}]})).await,
        ["s1", "s3"]
    );
    assert_eq!(
        f(json!({"tags": [{"key": "env", "values": ["prod", "dev"]}]})).await,
        ["s1", "s2", "s3"]
    );
    assert_eq!(
        f(json!({"tags": [{"key": "env", "values": ["prod"]}, {"key": "team", "values": []}]}))
            .await,
        ["s1"]
    );
    assert_eq!(
        f(json!({"tags_any": [{"key": "env", "values": ["dev"]}, {"key": "tier", "values": []}]}))
            .await,
        ["s2", "s5"]
    );
    assert_eq!(
        f(json!({"not_tags": [{"key": "env", "values": ["prod"]}, {"key": "team", "values": ["a"]}]}))
            .await,
        ["s2", "s3", "s4", "s5"]
    );
    assert_eq!(
        f(json!({"not_tags_any": [{"key": "env", "values": []}]})).await,
        ["s4", "s5"]
    );
    assert_eq!(
        f(json!({"not_tags_any": [{"key": "env", "values": ["prod"]}, {"key": "team", "values": ["b"]}]}))
            .await,
        ["s4", "s5"]
    );
    // matches: the SDK's string is the name substring, case-sensitive.
    assert_eq!(f(json!({"matches": "web"})).await, ["s1", "s2"]);
    assert_eq!(f(json!({"matches": "-2"})).await, ["s2", "s4"]);
    assert!(f(json!({"matches": "WEB"})).await.is_empty());
    assert_eq!(
        f(json!({"matches": ""})).await,
        ["s1", "s2", "s3", "s4", "s5"]
    );
}

#[tokio::test]
async fn matches_may_be_a_json_encoded_list() {
    let (s, token) = fixture().await;
    let f = |body: Value| filtered(&s, &token, body);
    let encoded = json!([{"key": "resource_name", "value": "db"}]).to_string();
    assert_eq!(f(json!({ "matches": encoded })).await, ["s3", "s4"]);
    let one = json!({"key": "resource_name", "value": "cache"}).to_string();
    assert_eq!(f(json!({ "matches": one })).await, ["s5"]);
    assert_eq!(
        f(json!({"matches": [{"key": "resource_name", "value": "web"}]})).await,
        ["s1", "s2"]
    );
    assert_eq!(
        f(json!({"matches": "[]"})).await,
        ["s1", "s2", "s3", "s4", "s5"]
    );
    for bad in [
        json!(json!([{"key": "resource_id", "value": "s1"}]).to_string()),
        json!(json!([{"key": "resource_name"}]).to_string()),
        json!(json!([{"key": "resource_name", "value": "a"},
                     {"key": "resource_name", "value": "b"}])
        .to_string()),
        json!("[1, 2]"),
        json!(7),
        json!(true),
        json!([{"key": "tags", "value": "x"}]),
    ] {
        let r = s
            .post(
                &filter_path(&s),
                Some(&token),
                &json!({"action": "filter", "matches": bad}),
            )
            .await;
        assert_bad(&r, &format!("matches {bad}"));
        assert!(
            r.body["error_msg"]
                .as_str()
                .is_some_and(|m| m.contains("matches")),
            "{}",
            r.text
        );
    }
}

#[tokio::test]
async fn operators_combine() {
    let (s, token) = fixture().await;
    let f = |body: Value| filtered(&s, &token, body);
    assert_eq!(
        f(json!({"tags": [{"key": "env"}], "not_tags_any": [{"key": "team", "values": ["b"]}]}))
            .await,
        ["s1", "s3"]
    );
    assert_eq!(
        f(json!({
            "tags_any": [{"key": "team", "values": ["a"]}, {"key": "env", "values": ["prod"]}],
            "not_tags": [{"key": "tier", "values": ["gold"]}],
            "matches": "1"}))
        .await,
        ["s1", "s3"]
    );
    assert_eq!(
        f(json!({
            "tags": [{"key": "team"}],
            "tags_any": [{"key": "env"}, {"key": "tier"}],
            "not_tags": [{"key": "env", "values": ["dev"]}],
            "not_tags_any": [{"key": "tier", "values": ["gold"]}]}))
        .await,
        ["s1"]
    );
    assert!(
        f(json!({"tags": [{"key": "env"}], "not_tags_any": [{"key": "env"}]}))
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn filter_rows_have_the_documented_shape_and_empty_results_are_empty() {
    let (s, token) = fixture().await;
    let r = s
        .post(
            &filter_path(&s),
            Some(&token),
            &json!({"action": "filter", "tags": [{"key": "tier"}]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.body,
        json!({"resources": [{"resource_id": "s5", "resource_name": "cache", "resource_detail": {},
                              "tags": [{"key": "team", "value": "a"}, {"key": "tier", "value": "gold"}]}],
               "total_count": 1})
    );
    // A stream registered without a name has an empty one.
    s.register_in(TYPE, &["s6"]).await;
    let r = s
        .post(
            &filter_path(&s),
            Some(&token),
            &json!({"action": "filter", "offset": "5"}),
        )
        .await;
    assert_eq!(
        r.body["resources"],
        json!([{"resource_id": "s6", "resource_name": "", "resource_detail": {}, "tags": []}])
    );
    let r = s
        .post(
            &filter_path(&s),
            Some(&token),
            &json!({"action": "filter", "tags": [{"key": "nothing"}]}),
        )
        .await;
    assert_eq!(r.body, json!({"resources": [], "total_count": 0}));
    let r = s
        .post(
            &filter_path(&s),
            Some(&token),
            &json!({"action": "count", "tags": [{"key": "nothing"}]}),
        )
        .await;
    assert_eq!(r.body, json!({"total_count": 0}));
    let s2 = TestServer::start().await;
    let t2 = s2.project_token().await;
    assert!(filtered(&s2, &t2, json!({})).await.is_empty());
}

#[tokio::test]
async fn paging_walks_every_stream_once() {
    let s = TestServer::start().await;
    let all: Vec<String> = (0..23).map(|i| format!("stream-{i:02}")).collect();
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    s.register_in(TYPE, &refs).await;
    let token = s.project_token().await;
    for id in all.iter().step_by(3) {
        tag(&s, &token, id, &[("third", "yes")]).await;
    }
    let full = filtered(&s, &token, json!({})).await;
    assert_eq!(full, all, "ordered by id");
    for (limit, as_string) in [(4u64, true), (6, false), (1, false), (23, true)] {
        let mut walked: Vec<String> = Vec::new();
        let mut offset = 0u64;
        loop {
            let (o, l) = if as_string {
                (json!(offset.to_string()), json!(limit.to_string()))
            } else {
                (json!(offset), json!(limit))
            };
            let r = s
                .post(
                    &filter_path(&s),
                    Some(&token),
                    &json!({"action": "filter", "offset": o, "limit": l}),
                )
                .await;
            assert_eq!(r.status, 200, "{}", r.text);
            assert_eq!(r.body["total_count"], 23);
            let page = ids(&r.body);
            if page.is_empty() {
                break;
            }
            assert!(page.len() as u64 <= limit);
            walked.extend(page.clone());
            offset += page.len() as u64;
            if (page.len() as u64) < limit {
                assert_eq!(offset, 23, "a short page before the end");
            }
        }
        assert_eq!(walked, full, "limit {limit}: no gap, no duplicate");
        assert_eq!(walked.iter().collect::<HashSet<_>>().len(), 23);
    }
    let r = s
        .post(
            &filter_path(&s),
            Some(&token),
            &json!({"action": "filter", "tags": [{"key": "third"}], "offset": "6", "limit": "3"}),
        )
        .await;
    assert_eq!(ids(&r.body), ["stream-18", "stream-21"]);
    assert_eq!(r.body["total_count"], 8);
    let r = s
        .post(
            &filter_path(&s),
            Some(&token),
            &json!({"action": "filter", "offset": "23"}),
        )
        .await;
    assert_eq!(r.body, json!({"resources": [], "total_count": 23}));
}

#[tokio::test]
async fn bad_paging_is_400_and_count_ignores_paging() {
    let (s, token) = fixture().await;
    for (field, bad) in [
        ("limit", json!("0")),
        ("limit", json!(0)),
        ("limit", json!("1001")),
        ("limit", json!(1001)),
        ("limit", json!("-1")),
        ("limit", json!(-5)),
        ("limit", json!("ten")),
        ("limit", json!("")),
        ("limit", json!(2.5)),
        ("limit", json!({})),
        ("offset", json!("-1")),
        ("offset", json!(-1)),
        ("offset", json!("x")),
        ("offset", json!(false)),
    ] {
        let mut body = json!({"action": "filter"});
        body[field] = bad.clone();
        let r = s.post(&filter_path(&s), Some(&token), &body).await;
        assert_bad(&r, &format!("{field}={bad}"));
        assert!(
            r.body["error_msg"]
                .as_str()
                .is_some_and(|m| m.contains(field)),
            "{}",
            r.text
        );
        body["action"] = json!("count");
        let r = s.post(&filter_path(&s), Some(&token), &body).await;
        assert_eq!(r.status, 200, "count with {field}={bad}: {}", r.text);
        assert_eq!(r.body, json!({"total_count": 5}));
    }
    for ok in [json!("1"), json!(1), json!("1000"), json!(1000)] {
        let r = s
            .post(
                &filter_path(&s),
                Some(&token),
                &json!({"action": "filter", "limit": ok}),
            )
            .await;
        assert_eq!(r.status, 200, "{ok}: {}", r.text);
    }
    let r = s
        .post(
            &filter_path(&s),
            Some(&token),
            &json!({"action": "filter", "limit": "2"}),
        )
        .await;
    assert_eq!(ids(&r.body), ["s1", "s2"]);
}

fn list(keys: usize, values: usize) -> Value {
    Value::Array(
        (0..keys)
            .map(|k| {
                json!({"key": format!("k{k}"),
                       "values": (0..values).map(|v| format!("v{v}")).collect::<Vec<_>>()})
            })
            .collect(),
    )
}

#[tokio::test]
async fn ten_keys_of_ten_values_per_list() {
    let (s, token) = fixture().await;
    for field in ["tags", "tags_any", "not_tags", "not_tags_any"] {
        for (keys, values, ok) in [
            (10, 10, true),
            (11, 0, false),
            (1, 11, false),
            (10, 0, true),
            (0, 0, true),
        ] {
            let mut body = json!({"action": "filter"});
            body[field] = list(keys, values);
            let r = s.post(&filter_path(&s), Some(&token), &body).await;
            if ok {
                assert_eq!(r.status, 200, "{field} {keys}x{values}: {}", r.text);
            } else {
                assert_bad(&r, &format!("{field} {keys}x{values}"));
                assert!(
                    r.body["error_msg"]
                        .as_str()
                        .is_some_and(|m| m.contains(field)),
                    "{}",
                    r.text
                );
            }
            body["action"] = json!("count");
            let r = s.post(&filter_path(&s), Some(&token), &body).await;
            assert_eq!(r.status == 200, ok, "count {field} {keys}x{values}");
        }
        for bad in [
            json!([{"key": "a"}, {"key": "a"}]),
            json!([{"key": "a", "values": ["x", "x"]}]),
            json!([{"key": ""}]),
            json!([{"values": ["x"]}]),
            json!({"key": "a"}),
        ] {
            let mut body = json!({"action": "filter"});
            body[field] = bad.clone();
            let r = s.post(&filter_path(&s), Some(&token), &body).await;
            assert_bad(&r, &format!("{field}: {bad}"));
        }
    }
}

#[tokio::test]
async fn actions_and_bodies_are_checked() {
    let (s, token) = fixture().await;
    for body in [
        json!({"action": "list"}),
        json!({"action": "COUNT"}),
        json!({"action": "create"}),
        json!({}),
        json!({"action": null}),
        json!({"action": "filter", "tags": "env"}),
    ] {
        let r = s.post(&filter_path(&s), Some(&token), &body).await;
        assert_bad(&r, &body.to_string());
    }
    let r = s
        .post(&filter_path(&s), Some(&token), &json!({"action": "list"}))
        .await;
    assert!(r.body["error_msg"]
        .as_str()
        .is_some_and(|m| m.contains("action")));
    let r = s
        .send(
            reqwest::Method::POST,
            &filter_path(&s),
            Some(&token),
            Some(b"[1]".to_vec()),
        )
        .await;
    assert_bad(&r, "an array body");
    let r = s.get(&filter_path(&s), Some(&token)).await;
    assert_eq!(r.status, 405);
    assert_eq!(r.body["error_code"], "DIS.4200");
    let r = s
        .post(&filter_path(&s), None, &json!({"action": "filter"}))
        .await;
    assert_eq!(r.status, 401);
}

#[tokio::test]
async fn a_tag_written_is_read_at_once() {
    let (s, token) = fixture().await;
    let query = json!({"tags": [{"key": "fresh", "values": ["1"]}]});
    assert!(filtered(&s, &token, query.clone()).await.is_empty());
    let r = s
        .post(
            &stream_tags_path(&s, "s4"),
            Some(&token),
            &json!({"tag": {"key": "fresh", "value": "1"}}),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(filtered(&s, &token, query.clone()).await, ["s4"]);
    let r = s.get(&stream_tags_path(&s, "s4"), Some(&token)).await;
    assert_eq!(r.body, json!({"tags": [{"key": "fresh", "value": "1"}]}));
    let r = s.get(&project_tags_path(&s), Some(&token)).await;
    assert_eq!(
        r.body["tags"][0],
        json!({"key": "env", "values": ["dev", "prod"]})
    );
    assert_eq!(r.body["tags"][1], json!({"key": "fresh", "values": ["1"]}));
    let r = s
        .send_with(
            reqwest::Method::DELETE,
            &format!("/v2/{}/stream/s4/tags/fresh", s.creds.project_id),
            Some(&token),
            &[],
            None,
        )
        .await;
    assert_eq!(r.status, 204);
    assert!(filtered(&s, &token, query).await.is_empty());
    let r = s.get(&project_tags_path(&s), Some(&token)).await;
    assert_eq!(r.body["tags"].as_array().map(Vec::len), Some(3));
}

async fn project_id(s: &TestServer, name: &str) -> String {
    let token = s.domain_token().await;
    let r = s
        .get(&format!("/v3/projects?name={name}"), Some(&token))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["projects"][0]["id"]
        .as_str()
        .expect("project id")
        .to_owned()
}

#[tokio::test]
async fn another_projects_streams_never_appear() {
    let (s, token) = fixture().await;
    let other = s.other_project_token("cn-east-3").await;
    for (method, path, body) in [
        (reqwest::Method::GET, stream_tags_path(&s, "s1"), None),
        (reqwest::Method::GET, project_tags_path(&s), None),
        (
            reqwest::Method::POST,
            filter_path(&s),
            Some(json!({"action": "filter"})),
        ),
        (
            reqwest::Method::POST,
            filter_path(&s),
            Some(json!({"action": "count"})),
        ),
    ] {
        let r = s
            .send_with(method, &path, Some(&other), &[], body.as_ref())
            .await;
        assert_eq!(r.status, 403, "{path}: {}", r.text);
        assert_eq!(r.body["error_code"], "APIGW.0302");
        assert_eq!(TestServer::fields(&r.body), ["error_code", "error_msg"]);
    }
    let east = project_id(&s, "cn-east-3").await;
    s.register(json!([
        {"project_id": east, "resource_type": TYPE, "resource_id": "s1", "name": "web-east"},
        {"project_id": east, "resource_type": TYPE, "resource_id": "e1", "name": "web-east-2"}]))
        .await;
    for id in ["s1", "e1"] {
        let r = s
            .post(
                &format!("/v2/{east}/stream/{id}/tags/action"),
                Some(&other),
                &json!({"action": "create", "tags": [{"key": "east", "value": "yes"}]}),
            )
            .await;
        assert_eq!(r.status, 204, "{}", r.text);
    }
    assert_eq!(
        filtered(&s, &token, json!({})).await,
        ["s1", "s2", "s3", "s4", "s5"]
    );
    assert!(filtered(&s, &token, json!({"tags": [{"key": "east"}]}))
        .await
        .is_empty());
    assert!(filtered(&s, &token, json!({"matches": "east"}))
        .await
        .is_empty());
    let r = s.get(&project_tags_path(&s), Some(&token)).await;
    assert_eq!(r.body["tags"].as_array().map(Vec::len), Some(3));
    let r = s.get(&stream_tags_path(&s, "e1"), Some(&token)).await;
    assert_eq!(r.status, 404);
    let r = s
        .post(
            &format!("/v2/{east}/stream/resource_instances/action"),
            Some(&other),
            &json!({"action": "filter"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(ids(&r.body), ["e1", "s1"]);
    let r = s
        .get(&format!("/v2/{east}/stream/s1/tags"), Some(&other))
        .await;
    assert_eq!(r.body, json!({"tags": [{"key": "east", "value": "yes"}]}));
}

#[tokio::test]
async fn tags_written_through_tms_are_read_here() {
    let (s, token) = fixture().await;
    let domain = s.domain_token().await;
    let r = s
        .post(
            "/v1.0/resource-tags/batch-create",
            Some(&domain),
            &json!({"project_id": s.creds.project_id,
                    "resources": [{"resource_id": "s4", "resource_type": TYPE},
                                  {"resource_id": "s5", "resource_type": TYPE}],
                    "tags": [{"key": "via-tms", "value": "1"}]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["failed_resources"], json!([]), "{}", r.text);
    assert_eq!(
        filtered(
            &s,
            &token,
            json!({"tags": [{"key": "via-tms", "values": ["1"]}]})
        )
        .await,
        ["s4", "s5"]
    );
    let r = s.get(&stream_tags_path(&s, "s4"), Some(&token)).await;
    assert_eq!(r.body, json!({"tags": [{"key": "via-tms", "value": "1"}]}));
    let r = s.get(&project_tags_path(&s), Some(&token)).await;
    assert!(r.body["tags"]
        .as_array()
        .expect("tags")
        .contains(&json!({"key": "via-tms", "values": ["1"]})));
    // The same id and tag on a Workspace desktop is another resource.
    s.register_in("workspace-desktop", &["s9"]).await;
    let r = s
        .post(
            "/v1.0/resource-tags/batch-create",
            Some(&domain),
            &json!({"project_id": s.creds.project_id,
                    "resources": [{"resource_id": "s9", "resource_type": "workspace-desktop"}],
                    "tags": [{"key": "via-tms", "value": "1"}]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        filtered(&s, &token, json!({"tags": [{"key": "via-tms"}]})).await,
        ["s4", "s5"]
    );
}
