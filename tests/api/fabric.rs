//! DataArts Fabric workspace tags (seed 001), exactly per the page: batch create and
//! delete with the one system tag `_sys_enterprise_project_id`, every rule at n and n+1,
//! the character set character by character, all-or-nothing writes, and the page's error
//! bodies (400/401/404/408 flat with `solution_msg`, 403 with its nested `error`).

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::tagd_process::{free_port, spawn_with};
use crate::{Reply, TestServer};

const WS: &str = "ws-1";
const RESOURCE_TYPE: &str = "fabric-workspace";
const SYS_KEY: &str = "_sys_enterprise_project_id";
/// The enterprise project id of the page's example request.
const EPS_ID: &str = "01049549-82cd-4b2b-9733-ddb94350c125";

/// The page's example request, byte for byte as printed.
const PAGE_EXAMPLE: &str = r#"{
  "tags" : [ {
    "key" : "key1",
    "value" : "value1"
  } ],
  "sys_tags" : [ {
    "key" : "_sys_enterprise_project_id",
    "value" : "01049549-82cd-4b2b-9733-ddb94350c125"
  } ]
}"#;

fn url(s: &TestServer, ws: &str, tail: &str) -> String {
    format!(
        "/v1/{}/fabric-workspace/{ws}/tags{tail}",
        s.creds.project_id
    )
}

/// A server with workspace `ws-1` registered, and a token scoped to its project.
async fn ready() -> (TestServer, String) {
    let s = TestServer::start().await;
    s.register_in(RESOURCE_TYPE, &[WS]).await;
    let token = s.project_token().await;
    (s, token)
}

async fn create(s: &TestServer, token: Option<&str>, ws: &str, body: Value) -> Reply {
    s.post(&url(s, ws, "/create"), token, &body).await
}

async fn delete(s: &TestServer, token: Option<&str>, ws: &str, body: Value) -> Reply {
    s.post(&url(s, ws, "/delete"), token, &body).await
}

fn pair(k: &str, v: &str) -> (String, String) {
    (k.to_owned(), v.to_owned())
}

fn pairs(list: &Value) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = list
        .as_array()
        .unwrap_or_else(|| panic!("a tag list, got {list}"))
        .iter()
        .map(|t| {
            (
                t["key"].as_str().expect("key").to_owned(),
                t["value"].as_str().expect("value").to_owned(),
            )
        })
        .collect();
    out.sort();
    out
}

/// What `GET .../tags` lists: (tags, sys_tags), each sorted.
struct Listed {
    tags: Vec<(String, String)>,
    sys: Vec<(String, String)>,
}

async fn listed(s: &TestServer, token: &str, ws: &str) -> Listed {
    let r = s.get(&url(s, ws, ""), Some(token)).await;
    assert_eq!(r.status, 200, "GET tags of {ws}: {}", r.text);
    assert_eq!(
        TestServer::fields(&r.body),
        ["sys_tags", "tags"],
        "the list carries tags and sys_tags: {}",
        r.text
    );
    Listed {
        tags: pairs(&r.body["tags"]),
        sys: pairs(&r.body["sys_tags"]),
    }
}

/// `n` distinct tags `{prefix}{i}` = `v{i}`.
fn tags(prefix: &str, n: usize) -> Value {
    Value::Array(
        (0..n)
            .map(|i| json!({"key": format!("{prefix}{i}"), "value": format!("v{i}")}))
            .collect(),
    )
}

/// A flat Fabric error: exactly `error_code`, `error_msg` and `solution_msg`, within the
/// page's lengths.
fn assert_error(r: &Reply, status: u16, code: &str) {
    assert_eq!(r.status, status, "{}", r.text);
    assert_eq!(
        TestServer::fields(&r.body),
        ["error_code", "error_msg", "solution_msg"],
        "a {status} body has exactly the page's fields: {}",
        r.text
    );
    assert_eq!(r.body["error_code"], code, "{}", r.text);
    let msg = r.body["error_msg"].as_str().expect("error_msg is a string");
    assert!(
        (2..=512).contains(&msg.chars().count()),
        "error_msg is 2 to 512 characters: {msg:?}"
    );
    let solution = r.body["solution_msg"]
        .as_str()
        .expect("solution_msg is a string");
    assert!(solution.chars().count() <= 4096, "{solution:?}");
}

