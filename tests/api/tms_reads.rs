//! TMS reads: the resource filter with exact counts and trustworthy paging, and the
//! key and value listings with markers.

use serde_json::{json, Value};

use crate::TestServer;

const FILTER: &str = "/v1.0/resource-instances/filter";

/// Registers disks d00..d{n-1}; disk i gets env=(prod if i%4==0 else dev) when i%2==0,
/// team=t{i%3} when i%3!=0, and nothing else.
async fn seed(s: &TestServer, n: usize) -> Vec<String> {
    let ids: Vec<String> = (0..n).map(|i| format!("d{i:02}")).collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    s.register_disks(&refs).await;
    let token = s.domain_token().await;
    for (i, id) in ids.iter().enumerate() {
        let mut tags = Vec::new();
        if i % 2 == 0 {
            tags.push(json!({"key": "env", "value": if i % 4 == 0 { "prod" } else { "dev" }}));
        }
        if i % 3 != 0 {
            tags.push(json!({"key": "team", "value": format!("t{}", i % 3)}));
        }
        if tags.is_empty() {
            continue;
        }
        let r = s
            .post(
                "/v1.0/resource-tags/batch-create",
                Some(&token),
                &json!({"project_id": s.creds.project_id,
                "resources": [{"resource_id": id, "resource_type": "disk"}], "tags": tags}),
            )
            .await;
        assert_eq!(r.body["failed_resources"], json!([]));
    }
    ids
}

fn filter(s: &TestServer, extra: Value) -> Value {
    let mut body = json!({"project_id": s.creds.project_id, "resource_types": ["disk"]});
    for (k, v) in extra.as_object().expect("object") {
        body[k] = v.clone();
    }
    body
}

