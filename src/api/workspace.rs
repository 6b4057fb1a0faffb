//! Workspace desktops (seed 000): batch tagging of desktops and its companion calls.
//!
//! Unknown desktop ids in the batch calls are filtered out silently, as the page says;
//! any other problem rejects the whole request. Errors are flat, with `error_detail`,
//! and a 403 also carries `encoded_authorization_message`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, post};
use axum::Router;
use serde::Deserialize;
use serde_json::json;

use axum::extract::State;

use super::{
    json_response, message, single_tag, status, ApiError, AppState, Dialect, JsonBody, PathParams,
    ProjectCaller, WireTag,
};
use crate::core::providers::WORKSPACE_DESKTOP;
use crate::core::tagging::TagChange;
use crate::core::tags::{Letters, TagRules, TextRule};
use crate::core::{CoreError, Reason};

/// Most desktops one batch call may name.
pub const MAX_DESKTOPS_PER_REQUEST: usize = 100;

/// The page's rules: keys of letters, digits, `-` and `_` (so none of `=*<>,|/`), up to
/// 128 characters, not starting with the reserved `_sys_`; values of the same characters
/// up to 43, possibly empty; 20 tags per desktop.
pub const RULES: TagRules = TagRules {
    key: TextRule {
        min_chars: 1,
        max_chars: 128,
        letters: Letters::Unicode,
        extra: "-_",
        trimmed: true,
        reserved_prefix: Some("_sys_"),
    },
    value: TextRule {
        min_chars: 0,
        max_chars: 43,
        letters: Letters::Unicode,
        extra: "-_",
        trimmed: false,
        reserved_prefix: None,
    },
    max_tags_per_request: 20,
};

pub struct Workspace;

impl single_tag::TaggedResource for Workspace {
    const RESOURCE_TYPE: &'static str = WORKSPACE_DESKTOP;
    const ID_PARAM: &'static str = "desktop_id";
    const RULES: TagRules = RULES;
}

type WorkspaceError = ApiError<Workspace>;

impl Dialect for Workspace {
    fn error_response(err: &CoreError) -> Response {
        let status = status(err);
        let mut body = json!({
            "error_code": code(err),
            "error_msg": message(err),
            "error_detail": detail(err),
        });
        if status == StatusCode::FORBIDDEN {
            // The cloud encrypts the denial reason for STS to decode; tagd has nothing
            // to hide from the caller, so it hex-encodes the plain reason.
            body["encoded_authorization_message"] = json!(hex::encode(message(err)));
        }
        json_response(status, &body)
    }
}

/// Workspace's codes; every variant named.
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
        | CoreError::MethodNotAllowed { .. } => "WKS.0002",
        CoreError::TagLimitExceeded { .. } => "WKS.0003",
        CoreError::Unauthenticated { .. } => "APIGW.0301",
        CoreError::Forbidden { .. } => "APIGW.0302",
        CoreError::NotFound { .. } => "WKS.0004",
        CoreError::Conflict { .. } => "WKS.0006",
        CoreError::Timeout { .. } => "WKS.0008",
        CoreError::Internal(_) | CoreError::Unexpected { .. } => "WKS.0000",
    }
}

/// What to do about it, for `error_detail`.
fn detail(err: &CoreError) -> &'static str {
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
        | CoreError::Conflict { .. } => "Check the request against the API reference.",
        CoreError::TagLimitExceeded { .. } => {
            "Delete tags the desktop no longer needs, or add fewer."
        }
        CoreError::Unauthenticated { .. } => {
            "Obtain a valid token from IAM and send it in X-Auth-Token."
        }
        CoreError::Forbidden { .. } => "Use a token scoped to the project in the path.",
        CoreError::NotFound { .. } => "Check the desktop id and the project.",
        CoreError::Timeout { .. } => "Retry the request later.",
        CoreError::Internal(_) | CoreError::Unexpected { .. } => "Contact the administrator.",
    }
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/v2/{project_id}/desktops/batch-tags",
            post(batch_add).delete(batch_delete),
        )
        // `DELETE .../tags/action` is the single-tag delete of a tag whose key is "action".
        .route(
            "/v2/{project_id}/desktops/{desktop_id}/tags/action",
            post(change_tags).delete(single_tag::delete::<Workspace>),
        )
        .route(
            "/v2/{project_id}/desktops/{desktop_id}/tags",
            post(single_tag::create::<Workspace>),
        )
        .route(
            "/v2/{project_id}/desktops/{desktop_id}/tags/{key}",
            delete(single_tag::delete::<Workspace>),
        )
}