fn assert_bad_request(r: &Reply) {
    assert_error(r, 400, "common.01000001");
}

#[tokio::test]
async fn the_pages_example_request_is_accepted_and_read_back() {
    let (s, token) = ready().await;
    let r = s
        .send(
            reqwest::Method::POST,
            &url(&s, WS, "/create"),
            Some(&token),
            Some(PAGE_EXAMPLE.as_bytes().to_vec()),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(r.text, "", "a 204 has an empty body");

    let r = s.get(&url(&s, WS, ""), Some(&token)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.body,
        json!({
            "tags": [{"key": "key1", "value": "value1"}],
            "sys_tags": [{"key": SYS_KEY, "value": EPS_ID}],
        }),
        "both the tag and the system tag are listed"
    );
    assert_eq!(
        s.tms_tags(&token, RESOURCE_TYPE, WS).await,
        vec![pair("key1", "value1")],
        "TMS shows the user tag and not the system tag"
    );
}

#[tokio::test]
async fn at_most_20_tags_per_call() {
    let (s, token) = ready().await;
    let r = create(&s, Some(&token), WS, json!({ "tags": tags("k", 21) })).await;
    assert_bad_request(&r);
    assert!(
        listed(&s, &token, WS).await.tags.is_empty(),
        "a refused call of 21 tags wrote nothing"
    );

    let r = create(&s, Some(&token), WS, json!({ "tags": tags("k", 20) })).await;
    assert_eq!(r.status, 204, "20 tags are allowed: {}", r.text);
    assert_eq!(listed(&s, &token, WS).await.tags.len(), 20);
}

#[tokio::test]
async fn an_empty_tag_list_is_refused() {
    let (s, token) = ready().await;
    let r = create(&s, Some(&token), WS, json!({ "tags": [] })).await;
    assert_bad_request(&r);

    let r = create(
        &s,
        Some(&token),
        WS,
        json!({ "tags": [], "sys_tags": [{"key": SYS_KEY, "value": EPS_ID}] }),
    )
    .await;
    assert_bad_request(&r);
    let l = listed(&s, &token, WS).await;
    assert!(
        l.tags.is_empty() && l.sys.is_empty(),
        "an empty tags list fails the system tag beside it too"
    );
}

#[tokio::test]
async fn a_body_with_neither_tags_nor_sys_tags_is_refused() {
    let (s, token) = ready().await;
    let r = create(&s, Some(&token), WS, json!({})).await;
    assert_bad_request(&r);

    // Either one alone is enough.
    let r = create(
        &s,
        Some(&token),
        WS,
        json!({ "tags": [{"key": "a", "value": "1"}] }),
    )
    .await;
    assert_eq!(r.status, 204, "tags alone: {}", r.text);
    let r = create(
        &s,
        Some(&token),
        WS,
        json!({ "sys_tags": [{"key": SYS_KEY, "value": EPS_ID}] }),
    )
    .await;
    assert_eq!(r.status, 204, "sys_tags alone: {}", r.text);
    let l = listed(&s, &token, WS).await;
    assert_eq!(l.tags, vec![pair("a", "1")]);
    assert_eq!(l.sys, vec![pair(SYS_KEY, EPS_ID)]);
}

#[tokio::test]
async fn sys_tags_hold_exactly_one_tag() {
    let (s, token) = ready().await;
    let two = json!({
        "tags": [{"key": "a", "value": "1"}],
        "sys_tags": [
            {"key": SYS_KEY, "value": EPS_ID},
            {"key": SYS_KEY, "value": "0"},
        ],
    });
    let r = create(&s, Some(&token), WS, two).await;
    assert_bad_request(&r);
    let r = create(
        &s,
        Some(&token),
        WS,
        json!({ "tags": [{"key": "a", "value": "1"}], "sys_tags": [] }),
    )
    .await;
    assert_bad_request(&r);
    let l = listed(&s, &token, WS).await;
    assert!(
        l.tags.is_empty() && l.sys.is_empty(),
        "refused calls wrote nothing: {:?} {:?}",
        l.tags,
        l.sys
    );

    let r = create(
        &s,
        Some(&token),
        WS,
        json!({ "sys_tags": [{"key": SYS_KEY, "value": "0"}] }),
    )
    .await;
    assert_eq!(r.status, 204, "one system tag: {}", r.text);
    assert_eq!(listed(&s, &token, WS).await.sys, vec![pair(SYS_KEY, "0")]);
}

#[tokio::test]
async fn the_only_system_tag_key_is_the_enterprise_project_id() {
    let (s, token) = ready().await;
    for key in [
        "_sys_enterprise_project",
        "_SYS_ENTERPRISE_PROJECT_ID",
        "enterprise_project_id",
        "key1",
    ] {
        let r = create(
            &s,
            Some(&token),
            WS,
            json!({ "sys_tags": [{"key": key, "value": EPS_ID}] }),
        )
        .await;
        assert_bad_request(&r);
    }
    assert!(
        listed(&s, &token, WS).await.sys.is_empty(),
        "no system tag was written"
    );
}

#[tokio::test]
async fn keys_are_1_to_128_characters_counted_as_characters() {
    let (s, token) = ready().await;
    let key128 = "键".repeat(128);
    let r = create(
        &s,
        Some(&token),
        WS,
        json!({ "tags": [{"key": key128, "value": "v"}] }),
    )
    .await;
    assert_eq!(
        r.status, 204,
        "128 CJK characters (384 bytes) are within the limit: {}",
        r.text
    );
    let r = create(
        &s,
        Some(&token),
        WS,
        json!({ "tags": [{"key": "键".repeat(129), "value": "v"}] }),
    )
    .await;
    assert_bad_request(&r);
    assert_eq!(
        listed(&s, &token, WS).await.tags,
        vec![(key128, "v".to_owned())],
        "only the 128-character key was written"
    );
}

#[tokio::test]
async fn an_empty_key_is_refused() {
    let (s, token) = ready().await;
    let r = create(
        &s,
        Some(&token),
        WS,
        json!({ "tags": [{"key": "", "value": "v"}] }),
    )
    .await;
    assert_bad_request(&r);
    assert!(listed(&s, &token, WS).await.tags.is_empty());
}

#[tokio::test]
async fn values_are_0_to_255_characters_counted_as_characters() {
    let (s, token) = ready().await;
    let value255 = "值".repeat(255);
    let r = create(
        &s,
        Some(&token),
        WS,
        json!({ "tags": [{"key": "long", "value": value255}, {"key": "empty", "value": ""}] }),
    )
    .await;
    assert_eq!(
        r.status, 204,
        "255 CJK characters and an empty value are allowed: {}",
        r.text
    );
    let r = create(
        &s,
        Some(&token),
        WS,
        json!({ "tags": [{"key": "longer", "value": "值".repeat(256)}] }),
    )
    .await;
    assert_bad_request(&r);
    assert_eq!(
        listed(&s, &token, WS).await.tags,
        vec![pair("empty", ""), ("long".to_owned(), value255)],
        "the 256-character value was not written"
    );
}

#[tokio::test]
async fn a_missing_value_is_stored_as_empty() {
    let (s, token) = ready().await;
    let r = create(&s, Some(&token), WS, json!({ "tags": [{"key": "bare"}] })).await;
    assert_eq!(r.status, 204, "value is optional: {}", r.text);
    assert_eq!(listed(&s, &token, WS).await.tags, vec![pair("bare", "")]);
}

#[tokio::test]
async fn the_documented_punctuation_is_accepted_in_keys_and_values() {
    let (s, token) = ready().await;
    let allowed = [' ', '\t', '_', '.', ':', '\\', '=', '+', '-', '@'];
    let mut expected = Vec::new();
    for c in allowed {
        let (key, value) = (format!("a{c}b"), format!("x{c}y"));
        let r = create(
            &s,
            Some(&token),
            WS,
            json!({ "tags": [{"key": key, "value": value}] }),
        )
        .await;
        assert_eq!(r.status, 204, "{c:?} in a key and a value: {}", r.text);
        expected.push((key, value));
    }
    expected.sort();
    assert_eq!(listed(&s, &token, WS).await.tags, expected);
}

#[tokio::test]
async fn letters_and_digits_of_any_script_are_accepted() {
    let (s, token) = ready().await;
    let words = [
        "ABCxyz",
        "0123456789",
        "标签",
        "Ключ",
        "κλειδί",
        "キー",
        "مفتاح",
        "é",
        "٣",
    ];
    let body: Vec<Value> = words
        .iter()
        .map(|w| json!({"key": w, "value": w}))
        .collect();
    let r = create(&s, Some(&token), WS, json!({ "tags": body })).await;
    assert_eq!(r.status, 204, "{}", r.text);
    let mut expected: Vec<(String, String)> = words.iter().map(|w| pair(w, w)).collect();
    expected.sort();
    assert_eq!(listed(&s, &token, WS).await.tags, expected);
}

#[tokio::test]
async fn other_characters_are_refused_one_by_one_and_nothing_is_written() {
    let (s, token) = ready().await;
    let refused = [
        '/', ',', '*', '<', '>', '|', '#', '!', '?', '(', ')', '[', ']', '{', '}', ';', '"', '\'',
        '&', '%', '$', '^', '~', '`', '\n',
    ];
    for c in refused {
        let in_key = json!({ "tags": [
            {"key": "good", "value": "ok"},
            {"key": format!("k{c}"), "value": "v"},
        ]});
        let r = create(&s, Some(&token), WS, in_key).await;
        assert_eq!(r.status, 400, "{c:?} in a key: {}", r.text);
        assert_bad_request(&r);

        let in_value = json!({ "tags": [
            {"key": "good", "value": "ok"},
            {"key": "k", "value": format!("v{c}")},
        ]});
        let r = create(&s, Some(&token), WS, in_value).await;
        assert_eq!(r.status, 400, "{c:?} in a value: {}", r.text);
        assert_bad_request(&r);
    }
    assert!(
        listed(&s, &token, WS).await.tags.is_empty(),
        "the good tag beside each refused one was not written either"
    );
}

#[tokio::test]
async fn an_existing_key_is_overwritten() {
    let (s, token) = ready().await;
    let r = create(
        &s,
        Some(&token),
        WS,
        json!({ "tags": [{"key": "env", "value": "dev"}, {"key": "team", "value": "a"}] }),
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.text);
    let r = create(
        &s,
        Some(&token),
        WS,
        json!({ "tags": [{"key": "env", "value": "prod"}] }),
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(
        listed(&s, &token, WS).await.tags,
        vec![pair("env", "prod"), pair("team", "a")]
    );
}

#[tokio::test]
async fn a_key_given_twice_in_one_request_is_refused() {
    let (s, token) = ready().await;
    let r = create(
        &s,
        Some(&token),
        WS,
        json!({ "tags": [{"key": "env", "value": "dev"}, {"key": "env", "value": "prod"}] }),
    )
    .await;
    assert_bad_request(&r);
    assert!(listed(&s, &token, WS).await.tags.is_empty());
}

#[tokio::test]
async fn one_bad_tag_fails_the_whole_request_and_leaves_existing_tags_alone() {
    let (s, token) = ready().await;
    let r = create(
        &s,
        Some(&token),
        WS,
        json!({ "tags": [{"key": "keep", "value": "1"}] }),
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.text);

    let r = create(
        &s,
        Some(&token),
        WS,
        json!({
            "tags": [
                {"key": "keep", "value": "2"},
                {"key": "new", "value": "x"},
                {"key": "bad/key", "value": "v"},
            ],
            "sys_tags": [{"key": SYS_KEY, "value": EPS_ID}],
        }),
    )
    .await;
    assert_bad_request(&r);
    let l = listed(&s, &token, WS).await;
    assert_eq!(l.tags, vec![pair("keep", "1")], "nothing was written");
    assert!(l.sys.is_empty(), "the system tag was not written either");
}

#[tokio::test]
async fn a_bad_system_tag_fails_the_user_tags_beside_it() {
    let (s, token) = ready().await;
    let r = create(
        &s,
        Some(&token),
        WS,
        json!({
            "tags": [{"key": "a", "value": "1"}],
            "sys_tags": [{"key": "_sys_other", "value": EPS_ID}],
        }),
    )
    .await;
    assert_bad_request(&r);
    let l = listed(&s, &token, WS).await;
    assert!(l.tags.is_empty() && l.sys.is_empty());
}

#[tokio::test]
async fn a_workspace_holds_at_most_20_tags() {
    let (s, token) = ready().await;
    let r = create(&s, Some(&token), WS, json!({ "tags": tags("old", 15) })).await;
    assert_eq!(r.status, 204, "{}", r.text);
    let before = listed(&s, &token, WS).await.tags;
    assert_eq!(before.len(), 15);

    // 15 + 6 = 21: refused, and the 15 are untouched.
    let mut six = tags("new", 6);
    six.as_array_mut()
        .expect("array")
        .push(json!({"key": "old0", "value": "changed"}));
    let r = create(&s, Some(&token), WS, json!({ "tags": six })).await;
    assert_bad_request(&r);
    assert_eq!(
        listed(&s, &token, WS).await.tags,
        before,
        "past the limit nothing is written, not even the overwrite"
    );

    // 15 + 5 = 20, plus an overwrite that does not count twice.
    let mut five = tags("new", 5);
    five.as_array_mut()
        .expect("array")
        .push(json!({"key": "old0", "value": "changed"}));
    let r = create(&s, Some(&token), WS, json!({ "tags": five })).await;
    assert_eq!(r.status, 204, "exactly 20: {}", r.text);
    let after = listed(&s, &token, WS).await.tags;
    assert_eq!(after.len(), 20);
    assert!(after.contains(&pair("old0", "changed")), "{after:?}");

    let r = create(
        &s,
        Some(&token),
        WS,
        json!({ "tags": [{"key": "one-more", "value": ""}] }),
    )
    .await;
    assert_bad_request(&r);
    assert_eq!(listed(&s, &token, WS).await.tags, after);
}

#[tokio::test]
async fn system_tags_do_not_count_toward_the_limit() {
    let (s, token) = ready().await;
    let r = create(
        &s,
        Some(&token),
        WS,
        json!({ "tags": tags("k", 20), "sys_tags": [{"key": SYS_KEY, "value": EPS_ID}] }),
    )
    .await;
    assert_eq!(r.status, 204, "20 tags and the system tag: {}", r.text);
    let l = listed(&s, &token, WS).await;
    assert_eq!(l.tags.len(), 20);
    assert_eq!(l.sys, vec![pair(SYS_KEY, EPS_ID)]);

    // The system tag of a full workspace can still be changed.
    let r = create(
        &s,
        Some(&token),
        WS,
        json!({ "sys_tags": [{"key": SYS_KEY, "value": "0"}] }),
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.text);
    let l = listed(&s, &token, WS).await;
    assert_eq!(l.tags.len(), 20);
    assert_eq!(l.sys, vec![pair(SYS_KEY, "0")]);
}

#[tokio::test]
async fn delete_by_key_removes_the_tag_whatever_its_value() {
    let (s, token) = ready().await;
    let r = create(
        &s,
        Some(&token),
        WS,
        json!({ "tags": [{"key": "a", "value": "1"}, {"key": "b", "value": "2"}] }),
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.text);
    let r = delete(&s, Some(&token), WS, json!({ "tags": [{"key": "a"}] })).await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(r.text, "", "a 204 has an empty body");
    assert_eq!(listed(&s, &token, WS).await.tags, vec![pair("b", "2")]);
}

#[tokio::test]
async fn delete_by_key_and_value_removes_only_a_matching_tag() {
    let (s, token) = ready().await;
    let r = create(
        &s,
        Some(&token),
        WS,
        json!({ "tags": [{"key": "a", "value": "1"}] }),
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.text);

    let r = delete(
        &s,
        Some(&token),
        WS,
        json!({ "tags": [{"key": "a", "value": "2"}] }),
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(
        listed(&s, &token, WS).await.tags,
        vec![pair("a", "1")],
        "a different value removes nothing"
    );

    let r = delete(
        &s,
        Some(&token),
        WS,
        json!({ "tags": [{"key": "a", "value": "1"}] }),
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert!(listed(&s, &token, WS).await.tags.is_empty());
}

#[tokio::test]
async fn deleting_a_missing_tag_succeeds() {
    let (s, token) = ready().await;
    let r = create(
        &s,
        Some(&token),
        WS,
        json!({ "tags": [{"key": "a", "value": "1"}] }),
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.text);
    let r = delete(&s, Some(&token), WS, json!({ "tags": [{"key": "absent"}] })).await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(listed(&s, &token, WS).await.tags, vec![pair("a", "1")]);
}

#[tokio::test]
async fn deleting_the_system_tag_clears_it() {
    let (s, token) = ready().await;
    let r = create(
        &s,
        Some(&token),
        WS,
        json!({
            "tags": [{"key": "key1", "value": "value1"}],
            "sys_tags": [{"key": SYS_KEY, "value": EPS_ID}],
        }),
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.text);
    let r = delete(
        &s,
        Some(&token),
        WS,
        json!({ "sys_tags": [{"key": SYS_KEY, "value": EPS_ID}] }),
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.text);
    let l = listed(&s, &token, WS).await;
    assert!(l.sys.is_empty(), "the system tag is gone: {:?}", l.sys);
    assert_eq!(l.tags, vec![pair("key1", "value1")], "user tags stay");
}

#[tokio::test]
async fn a_delete_with_neither_tags_nor_sys_tags_is_refused() {
    let (s, token) = ready().await;
    let r = create(
        &s,
        Some(&token),
        WS,
        json!({ "tags": [{"key": "a", "value": "1"}] }),
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.text);
    let r = delete(&s, Some(&token), WS, json!({})).await;
    assert_bad_request(&r);
    assert_eq!(listed(&s, &token, WS).await.tags, vec![pair("a", "1")]);
}

#[tokio::test]
async fn an_unknown_workspace_is_404_on_every_route() {
    let (s, token) = ready().await;
    let body = json!({ "tags": [{"key": "a", "value": "1"}] });
    let r = create(&s, Some(&token), "ghost", body.clone()).await;
    assert_error(&r, 404, "common.01000001");
    let r = delete(&s, Some(&token), "ghost", body).await;
    assert_error(&r, 404, "common.01000001");
    let r = s.get(&url(&s, "ghost", ""), Some(&token)).await;
    assert_error(&r, 404, "common.01000001");
}

#[tokio::test]
async fn a_malformed_workspace_id_is_400_even_when_registered() {
    let s = TestServer::start().await;
    let id36 = "a".repeat(36);
    let id37 = "a".repeat(37);
    s.register_in(RESOURCE_TYPE, &[&id36, &id37, "ws_1", "ws.1"])
        .await;
    let token = s.project_token().await;
    let body = json!({ "tags": [{"key": "a", "value": "1"}] });

    let r = create(&s, Some(&token), &id36, body.clone()).await;
    assert_eq!(r.status, 204, "36 characters are allowed: {}", r.text);
    for bad in [id37.as_str(), "ws_1", "ws.1"] {
        let r = create(&s, Some(&token), bad, body.clone()).await;
        assert_eq!(r.status, 400, "create on {bad:?}: {}", r.text);
        assert_bad_request(&r);
        let r = delete(&s, Some(&token), bad, body.clone()).await;
        assert_eq!(r.status, 400, "delete on {bad:?}: {}", r.text);
        assert_bad_request(&r);
        let r = s.get(&url(&s, bad, ""), Some(&token)).await;
        assert_eq!(r.status, 400, "GET on {bad:?}: {}", r.text);
        assert_bad_request(&r);
        assert!(
            s.tms_tags(&token, RESOURCE_TYPE, bad).await.is_empty(),
            "nothing was written to {bad:?}"
        );
    }
}

#[tokio::test]
async fn requests_without_a_valid_token_are_401_and_write_nothing() {
    let (s, token) = ready().await;
    let r = create(
        &s,
        Some(&token),
        WS,
        json!({ "tags": [{"key": "keep", "value": "1"}] }),
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.text);

    for bad in [None, Some(""), Some("not-a-token")] {
        let r = create(
            &s,
            bad,
            WS,
            json!({ "tags": [{"key": "new", "value": "x"}], "sys_tags": [{"key": SYS_KEY, "value": EPS_ID}] }),
        )
        .await;
        assert_eq!(r.status, 401, "create with {bad:?}: {}", r.text);
        assert_error(&r, 401, "APIG.1002");
        let r = delete(&s, bad, WS, json!({ "tags": [{"key": "keep"}] })).await;
        assert_eq!(r.status, 401, "delete with {bad:?}: {}", r.text);
        assert_error(&r, 401, "APIG.1002");
        let r = s.get(&url(&s, WS, ""), bad).await;
        assert_eq!(r.status, 401, "GET with {bad:?}: {}", r.text);
        assert_error(&r, 401, "APIG.1002");
    }
    let l = listed(&s, &token, WS).await;
    assert_eq!(
        l.tags,
        vec![pair("keep", "1")],
        "nothing written or deleted"
    );
    assert!(l.sys.is_empty());
}

/// The page's 403 example: a nested `error` beside a numeric `error_code`.
fn assert_forbidden(r: &Reply) {
    assert_eq!(r.status, 403, "{}", r.text);
    assert_eq!(
        TestServer::fields(&r.body),
        ["error", "error_code", "error_msg", "title"],
        "{}",
        r.text
    );
    assert_eq!(
        r.body["error_code"],
        json!(403),
        "error_code is the integer 403: {}",
        r.text
    );
    assert_eq!(r.body["title"], "Forbidden", "{}", r.text);
    assert_eq!(
        TestServer::fields(&r.body["error"]),
        ["code", "message", "title"],
        "{}",
        r.text
    );
    assert_eq!(
        r.body["error"]["code"], "403",
        "error.code is a string: {}",
        r.text
    );
    assert_eq!(r.body["error"]["title"], "Forbidden", "{}", r.text);
    let msg = r.body["error_msg"].as_str().expect("error_msg");
    assert!(!msg.is_empty(), "{}", r.text);
    assert_eq!(r.body["error"]["message"], msg, "{}", r.text);
}

#[tokio::test]
async fn a_token_of_another_project_is_403_in_the_pages_shape_and_writes_nothing() {
    let (s, token) = ready().await;
    let r = create(
        &s,
        Some(&token),
        WS,
        json!({ "tags": [{"key": "keep", "value": "1"}] }),
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.text);
    let other = s.other_project_token("cn-east-3").await;

    let r = create(
        &s,
        Some(&other),
        WS,
        json!({ "tags": [{"key": "new", "value": "x"}], "sys_tags": [{"key": SYS_KEY, "value": EPS_ID}] }),
    )
    .await;
    assert_forbidden(&r);
    let r = delete(&s, Some(&other), WS, json!({ "tags": [{"key": "keep"}] })).await;
    assert_forbidden(&r);
    let r = s.get(&url(&s, WS, ""), Some(&other)).await;
    assert_forbidden(&r);

    let l = listed(&s, &token, WS).await;
    assert_eq!(
        l.tags,
        vec![pair("keep", "1")],
        "nothing written or deleted"
    );
    assert!(l.sys.is_empty());
}

// --- 408: the real binary with a one-second request timeout -------------------------

/// Reads one HTTP/1.1 response: its status and its body (by Content-Length, or to EOF).
async fn read_response(stream: &mut tokio::net::TcpStream) -> (u16, String) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let header_end = |buf: &[u8]| buf.windows(4).position(|w| w == b"\r\n\r\n");
    loop {
        if let Some(end) = header_end(&buf) {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let length = head.lines().find_map(|l| {
                let (name, value) = l.split_once(':')?;
                if name.eq_ignore_ascii_case("content-length") {
                    value.trim().parse::<usize>().ok()
                } else {
                    None
                }
            });
            if length.is_some_and(|n| buf.len() >= end + 4 + n) {
                break;
            }
        }
        let n = stream.read(&mut chunk).await.expect("read response");
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let end = header_end(&buf)
        .unwrap_or_else(|| panic!("no complete response: {:?}", String::from_utf8_lossy(&buf)));
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .unwrap_or_else(|| panic!("status line: {head}"));
    (
        status,
        String::from_utf8_lossy(&buf[end + 4..]).into_owned(),
    )
}

#[tokio::test]
async fn a_request_whose_body_stalls_gets_408_and_writes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let _child = spawn_with(dir.path(), port, &["--request-timeout-secs", "1"], &[]).await;
    let creds = crate::Credentials::read(dir.path());

    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_tagd"))
        .arg("admin")
        .arg("--data-dir")
        .arg(dir.path())
        .args([
            "resource",
            "add",
            "--project",
            &creds.project_id,
            "--type",
            RESOURCE_TYPE,
            "--id",
            WS,
        ])
        .env_remove("TAGD_DATABASE_URL")
        .output()
        .await
        .expect("tagd admin");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let auth = json!({"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": creds.user_name, "password": creds.password,
            "domain": {"name": creds.domain_name}}}},
        "scope": {"project": {"id": creds.project_id}}}});
    let r = http
        .post(format!("{base}/v3/auth/tokens"))
        .json(&auth)
        .send()
        .await
        .expect("token");
    assert_eq!(r.status(), 201);
    let token = r.headers()["x-subject-token"]
        .to_str()
        .expect("ascii token")
        .to_owned();

    // Promise 100 bytes of body and send only the start of it.
    let path = format!("/v1/{}/fabric-workspace/{WS}/tags/create", creds.project_id);
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-Auth-Token: {token}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.expect("write head");
    stream
        .write_all(br#"{"tags": [{"key": "stalled", "value": "#)
        .await
        .expect("write part of the body");
    let sent = Instant::now();
    let (status, body) = tokio::time::timeout(Duration::from_secs(10), read_response(&mut stream))
        .await
        .expect("an answer within 10 s");
    let waited = sent.elapsed();
    assert_eq!(status, 408, "{body}");
    assert!(
        waited >= Duration::from_millis(900),
        "the server waited for the body until its deadline, answered after {waited:?}"
    );
    let body: Value = serde_json::from_str(&body).expect("a JSON body");
    assert_eq!(
        TestServer::fields(&body),
        ["error_code", "error_msg", "solution_msg"],
        "{body}"
    );
    assert_eq!(body["error_code"], "common.00000408", "{body}");
    assert!(
        body["error_msg"]
            .as_str()
            .is_some_and(|m| m.chars().count() >= 2),
        "{body}"
    );
    assert!(body["solution_msg"].is_string(), "{body}");
    drop(stream);

    let r = http
        .get(format!(
            "{base}/v1/{}/fabric-workspace/{WS}/tags",
            creds.project_id
        ))
        .header("X-Auth-Token", &token)
        .send()
        .await
        .expect("list");
    assert_eq!(r.status(), 200);
    let listed: Value = r.json().await.expect("json");
    assert_eq!(
        listed,
        json!({"tags": [], "sys_tags": []}),
        "the timed-out request wrote nothing"
    );
}
