//! DIS stream tags (seed 004), exactly per the page and the SDK's docstrings:
//! `tags/action` create and delete, the single-tag companions, every rule at n and n+1,
//! the character set at its edges (CJK U+4E00 to U+9FFF), all-or-nothing writes, and the
//! flat `{"error_code","error_msg"}` body.

use serde_json::{json, Value};

use crate::{Reply, TestServer};

const STREAM: &str = "stream-1";
const RESOURCE_TYPE: &str = "dis";

/// The page's example request, byte for byte as printed.
const PAGE_EXAMPLE: &str = r#"{
  "action" : "create",
  "tags" : [ {
    "key" : "key1",
    "value" : "value1"
  }, {
    "key" : "key2",
    "value" : "value3"
  } ]
}"#;

fn action_url(s: &TestServer, stream: &str) -> String {
    format!("/v2/{}/stream/{stream}/tags/action", s.creds.project_id)
}

fn tags_url(s: &TestServer, stream: &str) -> String {
    format!("/v2/{}/stream/{stream}/tags", s.creds.project_id)
}

/// Percent-encodes every byte, as a client puts a non-ASCII key in a path.
fn encode(key: &str) -> String {
    key.bytes().map(|b| format!("%{b:02X}")).collect()
}

/// A server with stream `stream-1` registered, and a token scoped to its project.
async fn ready() -> (TestServer, String) {
    let s = TestServer::start().await;
    s.register_in(RESOURCE_TYPE, &[STREAM]).await;
    let token = s.project_token().await;
    (s, token)
}

async fn action(
    s: &TestServer,
    token: Option<&str>,
    stream: &str,
    action: &str,
    tags: Value,
) -> Reply {
    s.post(
        &action_url(s, stream),
        token,
        &json!({ "action": action, "tags": tags }),
    )
    .await
}

async fn create(s: &TestServer, token: &str, tags: Value) -> Reply {
    action(s, Some(token), STREAM, "create", tags).await
}

async fn delete(s: &TestServer, token: &str, tags: Value) -> Reply {
    action(s, Some(token), STREAM, "delete", tags).await
}

fn pair(k: &str, v: &str) -> (String, String) {
    (k.to_owned(), v.to_owned())
}

/// The stream's tags as TMS shows them, sorted.
async fn stored(s: &TestServer, token: &str) -> Vec<(String, String)> {
    let mut tags = s.tms_tags(token, RESOURCE_TYPE, STREAM).await;
    tags.sort();
    tags
}

/// `n` distinct tags `{prefix}{i}` = `v{i}`.
fn tags(prefix: &str, n: usize) -> Value {
    Value::Array(
        (0..n)
            .map(|i| json!({"key": format!("{prefix}{i}"), "value": format!("v{i}")}))
            .collect(),
    )
}

fn assert_error(r: &Reply, status: u16, code: &str) {
    assert_eq!(r.status, status, "{}", r.text);
    assert_eq!(
        TestServer::fields(&r.body),
        ["error_code", "error_msg"],
        "a DIS error has exactly error_code and error_msg: {}",
        r.text
    );
    assert_eq!(r.body["error_code"], code, "{}", r.text);
    assert!(
        r.body["error_msg"].as_str().is_some_and(|m| !m.is_empty()),
        "{}",
        r.text
    );
}

fn assert_bad_request(r: &Reply) {
    assert_error(r, 400, "DIS.4200");
}

