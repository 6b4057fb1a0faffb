//! Workspace reads: one desktop's tags, the project's keys (`totalCount`), and the
//! filter/count call on both URLs: every operator alone and combined, names, paging,
//! the per-list limits at n and n+1, read-your-writes, project isolation and tags
//! written through TMS.

use std::collections::HashSet;

use serde_json::{json, Value};

use crate::{Reply, TestServer};

const TYPE: &str = "workspace-desktop";

fn filter_path(s: &TestServer) -> String {
    format!(
        "/v2/{}/desktops/resource-instances/action",
        s.creds.project_id
    )
}

fn deprecated_path(s: &TestServer) -> String {
    format!(
        "/v2/{}/desktops/resource_instances/action",
        s.creds.project_id
    )
}

fn project_tags_path(s: &TestServer, query: &str) -> String {
    format!("/v2/{}/desktops/tags{query}", s.creds.project_id)
}

fn desktop_tags_path(s: &TestServer, id: &str) -> String {
    format!("/v2/{}/desktops/{id}/tags", s.creds.project_id)
}

/// Registers desktops `(id, name)` in the default project.
async fn register_named(s: &TestServer, desktops: &[(&str, &str)]) {
    let resources: Vec<Value> = desktops
        .iter()
        .map(|(id, name)| {
            json!({"project_id": s.creds.project_id, "resource_type": TYPE,
                   "resource_id": id, "name": name})
        })
        .collect();
    s.register(Value::Array(resources)).await;
}

/// Tags desktops through Workspace's own batch call.
async fn tag(s: &TestServer, token: &str, id: &str, pairs: &[(&str, &str)]) {
    let tags: Vec<Value> = pairs
        .iter()
        .map(|(k, v)| json!({"key": k, "value": v}))
        .collect();
    let r = s
        .post(
            &format!("/v2/{}/desktops/batch-tags", s.creds.project_id),
            Some(token),
            &json!({"desktops": [{"desktop_id": id, "tags": tags}]}),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
}

/// Five named desktops:
/// d1 web-1 {env=prod, team=a}; d2 web-2 {env=dev, team=b}; d3 db-1 {env=prod};
/// d4 db-2 {}; d5 cache {team=a, tier=gold}.
async fn fixture() -> (TestServer, String) {
    let s = TestServer::start().await;
    register_named(
        &s,
        &[
            ("d1", "web-1"),
            ("d2", "web-2"),
            ("d3", "db-1"),
            ("d4", "db-2"),
            ("d5", "cache"),
        ],
    )
    .await;
    let token = s.project_token().await;
    tag(&s, &token, "d1", &[("env", "prod"), ("team", "a")]).await;
    tag(&s, &token, "d2", &[("env", "dev"), ("team", "b")]).await;
    tag(&s, &token, "d3", &[("env", "prod")]).await;
    tag(&s, &token, "d5", &[("team", "a"), ("tier", "gold")]).await;
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
    let found = ids(&r.body);
    assert_eq!(
        r.body["total_count"].as_u64(),
        Some(found.len() as u64),
        "{body}"
    );
    assert_eq!(r.body["offset"], 0);
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
    assert_eq!(r.body["error_code"], "WKS.0002", "{what}: {}", r.text);
    assert_eq!(
        TestServer::fields(&r.body),
        ["error_code", "error_detail", "error_msg"],
        "{what}"
    );
}

#[tokio::test]
async fn one_desktops_tags_sorted_and_unknown_desktop_404() {
    let (s, token) = fixture().await;
    let r = s.get(&desktop_tags_path(&s, "d1"), Some(&token)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.body,
        json!({"tags": [{"key": "env", "value": "prod"}, {"key": "team", "value": "a"}]})
    );
    let r = s.get(&desktop_tags_path(&s, "d4"), Some(&token)).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, json!({"tags": []}));
    let r = s.get(&desktop_tags_path(&s, "ghost"), Some(&token)).await;
    assert_eq!(r.status, 404, "{}", r.text);
    assert_eq!(r.body["error_code"], "WKS.0004");
    let r = s.get(&desktop_tags_path(&s, "d1"), None).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.body["error_code"], "APIGW.0301");
}

