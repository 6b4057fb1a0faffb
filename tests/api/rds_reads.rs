//! RDS reads: one instance's tags, the project's tags, the (empty) predefined tags, and
//! `ListInstances` with its `tags=k1=v1,k2=` filter, `id=`/`name=` conditions and paging:
//! every condition alone and combined, the parsing of `tags=` at its edges, paging
//! invariants, read-your-writes (also through TMS), project isolation, X-Language.

use serde_json::{json, Value};

use crate::{Reply, TestServer};

const TYPE: &str = "rds";

fn path(s: &TestServer, tail: &str) -> String {
    format!("/v3/{}{tail}", s.creds.project_id)
}

async fn list(s: &TestServer, token: &str, query: &str) -> Reply {
    s.get(&format!("{}{query}", path(s, "/instances")), Some(token))
        .await
}

async fn instance_tags(s: &TestServer, token: &str, id: &str) -> Reply {
    s.get(&path(s, &format!("/instances/{id}/tags")), Some(token))
        .await
}

async fn tag(s: &TestServer, token: &str, id: &str, tags: &[(&str, &str)]) {
    let tags: Vec<Value> = tags
        .iter()
        .map(|(k, v)| json!({"key": k, "value": v}))
        .collect();
    let r = s
        .post(
            &path(s, &format!("/instances/{id}/tags/action")),
            Some(token),
            &json!({"action": "create", "tags": tags}),
        )
        .await;
    assert_eq!(r.status, 204, "tagging {id}: {}", r.text);
}

async fn register_named(s: &TestServer, instances: &[(&str, &str)]) {
    let resources: Vec<Value> = instances
        .iter()
        .map(|(id, name)| {
            json!({"project_id": s.creds.project_id, "resource_type": TYPE,
                   "resource_id": id, "name": name})
        })
        .collect();
    s.register(Value::Array(resources)).await;
}

/// The ids `ListInstances` returned, in order, after checking the reply's shape.
fn ids(r: &Reply) -> Vec<String> {
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(TestServer::fields(&r.body), ["instances", "total_count"]);
    r.body["instances"]
        .as_array()
        .expect("instances")
        .iter()
        .map(|i| i["id"].as_str().expect("id").to_owned())
        .collect()
}

fn total(r: &Reply) -> u64 {
    r.body["total_count"]
        .as_u64()
        .unwrap_or_else(|| panic!("total_count in {}", r.text))
}

fn assert_bad_request(r: &Reply) {
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(TestServer::fields(&r.body), ["error_code", "error_msg"]);
    assert_eq!(r.body["error_code"], "DBS.200001", "{}", r.text);
}