fn ids(r: &Value) -> Vec<String> {
    r["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .map(|x| x["resource_id"].as_str().expect("id").to_owned())
        .collect()
}

#[tokio::test]
async fn the_filter_keeps_what_the_tags_say_and_counts_exactly() {
    let s = TestServer::start().await;
    let all = seed(&s, 24).await;
    let token = s.domain_token().await;
    let expect = |pred: &dyn Fn(usize) -> bool| -> Vec<String> {
        all.iter()
            .enumerate()
            .filter(|(i, _)| pred(*i))
            .map(|(_, id)| id.clone())
            .collect()
    };
    let cases: Vec<(Value, Vec<String>)> = vec![
        (json!({}), all.clone()),
        (
            json!({"tags": [{"key": "env", "values": []}]}),
            expect(&|i| i % 2 == 0),
        ),
        (
            json!({"tags": [{"key": "env", "values": ["prod"]}]}),
            expect(&|i| i % 4 == 0),
        ),
        (
            json!({"tags": [{"key": "team", "values": ["t1", "t2"]}]}),
            expect(&|i| i % 3 != 0),
        ),
        (
            json!({"tags": [{"key": "env", "values": ["prod"]}, {"key": "team", "values": ["t1"]}]}),
            expect(&|i| i % 4 == 0 && i % 3 == 1),
        ),
        (
            json!({"tags": [{"key": "env", "values": ["nope"]}]}),
            vec![],
        ),
        (
            json!({"without_any_tag": true}),
            expect(&|i| i % 2 != 0 && i % 3 == 0),
        ),
        (
            json!({"without_any_tag": true, "tags": [{"key": "env", "values": []}]}),
            expect(&|i| i % 2 != 0 && i % 3 == 0),
        ),
    ];
    for (extra, expected) in cases {
        let r = s
            .post(FILTER, Some(&token), &filter(&s, extra.clone()))
            .await;
        assert_eq!(r.status, 200, "{extra}: {}", r.text);
        assert_eq!(ids(&r.body), expected, "{extra}");
        assert_eq!(
            r.body["total_count"].as_u64(),
            Some(expected.len() as u64),
            "{extra}"
        );
        assert_eq!(r.body["errors"], json!([]));
    }
    // Each resource comes with its tags and project.
    let r = s
        .post(
            FILTER,
            Some(&token),
            &filter(
                &s,
                json!({"tags": [{"key": "env", "values": ["prod"]}], "limit": 1}),
            ),
        )
        .await;
    let first = &r.body["resources"][0];
    assert_eq!(first["resource_id"], "d00");
    assert_eq!(first["resource_type"], "disk");
    assert_eq!(first["project_id"], s.creds.project_id.as_str());
    assert_eq!(first["project_name"], s.creds.project_name.as_str());
    assert_eq!(first["tags"], json!([{"key": "env", "value": "prod"}]));
}

#[tokio::test]
async fn paging_walks_the_set_without_gaps_or_repeats() {
    let s = TestServer::start().await;
    let all = seed(&s, 23).await;
    let token = s.domain_token().await;
    for limit in [1, 4, 7, 23, 200] {
        let mut seen = Vec::new();
        let mut offset = 0;
        loop {
            let r = s
                .post(
                    FILTER,
                    Some(&token),
                    &filter(&s, json!({"offset": offset, "limit": limit})),
                )
                .await;
            assert_eq!(r.body["total_count"].as_u64(), Some(23));
            let page = ids(&r.body);
            if page.is_empty() {
                break;
            }
            assert!(
                page.len() == limit || offset + page.len() == 23,
                "only the last page may be short"
            );
            offset += page.len();
            seen.extend(page);
        }
        assert_eq!(seen, all, "limit {limit}");
    }
    for (bad, code) in [
        (json!({"limit": 0}), "TMS.0007"),
        (json!({"limit": 201}), "TMS.0007"),
        (json!({"limit": "x"}), "TMS.0007"),
        (json!({"offset": -1}), "TMS.0017"),
    ] {
        let r = s.post(FILTER, Some(&token), &filter(&s, bad.clone())).await;
        assert_eq!((r.status, r.tms_code()), (400, code), "{bad}");
    }
}

#[tokio::test]
async fn types_that_cannot_be_searched_are_reported_beside_the_results() {
    let s = TestServer::start().await;
    seed(&s, 4).await;
    s.register(json!([{"resource_type": "cdn", "resource_id": "site"}]))
        .await;
    let token = s.domain_token().await;
    let r = s
        .post(
            FILTER,
            Some(&token),
            &json!({"project_id": s.creds.project_id, "resource_types": ["disk", "floppy", "cdn"]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["total_count"], 5);
    assert_eq!(r.body["errors"][0]["resource_type"], "floppy");
    assert_eq!(r.body["errors"][0]["error_code"], "TMS.5027");
    let r = s
        .post(FILTER, Some(&token), &json!({"resource_types": ["disk"]}))
        .await;
    assert_eq!(r.body["errors"][0]["error_code"], "TMS.2011", "{}", r.text);
    assert_eq!(r.body["total_count"], 0);
    let r = s
        .post(
            FILTER,
            Some(&token),
            &json!({"project_id": s.creds.project_id, "resource_types": []}),
        )
        .await;
    assert_eq!(r.status, 400);
    let many: Vec<Value> = (0..11)
        .map(|i| json!({"key": format!("k{i}"), "values": []}))
        .collect();
    let r = s
        .post(FILTER, Some(&token), &filter(&s, json!({"tags": many})))
        .await;
    assert_eq!(r.status, 400);
    let values: Vec<String> = (0..11).map(|i| i.to_string()).collect();
    let r = s
        .post(
            FILTER,
            Some(&token),
            &filter(&s, json!({"tags": [{"key": "k", "values": values}]})),
        )
        .await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn reads_see_acknowledged_writes_and_stay_in_the_callers_project() {
    let s = TestServer::start().await;
    seed(&s, 4).await;
    let token = s.domain_token().await;
    let r = s
        .post("/v1.0/resource-tags/batch-create", Some(&token), &json!({"project_id": s.creds.project_id,
            "resources": [{"resource_id": "d03", "resource_type": "disk"}], "tags": [{"key": "fresh", "value": "yes"}]}))
        .await;
    assert_eq!(r.status, 200);
    let r = s
        .post(
            FILTER,
            Some(&token),
            &filter(&s, json!({"tags": [{"key": "fresh", "values": ["yes"]}]})),
        )
        .await;
    assert_eq!(ids(&r.body), ["d03"]);
    let other = s.other_project_token("cn-east-3").await;
    let r = s.post(FILTER, Some(&other), &filter(&s, json!({}))).await;
    assert_eq!(r.status, 403);
}

#[tokio::test]
async fn key_and_value_listings_page_with_markers() {
    let s = TestServer::start().await;
    let ids: Vec<String> = (0..5).map(|i| format!("d{i}")).collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    s.register_disks(&refs).await;
    let token = s.domain_token().await;
    for (i, id) in ids.iter().enumerate() {
        let tags: Vec<Value> = (0..=i)
            .map(|k| json!({"key": format!("key{k}"), "value": format!("v{i}")}))
            .collect();
        s.post(
            "/v1.0/resource-tags/batch-create",
            Some(&token),
            &json!({"project_id": s.creds.project_id,
            "resources": [{"resource_id": id, "resource_type": "disk"}], "tags": tags}),
        )
        .await;
    }
    let all_keys: Vec<String> = (0..5).map(|k| format!("key{k}")).collect();
    let mut walked = Vec::new();
    let mut marker = String::new();
    loop {
        let r = s
            .get(
                &format!("/v1.0/tag-keys?limit=2&marker={marker}"),
                Some(&token),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        let keys: Vec<String> = r.body["keys"]
            .as_array()
            .expect("keys")
            .iter()
            .map(|k| k.as_str().expect("key").to_owned())
            .collect();
        assert!(!keys.is_empty(), "never an empty page after a marker");
        assert_eq!(
            r.body["page_info"]["current_count"].as_u64(),
            Some(keys.len() as u64)
        );
        walked.extend(keys);
        marker = r.body["page_info"]["next_marker"]
            .as_str()
            .expect("marker")
            .to_owned();
        if marker.is_empty() {
            break;
        }
    }
    assert_eq!(walked, all_keys);
    let r = s
        .get(
            &format!("/v1.0/tag-keys?region_id={}", s.creds.project_name),
            Some(&token),
        )
        .await;
    assert_eq!(r.body["keys"].as_array().map(Vec::len), Some(5));
    let r = s.get("/v1.0/tag-keys?region_id=mars-1", Some(&token)).await;
    assert_eq!(r.body["keys"], json!([]));
    assert_eq!(r.body["page_info"]["next_marker"], "");

    let r = s
        .get("/v1.0/tag-values?key=key0&limit=3", Some(&token))
        .await;
    assert_eq!(r.body["values"], json!(["v0", "v1", "v2"]));
    let marker = r.body["page_info"]["next_marker"]
        .as_str()
        .expect("marker")
        .to_owned();
    assert!(!marker.is_empty());
    let r = s
        .get(
            &format!("/v1.0/tag-values?key=key0&limit=3&marker={marker}"),
            Some(&token),
        )
        .await;
    assert_eq!(r.body["values"], json!(["v3", "v4"]));
    assert_eq!(r.body["page_info"]["next_marker"], "");
    let r = s.get("/v1.0/tag-values", Some(&token)).await;
    assert_eq!((r.status, r.tms_code()), (400, "TMS.0002"));
    for bad in ["limit=0", "limit=201", "limit=ten"] {
        let r = s.get(&format!("/v1.0/tag-keys?{bad}"), Some(&token)).await;
        assert_eq!((r.status, r.tms_code()), (400, "TMS.0007"), "{bad}");
    }

    let r = s
        .get(
            &format!(
                "/v1.0/tags?project_id={}&resource_types=disk",
                s.creds.project_id
            ),
            Some(&token),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.body["tags"][0],
        json!({"key": "key0", "values": ["v0", "v1", "v2", "v3", "v4"]})
    );
    assert_eq!(r.body["tags"][4], json!({"key": "key4", "values": ["v4"]}));
    let r = s
        .get(
            &format!(
                "/v1.0/tags?project_id={}&resource_types=disk,tape",
                s.creds.project_id
            ),
            Some(&token),
        )
        .await;
    assert_eq!(r.body["errors"][0]["resource_type"], "tape");
}

#[tokio::test]
async fn predefined_tags_are_created_listed_replaced_and_deleted() {
    let s = TestServer::start().await;
    let token = s.domain_token().await;
    let action = "/v1.0/predefine_tags/action";
    let r = s
        .post(action, Some(&token), &json!({"action": "create", "tags": [
            {"key": "env", "value": "prod"}, {"key": "env", "value": "dev"}, {"key": "Team", "value": "web"}]}))
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    let r = s
        .get(
            "/v1.0/predefine_tags?key=ENV&order_field=value&order_method=asc",
            Some(&token),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["total_count"], 2);
    let pairs: Vec<(String, String)> = r.body["tags"]
        .as_array()
        .expect("tags")
        .iter()
        .map(|t| {
            (
                t["key"].as_str().expect("k").into(),
                t["value"].as_str().expect("v").into(),
            )
        })
        .collect();
    assert_eq!(
        pairs,
        vec![("env".into(), "dev".into()), ("env".into(), "prod".into())]
    );
    assert!(r.body["tags"][0]["update_time"]
        .as_str()
        .is_some_and(|t| t.ends_with('Z')));

    // Paging with the marker until a page comes back empty.
    let mut seen = 0;
    let mut marker = String::new();
    loop {
        let r = s
            .get(
                &format!("/v1.0/predefine_tags?limit=2&marker={marker}"),
                Some(&token),
            )
            .await;
        let n = r.body["tags"].as_array().map_or(0, Vec::len);
        if n == 0 {
            break;
        }
        seen += n;
        marker = r.body["marker"].as_str().expect("marker").to_owned();
    }
    assert_eq!(seen, 3);

    let r = s
        .send_with(reqwest::Method::PUT, "/v1.0/predefine_tags", Some(&token), &[], Some(&json!({
            "old_tag": {"key": "Team", "value": "web"}, "new_tag": {"key": "team", "value": "web"}})))
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    let r = s
        .send_with(
            reqwest::Method::PUT,
            "/v1.0/predefine_tags",
            Some(&token),
            &[],
            Some(&json!({
            "old_tag": {"key": "Team", "value": "web"}, "new_tag": {"key": "x", "value": "y"}})),
        )
        .await;
    assert_eq!((r.status, r.tms_code()), (400, "TMS.1002"));
    let r = s
        .send_with(reqwest::Method::PUT, "/v1.0/predefine_tags", Some(&token), &[], Some(&json!({
            "old_tag": {"key": "env", "value": "dev"}, "new_tag": {"key": "env", "value": "prod"}})))
        .await;
    assert_eq!((r.status, r.tms_code()), (400, "TMS.1003"));

    let r = s.post(action, Some(&token), &json!({"action": "delete", "tags": [{"key": "env", "value": "dev"}, {"key": "no", "value": "such"}]})).await;
    assert_eq!(r.status, 204);
    let r = s.get("/v1.0/tms/quotas", Some(&token)).await;
    assert_eq!(
        r.body["quotas"][0],
        json!({"quota_key": "predefine_tag", "quota_limit": 500, "used": 2, "unit": ""})
    );

    for (query, code) in [
        ("order_field=size", "TMS.1010"),
        ("order_method=up", "TMS.1011"),
        ("limit=1001", "TMS.0007"),
        ("marker=abc", "TMS.0008"),
    ] {
        let r = s
            .get(&format!("/v1.0/predefine_tags?{query}"), Some(&token))
            .await;
        assert_eq!((r.status, r.tms_code()), (400, code), "{query}");
    }
    let r = s
        .post(
            action,
            Some(&token),
            &json!({"action": "rename", "tags": [{"key": "a", "value": "b"}]}),
        )
        .await;
    assert_eq!((r.status, r.tms_code()), (400, "TMS.0011"));
    let project = s.project_token().await;
    let r = s
        .post(
            action,
            Some(&project),
            &json!({"action": "create", "tags": [{"key": "a", "value": "b"}]}),
        )
        .await;
    assert_eq!(r.status, 403, "predefined tags belong to the domain");
}

#[tokio::test]
async fn a_domain_holds_at_most_500_predefined_tags() {
    let s = TestServer::start().await;
    let token = s.domain_token().await;
    let batch = |from: usize, n: usize| -> Value {
        Value::Array(
            (from..from + n)
                .map(|i| json!({"key": format!("k{i}"), "value": "v"}))
                .collect(),
        )
    };
    let r = s
        .post(
            "/v1.0/predefine_tags/action",
            Some(&token),
            &json!({"action": "create", "tags": batch(0, 499)}),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    let r = s
        .post(
            "/v1.0/predefine_tags/action",
            Some(&token),
            &json!({"action": "create", "tags": batch(499, 2)}),
        )
        .await;
    assert_eq!((r.status, r.tms_code()), (400, "TMS.1001"));
    let r = s.get("/v1.0/tms/quotas", Some(&token)).await;
    assert_eq!(
        r.body["quotas"][0]["used"], 499,
        "the refused request added nothing"
    );
    let r = s
        .post(
            "/v1.0/predefine_tags/action",
            Some(&token),
            &json!({"action": "create", "tags": batch(499, 1)}),
        )
        .await;
    assert_eq!(r.status, 204);
    let r = s.get("/v1.0/predefine_tags?limit=0", Some(&token)).await;
    assert_eq!(
        r.body["tags"].as_array().map(Vec::len),
        Some(500),
        "limit 0 means everything"
    );
}

#[tokio::test]
async fn api_versions_need_no_token() {
    let s = TestServer::start().await;
    let r = s.get("/", None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let ids: Vec<&str> = r.body["versions"]
        .as_array()
        .expect("versions")
        .iter()
        .map(|v| v["id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids, ["v1.0", "v2.0"]);
    let r = s.get("/v1.0", None).await;
    assert_eq!(r.body["version"]["id"], "v1.0");
    assert_eq!(r.body["version"]["status"], "CURRENT");
    let r = s.get("/v9.9", None).await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn an_empty_value_ending_a_page_still_leads_to_the_next() {
    let s = TestServer::start().await;
    s.register_disks(&["a", "b"]).await;
    let token = s.domain_token().await;
    for (id, value) in [("a", ""), ("b", "x")] {
        let r = s
            .post("/v1.0/resource-tags/batch-create", Some(&token), &json!({"project_id": s.creds.project_id,
                "resources": [{"resource_id": id, "resource_type": "disk"}], "tags": [{"key": "k", "value": value}]}))
            .await;
        assert_eq!(r.body["failed_resources"], json!([]));
    }
    let r = s.get("/v1.0/tag-values?key=k&limit=1", Some(&token)).await;
    assert_eq!(r.body["values"], json!([""]));
    let marker = r.body["page_info"]["next_marker"]
        .as_str()
        .expect("marker")
        .to_owned();
    assert!(
        !marker.is_empty(),
        "a page ending on an empty value is not the last"
    );
    let r = s
        .get(
            &format!("/v1.0/tag-values?key=k&limit=1&marker={marker}"),
            Some(&token),
        )
        .await;
    assert_eq!(r.body["values"], json!(["x"]));
    assert_eq!(r.body["page_info"]["next_marker"], "");
    let r = s
        .get("/v1.0/tag-values?key=k&marker=zzz", Some(&token))
        .await;
    assert_eq!((r.status, r.tms_code()), (400, "TMS.0008"));
}

#[tokio::test]
async fn project_tokens_list_and_filter_without_the_domains_global_resources() {
    let s = TestServer::start().await;
    s.register_disks(&["d"]).await;
    s.register(json!([{"resource_type": "cdn", "resource_id": "site"}]))
        .await;
    let token = s.project_token().await;
    let r = s
        .get(
            &format!("/v1.0/tags?project_id={}", s.creds.project_id),
            Some(&token),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = s
        .post(
            FILTER,
            Some(&token),
            &json!({"project_id": s.creds.project_id, "resource_types": ["disk", "cdn"]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(ids(&r.body), ["d"]);
    assert_eq!(r.body["errors"][0]["resource_type"], "cdn");
    assert_eq!(r.body["errors"][0]["error_code"], "TMS.0004");
    // A long or repetitive type list is bounded, not a 5xx.
    let many = vec!["disk"; 40_000];
    let r = s
        .post(
            FILTER,
            Some(&token),
            &json!({"project_id": s.creds.project_id, "resource_types": many}),
        )
        .await;
    assert_eq!(r.status, 200, "duplicates collapse: {}", r.text);
    let invented: Vec<String> = (0..100).map(|i| format!("t{i}")).collect();
    let r = s
        .post(
            FILTER,
            Some(&token),
            &json!({"project_id": s.creds.project_id, "resource_types": invented}),
        )
        .await;
    assert_eq!((r.status, r.tms_code()), (400, "TMS.0002"));
    let values: Vec<String> = (0..11).map(|i| i.to_string()).collect();
    let r = s
        .post(
            FILTER,
            Some(&token),
            &json!({"project_id": s.creds.project_id, "resource_types": ["disk"],
            "tags": [{"key": "k", "values": values}]}),
        )
        .await;
    assert_eq!((r.status, r.tms_code()), (400, "TMS.0016"));
}
