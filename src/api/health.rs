//! Health endpoints for orchestrators and load balancers: `/healthz` answers while the
//! process serves HTTP at all; `/readyz` only while the store can serve requests.
//!
//! Neither needs a credential (probes carry none) or tells more than a probe needs:
//! the cause of a failed readiness check goes to the log, not to the caller.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;
use utoipa::openapi::schema::Type;

use super::openapi::{op, Routes, GATEWAY_ERROR};
use super::{json_response, AppState};

/// How long `/readyz` waits for the store. Longer, and the store is busy enough (the
/// SQLite writer building its tag index, say) that traffic is better sent elsewhere.
const READY_WITHIN: Duration = Duration::from_secs(2);

pub fn routes() -> Routes {
    const NOT_READY: &[(&str, Type)] = &[("status", Type::String), ("reason", Type::String)];
    Routes::new("Health", GATEWAY_ERROR)
        .get(
            "/healthz",
            live,
            op("ShowLiveness", "200 while the process serves HTTP")
                .public()
                .returns(&[("status", Type::String)]),
        )
        .get(
            "/readyz",
            ready,
            op(
                "ShowReadiness",
                "200 while the store can serve requests; 503 otherwise",
            )
            .public()
            .returns(&[("status", Type::String), ("schema_version", Type::Integer)])
            .or_answers(StatusCode::SERVICE_UNAVAILABLE, NOT_READY),
        )
}

async fn live() -> Response {
    json_response(StatusCode::OK, &json!({ "status": "ok" }))
}

async fn ready(State(state): State<AppState>) -> Response {
    let not_ready = |reason: &str| {
        json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({ "status": "not ready", "reason": reason }),
        )
    };
    match tokio::time::timeout(READY_WITHIN, state.store.readiness()).await {
        Ok(Ok(version)) if version.found == version.expected => json_response(
            StatusCode::OK,
            &json!({ "status": "ready", "schema_version": version.found }),
        ),
        Ok(Ok(version)) => {
            tracing::warn!(
                found = version.found,
                expected = version.expected,
                "not ready: the database's schema is not this binary's"
            );
            not_ready("the database schema is not the version this tagd expects")
        }
        Ok(Err(e @ crate::core::port::StoreError::Poisoned(_))) => {
            tracing::warn!(error = %e, "not ready: the store stopped after a storage failure");
            not_ready("the store stopped after a storage failure; restart tagd")
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "not ready: the store did not answer");
            not_ready("the store did not answer")
        }
        Err(_) => {
            tracing::warn!(within = ?READY_WITHIN, "not ready: the store is busy");
            not_ready("the store did not answer in time")
        }
    }
}
