//! The OpenAPI document against the running server: every documented operation is
//! served, every other method of a documented path is refused as the router's
//! wrong-method fallback refuses it, and no route is added outside the document's
//! builder (`api::openapi::Routes`).

use serde_json::Value;

use crate::TestServer;

const METHODS: [&str; 5] = ["get", "post", "put", "delete", "patch"];

/// A concrete path for a template: `{api_version}` must be a real version (any other
/// is the gateway's 404); any other parameter takes a made-up id.
fn concrete(template: &str) -> String {
    template
        .split('/')
        .map(|segment| match segment {
            "{api_version}" => "v1.0",
            s if s.starts_with('{') => "openapi-probe",
            s => s,
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn method(name: &str) -> reqwest::Method {
    name.to_ascii_uppercase().parse().expect("an HTTP method")
}

/// The document's operations, as (method, path template).
fn operations(document: &Value) -> Vec<(String, String)> {
    let paths = document["paths"].as_object().expect("paths");
    let mut operations = Vec::new();
    for (path, item) in paths {
        for m in METHODS {
            if item.get(m).is_some() {
                operations.push((m.to_owned(), path.clone()));
            }
        }
    }
    operations
}

#[tokio::test]
async fn the_document_lists_exactly_the_routes_the_server_serves() {
    let s = TestServer::start().await;
    let r = s.get("/openapi.json", None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("content-type").as_deref(), Some("application/json"));
    assert_eq!(r.body["openapi"], "3.1.0");
    let document = r.body;
    let operations = operations(&document);
    assert!(operations.len() >= 50, "only {} operations", operations.len());

    for (m, template) in &operations {
        let path = concrete(template);
        let reply = s.send(method(m), &path, None, None).await;
        // Without credentials a documented route answers 401 (or 200/400 where none
        // are needed); the fallbacks would answer 404 "the API ..." or 405.
        let fallback = reply.status == 405
            || (reply.status == 404 && reply.text.contains(&format!("the API {path}")));
        assert!(
            !fallback,
            "{} {path} is documented but not served: {} {}",
            m.to_uppercase(),
            reply.status,
            reply.text
        );
    }

    for (path, item) in document["paths"].as_object().expect("paths") {
        for m in METHODS.iter().filter(|m| item.get(**m).is_none()) {
            let reply = s.send(method(m), &concrete(path), None, None).await;
            assert_eq!(
                reply.status,
                405,
                "{} {path} is not documented but answered: {}",
                m.to_uppercase(),
                reply.text
            );
        }
    }
}

#[tokio::test]
async fn undocumented_paths_get_the_fallback() {
    let s = TestServer::start().await;
    for path in [
        "/v1.0/resource-tags",
        "/v1.0/resource-tags/batch-create/extra",
        "/v2/p/desktops",
        "/v3/p/instances/i/tags/extra",
        "/openapi.yaml",
        "/v9.9",
    ] {
        let reply = s.get(path, None).await;
        assert_eq!(reply.status, 404, "{path}: {}", reply.text);
    }
}

/// The router is built in one place: a `.route(` anywhere else in the HTTP layer would
/// serve a path the document does not show.
#[test]
fn routes_are_added_only_through_the_document_builder() {
    let mut pending = vec![std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/api")];
    let mut files = Vec::new();
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).expect("src/api") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files.push(path);
            }
        }
    }
    assert!(files.len() > 10, "the API's sources: {files:?}");
    for path in files {
        if path.file_name().is_some_and(|n| n == "openapi.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path)
            .expect("source")
            .replace(".merge(openapi::router())", "");
        for needle in [".route(", "axum::routing", ".nest(", ".merge("] {
            assert!(
                !text.contains(needle),
                "{} uses `{needle}`: add routes with api::openapi::Routes",
                path.display()
            );
        }
    }
}
