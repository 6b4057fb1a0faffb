//! The HTTP ceiling of bench/suite.sh: a bare axum server with the route shapes the
//! W1-W3 workloads use, parsing each JSON body and answering what tagd answers, with
//! no store and no authentication. Whatever tagd does on top costs throughput against
//! this server, measured with the same load client in the same run.
//!
//! ```sh
//! cargo run --release --example http_ceiling -- 127.0.0.1:18401
//! ```

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};

/// What tagd answers for an instance with the five tags W3 sets, byte for byte.
const TAGS_BODY: &str = concat!(
    r#"{"tags":[{"key":"k0","value":"value-0","tag_type":"user"},"#,
    r#"{"key":"k1","value":"value-1","tag_type":"user"},"#,
    r#"{"key":"k2","value":"value-2","tag_type":"user"},"#,
    r#"{"key":"k3","value":"value-3","tag_type":"user"},"#,
    r#"{"key":"k4","value":"value-4","tag_type":"user"}]}"#
);

fn json_body(body: &'static str) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], body)
}

async fn batch_create(Json(_body): Json<serde_json::Value>) -> impl IntoResponse {
    json_body(r#"{"failed_resources":[]}"#)
}

async fn tags_action(
    Path((_project, _instance)): Path<(String, String)>,
    Json(_body): Json<serde_json::Value>,
) -> StatusCode {
    StatusCode::NO_CONTENT
}

async fn instance_tags(Path((_project, _instance)): Path<(String, String)>) -> impl IntoResponse {
    json_body(TAGS_BODY)
}

fn main() -> std::process::ExitCode {
    let listen = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:18401".to_owned());
    // The same runtime tagd builds: multi-threaded, one worker per core.
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("http_ceiling: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let app = Router::new()
        .route("/", get(|| async { json_body(r#"{"versions":[]}"#) }))
        .route("/v1.0/resource-tags/batch-create", post(batch_create))
        .route(
            "/v3/{project_id}/instances/{instance_id}/tags/action",
            post(tags_action),
        )
        .route(
            "/v3/{project_id}/instances/{instance_id}/tags",
            get(instance_tags),
        );
    let served = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(&listen).await?;
        axum::serve(listener, app).await
    });
    match served {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("http_ceiling: {listen}: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