#[tokio::test]
async fn project_tags_list_every_key_with_its_values() {
    let (s, token) = fixture().await;
    let r = s.get(&project_tags_path(&s, ""), Some(&token)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.body,
        json!({"tags": [
            {"key": "env", "values": ["dev", "prod"]},
            {"key": "team", "values": ["a", "b"]},
            {"key": "tier", "values": ["gold"]}],
            "totalCount": 3})
    );
    // Paged by key; totalCount stays the number of keys.
    let r = s
        .get(&project_tags_path(&s, "?offset=1&limit=1"), Some(&token))
        .await;
    assert_eq!(
        r.body,
        json!({"tags": [{"key": "team", "values": ["a", "b"]}], "totalCount": 3})
    );
    let r = s
        .get(&project_tags_path(&s, "?offset=3"), Some(&token))
        .await;
    assert_eq!(r.body, json!({"tags": [], "totalCount": 3}));
    let r = s
        .get(&project_tags_path(&s, "?limit=0"), Some(&token))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, json!({"tags": [], "totalCount": 3}));
    let r = s
        .get(&project_tags_path(&s, "?limit=1000"), Some(&token))
        .await;
    assert_eq!(r.status, 200);
    for bad in [
        "?limit=1001",
        "?limit=-1",
        "?limit=x",
        "?offset=-1",
        "?offset=1.5",
    ] {
        let r = s.get(&project_tags_path(&s, bad), Some(&token)).await;
        assert_bad(&r, bad);
    }
}

#[tokio::test]
async fn project_tags_key_and_value_are_ored() {
    let (s, token) = fixture().await;
    let get = |q: &'static str| {
        let s = &s;
        let token = &token;
        async move {
            let r = s.get(&project_tags_path(s, q), Some(token)).await;
            assert_eq!(r.status, 200, "{q}: {}", r.text);
            r.body
        }
    };
    assert_eq!(
        get("?key=team").await,
        json!({"tags": [{"key": "team", "values": ["a", "b"]}], "totalCount": 1})
    );
    // `value` alone: the keys having that value, with just that value.
    assert_eq!(
        get("?value=prod").await,
        json!({"tags": [{"key": "env", "values": ["prod"]}], "totalCount": 1})
    );
    // Both: the key with all its values, or any pair with the value.
    assert_eq!(
        get("?key=tier&value=a").await,
        json!({"tags": [{"key": "team", "values": ["a"]}, {"key": "tier", "values": ["gold"]}],
               "totalCount": 2})
    );
    assert_eq!(
        get("?key=env&value=prod").await,
        json!({"tags": [{"key": "env", "values": ["dev", "prod"]}], "totalCount": 1})
    );
    assert_eq!(
        get("?key=nothing&value=nothing").await,
        json!({"tags": [], "totalCount": 0})
    );
    // An empty key is no key.
    assert_eq!(get("?key=").await["totalCount"], 3);
}

