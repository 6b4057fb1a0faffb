//! RDS DB instances (seed 003): `tags/action` creates or deletes tags of one instance.
//!
//! Errors are flat `error_code`/`error_msg`, and `error_msg` speaks the language of the
//! request's `X-Language` (`en-us`, the default, or `zh-cn`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde::Deserialize;
use serde_json::json;

use super::language;
use super::{
    json_response, status, ApiError, AppState, Dialect, JsonBody, PathParams, ProjectCaller,
    WireTag,
};
use crate::core::providers::RDS_INSTANCE;
use crate::core::tagging::TagChange;
use crate::core::tags::{Letters, TagRules, TextRule};
use crate::core::{CoreError, Reason};

/// The page's rules: keys of letters, digits, `_` and `-`, 1 to 36 characters, not a
/// space; values of letters, digits, `_`, `.` and `-`, up to 43 characters, possibly
/// empty but not a space.
pub const RULES: TagRules = TagRules {
    key: TextRule {
        min_chars: 1,
        max_chars: 36,
        letters: Letters::Unicode,
        extra: "_-",
        trimmed: true,
        reserved_prefix: None,
    },
    value: TextRule {
        min_chars: 0,
        max_chars: 43,
        letters: Letters::Unicode,
        extra: "_.-",
        trimmed: true,
        reserved_prefix: None,
    },
    max_tags_per_request: 20,
};

pub struct Rds;

type RdsError = ApiError<Rds>;

impl Dialect for Rds {
    fn error_response(err: &CoreError) -> Response {
        json_response(
            status(err),
            &json!({ "error_code": code(err), "error_msg": language::current().message(err) }),
        )
    }
}

/// RDS's published codes (its "Error Codes" page) where one fits; every variant named.
fn code(err: &CoreError) -> &'static str {
    match err {
        CoreError::MalformedBody { .. }
        | CoreError::BodyTooLarge { .. }
        | CoreError::InvalidField { .. }
        | CoreError::Empty { .. }
        | CoreError::TooMany { .. }
        | CoreError::InvalidTagKey { .. }
        | CoreError::InvalidTagValue { .. }
        | CoreError::DuplicateTagKey { .. }
        | CoreError::UnknownResourceType { .. }
        | CoreError::ProjectRequired { .. }
        | CoreError::MethodNotAllowed { .. }
        | CoreError::Conflict { .. }
        | CoreError::Timeout { .. } => "DBS.200001",
        CoreError::TagLimitExceeded { .. } => "DBS.200087",
        CoreError::Unauthenticated { .. } => "APIGW.0301",
        CoreError::Forbidden { .. } => "DBS.200010",
        CoreError::NotFound { .. } => "DBS.200002",
        CoreError::Internal(_) | CoreError::Unexpected { .. } => "DBS.108000",
    }
}

pub fn router() -> Router<AppState> {
    Router::new().route(
        "/v3/{project_id}/instances/{instance_id}/tags/action",
        post(tags_action),
    )
}

#[derive(Deserialize)]
struct InstancePath {
    instance_id: String,
}

#[derive(Deserialize)]
struct ActionBody {
    action: String,
    tags: Vec<WireTag>,
}

async fn tags_action(
    caller: ProjectCaller<Rds>,
    State(state): State<AppState>,
    PathParams(path, ..): PathParams<Rds, InstancePath>,
    JsonBody(body, ..): JsonBody<Rds, ActionBody>,
) -> Result<Response, RdsError> {
    let change = match body.action.as_str() {
        "create" => {
            // The value is mandatory when creating (and may be empty).
            if let Some(i) = body.tags.iter().position(|t| t.value.is_none()) {
                return Err(
                    CoreError::invalid(format!("tags[{i}].value"), Reason::required()).into(),
                );
            }
            TagChange::Set(RULES.tags(body.tags.iter().map(WireTag::pair))?)
        }
        "delete" => TagChange::Remove(RULES.selectors(body.tags.iter().map(WireTag::selector))?),
        other => {
            return Err(
                CoreError::invalid("action", Reason::one_of(&["create", "delete"], other)).into(),
            )
        }
    };
    caller
        .apply_one(
            &state,
            RDS_INSTANCE,
            "instance_id",
            &path.instance_id,
            change,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