#[derive(Deserialize)]
struct DesktopTags {
    desktop_id: String,
    tags: Vec<WireTag>,
}

#[derive(Deserialize)]
struct BatchBody {
    desktops: Vec<DesktopTags>,
}

#[derive(Deserialize)]
struct ActionBody {
    action: String,
    tags: Vec<WireTag>,
    /// Deprecated in the SDK; accepted and ignored.
    #[serde(default, rename = "sys_tags")]
    _sys_tags: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct DesktopPath {
    desktop_id: String,
}

fn check_desktop_count(n: usize) -> Result<(), CoreError> {
    if n == 0 {
        return Err(CoreError::Empty { field: "desktops" });
    }
    if n > MAX_DESKTOPS_PER_REQUEST {
        return Err(CoreError::TooMany {
            field: "desktops",
            max: MAX_DESKTOPS_PER_REQUEST,
            got: n,
        });
    }
    Ok(())
}

/// Applies one change per desktop of a batch body, all or nothing, skipping unknown
/// desktops as the page documents.
async fn batch(
    state: &AppState,
    caller: &ProjectCaller<Workspace>,
    body: &BatchBody,
    change: impl Fn(&[WireTag]) -> Result<TagChange, CoreError>,
) -> Result<Response, WorkspaceError> {
    check_desktop_count(body.desktops.len())?;
    let mut items = Vec::with_capacity(body.desktops.len());
    for (i, d) in body.desktops.iter().enumerate() {
        let change = change(&d.tags)?;
        // "Invalid desktop IDs are filtered out": one that cannot even be an id is
        // left out like one that names no desktop.
        if let Ok(item) = caller.item(
            WORKSPACE_DESKTOP,
            &format!("desktops[{i}].desktop_id"),
            &d.desktop_id,
            change,
        ) {
            items.push(item);
        }
    }
    state.tagging.apply_all(items, true).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Applies a change to the desktop in the path; an unknown desktop is 404.
async fn one(
    state: &AppState,
    caller: &ProjectCaller<Workspace>,
    desktop_id: &str,
    change: TagChange,
) -> Result<Response, WorkspaceError> {
    caller
        .apply_one(state, WORKSPACE_DESKTOP, "desktop_id", desktop_id, change)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn set(tags: &[WireTag]) -> Result<TagChange, CoreError> {
    Ok(TagChange::Set(RULES.tags(tags.iter().map(WireTag::pair))?))
}

fn remove(tags: &[WireTag]) -> Result<TagChange, CoreError> {
    Ok(TagChange::Remove(
        RULES.selectors(tags.iter().map(WireTag::selector))?,
    ))
}

async fn batch_add(
    caller: ProjectCaller<Workspace>,
    State(state): State<AppState>,
    JsonBody(body, ..): JsonBody<Workspace, BatchBody>,
) -> Result<Response, WorkspaceError> {
    batch(&state, &caller, &body, set).await
}

async fn batch_delete(
    caller: ProjectCaller<Workspace>,
    State(state): State<AppState>,
    JsonBody(body, ..): JsonBody<Workspace, BatchBody>,
) -> Result<Response, WorkspaceError> {
    batch(&state, &caller, &body, remove).await
}

async fn change_tags(
    caller: ProjectCaller<Workspace>,
    State(state): State<AppState>,
    PathParams(path, ..): PathParams<Workspace, DesktopPath>,
    JsonBody(body, ..): JsonBody<Workspace, ActionBody>,
) -> Result<Response, WorkspaceError> {
    let change = match body.action.as_str() {
        "create" => set(&body.tags)?,
        "delete" => remove(&body.tags)?,
        other => {
            return Err(
                CoreError::invalid("action", Reason::one_of(&["create", "delete"], other)).into(),
            )
        }
    };
    one(&state, &caller, &path.desktop_id, change).await
}
