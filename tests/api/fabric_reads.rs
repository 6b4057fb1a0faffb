//! DataArts Fabric reads: the project's tags (`GET .../fabric-workspace/tags`), and the
//! filter and count of workspaces (`POST .../resource-instances/filter|count`): every
//! condition alone and combined, counts equal to the rows, paging invariants, limits at n
//! and n+1, read-your-writes (also through TMS), system tags, and project isolation.

use serde_json::{json, Value};

use crate::{Reply, TestServer};

const TYPE: &str = "fabric-workspace";
const SYS_KEY: &str = "_sys_enterprise_project_id";
const EPS: &str = "01049549-82cd-4b2b-9733-ddb94350c125";

fn path(s: &TestServer, tail: &str) -> String {
    format!("/v1/{}/fabric-workspace{tail}", s.creds.project_id)
}

async fn filter(s: &TestServer, token: &str, query: &str, body: &Value) -> Reply {
    s.post(
        &format!("{}{query}", path(s, "/resource-instances/filter")),
        Some(token),
        body,
    )
    .await
}

async fn count(s: &TestServer, token: &str, body: &Value) -> Reply {
    s.post(&path(s, "/resource-instances/count"), Some(token), body)
        .await
}

async fn project_tags(s: &TestServer, token: &str, query: &str) -> Reply {
    s.get(&format!("{}{query}", path(s, "/tags")), Some(token))
        .await
}

/// Tags a workspace through Fabric's own create.
async fn tag(s: &TestServer, token: &str, ws: &str, tags: &[(&str, &str)], eps: Option<&str>) {
    let mut body = json!({});
    if !tags.is_empty() {
        body["tags"] = tags
            .iter()
            .map(|(k, v)| json!({"key": k, "value": v}))
            .collect();
    }
    if let Some(eps) = eps {
        body["sys_tags"] = json!([{"key": SYS_KEY, "value": eps}]);
    }
    let r = s
        .post(&path(s, &format!("/{ws}/tags/create")), Some(token), &body)
        .await;
    assert_eq!(r.status, 204, "tagging {ws}: {}", r.text);
}

/// Registers workspaces `(id, name)` in the default project.
async fn register_named(s: &TestServer, workspaces: &[(&str, &str)]) {
    let resources: Vec<Value> = workspaces
        .iter()
        .map(|(id, name)| {
            json!({"project_id": s.creds.project_id, "resource_type": TYPE,
                   "resource_id": id, "name": name})
        })
        .collect();
    s.register(Value::Array(resources)).await;
}