#[tokio::test]
async fn each_operator_alone() {
    let (s, token) = fixture().await;
    let f = |body: Value| filtered(&s, &token, body);
    assert_eq!(f(json!({})).await, ["d1", "d2", "d3", "d4", "d5"]);
    // tags: every key, without values = any value, values OR-ed.
    assert_eq!(
        f(json!({"tags": [{"key": "env", "values": []}]})).await,
        ["d1", "d2", "d3"]
    );
    assert_eq!(
        f(json!({"tags": [{"key": "env"}]})).await,
        ["d1", "d2", "d3"],
        "values may be left out"
    );
    assert_eq!(
        f(json!({"tags": [{"key": "env", "values": ["prod"]}]})).await,
        ["d1", "d3"]
    );
    assert_eq!(
        f(json!({"tags": [{"key": "env", "values": ["prod", "dev"]}]})).await,
        ["d1", "d2", "d3"]
    );
    assert_eq!(
        f(json!({"tags": [{"key": "env", "values": ["prod"]}, {"key": "team", "values": []}]}))
            .await,
        ["d1"]
    );
    // tags_any: at least one.
    assert_eq!(
        f(json!({"tags_any": [{"key": "env", "values": ["dev"]}, {"key": "tier", "values": []}]}))
            .await,
        ["d2", "d5"]
    );
    // not_tags: not all of them.
    assert_eq!(
        f(json!({"not_tags": [{"key": "env", "values": ["prod"]}, {"key": "team", "values": ["a"]}]}))
            .await,
        ["d2", "d3", "d4", "d5"]
    );
    // not_tags_any: none of them.
    assert_eq!(
        f(json!({"not_tags_any": [{"key": "env", "values": []}]})).await,
        ["d4", "d5"]
    );
    assert_eq!(
        f(json!({"not_tags_any": [{"key": "env", "values": ["prod"]}, {"key": "team", "values": ["b"]}]}))
            .await,
        ["d4", "d5"]
    );
    // without_any_tag: untagged desktops only.
    assert_eq!(f(json!({"without_any_tag": true})).await, ["d4"]);
    assert_eq!(
        f(json!({"without_any_tag": false})).await,
        ["d1", "d2", "d3", "d4", "d5"]
    );
    // matches: a case-sensitive substring of the name.
    assert_eq!(
        f(json!({"matches": [{"key": "resource_name", "value": "web"}]})).await,
        ["d1", "d2"]
    );
    assert_eq!(
        f(json!({"matches": [{"key": "resource_name", "value": "-2"}]})).await,
        ["d2", "d4"]
    );
    assert!(
        f(json!({"matches": [{"key": "resource_name", "value": "WEB"}]}))
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn operators_combine_and_without_any_tag_ignores_the_lists() {
    let (s, token) = fixture().await;
    let f = |body: Value| filtered(&s, &token, body);
    assert_eq!(
        f(json!({"tags": [{"key": "env"}], "not_tags_any": [{"key": "team", "values": ["b"]}]}))
            .await,
        ["d1", "d3"]
    );
    assert_eq!(
        f(json!({
            "tags_any": [{"key": "team", "values": ["a"]}, {"key": "env", "values": ["prod"]}],
            "not_tags": [{"key": "tier", "values": ["gold"]}],
            "matches": [{"key": "resource_name", "value": "1"}]}))
        .await,
        ["d1", "d3"]
    );
    assert_eq!(
        f(json!({
            "tags": [{"key": "team"}],
            "tags_any": [{"key": "env"}, {"key": "tier"}],
            "not_tags": [{"key": "env", "values": ["dev"]}],
            "not_tags_any": [{"key": "tier", "values": ["gold"]}]}))
        .await,
        ["d1"]
    );
    // without_any_tag ignores the tag lists, not the name.
    assert_eq!(
        f(json!({"without_any_tag": true, "tags": [{"key": "env"}],
                 "tags_any": [{"key": "team"}], "not_tags_any": [{"key": "x"}]}))
        .await,
        ["d4"]
    );
    assert!(f(json!({"without_any_tag": true,
                     "matches": [{"key": "resource_name", "value": "web"}]}))
    .await
    .is_empty());
    assert_eq!(
        f(json!({"without_any_tag": true,
                 "matches": [{"key": "resource_name", "value": "db"}]}))
        .await,
        ["d4"]
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
        json!({"resources": [{"resource_id": "d5", "resource_name": "cache", "resource_detail": "",
                              "tags": [{"key": "team", "value": "a"}, {"key": "tier", "value": "gold"}]}],
               "total_count": 1, "offset": 0})
    );
    let r = s
        .post(
            &filter_path(&s),
            Some(&token),
            &json!({"action": "filter", "tags": [{"key": "no-such-key"}]}),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body,
        json!({"resources": [], "total_count": 0, "offset": 0})
    );
    let r = s
        .post(
            &filter_path(&s),
            Some(&token),
            &json!({"action": "count", "tags": [{"key": "no-such-key"}]}),
        )
        .await;
    assert_eq!(r.body, json!({"total_count": 0}));
    // A project without desktops.
    let s2 = TestServer::start().await;
    let t2 = s2.project_token().await;
    assert!(filtered(&s2, &t2, json!({})).await.is_empty());
    let r = s2.get(&project_tags_path(&s2, ""), Some(&t2)).await;
    assert_eq!(r.body, json!({"tags": [], "totalCount": 0}));
}

#[tokio::test]
async fn paging_walks_every_desktop_once() {
    let s = TestServer::start().await;
    let all: Vec<String> = (0..23).map(|i| format!("desk-{i:02}")).collect();
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    s.register_in(TYPE, &refs).await;
    let token = s.project_token().await;
    for id in all.iter().step_by(2) {
        tag(&s, &token, id, &[("even", "yes")]).await;
    }
    let full = filtered(&s, &token, json!({})).await;
    assert_eq!(full, all, "ordered by id");
    for (limit, as_string) in [(5u64, true), (7, false), (1, true), (23, false)] {
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
            assert_eq!(r.body["offset"].as_u64(), Some(offset));
            let page = ids(&r.body);
            if page.is_empty() {
                break;
            }
            assert!(page.len() as u64 <= limit);
            walked.extend(page.clone());
            offset += page.len() as u64;
            if (page.len() as u64) < limit {
                // Only the last page may be short.
                assert_eq!(offset, 23, "a short page before the end");
            }
        }
        assert_eq!(walked, full, "limit {limit}: no gap, no duplicate");
        assert_eq!(walked.iter().collect::<HashSet<_>>().len(), 23);
    }
    // Paging a filtered set.
    let r = s
        .post(
            &filter_path(&s),
            Some(&token),
            &json!({"action": "filter", "tags": [{"key": "even"}], "offset": "10", "limit": "5"}),
        )
        .await;
    assert_eq!(ids(&r.body), ["desk-20", "desk-22"]);
    assert_eq!(r.body["total_count"], 12);
    // Past the end: empty, with the total.
    let r = s
        .post(
            &filter_path(&s),
            Some(&token),
            &json!({"action": "filter", "offset": 500}),
        )
        .await;
    assert_eq!(r.status, 200);
    assert!(ids(&r.body).is_empty());
    assert_eq!(r.body["total_count"], 23);
    // The defaults: offset 0, limit 1000.
    let r = s
        .post(
            &filter_path(&s),
            Some(&token),
            &json!({"action": "filter", "limit": "1000"}),
        )
        .await;
    assert_eq!(ids(&r.body).len(), 23);
}

#[tokio::test]
async fn bad_paging_is_400_and_count_has_no_paging() {
    let (s, token) = fixture().await;
    for (field, bad) in [
        ("limit", json!(0)),
        ("limit", json!("0")),
        ("limit", json!(1001)),
        ("limit", json!("1001")),
        ("limit", json!(-1)),
        ("limit", json!("-1")),
        ("limit", json!("ten")),
        ("limit", json!(1.5)),
        ("limit", json!(true)),
        ("offset", json!(-1)),
        ("offset", json!("-1")),
        ("offset", json!("abc")),
        ("offset", json!([0])),
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
        // `count` has no paging: the same values are ignored there.
        body["action"] = json!("count");
        let r = s.post(&filter_path(&s), Some(&token), &body).await;
        assert_eq!(r.status, 200, "{field}={bad}: {}", r.text);
        assert_eq!(r.body["total_count"], 5);
    }
    for ok in [json!(1), json!("1"), json!(1000), json!(" 7 ")] {
        let r = s
            .post(
                &filter_path(&s),
                Some(&token),
                &json!({"action": "filter", "limit": ok}),
            )
            .await;
        assert_eq!(r.status, 200, "{ok}: {}", r.text);
    }
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
async fn per_list_limits_at_n_and_n_plus_one() {
    let (s, token) = fixture().await;
    for field in ["tags", "tags_any", "not_tags", "not_tags_any"] {
        for (keys, values, ok) in [
            (10, 10, true),
            (11, 1, false),
            (1, 11, false),
            (10, 0, true),
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
            // The lists are checked for count as well.
            body["action"] = json!("count");
            let r = s.post(&filter_path(&s), Some(&token), &body).await;
            assert_eq!(r.status == 200, ok, "count {field} {keys}x{values}");
        }
        for bad in [
            json!([{"key": "a"}, {"key": "a"}]),
            json!([{"key": ""}]),
            json!([{"values": ["x"]}]),
            json!("env"),
            json!([{"key": "a", "values": "x"}]),
        ] {
            let mut body = json!({"action": "filter"});
            body[field] = bad.clone();
            let r = s.post(&filter_path(&s), Some(&token), &body).await;
            assert_bad(&r, &format!("{field}: {bad}"));
        }
    }
    // Malformed lists are refused even with without_any_tag.
    let r = s
        .post(
            &filter_path(&s),
            Some(&token),
            &json!({"action": "filter", "without_any_tag": true, "tags": list(11, 1)}),
        )
        .await;
    assert_bad(&r, "without_any_tag with 11 keys");
}

#[tokio::test]
async fn actions_matches_and_bodies_are_checked() {
    let (s, token) = fixture().await;
    for body in [
        json!({"action": "list"}),
        json!({"action": "Filter"}),
        json!({"action": ""}),
        json!({}),
        json!({"action": 1}),
        json!({"action": "filter", "without_any_tag": "yes"}),
        json!({"action": "filter", "matches": [{"key": "name", "value": "web"}]}),
        json!({"action": "filter", "matches": [{"key": "resource_name"}]}),
        json!({"action": "filter", "matches": "web"}),
        json!({"action": "count", "matches": [
            {"key": "resource_name", "value": "a"}, {"key": "resource_name", "value": "b"}]}),
    ] {
        let r = s.post(&filter_path(&s), Some(&token), &body).await;
        assert_bad(&r, &body.to_string());
    }
    let r = s
        .post(&filter_path(&s), Some(&token), &json!({"action": "delete"}))
        .await;
    assert!(r.body["error_msg"]
        .as_str()
        .is_some_and(|m| m.contains("action")));
    let r = s
        .send(
            reqwest::Method::POST,
            &filter_path(&s),
            Some(&token),
            Some(b"{not json".to_vec()),
        )
        .await;
    assert_bad(&r, "not JSON");
    let r = s.get(&filter_path(&s), Some(&token)).await;
    assert_eq!(r.status, 405);
    assert_eq!(r.body["error_code"], "WKS.0002");
}

#[tokio::test]
async fn the_deprecated_url_is_the_same_call() {
    let (s, token) = fixture().await;
    for body in [
        json!({"action": "filter", "tags": [{"key": "team", "values": ["a"]}], "limit": "1"}),
        json!({"action": "count", "not_tags_any": [{"key": "env"}]}),
        json!({"action": "filter", "without_any_tag": true}),
    ] {
        let current = s.post(&filter_path(&s), Some(&token), &body).await;
        let old = s.post(&deprecated_path(&s), Some(&token), &body).await;
        assert_eq!(current.status, 200, "{}", current.text);
        assert_eq!(old.status, 200, "{}", old.text);
        assert_eq!(current.body, old.body);
    }
    let r = s
        .post(&deprecated_path(&s), Some(&token), &json!({"action": "x"}))
        .await;
    assert_bad(&r, "deprecated url, bad action");
}

#[tokio::test]
async fn a_tag_written_is_read_at_once() {
    let (s, token) = fixture().await;
    let query = json!({"tags": [{"key": "fresh", "values": ["1"]}]});
    assert!(filtered(&s, &token, query.clone()).await.is_empty());
    tag(&s, &token, "d4", &[("fresh", "1")]).await;
    assert_eq!(filtered(&s, &token, query.clone()).await, ["d4"]);
    let r = s.get(&desktop_tags_path(&s, "d4"), Some(&token)).await;
    assert_eq!(r.body, json!({"tags": [{"key": "fresh", "value": "1"}]}));
    let r = s
        .get(&project_tags_path(&s, "?key=fresh"), Some(&token))
        .await;
    assert_eq!(
        r.body,
        json!({"tags": [{"key": "fresh", "values": ["1"]}], "totalCount": 1})
    );
    assert!(filtered(&s, &token, json!({"without_any_tag": true}))
        .await
        .is_empty());
    // And a delete right before a read.
    let r = s
        .send_with(
            reqwest::Method::DELETE,
            &format!("/v2/{}/desktops/d4/tags/fresh", s.creds.project_id),
            Some(&token),
            &[],
            None,
        )
        .await;
    assert_eq!(r.status, 204);
    assert!(filtered(&s, &token, query).await.is_empty());
    assert_eq!(
        filtered(&s, &token, json!({"without_any_tag": true})).await,
        ["d4"]
    );
}

/// The id of a project of the default domain, by name.
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
async fn another_projects_desktops_never_appear() {
    let (s, token) = fixture().await;
    let other = s.other_project_token("cn-east-3").await;
    // Another project's token is refused on every read of this project.
    for (method, path, body) in [
        (reqwest::Method::GET, desktop_tags_path(&s, "d1"), None),
        (reqwest::Method::GET, project_tags_path(&s, ""), None),
        (
            reqwest::Method::POST,
            filter_path(&s),
            Some(json!({"action": "filter"})),
        ),
        (
            reqwest::Method::POST,
            deprecated_path(&s),
            Some(json!({"action": "count"})),
        ),
    ] {
        let r = s
            .send_with(method, &path, Some(&other), &[], body.as_ref())
            .await;
        assert_eq!(r.status, 403, "{path}: {}", r.text);
        assert_eq!(r.body["error_code"], "APIGW.0302");
        assert!(r.body["encoded_authorization_message"].is_string());
    }
    // A desktop of the other project, with the same id as one here and tags of its own.
    let east = project_id(&s, "cn-east-3").await;
    s.register(json!([
        {"project_id": east, "resource_type": TYPE, "resource_id": "d1", "name": "web-east"},
        {"project_id": east, "resource_type": TYPE, "resource_id": "e1", "name": "web-east-2"}]))
        .await;
    for id in ["d1", "e1"] {
        let r = s
            .post(
                &format!("/v2/{east}/desktops/batch-tags"),
                Some(&other),
                &json!({"desktops": [{"desktop_id": id, "tags": [{"key": "east", "value": "yes"}]}]}),
            )
            .await;
        assert_eq!(r.status, 204, "{}", r.text);
    }
    assert_eq!(
        filtered(&s, &token, json!({})).await,
        ["d1", "d2", "d3", "d4", "d5"]
    );
    assert!(filtered(&s, &token, json!({"tags": [{"key": "east"}]}))
        .await
        .is_empty());
    assert!(filtered(
        &s,
        &token,
        json!({"matches": [{"key": "resource_name", "value": "east"}]})
    )
    .await
    .is_empty());
    let r = s.get(&project_tags_path(&s, ""), Some(&token)).await;
    assert_eq!(r.body["totalCount"], 3, "{}", r.text);
    let r = s.get(&desktop_tags_path(&s, "e1"), Some(&token)).await;
    assert_eq!(r.status, 404);
    let r = s.get(&desktop_tags_path(&s, "d1"), Some(&token)).await;
    assert_eq!(
        r.body,
        json!({"tags": [{"key": "env", "value": "prod"}, {"key": "team", "value": "a"}]})
    );
    // The other project sees only its own.
    let r = s
        .post(
            &format!("/v2/{east}/desktops/resource-instances/action"),
            Some(&other),
            &json!({"action": "filter"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(ids(&r.body), ["d1", "e1"]);
    assert_eq!(r.body["resources"][0]["resource_name"], "web-east");
    // A domain token reads either project through its path.
    let domain = s.domain_token().await;
    let r = s
        .get(&format!("/v2/{east}/desktops/tags"), Some(&domain))
        .await;
    assert_eq!(
        r.body,
        json!({"tags": [{"key": "east", "values": ["yes"]}], "totalCount": 1})
    );
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
                    "resources": [{"resource_id": "d4", "resource_type": TYPE},
                                  {"resource_id": "d5", "resource_type": TYPE}],
                    "tags": [{"key": "via-tms", "value": "1"}]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["failed_resources"], json!([]), "{}", r.text);
    assert_eq!(
        filtered(&s, &token, json!({"tags": [{"key": "via-tms"}]})).await,
        ["d4", "d5"]
    );
    let r = s.get(&desktop_tags_path(&s, "d4"), Some(&token)).await;
    assert_eq!(r.body, json!({"tags": [{"key": "via-tms", "value": "1"}]}));
    let r = s
        .get(&project_tags_path(&s, "?value=1"), Some(&token))
        .await;
    assert_eq!(
        r.body,
        json!({"tags": [{"key": "via-tms", "values": ["1"]}], "totalCount": 1})
    );
    // A disk with the same id and tag is another resource type: never a desktop.
    s.register_disks(&["d9"]).await;
    let r = s
        .post(
            "/v1.0/resource-tags/batch-create",
            Some(&domain),
            &json!({"project_id": s.creds.project_id,
                    "resources": [{"resource_id": "d9", "resource_type": "disk"}],
                    "tags": [{"key": "via-tms", "value": "1"}]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        filtered(&s, &token, json!({"tags": [{"key": "via-tms"}]})).await,
        ["d4", "d5"]
    );
}

#[tokio::test]
async fn desktops_named_like_the_static_segments_are_still_desktops() {
    let s = TestServer::start().await;
    s.register_in(TYPE, &["tags", "resource-instances", "resource_instances"])
        .await;
    let token = s.project_token().await;
    for id in ["tags", "resource-instances", "resource_instances"] {
        let r = s
            .post(
                &desktop_tags_path(&s, id),
                Some(&token),
                &json!({"tag": {"key": "name", "value": id.replace('-', "_")}}),
            )
            .await;
        assert_eq!(r.status, 204, "{id}: {}", r.text);
        let r = s.get(&desktop_tags_path(&s, id), Some(&token)).await;
        assert_eq!(r.status, 200, "{id}: {}", r.text);
        assert_eq!(
            r.body,
            json!({"tags": [{"key": "name", "value": id.replace('-', "_")}]})
        );
    }
    let r = s.get(&project_tags_path(&s, ""), Some(&token)).await;
    assert_eq!(
        r.body,
        json!({"tags": [{"key": "name", "values": ["resource_instances", "tags"]}],
               "totalCount": 1})
    );
}
