//! DIS streams (seed 004): `tags/action` creates or deletes tags of one stream, with the
//! single-tag companions the SDK offers.
//!
//! Keys and values admit `A-Z a-z 0-9` and the CJK ideographs U+4E00 to U+9FFF besides
//! their punctuation; a delete checks only that keys are present, as documented.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, post};
use axum::Router;
use serde::Deserialize;
use serde_json::json;

use super::{
    json_response, message, single_tag, status, ApiError, AppState, Dialect, JsonBody, PathParams,
    ProjectCaller, WireTag,
};
use crate::core::providers::DIS_STREAM;
use crate::core::tagging::TagChange;
use crate::core::tags::{Letters, TagRules, TextRule};
use crate::core::{CoreError, Reason};

/// The page's rules: keys 1 to 36 of `A-Z a-z 0-9 - _` and CJK; values up to 43 of
/// `A-Z a-z 0-9 . - _` and CJK.
pub const RULES: TagRules = TagRules {
    key: TextRule {
        min_chars: 1,
        max_chars: 36,
        letters: Letters::AsciiAndCjk,
        extra: "-_",
        trimmed: false,
        reserved_prefix: None,
    },
    value: TextRule {
        min_chars: 0,
        max_chars: 43,
        letters: Letters::AsciiAndCjk,
        extra: ".-_",
        trimmed: false,
        reserved_prefix: None,
    },
    max_tags_per_request: 20,
};

pub struct Dis;

impl single_tag::TaggedResource for Dis {
    const RESOURCE_TYPE: &'static str = DIS_STREAM;
    const ID_PARAM: &'static str = "stream_id";
    const RULES: TagRules = RULES;
}

type DisError = ApiError<Dis>;

impl Dialect for Dis {
    fn error_response(err: &CoreError) -> Response {
        json_response(
            status(err),
            &json!({ "error_code": code(err), "error_msg": message(err) }),
        )
    }
}

/// DIS's published codes where one fits; every variant named.
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
        | CoreError::TagLimitExceeded { .. }
        | CoreError::Timeout { .. } => "DIS.4200",
        CoreError::Unauthenticated { .. } => "APIGW.0301",
        CoreError::Forbidden { .. } => "APIGW.0302",
        CoreError::NotFound { .. } => "DIS.4301",
        CoreError::Internal(_) | CoreError::Unexpected { .. } => "DIS.5000",
    }
}

pub fn router() -> Router<AppState> {
    Router::new()
        // `DELETE .../tags/action` is the single-tag delete of a tag whose key is "action".
        .route(
            "/v2/{project_id}/stream/{stream_id}/tags/action",
            post(tags_action).delete(single_tag::delete::<Dis>),
        )
        .route(
            "/v2/{project_id}/stream/{stream_id}/tags",
            post(single_tag::create::<Dis>),
        )
        .route(
            "/v2/{project_id}/stream/{stream_id}/tags/{key}",
            delete(single_tag::delete::<Dis>),
        )
}

#[derive(Deserialize)]
struct StreamPath {
    stream_id: String,
}

#[derive(Deserialize)]
struct ActionBody {
    action: String,
    tags: Vec<WireTag>,
}

/// Applies a change to the stream in the path; an unknown stream is 404.
async fn apply(
    state: &AppState,
    caller: &ProjectCaller<Dis>,
    stream_id: &str,
    change: TagChange,
) -> Result<Response, DisError> {
    caller
        .apply_one(state, DIS_STREAM, "stream_id", stream_id, change)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn tags_action(
    caller: ProjectCaller<Dis>,
    State(state): State<AppState>,
    PathParams(path, ..): PathParams<Dis, StreamPath>,
    JsonBody(body, ..): JsonBody<Dis, ActionBody>,
) -> Result<Response, DisError> {
    let change = match body.action.as_str() {
        "create" => TagChange::Set(RULES.tags(body.tags.iter().map(WireTag::pair))?),
        "delete" => {
            TagChange::Remove(RULES.lenient_selectors(body.tags.iter().map(WireTag::selector))?)
        }
        other => {
            return Err(
                CoreError::invalid("action", Reason::one_of(&["create", "delete"], other)).into(),
            )
        }
    };
    apply(&state, &caller, &path.stream_id, change).await
}