/// The ids a filter listed, in order, after checking the reply is a 200 whose
/// `total_count` is a number.
fn ids(r: &Reply) -> Vec<String> {
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(TestServer::fields(&r.body), ["resources", "total_count"]);
    assert!(r.body["total_count"].is_u64(), "{}", r.text);
    r.body["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .map(|w| w["resource_id"].as_str().expect("resource_id").to_owned())
        .collect()
}

fn total(r: &Reply) -> u64 {
    r.body["total_count"].as_u64().expect("total_count")
}

fn assert_bad_request(r: &Reply) {
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(
        TestServer::fields(&r.body),
        ["error_code", "error_msg", "solution_msg"],
        "{}",
        r.text
    );
    assert_eq!(r.body["error_code"], "common.01000001", "{}", r.text);
}

/// Five workspaces (and look-alikes of other types that must never be listed):
///
/// | id | name        | tags                | enterprise project |
/// |----|-------------|---------------------|--------------------|
/// | wa | alpha-prod  | env=prod, team=x    | EPS                |
/// | wb | beta-prod   | env=prod            | 0                  |
/// | wc | gamma-dev   | env=dev, team=y     | -                  |
/// | wd | delta       | -                   | EPS                |
/// | we | epsilon     | -                   | -                  |
async fn fixture() -> (TestServer, String) {
    let s = TestServer::start().await;
    register_named(
        &s,
        &[
            ("wa", "alpha-prod"),
            ("wb", "beta-prod"),
            ("wc", "gamma-dev"),
            ("wd", "delta"),
            ("we", "epsilon"),
        ],
    )
    .await;
    let token = s.project_token().await;
    tag(
        &s,
        &token,
        "wa",
        &[("env", "prod"), ("team", "x")],
        Some(EPS),
    )
    .await;
    tag(&s, &token, "wb", &[("env", "prod")], Some("0")).await;
    tag(&s, &token, "wc", &[("env", "dev"), ("team", "y")], None).await;
    tag(&s, &token, "wd", &[], Some(EPS)).await;
    // The same tags on an RDS instance and a disk: other types stay out of every answer.
    s.register_in("rds", &["wa-rds"]).await;
    s.register_disks(&["wa-disk"]).await;
    let r = s
        .post(
            &format!("/v3/{}/instances/wa-rds/tags/action", s.creds.project_id),
            Some(&token),
            &json!({"action": "create", "tags": [{"key": "env", "value": "prod"}, {"key": "rds-only", "value": "1"}]}),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    let r = s
        .post(
            "/v1.0/resource-tags/batch-create",
            Some(&token),
            &json!({"project_id": s.creds.project_id,
                    "resources": [{"resource_id": "wa-disk", "resource_type": "disk"}],
                    "tags": [{"key": "disk-only", "value": "1"}]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    (s, token)
}

#[tokio::test]
async fn each_condition_alone_and_combined() {
    let (s, token) = fixture().await;
    let all = ["wa", "wb", "wc", "wd", "we"];
    let prod = json!([{"key": "env", "values": ["prod"]}]);
    let cases: Vec<(Value, Vec<&str>)> = vec![
        (json!({}), all.to_vec()),
        (json!({"without_any_tag": false}), all.to_vec()),
        (json!({"tags": []}), all.to_vec()),
        (json!({"tags": prod}), vec!["wa", "wb"]),
        (
            json!({"tags": [{"key": "env", "values": []}]}),
            vec!["wa", "wb", "wc"],
        ),
        (
            json!({"tags": [{"key": "env", "values": ["prod", "dev"]}]}),
            vec!["wa", "wb", "wc"],
        ),
        (
            json!({"tags": [{"key": "env", "values": ["prod"]}, {"key": "team", "values": []}]}),
            vec!["wa"],
        ),
        (
            json!({"tags": [{"key": "env", "values": ["prod"]}, {"key": "team", "values": ["y"]}]}),
            vec![],
        ),
        (
            json!({"tags": [{"key": "env", "values": ["nope"]}]}),
            vec![],
        ),
        (json!({"tags": [{"key": "rds-only", "values": []}]}), vec![]),
        (json!({"without_any_tag": true}), vec!["wd", "we"]),
        (
            json!({"without_any_tag": true, "tags": prod}),
            vec!["wd", "we"],
        ),
        (
            json!({"matches": [{"key": "resource_name", "value": "prod"}]}),
            vec!["wa", "wb"],
        ),
        (
            json!({"matches": [{"key": "resource_name", "value": ""}]}),
            all.to_vec(),
        ),
        (
            json!({"matches": [{"key": "resource_name", "value": "PROD"}]}),
            vec![],
        ),
        (
            json!({"matches": [{"key": "resource_name", "value": "prod"}], "tags": [{"key": "team", "values": []}]}),
            vec!["wa"],
        ),
        (
            json!({"matches": [{"key": "resource_name", "value": "delta"}], "without_any_tag": true}),
            vec!["wd"],
        ),
        (
            json!({"sys_tags": [{"key": SYS_KEY, "values": [EPS]}]}),
            vec!["wa", "wd"],
        ),
        (
            json!({"sys_tags": [{"key": SYS_KEY, "values": []}]}),
            vec!["wa", "wb", "wd"],
        ),
        (
            json!({"sys_tags": [{"key": SYS_KEY, "values": [EPS, "0"]}]}),
            vec!["wa", "wb", "wd"],
        ),
        (
            json!({"sys_tags": [{"key": SYS_KEY, "values": ["no-such-eps"]}]}),
            vec![],
        ),
        (
            json!({"sys_tags": [{"key": SYS_KEY, "values": [EPS]}], "without_any_tag": true}),
            vec!["wd"],
        ),
        (
            json!({"sys_tags": [{"key": SYS_KEY, "values": [EPS]}], "tags": prod,
                   "matches": [{"key": "resource_name", "value": "alpha"}]}),
            vec!["wa"],
        ),
        (
            json!({"sys_tags": [{"key": SYS_KEY, "values": ["0"]}], "tags": [{"key": "team", "values": []}]}),
            vec![],
        ),
    ];
    for (body, expected) in cases {
        let r = filter(&s, &token, "?limit=100", &body).await;
        assert_eq!(ids(&r), expected, "filter {body}");
        assert_eq!(total(&r), expected.len() as u64, "total_count of {body}");
        let c = count(&s, &token, &body).await;
        assert_eq!(c.status, 200, "{}", c.text);
        assert_eq!(
            c.body,
            json!({"total_count": expected.len()}),
            "count of {body}"
        );
    }
}

#[tokio::test]
async fn a_listed_workspace_carries_its_name_tags_and_sys_tags() {
    let (s, token) = fixture().await;
    let r = filter(
        &s,
        &token,
        "",
        &json!({"tags": [{"key": "team", "values": []}]}),
    )
    .await;
    assert_eq!(
        r.body,
        json!({"resources": [
            {"resource_id": "wa", "resource_detail": {}, "resource_name": "alpha-prod",
             "tags": [{"key": "env", "value": "prod"}, {"key": "team", "value": "x"}],
             "sys_tags": [{"key": SYS_KEY, "value": EPS}]},
            {"resource_id": "wc", "resource_detail": {}, "resource_name": "gamma-dev",
             "tags": [{"key": "env", "value": "dev"}, {"key": "team", "value": "y"}],
             "sys_tags": []},
        ], "total_count": 2}),
        "{}",
        r.text
    );
    // An unnamed workspace lists an empty name; an untagged one empty lists.
    s.register_in(TYPE, &["wz"]).await;
    let r = filter(&s, &token, "?offset=5", &json!({"without_any_tag": true})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(total(&r), 3);
    assert!(r.body["resources"].as_array().expect("list").is_empty());
    let r = filter(&s, &token, "?offset=2", &json!({"without_any_tag": true})).await;
    assert_eq!(
        r.body["resources"],
        json!([{"resource_id": "wz", "resource_detail": {}, "resource_name": "",
                "tags": [], "sys_tags": []}])
    );
}

/// Walks every page of `body` with `limit` and checks it against one big page: same
/// order, no duplicates, no gaps, every page full but the last, the total constant.
async fn walk(s: &TestServer, token: &str, body: &Value, limit: usize) -> Vec<String> {
    let full = filter(s, token, "?limit=100", body).await;
    let everything = ids(&full);
    let expected_total = total(&full);
    assert_eq!(everything.len() as u64, expected_total);
    let mut walked = Vec::new();
    let mut offset = 0;
    loop {
        let r = filter(s, token, &format!("?offset={offset}&limit={limit}"), body).await;
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
    assert_eq!(walked, everything, "{body}");
    let unique: std::collections::HashSet<&String> = walked.iter().collect();
    assert_eq!(unique.len(), walked.len(), "no duplicates");
    walked
}

#[tokio::test]
async fn paging_walks_every_workspace_exactly_once() {
    let s = TestServer::start().await;
    let ids_owned: Vec<String> = (0..23).map(|i| format!("ws-{i:02}")).collect();
    let names: Vec<(&str, &str)> = ids_owned.iter().map(|i| (i.as_str(), "w")).collect();
    register_named(&s, &names).await;
    let token = s.project_token().await;
    for (i, id) in ids_owned.iter().enumerate() {
        let eps = (i % 3 == 0).then_some(EPS);
        if i % 2 == 0 {
            tag(&s, &token, id, &[("k", "v")], eps).await;
        } else if let Some(eps) = eps {
            tag(&s, &token, id, &[], Some(eps)).await;
        }
    }
    let walked = walk(&s, &token, &json!({}), 5).await;
    assert_eq!(walked, ids_owned, "ordered by id");
    assert_eq!(walk(&s, &token, &json!({}), 1).await.len(), 23);
    assert_eq!(walk(&s, &token, &json!({}), 23).await.len(), 23);
    assert_eq!(
        walk(
            &s,
            &token,
            &json!({"tags": [{"key": "k", "values": ["v"]}]}),
            4
        )
        .await
        .len(),
        12
    );
    // The system-tag filter pages in memory: the same invariants hold.
    let sys = json!({"sys_tags": [{"key": SYS_KEY, "values": [EPS]}]});
    assert_eq!(walk(&s, &token, &sys, 3).await.len(), 8);
    let sys_untagged =
        json!({"sys_tags": [{"key": SYS_KEY, "values": [EPS]}], "without_any_tag": true});
    assert_eq!(walk(&s, &token, &sys_untagged, 2).await.len(), 4);

    // Default limit 10, default offset 0.
    let r = filter(&s, &token, "", &json!({})).await;
    assert_eq!(ids(&r), ids_owned[..10].to_vec());
    assert_eq!(total(&r), 23);
    let r = filter(&s, &token, "?offset=20", &sys).await;
    assert!(ids(&r).is_empty());
    assert_eq!(total(&r), 8, "past the end: no rows, the true total");
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
        "?limit=1.5",
        "?offset=-1",
        "?offset=x",
        "?offset=99999999999999999999999",
    ] {
        let r = filter(&s, &token, query, &json!({})).await;
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
    for query in ["?limit=1", "?limit=100", "?offset=0", "?offset=1000000"] {
        let r = filter(&s, &token, query, &json!({})).await;
        assert_eq!(r.status, 200, "{query}: {}", r.text);
    }
    for query in ["?limit=0", "?limit=1001", "?offset=-1", "?limit=x"] {
        assert_bad_request(&project_tags(&s, &token, query).await);
    }
    for query in ["?limit=1", "?limit=1000", "?offset=3"] {
        let r = project_tags(&s, &token, query).await;
        assert_eq!(r.status, 200, "{query}: {}", r.text);
    }
}

#[tokio::test]
async fn filter_lists_have_limits_at_n_and_n_plus_1() {
    let (s, token) = fixture().await;
    let keys = |n: usize| -> Value {
        (0..n)
            .map(|i| json!({"key": format!("k{i}"), "values": []}))
            .collect()
    };
    let values = |n: usize| -> Value {
        json!([{"key": "env", "values": (0..n).map(|i| format!("v{i}")).collect::<Vec<_>>()}])
    };
    let ok = [
        json!({"tags": keys(50)}),
        json!({"tags": values(10)}),
        json!({"sys_tags": [{"key": SYS_KEY, "values": (0..10).map(|i| i.to_string()).collect::<Vec<_>>()}]}),
        json!({"sys_tags": [{"key": SYS_KEY}]}),
        json!({"tags": null, "matches": null, "sys_tags": null, "without_any_tag": null}),
    ];
    for body in &ok {
        let r = filter(&s, &token, "", body).await;
        assert_eq!(r.status, 200, "{body}: {}", r.text);
        let r = count(&s, &token, body).await;
        assert_eq!(r.status, 200, "{body}: {}", r.text);
    }
    let bad = [
        json!({"tags": keys(51)}),
        json!({"tags": values(11)}),
        json!({"tags": [{"key": "env"}]}),
        json!({"tags": [{"key": "env", "values": null}]}),
        json!({"tags": [{"key": "", "values": []}]}),
        json!({"tags": [{"key": "env", "values": []}, {"key": "env", "values": ["prod"]}]}),
        json!({"tags": [{"values": ["prod"]}]}),
        json!({"tags": {"key": "env", "values": []}}),
        json!({"tags": [{"key": "env", "values": "prod"}]}),
        json!({"without_any_tag": "yes"}),
        json!({"matches": [{"key": "name", "value": "prod"}]}),
        json!({"matches": [{"key": "resource_name"}]}),
        json!({"matches": [{"key": "resource_name", "value": "a"}, {"key": "resource_name", "value": "b"}]}),
        json!({"sys_tags": [{"key": "eps", "values": [EPS]}]}),
        json!({"sys_tags": [{"key": SYS_KEY, "values": [EPS]}, {"key": "other", "values": []}]}),
        json!({"sys_tags": [{"key": SYS_KEY, "values": (0..11).map(|i| i.to_string()).collect::<Vec<_>>()}]}),
    ];
    for body in &bad {
        assert_bad_request(&filter(&s, &token, "", body).await);
        assert_bad_request(&count(&s, &token, body).await);
    }
    for raw in ["", "[]", "{", "null"] {
        let r = s
            .send(
                reqwest::Method::POST,
                &path(&s, "/resource-instances/filter"),
                Some(&token),
                Some(raw.as_bytes().to_vec()),
            )
            .await;
        assert_bad_request(&r);
    }
}

#[tokio::test]
async fn writes_are_read_back_including_those_made_through_tms() {
    let s = TestServer::start().await;
    register_named(&s, &[("w1", "one"), ("w2", "two")]).await;
    let token = s.project_token().await;
    let by_env = json!({"tags": [{"key": "env", "values": ["prod"]}]});
    assert!(ids(&filter(&s, &token, "", &by_env).await).is_empty());
    assert_eq!(
        project_tags(&s, &token, "").await.body,
        json!({"tags": []}),
        "a project without tags lists none"
    );

    tag(&s, &token, "w1", &[("env", "prod")], None).await;
    assert_eq!(ids(&filter(&s, &token, "", &by_env).await), ["w1"]);

    // A tag written through TMS is a Fabric tag like any other.
    let r = s
        .post(
            "/v1.0/resource-tags/batch-create",
            Some(&token),
            &json!({"project_id": s.creds.project_id,
                    "resources": [{"resource_id": "w2", "resource_type": TYPE}],
                    "tags": [{"key": "env", "value": "prod"}, {"key": "via", "value": "tms"}]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(ids(&filter(&s, &token, "", &by_env).await), ["w1", "w2"]);
    assert_eq!(count(&s, &token, &by_env).await.body["total_count"], 2);
    assert_eq!(
        project_tags(&s, &token, "").await.body,
        json!({"tags": [{"key": "env", "values": ["prod"]}, {"key": "via", "values": ["tms"]}]})
    );

    // Deleted through Fabric, gone at once.
    let r = s
        .post(
            &path(&s, "/w1/tags/delete"),
            Some(&token),
            &json!({"tags": [{"key": "env"}]}),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(ids(&filter(&s, &token, "", &by_env).await), ["w2"]);
    assert_eq!(
        ids(&filter(&s, &token, "", &json!({"without_any_tag": true})).await),
        ["w1"]
    );

    // System tags written and removed are seen by the sys_tags filter at once.
    let by_eps = json!({"sys_tags": [{"key": SYS_KEY, "values": [EPS]}]});
    tag(&s, &token, "w2", &[], Some(EPS)).await;
    let r = filter(&s, &token, "", &by_eps).await;
    assert_eq!(ids(&r), ["w2"]);
    assert_eq!(
        r.body["resources"][0]["sys_tags"],
        json!([{"key": SYS_KEY, "value": EPS}])
    );
    let r = s
        .post(
            &path(&s, "/w2/tags/delete"),
            Some(&token),
            &json!({"sys_tags": [{"key": SYS_KEY, "value": EPS}]}),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert!(ids(&filter(&s, &token, "", &by_eps).await).is_empty());
    assert_eq!(count(&s, &token, &by_eps).await.body["total_count"], 0);
}

#[tokio::test]
async fn project_tags_list_keys_with_their_values() {
    let (s, token) = fixture().await;
    let expected = json!({"tags": [
        {"key": "env", "values": ["dev", "prod"]},
        {"key": "team", "values": ["x", "y"]},
    ]});
    let r = project_tags(&s, &token, "").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.body, expected,
        "system tags and other types' tags stay out"
    );
    for flag in ["true", "false", "TRUE"] {
        let r = project_tags(&s, &token, &format!("?use_predefine_tags={flag}")).await;
        assert_eq!(r.body, expected, "use_predefine_tags={flag}: {}", r.text);
    }
    assert_bad_request(&project_tags(&s, &token, "?use_predefine_tags=yes").await);
    assert_bad_request(&project_tags(&s, &token, "?use_predefine_tags=").await);
    let r = project_tags(&s, &token, "?offset=1&limit=1").await;
    assert_eq!(r.body, json!({"tags": [expected["tags"][1]]}));
    let r = project_tags(&s, &token, "?limit=1").await;
    assert_eq!(r.body, json!({"tags": [expected["tags"][0]]}));
    let r = project_tags(&s, &token, "?offset=2").await;
    assert_eq!(r.body, json!({"tags": []}));
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
    s.register(json!([{"project_id": other_id, "resource_type": TYPE, "resource_id": "wa", "name": "elsewhere"}]))
        .await;
    let r = s
        .post(
            &format!("/v1/{other_id}/fabric-workspace/wa/tags/create"),
            Some(&other),
            &json!({"tags": [{"key": "env", "value": "prod"}, {"key": "there", "value": "1"}]}),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text);

    let r = s
        .post(
            &format!("/v1/{other_id}/fabric-workspace/resource-instances/filter"),
            Some(&other),
            &json!({}),
        )
        .await;
    assert_eq!(ids(&r), ["wa"]);
    assert_eq!(r.body["resources"][0]["resource_name"], "elsewhere");
    let r = s
        .get(
            &format!("/v1/{other_id}/fabric-workspace/tags"),
            Some(&other),
        )
        .await;
    assert_eq!(
        r.body,
        json!({"tags": [{"key": "env", "values": ["prod"]}, {"key": "there", "values": ["1"]}]})
    );
    // The first project sees none of it.
    let r = filter(
        &s,
        &token,
        "",
        &json!({"tags": [{"key": "there", "values": []}]}),
    )
    .await;
    assert!(ids(&r).is_empty());
    let r = filter(&s, &token, "", &json!({})).await;
    assert_eq!(total(&r), 5);

    // Another project's token: 403 in the page's shape; no token: 401.
    for r in [
        filter(&s, &other, "", &json!({})).await,
        count(&s, &other, &json!({})).await,
        project_tags(&s, &other, "").await,
    ] {
        assert_eq!(r.status, 403, "{}", r.text);
        assert_eq!(r.body["error_code"], 403, "{}", r.text);
        assert_eq!(r.body["error"]["title"], "Forbidden", "{}", r.text);
    }
    for r in [
        s.post(&path(&s, "/resource-instances/filter"), None, &json!({}))
            .await,
        s.post(&path(&s, "/resource-instances/count"), None, &json!({}))
            .await,
        s.get(&path(&s, "/tags"), None).await,
    ] {
        assert_eq!(r.status, 401, "{}", r.text);
        assert_eq!(r.body["error_code"], "APIG.1002", "{}", r.text);
    }
    // Authorisation comes before the body and the paging.
    let r = s
        .send(
            reqwest::Method::POST,
            &format!("{}?limit=0", path(&s, "/resource-instances/filter")),
            Some(&other),
            Some(b"{".to_vec()),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text);
}