#[tokio::test]
async fn the_pages_example_request_is_accepted_and_visible_through_tms() {
    let (s, token) = ready().await;
    let r = s
        .send(
            reqwest::Method::POST,
            &action_url(&s, STREAM),
            Some(&token),
            Some(PAGE_EXAMPLE.as_bytes().to_vec()),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(r.text, "", "a 204 has an empty body");
    assert_eq!(
        stored(&s, &token).await,
        vec![pair("key1", "value1"), pair("key2", "value3")]
    );
}

#[tokio::test]
async fn keys_are_1_to_36_characters_with_cjk_counted_as_characters() {
    let (s, token) = ready().await;
    let cjk36 = "中".repeat(36);
    let ascii36 = "k".repeat(36);
    let r = create(
        &s,
        &token,
        json!([{"key": cjk36, "value": "v"}, {"key": ascii36, "value": "v"}]),
    )
    .await;
    assert_eq!(
        r.status, 204,
        "36 characters (108 bytes of CJK) are allowed: {}",
        r.text
    );
    for key in ["中".repeat(37), "k".repeat(37)] {
        let r = create(&s, &token, json!([{"key": key, "value": "v"}])).await;
        assert_eq!(r.status, 400, "37 characters: {}", r.text);
        assert_bad_request(&r);
    }
    let mut expected = vec![(cjk36, "v".to_owned()), (ascii36, "v".to_owned())];
    expected.sort();
    assert_eq!(stored(&s, &token).await, expected);
}

#[tokio::test]
async fn an_empty_key_is_refused() {
    let (s, token) = ready().await;
    let r = create(&s, &token, json!([{"key": "", "value": "v"}])).await;
    assert_bad_request(&r);
    assert!(stored(&s, &token).await.is_empty());
}

#[tokio::test]
async fn values_are_0_to_43_characters_with_cjk_counted_as_characters() {
    let (s, token) = ready().await;
    let value43 = "值".repeat(43);
    let r = create(
        &s,
        &token,
        json!([
            {"key": "long", "value": value43},
            {"key": "empty", "value": ""},
            {"key": "bare"},
        ]),
    )
    .await;
    assert_eq!(
        r.status, 204,
        "43 characters, an empty value and no value are allowed: {}",
        r.text
    );
    let r = create(
        &s,
        &token,
        json!([{"key": "longer", "value": "值".repeat(44)}]),
    )
    .await;
    assert_bad_request(&r);
    assert_eq!(
        stored(&s, &token).await,
        vec![
            pair("bare", ""),
            pair("empty", ""),
            ("long".to_owned(), value43)
        ]
    );
}

#[tokio::test]
async fn keys_admit_ascii_letters_digits_hyphen_and_underscore() {
    let (s, token) = ready().await;
    let r = create(
        &s,
        &token,
        json!([
            {"key": "ABCXYZabcxyz", "value": "v"},
            {"key": "0123456789", "value": "v"},
            {"key": "a-b_c", "value": "A-Z_a-z.0-9"},
        ]),
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(
        stored(&s, &token).await,
        vec![
            pair("0123456789", "v"),
            pair("ABCXYZabcxyz", "v"),
            pair("a-b_c", "A-Z_a-z.0-9"),
        ]
    );
}

#[tokio::test]
async fn the_period_is_admitted_in_values_only() {
    let (s, token) = ready().await;
    let r = create(&s, &token, json!([{"key": "version", "value": "1.2.3"}])).await;
    assert_eq!(r.status, 204, "'.' in a value: {}", r.text);
    let r = create(&s, &token, json!([{"key": "a.b", "value": "v"}])).await;
    assert_bad_request(&r);
    assert_eq!(stored(&s, &token).await, vec![pair("version", "1.2.3")]);
}

#[tokio::test]
async fn cjk_is_admitted_exactly_from_u4e00_to_u9fff() {
    let (s, token) = ready().await;
    for c in ['\u{4E00}', '\u{9FFF}'] {
        let r = create(
            &s,
            &token,
            json!([{"key": format!("k{c}"), "value": format!("v{c}")}]),
        )
        .await;
        assert_eq!(r.status, 204, "U+{:04X}: {}", c as u32, r.text);
    }
    for c in ['\u{4DFF}', '\u{A000}'] {
        let r = create(&s, &token, json!([{"key": format!("k{c}"), "value": "v"}])).await;
        assert_eq!(r.status, 400, "U+{:04X} in a key: {}", c as u32, r.text);
        assert_bad_request(&r);
        let r = create(&s, &token, json!([{"key": "k", "value": format!("v{c}")}])).await;
        assert_eq!(r.status, 400, "U+{:04X} in a value: {}", c as u32, r.text);
        assert_bad_request(&r);
    }
    assert_eq!(
        stored(&s, &token).await,
        vec![
            pair("k\u{4E00}", "v\u{4E00}"),
            pair("k\u{9FFF}", "v\u{9FFF}")
        ]
    );
}

#[tokio::test]
async fn other_characters_are_refused_in_keys_and_values() {
    let (s, token) = ready().await;
    let refused = [
        "é", "Ключ", " ", "\t", ":", "@", "/", "=", "+", "*", "!", "#", ",", "\\", "'",
    ];
    for bad in refused {
        let r = create(
            &s,
            &token,
            json!([{"key": "good", "value": "ok"}, {"key": format!("k{bad}"), "value": "v"}]),
        )
        .await;
        assert_eq!(r.status, 400, "{bad:?} in a key: {}", r.text);
        assert_bad_request(&r);
        let r = create(
            &s,
            &token,
            json!([{"key": "good", "value": "ok"}, {"key": "k", "value": format!("v{bad}")}]),
        )
        .await;
        assert_eq!(r.status, 400, "{bad:?} in a value: {}", r.text);
        assert_bad_request(&r);
    }
    assert!(
        stored(&s, &token).await.is_empty(),
        "the good tag beside each refused one was not written"
    );
}

#[tokio::test]
async fn a_key_given_twice_in_one_create_is_refused() {
    let (s, token) = ready().await;
    let r = create(
        &s,
        &token,
        json!([{"key": "env", "value": "dev"}, {"key": "env", "value": "prod"}]),
    )
    .await;
    assert_bad_request(&r);
    assert!(stored(&s, &token).await.is_empty());
}

#[tokio::test]
async fn an_existing_key_is_overwritten() {
    let (s, token) = ready().await;
    let r = create(
        &s,
        &token,
        json!([{"key": "env", "value": "dev"}, {"key": "team", "value": "a"}]),
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.text);
    let r = create(&s, &token, json!([{"key": "env", "value": "prod"}])).await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(
        stored(&s, &token).await,
        vec![pair("env", "prod"), pair("team", "a")]
    );
}

#[tokio::test]
async fn an_action_other_than_create_or_delete_is_refused() {
    let (s, token) = ready().await;
    for bad in ["update", "Create", "CREATE", "filter", ""] {
        let r = action(
            &s,
            Some(&token),
            STREAM,
            bad,
            json!([{"key": "k", "value": "v"}]),
        )
        .await;
        assert_eq!(r.status, 400, "action {bad:?}: {}", r.text);
        assert_bad_request(&r);
    }
    let r = s
        .post(
            &action_url(&s, STREAM),
            Some(&token),
            &json!({ "tags": [{"key": "k", "value": "v"}] }),
        )
        .await;
    assert_eq!(r.status, 400, "no action: {}", r.text);
    assert_bad_request(&r);
    assert!(stored(&s, &token).await.is_empty());
}

#[tokio::test]
async fn one_bad_tag_fails_the_whole_request_and_leaves_existing_tags_alone() {
    let (s, token) = ready().await;
    let r = create(&s, &token, json!([{"key": "keep", "value": "1"}])).await;
    assert_eq!(r.status, 204, "{}", r.text);
    let r = create(
        &s,
        &token,
        json!([
            {"key": "keep", "value": "2"},
            {"key": "new", "value": "x"},
            {"key": "bad key", "value": "v"},
        ]),
    )
    .await;
    assert_bad_request(&r);
    assert_eq!(
        stored(&s, &token).await,
        vec![pair("keep", "1")],
        "nothing was written, not even the overwrite"
    );
}

#[tokio::test]
async fn a_stream_holds_at_most_20_tags() {
    let (s, token) = ready().await;
    let r = create(&s, &token, tags("k", 21)).await;
    assert_bad_request(&r);
    assert!(
        stored(&s, &token).await.is_empty(),
        "21 at once: nothing written"
    );

    let r = create(&s, &token, tags("old", 15)).await;
    assert_eq!(r.status, 204, "{}", r.text);
    let before = stored(&s, &token).await;
    assert_eq!(before.len(), 15);

    // 15 + 6 = 21: refused, and the 15 are untouched.
    let mut six = tags("new", 6);
    six.as_array_mut()
        .expect("array")
        .push(json!({"key": "old0", "value": "changed"}));
    let r = create(&s, &token, six).await;
    assert_bad_request(&r);
    assert_eq!(
        stored(&s, &token).await,
        before,
        "past the limit nothing is written"
    );

    // 15 + 5 = 20, plus an overwrite that does not count twice.
    let mut five = tags("new", 5);
    five.as_array_mut()
        .expect("array")
        .push(json!({"key": "old0", "value": "changed"}));
    let r = create(&s, &token, five).await;
    assert_eq!(r.status, 204, "exactly 20: {}", r.text);
    let after = stored(&s, &token).await;
    assert_eq!(after.len(), 20);
    assert!(after.contains(&pair("old0", "changed")), "{after:?}");

    let r = create(&s, &token, json!([{"key": "one-more", "value": ""}])).await;
    assert_bad_request(&r);
    let r = s
        .post(
            &tags_url(&s, STREAM),
            Some(&token),
            &json!({"tag": {"key": "one-more", "value": ""}}),
        )
        .await;
    assert_bad_request(&r);
    assert_eq!(stored(&s, &token).await, after);
}

#[tokio::test]
async fn delete_removes_tags_by_key() {
    let (s, token) = ready().await;
    let r = create(
        &s,
        &token,
        json!([{"key": "a", "value": "1"}, {"key": "b", "value": "2"}, {"key": "c", "value": "3"}]),
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.text);
    let r = delete(
        &s,
        &token,
        json!([{"key": "a"}, {"key": "c", "value": "3"}]),
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(r.text, "", "a 204 has an empty body");
    assert_eq!(stored(&s, &token).await, vec![pair("b", "2")]);
}

#[tokio::test]
async fn deleting_a_missing_tag_succeeds() {
    let (s, token) = ready().await;
    let r = create(&s, &token, json!([{"key": "a", "value": "1"}])).await;
    assert_eq!(r.status, 204, "{}", r.text);
    let r = delete(&s, &token, json!([{"key": "absent"}])).await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(stored(&s, &token).await, vec![pair("a", "1")]);
}

#[tokio::test]
async fn delete_does_not_check_the_character_set() {
    let (s, token) = ready().await;
    let r = create(&s, &token, json!([{"key": "a", "value": "1"}])).await;
    assert_eq!(r.status, 204, "{}", r.text);
    let r = delete(
        &s,
        &token,
        json!([{"key": "bad!key"}, {"key": "a.b c", "value": "x y!"}]),
    )
    .await;
    assert_eq!(
        r.status, 204,
        "keys outside the create character set are accepted by delete: {}",
        r.text
    );
    assert_eq!(stored(&s, &token).await, vec![pair("a", "1")]);
}

#[tokio::test]
async fn delete_needs_a_tags_list_and_non_empty_keys() {
    let (s, token) = ready().await;
    let r = create(&s, &token, json!([{"key": "a", "value": "1"}])).await;
    assert_eq!(r.status, 204, "{}", r.text);

    let r = delete(&s, &token, json!([{"key": "a"}, {"key": ""}])).await;
    assert_bad_request(&r);
    let r = s
        .post(
            &action_url(&s, STREAM),
            Some(&token),
            &json!({ "action": "delete" }),
        )
        .await;
    assert_eq!(r.status, 400, "tags missing: {}", r.text);
    assert_bad_request(&r);
    assert_eq!(
        stored(&s, &token).await,
        vec![pair("a", "1")],
        "refused deletes removed nothing"
    );
}

#[tokio::test]
async fn the_single_tag_create_adds_and_overwrites() {
    let (s, token) = ready().await;
    let url = tags_url(&s, STREAM);
    let r = s
        .post(
            &url,
            Some(&token),
            &json!({"tag": {"key": "env", "value": "dev"}}),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(r.text, "", "a 204 has an empty body");
    let r = s
        .post(
            &url,
            Some(&token),
            &json!({"tag": {"key": "env", "value": "prod"}}),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(stored(&s, &token).await, vec![pair("env", "prod")]);

    let r = s
        .post(
            &url,
            Some(&token),
            &json!({"tag": {"key": "a.b", "value": "v"}}),
        )
        .await;
    assert_bad_request(&r);
    assert_eq!(stored(&s, &token).await, vec![pair("env", "prod")]);
}

#[tokio::test]
async fn the_single_tag_delete_takes_a_percent_encoded_key() {
    let (s, token) = ready().await;
    let r = create(
        &s,
        &token,
        json!([{"key": "环境", "value": "生产"}, {"key": "other", "value": "x"}]),
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.text);

    let path = format!("{}/{}", tags_url(&s, STREAM), encode("环境"));
    let r = s
        .send(reqwest::Method::DELETE, &path, Some(&token), None)
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(r.text, "", "a 204 has an empty body");
    assert_eq!(stored(&s, &token).await, vec![pair("other", "x")]);

    let r = s
        .send(reqwest::Method::DELETE, &path, Some(&token), None)
        .await;
    assert_eq!(r.status, 204, "deleting it again succeeds: {}", r.text);
    assert_eq!(stored(&s, &token).await, vec![pair("other", "x")]);
}

#[tokio::test]
async fn an_unknown_stream_is_404_on_every_route() {
    let (s, token) = ready().await;
    let tags = json!([{"key": "a", "value": "1"}]);
    let r = action(&s, Some(&token), "ghost", "create", tags.clone()).await;
    assert_error(&r, 404, "DIS.4301");
    let r = action(&s, Some(&token), "ghost", "delete", tags).await;
    assert_error(&r, 404, "DIS.4301");
    let r = s
        .post(
            &tags_url(&s, "ghost"),
            Some(&token),
            &json!({"tag": {"key": "a", "value": "1"}}),
        )
        .await;
    assert_error(&r, 404, "DIS.4301");
    let r = s
        .send(
            reqwest::Method::DELETE,
            &format!("{}/a", tags_url(&s, "ghost")),
            Some(&token),
            None,
        )
        .await;
    assert_error(&r, 404, "DIS.4301");
}

#[tokio::test]
async fn requests_without_a_valid_token_are_401_and_write_nothing() {
    let (s, token) = ready().await;
    let r = create(&s, &token, json!([{"key": "keep", "value": "1"}])).await;
    assert_eq!(r.status, 204, "{}", r.text);

    for bad in [None, Some(""), Some("not-a-token")] {
        let r = action(
            &s,
            bad,
            STREAM,
            "create",
            json!([{"key": "new", "value": "x"}]),
        )
        .await;
        assert_eq!(r.status, 401, "create with {bad:?}: {}", r.text);
        assert_error(&r, 401, "APIGW.0301");
        let r = action(&s, bad, STREAM, "delete", json!([{"key": "keep"}])).await;
        assert_eq!(r.status, 401, "delete with {bad:?}: {}", r.text);
        assert_error(&r, 401, "APIGW.0301");
        let r = s
            .post(
                &tags_url(&s, STREAM),
                bad,
                &json!({"tag": {"key": "new", "value": "x"}}),
            )
            .await;
        assert_eq!(r.status, 401, "single create with {bad:?}: {}", r.text);
        assert_error(&r, 401, "APIGW.0301");
        let r = s
            .send(
                reqwest::Method::DELETE,
                &format!("{}/keep", tags_url(&s, STREAM)),
                bad,
                None,
            )
            .await;
        assert_eq!(r.status, 401, "single delete with {bad:?}: {}", r.text);
        assert_error(&r, 401, "APIGW.0301");
    }
    assert_eq!(
        stored(&s, &token).await,
        vec![pair("keep", "1")],
        "nothing written or deleted"
    );
}

#[tokio::test]
async fn a_token_of_another_project_is_403_and_writes_nothing() {
    let (s, token) = ready().await;
    let r = create(&s, &token, json!([{"key": "keep", "value": "1"}])).await;
    assert_eq!(r.status, 204, "{}", r.text);
    let other = s.other_project_token("cn-east-3").await;

    let r = action(
        &s,
        Some(&other),
        STREAM,
        "create",
        json!([{"key": "new", "value": "x"}]),
    )
    .await;
    assert_error(&r, 403, "APIGW.0302");
    let r = action(&s, Some(&other), STREAM, "delete", json!([{"key": "keep"}])).await;
    assert_error(&r, 403, "APIGW.0302");
    let r = s
        .post(
            &tags_url(&s, STREAM),
            Some(&other),
            &json!({"tag": {"key": "new", "value": "x"}}),
        )
        .await;
    assert_error(&r, 403, "APIGW.0302");
    let r = s
        .send(
            reqwest::Method::DELETE,
            &format!("{}/keep", tags_url(&s, STREAM)),
            Some(&other),
            None,
        )
        .await;
    assert_error(&r, 403, "APIGW.0302");
    assert_eq!(
        stored(&s, &token).await,
        vec![pair("keep", "1")],
        "nothing written or deleted"
    );
}

#[tokio::test]
async fn a_wrong_method_is_405_in_the_dis_body() {
    let (s, token) = ready().await;
    let r = s
        .send_with(
            reqwest::Method::PUT,
            &action_url(&s, STREAM),
            Some(&token),
            &[],
            Some(&json!({"action": "create", "tags": [{"key": "k", "value": "v"}]})),
        )
        .await;
    assert_eq!(r.status, 405, "{}", r.text);
    assert_eq!(
        TestServer::fields(&r.body),
        ["error_code", "error_msg"],
        "{}",
        r.text
    );
    assert!(
        r.body["error_code"]
            .as_str()
            .is_some_and(|c| c.starts_with("DIS.")),
        "a DIS code: {}",
        r.text
    );
    assert!(stored(&s, &token).await.is_empty(), "nothing written");
}

#[tokio::test]
async fn a_tag_keyed_action_can_be_deleted_singly() {
    let s = TestServer::start().await;
    s.register_in("dis", &["st"]).await;
    let token = s.project_token().await;
    let pid = s.creds.project_id.clone();
    let r = s
        .post(
            &format!("/v2/{pid}/stream/st/tags"),
            Some(&token),
            &serde_json::json!({"tag": {"key": "action", "value": "x"}}),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    let r = s
        .send_with(
            reqwest::Method::DELETE,
            &format!("/v2/{pid}/stream/st/tags/action"),
            Some(&token),
            &[],
            None,
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert!(s.tms_tags(&token, "dis", "st").await.is_empty());
}