/// Four instances (and a disk with the same tags, never listed):
///
/// | id  | name       | tags              |
/// |-----|------------|-------------------|
/// | i-a | mysql-prod | env=prod, team=x  |
/// | i-b | pg-prod    | env=prod          |
/// | i-c | mysql-dev  | env=dev, team=y   |
/// | i-d | plain      | -                 |
async fn fixture() -> (TestServer, String) {
    let s = TestServer::start().await;
    register_named(
        &s,
        &[
            ("i-a", "mysql-prod"),
            ("i-b", "pg-prod"),
            ("i-c", "mysql-dev"),
            ("i-d", "plain"),
        ],
    )
    .await;
    let token = s.project_token().await;
    tag(&s, &token, "i-a", &[("env", "prod"), ("team", "x")]).await;
    tag(&s, &token, "i-b", &[("env", "prod")]).await;
    tag(&s, &token, "i-c", &[("env", "dev"), ("team", "y")]).await;
    s.register_disks(&["i-e"]).await;
    let r = s
        .post(
            "/v1.0/resource-tags/batch-create",
            Some(&token),
            &json!({"project_id": s.creds.project_id,
                    "resources": [{"resource_id": "i-e", "resource_type": "disk"}],
                    "tags": [{"key": "env", "value": "prod"}, {"key": "disk-only", "value": "1"}]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    (s, token)
}

#[tokio::test]
async fn an_instances_tags_are_listed_sorted_and_unknown_is_404() {
    let (s, token) = fixture().await;
    let r = instance_tags(&s, &token, "i-a").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.body,
        json!({"tags": [{"key": "env", "value": "prod", "tag_type": "user"}, {"key": "team", "value": "x", "tag_type": "user"}]})
    );
    let r = instance_tags(&s, &token, "i-d").await;
    assert_eq!(r.body, json!({"tags": []}), "untagged: an empty list");
    for id in ["missing", "i-e"] {
        let r = instance_tags(&s, &token, id).await;
        assert_eq!(r.status, 404, "{id}: {}", r.text);
        assert_eq!(r.body["error_code"], "DBS.200002");
        assert_eq!(TestServer::fields(&r.body), ["error_code", "error_msg"]);
    }
    let r = s
        .send_with(
            reqwest::Method::GET,
            &path(&s, "/instances/missing/tags"),
            Some(&token),
            &[("X-Language", "zh-cn")],
            None,
        )
        .await;
    assert_eq!(r.status, 404);
    assert!(
        r.body["error_msg"]
            .as_str()
            .is_some_and(|m| m.contains("不存在")),
        "{}",
        r.text
    );
}

#[tokio::test]
async fn project_tags_and_predefined_tags() {
    let (s, token) = fixture().await;
    let r = s.get(&path(&s, "/tags"), Some(&token)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.body,
        json!({"tags": [
            {"key": "env", "values": ["dev", "prod"]},
            {"key": "team", "values": ["x", "y"]},
        ]}),
        "the disk's tags stay out"
    );
    let r = s.get(&path(&s, "/tags/predefined-tag"), Some(&token)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body, json!({"tags": []}));

    let empty = TestServer::start().await;
    let t = empty.project_token().await;
    let r = empty.get(&path(&empty, "/tags"), Some(&t)).await;
    assert_eq!(r.body, json!({"tags": []}), "{}", r.text);
}

#[tokio::test]
async fn list_instances_filters_alone_and_combined() {
    let (s, token) = fixture().await;
    let all = vec!["i-a", "i-b", "i-c", "i-d"];
    let cases: Vec<(&str, Vec<&str>)> = vec![
        ("", all.clone()),
        ("?tags=env=prod", vec!["i-a", "i-b"]),
        ("?tags=env%3Dprod", vec!["i-a", "i-b"]),
        ("?tags=env=", vec!["i-a", "i-b", "i-c"]),
        ("?tags=env=prod,team=", vec!["i-a"]),
        ("?tags=env%3Dprod%2Cteam%3D", vec!["i-a"]),
        ("?tags=team=,env=prod", vec!["i-a"]),
        ("?tags=env=prod,team=y", vec![]),
        ("?tags=env=nope", vec![]),
        ("?tags=disk-only=", vec![]),
        ("?tags=%20env%20=%20prod%20", vec!["i-a", "i-b"]),
        ("?tags=ENV=prod", vec![]),
        ("?id=i-a", vec!["i-a"]),
        ("?id=i-", vec![]),
        ("?id=*i-", all.clone()),
        ("?id=*-c", vec!["i-c"]),
        ("?id=", all.clone()),
        ("?name=mysql-prod", vec!["i-a"]),
        ("?name=mysql", vec![]),
        ("?name=*mysql", vec!["i-a", "i-c"]),
        ("?name=*prod", vec!["i-a", "i-b"]),
        ("?name=*prod&tags=team=", vec!["i-a"]),
        ("?name=*mysql&tags=env=dev&id=i-c", vec!["i-c"]),
        ("?name=*mysql&id=*b", vec![]),
        (
            "?type=Single&datastore_type=MySQL&eps_id=0&vpc_id=v&subnet_id=s&group_type=x",
            all.clone(),
        ),
    ];
    for (query, expected) in cases {
        let r = list(&s, &token, query).await;
        assert_eq!(ids(&r), expected, "{query}");
        assert_eq!(total(&r), expected.len() as u64, "total_count of {query}");
    }
    let r = list(&s, &token, "?tags=team=").await;
    assert_eq!(
        r.body["instances"],
        json!([
            {"id": "i-a", "name": "mysql-prod", "status": "ACTIVE",
             "tags": [{"key": "env", "value": "prod"}, {"key": "team", "value": "x"}]},
            {"id": "i-c", "name": "mysql-dev", "status": "ACTIVE",
             "tags": [{"key": "env", "value": "dev"}, {"key": "team", "value": "y"}]},
        ])
    );
    let r = list(&s, &token, "?id=i-d").await;
    assert_eq!(r.body["instances"][0]["tags"], json!([]));
}

#[tokio::test]
async fn the_tags_parameter_at_its_edges() {
    let (s, token) = fixture().await;
    let pairs = |n: usize| -> String {
        (0..n)
            .map(|i| format!("k{i}="))
            .collect::<Vec<_>>()
            .join(",")
    };
    let key = |n: usize| "k".repeat(n);
    let value = |n: usize| "v".repeat(n);
    let ok = [
        pairs(10),
        format!("{}=", key(127)),
        format!("k={}", value(255)),
        "键=值".to_owned(),
        "a_b.c-d:e@f=x y".to_owned(),
    ];
    for query in &ok {
        let r = list(&s, &token, &format!("?tags={query}")).await;
        assert_eq!(r.status, 200, "{query}: {}", r.text);
        assert!(ids(&r).is_empty(), "{query}");
    }
    let bad = [
        pairs(11),
        format!("{}=", key(128)),
        format!("k={}", value(256)),
        "".to_owned(),
        "k".to_owned(),
        "env".to_owned(),
        "env=prod,team".to_owned(),
        "env=prod,".to_owned(),
        ",env=prod".to_owned(),
        "=prod".to_owned(),
        "%20=prod".to_owned(),
        "env=prod,env=dev".to_owned(),
        "env=prod,env=".to_owned(),
        "k=v=w".to_owned(),
        "k%2B=v".to_owned(),
        "k=a%2Bb".to_owned(),
        "k%2F=v".to_owned(),
        "k=a%3Fb".to_owned(),
        "k%23=v".to_owned(),
        "k%26x=v".to_owned(),
        "k=50%25".to_owned(),
    ];
    for query in &bad {
        let r = list(&s, &token, &format!("?tags={query}")).await;
        assert_bad_request(&r);
        assert!(
            r.body["error_msg"]
                .as_str()
                .is_some_and(|m| m.contains("tags")),
            "{query}: {}",
            r.text
        );
    }
    // In the language of X-Language.
    let r = s
        .send_with(
            reqwest::Method::GET,
            &format!("{}?tags={}", path(&s, "/instances"), pairs(11)),
            Some(&token),
            &[("X-Language", "zh-cn")],
            None,
        )
        .await;
    assert_bad_request(&r);
    let msg = r.body["error_msg"].as_str().expect("error_msg");
    assert!(msg.contains("11") && msg.contains("10"), "{msg}");
    assert!(
        msg.chars().any(|c| ('\u{4E00}'..='\u{9FFF}').contains(&c)),
        "{msg}"
    );
    let r = s
        .send_with(
            reqwest::Method::GET,
            &format!("{}?tags=env", path(&s, "/instances")),
            Some(&token),
            &[("X-Language", "zh-cn")],
            None,
        )
        .await;
    assert_bad_request(&r);
    assert!(r.body["error_msg"]
        .as_str()
        .is_some_and(|m| m.contains("键值对")));
    let r = list(&s, &token, "?id=*").await;
    assert_bad_request(&r);
    let r = list(&s, &token, "?name=*").await;
    assert_bad_request(&r);
}

/// Every instance a filter keeps, read 100 at a time.
async fn everything(s: &TestServer, token: &str, filter: &str) -> (Vec<String>, u64) {
    let mut out = Vec::new();
    loop {
        let r = list(
            s,
            token,
            &format!("?offset={}&limit=100{filter}", out.len()),
        )
        .await;
        let page = ids(&r);
        let n = page.len();
        out.extend(page);
        if n < 100 {
            return (out, total(&r));
        }
    }
}

/// Walks every page with `limit` and checks it against the whole set: same order, no
/// duplicates, no gaps, every page full but the last, the total constant.
async fn walk(s: &TestServer, token: &str, filter: &str, limit: usize) -> Vec<String> {
    let (everything, expected_total) = everything(s, token, filter).await;
    assert_eq!(everything.len() as u64, expected_total);
    let mut walked = Vec::new();
    let mut offset = 0;
    loop {
        let r = list(s, token, &format!("?offset={offset}&limit={limit}{filter}")).await;
        let page = ids(&r);
        assert_eq!(
            total(&r),
            expected_total,
            "the total is the same on every page"
        );
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= limit);
        walked.extend(page.iter().cloned());
        if page.len() < limit {
            assert_eq!(
                walked.len() as u64,
                expected_total,
                "only the last page is short"
            );
            break;
        }
        offset += limit;
    }
    assert_eq!(walked, everything, "{filter}");
    let unique: std::collections::HashSet<&String> = walked.iter().collect();
    assert_eq!(unique.len(), walked.len(), "no duplicates");
    walked
}

#[tokio::test]
async fn paging_walks_every_instance_exactly_once() {
    let s = TestServer::start().await;
    let owned: Vec<String> = (0..105).map(|i| format!("db-{i:03}")).collect();
    let named: Vec<(&str, &str)> = owned
        .iter()
        .map(|i| (i.as_str(), if i.ends_with('7') { "seven" } else { "db" }))
        .collect();
    register_named(&s, &named).await;
    let token = s.project_token().await;
    for id in owned.iter().step_by(3) {
        tag(&s, &token, id, &[("k", "v")]).await;
    }
    assert_eq!(walk(&s, &token, "", 7).await, owned, "ordered by id");
    assert_eq!(walk(&s, &token, "", 100).await.len(), 105);
    assert_eq!(walk(&s, &token, "", 1).await.len(), 105);
    assert_eq!(walk(&s, &token, "&tags=k=v", 4).await.len(), 35);
    assert_eq!(walk(&s, &token, "&tags=k=", 35).await.len(), 35);
    // The exact-name and id conditions page in memory: the same invariants hold.
    assert_eq!(walk(&s, &token, "&name=seven", 3).await.len(), 10);
    assert_eq!(walk(&s, &token, "&name=seven&tags=k=v", 2).await.len(), 3);
    assert_eq!(walk(&s, &token, "&id=*-0", 6).await.len(), 100);

    // Defaults: offset 0, limit 100.
    let r = list(&s, &token, "").await;
    assert_eq!(ids(&r), owned[..100].to_vec());
    assert_eq!(total(&r), 105);
    let r = list(&s, &token, "?offset=1000&name=seven").await;
    assert!(ids(&r).is_empty());
    assert_eq!(total(&r), 10, "past the end: no rows, the true total");
}

#[tokio::test]
async fn bad_paging_is_400() {
    let (s, token) = fixture().await;
    for query in [
        "?limit=0",
        "?limit=101",
        "?limit=-1",
        "?limit=abc",
        "?limit=",
        "?limit=2.0",
        "?offset=-1",
        "?offset=x",
        "?offset=99999999999999999999999",
        "?offset=-1&tags=env=prod",
    ] {
        let r = list(&s, &token, query).await;
        assert_bad_request(&r);
        let field = if query.contains("limit") {
            "limit"
        } else {
            "offset"
        };
        assert!(
            r.body["error_msg"]
                .as_str()
                .is_some_and(|m| m.contains(field)),
            "{query}: {}",
            r.text
        );
    }
    for query in ["?limit=1", "?limit=100", "?offset=0", "?offset=5"] {
        let r = list(&s, &token, query).await;
        assert_eq!(r.status, 200, "{query}: {}", r.text);
    }
}

#[tokio::test]
async fn writes_are_read_back_including_those_made_through_tms() {
    let s = TestServer::start().await;
    register_named(&s, &[("i1", "one"), ("i2", "two")]).await;
    let token = s.project_token().await;
    assert!(ids(&list(&s, &token, "?tags=env=prod").await).is_empty());

    tag(&s, &token, "i1", &[("env", "prod")]).await;
    assert_eq!(ids(&list(&s, &token, "?tags=env=prod").await), ["i1"]);
    assert_eq!(
        instance_tags(&s, &token, "i1").await.body,
        json!({"tags": [{"key": "env", "value": "prod", "tag_type": "user"}]})
    );

    let r = s
        .post(
            "/v1.0/resource-tags/batch-create",
            Some(&token),
            &json!({"project_id": s.creds.project_id,
                    "resources": [{"resource_id": "i2", "resource_type": TYPE}],
                    "tags": [{"key": "env", "value": "prod"}, {"key": "via", "value": "tms"}]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(ids(&list(&s, &token, "?tags=env=prod").await), ["i1", "i2"]);
    assert_eq!(ids(&list(&s, &token, "?tags=via=tms").await), ["i2"]);
    assert_eq!(
        instance_tags(&s, &token, "i2").await.body,
        json!({"tags": [{"key": "env", "value": "prod", "tag_type": "user"}, {"key": "via", "value": "tms", "tag_type": "user"}]})
    );
    assert_eq!(
        s.get(&path(&s, "/tags"), Some(&token)).await.body,
        json!({"tags": [{"key": "env", "values": ["prod"]}, {"key": "via", "values": ["tms"]}]})
    );

    let r = s
        .post(
            &path(&s, "/instances/i1/tags/action"),
            Some(&token),
            &json!({"action": "delete", "tags": [{"key": "env"}]}),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(ids(&list(&s, &token, "?tags=env=").await), ["i2"]);
    assert_eq!(
        instance_tags(&s, &token, "i1").await.body,
        json!({"tags": []})
    );
}

#[tokio::test]
async fn projects_are_isolated_and_callers_authorised() {
    let (s, token) = fixture().await;
    let other = s.other_project_token("cn-east-3").await;
    let r = s.get("/v3/projects?name=cn-east-3", Some(&other)).await;
    let other_id = r.body["projects"][0]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("project id in {}", r.text))
        .to_owned();
    s.register(json!([{"project_id": other_id, "resource_type": TYPE, "resource_id": "i-a", "name": "elsewhere"}]))
        .await;
    let r = s
        .post(
            &format!("/v3/{other_id}/instances/i-a/tags/action"),
            Some(&other),
            &json!({"action": "create", "tags": [{"key": "there", "value": "1"}]}),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text);

    let r = s
        .get(&format!("/v3/{other_id}/instances"), Some(&other))
        .await;
    assert_eq!(ids(&r), ["i-a"]);
    assert_eq!(r.body["instances"][0]["name"], "elsewhere");
    assert_eq!(
        s.get(&format!("/v3/{other_id}/instances/i-a/tags"), Some(&other))
            .await
            .body,
        json!({"tags": [{"key": "there", "value": "1", "tag_type": "user"}]})
    );
    assert_eq!(
        s.get(&format!("/v3/{other_id}/tags"), Some(&other))
            .await
            .body,
        json!({"tags": [{"key": "there", "values": ["1"]}]})
    );
    // The first project sees none of it.
    assert!(ids(&list(&s, &token, "?tags=there=").await).is_empty());
    assert_eq!(
        instance_tags(&s, &token, "i-a").await.body["tags"],
        json!([{"key": "env", "value": "prod", "tag_type": "user"}, {"key": "team", "value": "x", "tag_type": "user"}])
    );

    let paths = [
        "/instances",
        "/instances/i-a/tags",
        "/tags",
        "/tags/predefined-tag",
    ];
    for p in paths {
        let r = s.get(&path(&s, p), Some(&other)).await;
        assert_eq!(r.status, 403, "{p}: {}", r.text);
        assert_eq!(r.body["error_code"], "DBS.200010", "{}", r.text);
        assert_eq!(TestServer::fields(&r.body), ["error_code", "error_msg"]);
        let r = s.get(&path(&s, p), None).await;
        assert_eq!(r.status, 401, "{p}: {}", r.text);
        assert_eq!(r.body["error_code"], "APIGW.0301", "{}", r.text);
    }
    // Authorisation comes before the parameters.
    let r = s
        .get(&path(&s, "/instances?limit=0&tags=bad"), Some(&other))
        .await;
    assert_eq!(r.status, 403, "{}", r.text);
}

#[tokio::test]
async fn predefined_tags_made_through_tms_are_offered_by_rds_and_fabric() {
    let s = TestServer::start().await;
    let domain = s.domain_token().await;
    let r = s
        .post("/v1.0/predefine_tags/action", Some(&domain), &json!({"action": "create", "tags": [
            {"key": "env", "value": "prod"}, {"key": "env", "value": "dev"}, {"key": "team", "value": "db"}]}))
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    let token = s.project_token().await;
    let pid = s.creds.project_id.clone();
    let r = s
        .get(&format!("/v3/{pid}/tags/predefined-tag"), Some(&token))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.body["tags"],
        json!([{"key": "env", "values": ["dev", "prod"]}, {"key": "team", "values": ["db"]}])
    );

    s.register_in("fabric-workspace", &["ws-1"]).await;
    let r = s
        .post(
            &format!("/v1/{pid}/fabric-workspace/ws-1/tags/create"),
            Some(&token),
            &json!({"tags": [{"key": "env", "value": "test"}]}),
        )
        .await;
    assert_eq!(r.status, 204);
    let r = s
        .get(&format!("/v1/{pid}/fabric-workspace/tags"), Some(&token))
        .await;
    assert_eq!(r.body["tags"], json!([{"key": "env", "values": ["test"]}]));
    let r = s
        .get(
            &format!("/v1/{pid}/fabric-workspace/tags?use_predefine_tags=true"),
            Some(&token),
        )
        .await;
    assert_eq!(
        r.body["tags"],
        json!([{"key": "env", "values": ["dev", "prod", "test"]}, {"key": "team", "values": ["db"]}])
    );
}
